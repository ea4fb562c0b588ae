"""Keep every review of a patrol (``patrol_review``), not only the latest on the patrol.

Reviews made before this revision are recovered from the patrol's version history,
where each one left a version with reason ``review:approve`` or ``review:return``
and the review fields in its snapshot.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 01:30:00.000000
"""

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import schemas.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    review = op.create_table(
        "patrol_review",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("patrol_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "decision",
            sa.Enum("approve", "return", name="reviewdecision", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("reviewed_by", sa.Uuid(), nullable=False),
        sa.Column("reviewed_at", schemas.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["patrol_id"], ["patrol.id"], name=op.f("fk_patrol_review_patrol_id_patrol")
        ),
        sa.ForeignKeyConstraint(
            ["reviewed_by"], ["user.id"], name=op.f("fk_patrol_review_reviewed_by_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patrol_review")),
    )
    op.create_index(
        op.f("ix_patrol_review_patrol_id"), "patrol_review", ["patrol_id"], unique=False
    )
    _recover_past_reviews(review)


def _recover_past_reviews(review: sa.Table) -> None:
    connection = op.get_bind()
    version = sa.table(
        "record_version",
        sa.column("entity"),
        sa.column("record_id", sa.Uuid()),
        sa.column("version"),
        sa.column("fields", sa.Text()),
        sa.column("reason"),
        sa.column("user_id", sa.Uuid()),
        sa.column("created_at", schemas.types.UTCDateTime()),
    )
    rows = connection.execute(
        sa.select(version).where(version.c.entity == "patrol", version.c.reason.like("review:%"))
    )
    recovered = []
    for row in rows:
        if row.user_id is None:  # every review had its reviewer; nothing to recover
            continue
        fields = json.loads(row.fields) if isinstance(row.fields, str) else row.fields
        reviewed_at = fields.get("reviewed_at")
        recovered.append(
            {
                "id": uuid.uuid4(),
                "patrol_id": row.record_id,
                "version": row.version,
                "decision": "approve" if row.reason == "review:approve" else "return",
                "comment": fields.get("review_comment"),
                "reviewed_by": row.user_id,
                "reviewed_at": (
                    datetime.fromisoformat(reviewed_at).astimezone(UTC)
                    if reviewed_at
                    else row.created_at
                ),
            }
        )
    if recovered:
        op.bulk_insert(review, recovered)


def downgrade() -> None:
    op.drop_index(op.f("ix_patrol_review_patrol_id"), table_name="patrol_review")
    op.drop_table("patrol_review")
