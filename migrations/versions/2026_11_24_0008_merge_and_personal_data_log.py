"""The log of person merges (``person_merge``) and of personal data taken out in
lists and files (``personal_data_access``), which admins read (Peru's law 29733).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 02:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import schemas.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "person_merge",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kept_id", sa.Uuid(), nullable=False),
        sa.Column("merged_id", sa.Uuid(), nullable=False),
        sa.Column("merged_by", sa.Uuid(), nullable=False),
        sa.Column("merged_at", schemas.types.UTCDateTime(), nullable=False),
        sa.Column("moved", schemas.types.JSONDocument, nullable=False),
        sa.ForeignKeyConstraint(
            ["kept_id"], ["person.id"], name=op.f("fk_person_merge_kept_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["merged_id"], ["person.id"], name=op.f("fk_person_merge_merged_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["merged_by"], ["user.id"], name=op.f("fk_person_merge_merged_by_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person_merge")),
    )
    op.create_index(op.f("ix_person_merge_kept_id"), "person_merge", ["kept_id"], unique=False)
    op.create_index(op.f("ix_person_merge_merged_id"), "person_merge", ["merged_id"], unique=False)
    op.create_table(
        "personal_data_access",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("at", schemas.types.UTCDateTime(), nullable=False),
        sa.Column("path", sa.String(length=200), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("filters", schemas.types.JSONDocument, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_personal_data_access_user_id_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_personal_data_access")),
    )
    op.create_index(
        op.f("ix_personal_data_access_at"), "personal_data_access", ["at"], unique=False
    )
    op.create_index(
        op.f("ix_personal_data_access_user_id"), "personal_data_access", ["user_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_personal_data_access_user_id"), table_name="personal_data_access")
    op.drop_index(op.f("ix_personal_data_access_at"), table_name="personal_data_access")
    op.drop_table("personal_data_access")
    op.drop_index(op.f("ix_person_merge_merged_id"), table_name="person_merge")
    op.drop_index(op.f("ix_person_merge_kept_id"), table_name="person_merge")
    op.drop_table("person_merge")
