"""The fleet's health: each device's last push, its pulls (when, and how far it got)
and what the tablet last reported of itself with a push (app version, pending changes,
storage).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 13:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import schemas.types

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("last_push_at", schemas.types.UTCDateTime()),
    ("last_pull_at", schemas.types.UTCDateTime()),
    ("pulled_seq", sa.BigInteger()),
    ("reported_at", schemas.types.UTCDateTime()),
    ("app_version", sa.String(length=64)),
    ("app_version_key", sa.String(length=128)),
    ("client_schema_version", sa.Integer()),
    ("pending_changes", sa.BigInteger()),
    ("oldest_pending_at", schemas.types.UTCDateTime()),
    ("free_storage_mb", sa.BigInteger()),
)


def upgrade() -> None:
    # Plain ADD COLUMN, which SQLite does in place: a batch would copy the table, and
    # dropping the old copy fails while other tables' foreign keys name it.
    for name, kind in COLUMNS:
        op.add_column("device", sa.Column(name, kind, nullable=True))
    op.create_index(op.f("ix_device_app_version_key"), "device", ["app_version_key"])
    # Until now read as the newest change received from the device, a scan of all it sent.
    op.execute(
        "UPDATE device SET last_push_at = "
        "(SELECT max(received_at) FROM sync_change WHERE sync_change.device_id = device.id)"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_device_app_version_key"), table_name="device")
    for name, _ in reversed(COLUMNS):
        op.drop_column("device", name)
