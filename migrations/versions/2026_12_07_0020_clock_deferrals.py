"""The sync clock counts the pushes that deferred changes (``sync.engine.wake``): a push
that made records sees, from the count, whether one deferred a change since it looked.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 15:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "sync_clock",
        sa.Column("deferrals", sa.BigInteger(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    with op.batch_alter_table("sync_clock") as batch:
        batch.drop_column("deferrals")
