"""Keep the change log's documents as JSON text, compressed with lz4, on PostgreSQL.

A push writes each record's state three more times besides its row: its version
(``record_version.fields``), the change as sent (``sync_change.change``) and its pull
snapshot (``sync_entry.fields``). They are only ever written and read whole, so JSONB's
parse on every write bought nothing; JSON keeps the text as given. Large documents (a
track segment of a hundred points is about 10 kB) are compressed by TOAST: lz4 does it
several times faster than the default pglz, where the server has it. SQLite stores
JSON as text already: nothing changes there.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 23:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LOG_DOCUMENTS = (
    ("record_version", "fields"),
    ("sync_change", "change"),
    ("sync_entry", "fields"),
)
COMPRESSED = (*LOG_DOCUMENTS, ("track_segment", "points"))


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in LOG_DOCUMENTS:
        op.alter_column(
            table,
            column,
            type_=sa.JSON(),
            existing_type=postgresql.JSONB(),
            existing_nullable=False,
            postgresql_using=f"{column}::json",
        )
    _compress("lz4" if _lz4_available() else "default")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _compress("default")
    for table, column in LOG_DOCUMENTS:
        op.alter_column(
            table,
            column,
            type_=postgresql.JSONB(),
            existing_type=sa.JSON(),
            existing_nullable=False,
            postgresql_using=f"{column}::jsonb",
        )


def _lz4_available() -> bool:
    """Whether this server was built with lz4 (PostgreSQL 14 and later, usually)."""
    choices = op.get_bind().scalar(
        sa.text("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")
    )
    return bool(choices) and "lz4" in choices


def _compress(method: str) -> None:
    for table, column in COMPRESSED:
        op.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" SET COMPRESSION {method}')
