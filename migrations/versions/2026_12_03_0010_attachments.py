"""Attachments: the files the server holds (``attachment``) and the tus uploads in
progress (``attachment_upload``), kept in the database so any process can continue one.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 15:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import schemas.types

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "attachment",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("uploaded_by", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", schemas.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["device.id"], name=op.f("fk_attachment_device_id_device")
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by"], ["user.id"], name=op.f("fk_attachment_uploaded_by_user")
        ),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_attachment")),
    )
    op.create_index(op.f("ix_attachment_device_id"), "attachment", ["device_id"], unique=False)
    op.create_index(op.f("ix_attachment_uploaded_by"), "attachment", ["uploaded_by"], unique=False)
    op.create_table(
        "attachment_upload",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=64), nullable=False),
        sa.Column("length", sa.BigInteger(), nullable=False),
        sa.Column("received", sa.BigInteger(), nullable=False),
        sa.Column(
            "parts",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", schemas.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", schemas.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["device.id"], name=op.f("fk_attachment_upload_device_id_device")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_attachment_upload_user_id_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachment_upload")),
    )
    for column in ("device_id", "sha256", "updated_at", "user_id"):
        op.create_index(
            op.f(f"ix_attachment_upload_{column}"), "attachment_upload", [column], unique=False
        )


def downgrade() -> None:
    for column in ("device_id", "sha256", "updated_at", "user_id"):
        op.drop_index(op.f(f"ix_attachment_upload_{column}"), table_name="attachment_upload")
    op.drop_table("attachment_upload")
    op.drop_index(op.f("ix_attachment_uploaded_by"), table_name="attachment")
    op.drop_index(op.f("ix_attachment_device_id"), table_name="attachment")
    op.drop_table("attachment")
