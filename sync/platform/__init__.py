"""Shared plumbing: settings, the database and its dialects, migrations, errors,
CSV files and periods. It imports nothing else of ``sync``."""
