"""The extension workers' domain: people, households and conservation agreements (their
rules for the engine), the registry's reads, duplicates and merges, personal data."""
