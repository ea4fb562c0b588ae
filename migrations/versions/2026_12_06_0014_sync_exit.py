"""Records that change scope: the exits a pull of the old scope reads as deletes.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 16:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import schemas.types

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sync_exit",
        sa.Column("change_seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("entity", sa.String(length=32), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("sector_id", sa.Uuid(), nullable=True),
        sa.Column("community_id", sa.Uuid(), nullable=True),
        sa.Column("updated_at", schemas.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("change_seq", name=op.f("pk_sync_exit")),
    )
    op.create_index(
        op.f("ix_sync_exit_sector_id_change_seq"), "sync_exit", ["sector_id", "change_seq"]
    )
    op.create_index(
        op.f("ix_sync_exit_community_id_change_seq"), "sync_exit", ["community_id", "change_seq"]
    )


def downgrade() -> None:
    op.drop_table("sync_exit")
