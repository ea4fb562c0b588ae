"""Throttle by client address: failed logins looked up by address (then username), and
wrong enrollment codes counted per address (``enrollment_failure``).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import schemas.types

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Failures are counted per (username, address) and per address: the address leads.
    op.drop_index(op.f("ix_login_failure_username_failed_at"), table_name="login_failure")
    op.create_index(
        op.f("ix_login_failure_client_ip_username_failed_at"),
        "login_failure",
        ["client_ip", "username", "failed_at"],
        unique=False,
    )
    op.create_table(
        "enrollment_failure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("failed_at", schemas.types.UTCDateTime(), nullable=False),
        sa.Column("client_ip", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollment_failure")),
    )
    op.create_index(
        op.f("ix_enrollment_failure_client_ip_failed_at"),
        "enrollment_failure",
        ["client_ip", "failed_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_enrollment_failure_failed_at"), "enrollment_failure", ["failed_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_enrollment_failure_failed_at"), table_name="enrollment_failure")
    op.drop_index(
        op.f("ix_enrollment_failure_client_ip_failed_at"), table_name="enrollment_failure"
    )
    op.drop_table("enrollment_failure")
    op.drop_index(op.f("ix_login_failure_client_ip_username_failed_at"), table_name="login_failure")
    op.create_index(
        op.f("ix_login_failure_username_failed_at"),
        "login_failure",
        ["username", "failed_at"],
        unique=False,
    )
