"""The extension workers' domain: people, households and conservation agreements (their
rules for the engine), the registry's reads, duplicates and merges, personal data."""

from sync.people import agreement_report  # the coverage report, for the verifier's bundle
from sync.people.registry import visible_person

__all__ = ["agreement_report", "visible_person"]
