"""Refused changes: a change_id reused for other content, kept for admins to see.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 21:59:39.716911
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import schemas.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "refused_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("change_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("batch_id", sa.Uuid(), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("entity", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=True),
        sa.Column("op", sa.String(length=16), nullable=False),
        sa.Column("errors", schemas.types.JSONDocument, nullable=False),
        sa.Column("change", schemas.types.JSONDocument, nullable=False),
        sa.Column("received_at", schemas.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["device.id"], name=op.f("fk_refused_change_device_id_device")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_refused_change_user_id_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refused_change")),
    )
    op.create_index(
        op.f("ix_refused_change_change_id"), "refused_change", ["change_id"], unique=False
    )
    op.create_index(
        op.f("ix_refused_change_received_at"), "refused_change", ["received_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_refused_change_received_at"), table_name="refused_change")
    op.drop_index(op.f("ix_refused_change_change_id"), table_name="refused_change")
    op.drop_table("refused_change")
