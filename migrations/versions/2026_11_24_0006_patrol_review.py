"""Keep every review of a patrol (``patrol_review``), not only the latest on the patrol;
index the review queue and the overlap check of the patrol detail.

Reviews made before this revision are recovered from the patrol's version history,
where each one left a version with reason ``review:approve`` or ``review:return``;
only the latest one's comment survived (on the patrol), so earlier ones have none.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 01:30:00.000000
"""

import uuid
from collections.abc import Sequence

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
    # The review queue (submitted, longest waiting first), and the overlap check of
    # the patrol detail (patrols of the ranger ending after this one starts).
    op.create_index(
        "ix_patrol_status_updated_at_id", "patrol", ["status", "updated_at", "id"], unique=False
    )
    op.create_index(op.f("ix_patrol_ended_at"), "patrol", ["ended_at"], unique=False)


def _recover_past_reviews(review: sa.Table) -> None:
    """A review left a patrol version (reason ``review:approve`` or ``review:return``,
    by its reviewer, at its time). Its comment was kept only on the patrol, so only
    the latest review's comment can be recovered; earlier ones read as none."""
    connection = op.get_bind()
    version = sa.table(
        "record_version",
        sa.column("entity"),
        sa.column("record_id", sa.Uuid()),
        sa.column("version"),
        sa.column("reason"),
        sa.column("user_id", sa.Uuid()),
        sa.column("created_at", schemas.types.UTCDateTime()),
    )
    patrol = sa.table(
        "patrol",
        sa.column("id", sa.Uuid()),
        sa.column("reviewed_by", sa.Uuid()),
        sa.column("review_comment"),
    )
    rows = connection.execute(
        sa.select(version, patrol.c.reviewed_by, patrol.c.review_comment)
        .join(patrol, patrol.c.id == version.c.record_id)
        .where(version.c.entity == "patrol", version.c.reason.like("review:%"))
        .order_by(version.c.record_id, version.c.version)
    ).all()
    latest: dict[uuid.UUID, int] = {}
    for row in rows:
        latest[row.record_id] = row.version
    recovered = [
        {
            "id": uuid.uuid4(),
            "patrol_id": row.record_id,
            "version": row.version,
            "decision": "approve" if row.reason == "review:approve" else "return",
            "comment": row.review_comment if latest[row.record_id] == row.version else None,
            "reviewed_by": row.user_id,
            "reviewed_at": row.created_at,
        }
        for row in rows
        if row.user_id is not None  # every review had its reviewer
    ]
    if recovered:
        op.bulk_insert(review, recovered)


def downgrade() -> None:
    op.drop_index(op.f("ix_patrol_ended_at"), table_name="patrol")
    op.drop_index("ix_patrol_status_updated_at_id", table_name="patrol")
    op.drop_index(op.f("ix_patrol_review_patrol_id"), table_name="patrol_review")
    op.drop_table("patrol_review")
