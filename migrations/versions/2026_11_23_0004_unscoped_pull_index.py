"""A partial index of the unscoped pull entries (the observation categories every
device pulls), so that a pull reads them by an index range, not by walking past the
scoped entries.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 23:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNSCOPED = "sector_id IS NULL AND community_id IS NULL"


def upgrade() -> None:
    op.create_index(
        "ix_sync_entry_unscoped_change_seq",
        "sync_entry",
        ["sector_id", "community_id", "change_seq"],
        unique=False,
        sqlite_where=sa.text(UNSCOPED),
        postgresql_where=sa.text(UNSCOPED),
    )


def downgrade() -> None:
    op.drop_index("ix_sync_entry_unscoped_change_seq", table_name="sync_entry")
