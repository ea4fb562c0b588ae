"""Alembic migrations: the only way fieldsync's schema is made, on SQLite and PostgreSQL."""
