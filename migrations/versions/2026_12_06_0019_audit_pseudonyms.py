"""The audit chain's second form: personal data hashed as its pseudonyms, so that a
verifier's bundle can be checked outside the office (``sync.platform.chain``).

Each block names the form its rows were hashed by (``audit_block.form``): the blocks
sealed before this migration keep ``fieldsync-audit-1``, and are checked as they were
sealed. The pseudonyms' key is drawn here, 32 random bytes, and kept in the sync
clock's row, with the data it hides: it can never change, since the hashes of every
later row of personal data depend on it (docs/audit.md).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 21:30:00.000000
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_block") as batch:
        batch.add_column(
            sa.Column(
                "form", sa.String(length=32), nullable=False, server_default="fieldsync-audit-1"
            )
        )
    with op.batch_alter_table("sync_clock") as batch:
        batch.add_column(sa.Column("pseudonym_key", sa.String(length=64), nullable=True))
    op.get_bind().execute(
        sa.text("UPDATE sync_clock SET pseudonym_key = :key"), {"key": secrets.token_hex(32)}
    )


def downgrade() -> None:
    with op.batch_alter_table("sync_clock") as batch:
        batch.drop_column("pseudonym_key")
    with op.batch_alter_table("audit_block") as batch:
        batch.drop_column("form")
