"""Sessions of the web console (``console_session``), kept in the database so that
every server process knows them and they end everywhere at once.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import schemas.types

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "console_session",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", schemas.types.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", schemas.types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", schemas.types.UTCDateTime(), nullable=False),
        sa.Column("ended_at", schemas.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user.id"],
            name=op.f("fk_console_session_user_id_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_session")),
    )
    op.create_index(
        op.f("ix_console_session_expires_at"), "console_session", ["expires_at"], unique=False
    )
    op.create_index(
        op.f("ix_console_session_secret_hash"), "console_session", ["secret_hash"], unique=True
    )
    op.create_index(
        op.f("ix_console_session_user_id"), "console_session", ["user_id"], unique=False
    )


def downgrade() -> None:
    for column in ("user_id", "secret_hash", "expires_at"):
        op.drop_index(op.f(f"ix_console_session_{column}"), table_name="console_session")
    op.drop_table("console_session")
