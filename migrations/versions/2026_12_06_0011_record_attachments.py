"""Records name their files: an ``attachments`` list on patrols, observations,
households, agreements and training sessions; ``attachment_link``, the live records
that name each file (who may read it); ``attachment_owed``, the files devices named
before sending them.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import schemas.types

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RECORDS = ("patrol", "observation", "household", "agreement", "training_session")


def upgrade() -> None:
    # A plain ADD COLUMN with a constant default, on SQLite too: no table is rebuilt.
    for table in RECORDS:
        op.add_column(
            table,
            sa.Column(
                "attachments",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                server_default="[]",
                nullable=False,
            ),
        )
    op.create_table(
        "attachment_link",
        sa.Column("entity", sa.String(length=32), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("entity", "record_id", "sha256", name=op.f("pk_attachment_link")),
    )
    op.create_index(op.f("ix_attachment_link_sha256"), "attachment_link", ["sha256"], unique=False)
    op.create_table(
        "attachment_owed",
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("entity", sa.String(length=32), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("named_at", schemas.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["device.id"], name=op.f("fk_attachment_owed_device_id_device")
        ),
        sa.PrimaryKeyConstraint("device_id", "sha256", name=op.f("pk_attachment_owed")),
    )
    op.create_index(op.f("ix_attachment_owed_sha256"), "attachment_owed", ["sha256"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_attachment_owed_sha256"), table_name="attachment_owed")
    op.drop_table("attachment_owed")
    op.drop_index(op.f("ix_attachment_link_sha256"), table_name="attachment_link")
    op.drop_table("attachment_link")
    for table in RECORDS:
        op.drop_column(table, "attachments")
