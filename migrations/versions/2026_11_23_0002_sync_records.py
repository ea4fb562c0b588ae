"""The field records and the sync bookkeeping: clock, entries, versions, changes, conflicts.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 20:28:49.284125
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import schemas.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "record_version",
        sa.Column("entity", sa.String(length=32), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("op", sa.String(length=16), nullable=False),
        sa.Column("fields", schemas.types.JSONDocument, nullable=False),
        sa.Column("changed", schemas.types.JSONDocument, nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("device_id", sa.Uuid(), nullable=True),
        sa.Column("change_id", sa.Uuid(), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("recorded_at", schemas.types.UTCDateTime(), nullable=True),
        sa.Column("created_at", schemas.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("entity", "record_id", "version", name=op.f("pk_record_version")),
    )
    op.create_table(
        "sync_clock",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("epoch", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_clock")),
    )
    # The one clock row, with this database's epoch: cursors name it, so a cursor
    # from another database (or a restore under a new epoch) is refused, not misread.
    op.bulk_insert(
        sa.table("sync_clock", sa.column("id"), sa.column("seq"), sa.column("epoch", sa.Uuid())),
        [{"id": 1, "seq": 0, "epoch": uuid.uuid4()}],
    )
    op.create_table(
        "sync_entry",
        sa.Column("entity", sa.String(length=32), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("change_seq", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("sector_id", sa.Uuid(), nullable=True),
        sa.Column("community_id", sa.Uuid(), nullable=True),
        sa.Column("fields", schemas.types.JSONDocument, nullable=False),
        sa.Column("updated_at", schemas.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("entity", "record_id", name=op.f("pk_sync_entry")),
        sa.UniqueConstraint("change_seq", name=op.f("uq_sync_entry_change_seq")),
    )
    op.create_index(
        op.f("ix_sync_entry_community_id_change_seq"),
        "sync_entry",
        ["community_id", "change_seq"],
        unique=False,
    )
    op.create_index(
        op.f("ix_sync_entry_sector_id_change_seq"),
        "sync_entry",
        ["sector_id", "change_seq"],
        unique=False,
    )

    op.create_table(
        "observation",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", schemas.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", schemas.types.UTCDateTime(), nullable=False),
        sa.Column("recorded_at", schemas.types.UTCDateTime(), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("device_id", sa.Uuid(), nullable=True),
        sa.Column("deleted_at", schemas.types.UTCDateTime(), nullable=True),
        sa.Column("patrol_id", sa.Uuid(), nullable=True),
        sa.Column("sector_id", sa.Uuid(), nullable=False),
        sa.Column("category_key", sa.String(length=128), nullable=False),
        sa.Column("observed_at", schemas.types.UTCDateTime(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("accuracy_m", sa.Float(), nullable=True),
        sa.Column("attributes", schemas.types.JSONDocument, nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column(
            "action_taken",
            sa.Enum(
                "observed",
                "warned",
                "confiscated",
                "reported",
                name="actiontaken",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["sector_id"], ["sector.id"], name=op.f("fk_observation_sector_id_sector")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_observation")),
    )
    op.create_index(
        op.f("ix_observation_category_key"), "observation", ["category_key"], unique=False
    )
    op.create_index(op.f("ix_observation_patrol_id"), "observation", ["patrol_id"], unique=False)
    op.create_index(op.f("ix_observation_sector_id"), "observation", ["sector_id"], unique=False)

    op.create_table(
        "patrol",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", schemas.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", schemas.types.UTCDateTime(), nullable=False),
        sa.Column("recorded_at", schemas.types.UTCDateTime(), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("device_id", sa.Uuid(), nullable=True),
        sa.Column("deleted_at", schemas.types.UTCDateTime(), nullable=True),
        sa.Column("sector_id", sa.Uuid(), nullable=False),
        sa.Column(
            "patrol_type",
            sa.Enum("ground", "water", name="patroltype", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("objective", sa.Text(), nullable=True),
        sa.Column("leader_id", sa.Uuid(), nullable=True),
        sa.Column("members", schemas.types.JSONDocument, nullable=False),
        sa.Column("transport", sa.String(length=200), nullable=True),
        sa.Column("started_at", schemas.types.UTCDateTime(), nullable=True),
        sa.Column("ended_at", schemas.types.UTCDateTime(), nullable=True),
        sa.Column("rest_minutes", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "draft",
                "submitted",
                "approved",
                "returned",
                "cancelled",
                name="patrolstatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("reviewed_by", sa.Uuid(), nullable=True),
        sa.Column("reviewed_at", schemas.types.UTCDateTime(), nullable=True),
        sa.Column("review_comment", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["reviewed_by"], ["user.id"], name=op.f("fk_patrol_reviewed_by_user")
        ),
        sa.ForeignKeyConstraint(
            ["sector_id"], ["sector.id"], name=op.f("fk_patrol_sector_id_sector")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patrol")),
    )
    op.create_index(op.f("ix_patrol_leader_id"), "patrol", ["leader_id"], unique=False)
    op.create_index(op.f("ix_patrol_sector_id"), "patrol", ["sector_id"], unique=False)
    op.create_index(op.f("ix_patrol_started_at"), "patrol", ["started_at"], unique=False)

    op.create_table(
        "track_segment",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", schemas.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", schemas.types.UTCDateTime(), nullable=False),
        sa.Column("recorded_at", schemas.types.UTCDateTime(), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("device_id", sa.Uuid(), nullable=True),
        sa.Column("deleted_at", schemas.types.UTCDateTime(), nullable=True),
        sa.Column("patrol_id", sa.Uuid(), nullable=False),
        sa.Column("sector_id", sa.Uuid(), nullable=False),
        sa.Column("points", schemas.types.JSONDocument, nullable=False),
        sa.Column("point_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sector_id"], ["sector.id"], name=op.f("fk_track_segment_sector_id_sector")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_track_segment")),
    )
    op.create_index(
        op.f("ix_track_segment_patrol_id"), "track_segment", ["patrol_id"], unique=False
    )

    op.create_table(
        "agreement",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", schemas.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", schemas.types.UTCDateTime(), nullable=False),
        sa.Column("recorded_at", schemas.types.UTCDateTime(), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("device_id", sa.Uuid(), nullable=True),
        sa.Column("deleted_at", schemas.types.UTCDateTime(), nullable=True),
        sa.Column("code", sa.String(length=200), nullable=True),
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column("signatory_person_id", sa.Uuid(), nullable=True),
        sa.Column("community_id", sa.Uuid(), nullable=False),
        sa.Column("signed_on", sa.Date(), nullable=True),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("renews_agreement_id", sa.Uuid(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "draft",
                "active",
                "suspended",
                "terminated",
                "expired",
                name="agreementstatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("area_total_ha", sa.Float(), nullable=True),
        sa.Column("area_forest_ha", sa.Float(), nullable=True),
        sa.Column("area_coffee_ha", sa.Float(), nullable=True),
        sa.Column("commitments", schemas.types.JSONDocument, nullable=False),
        sa.Column("benefits", schemas.types.JSONDocument, nullable=False),
        sa.Column("consent", schemas.types.JSONDocument, nullable=True),
        sa.ForeignKeyConstraint(
            ["community_id"], ["community.id"], name=op.f("fk_agreement_community_id_community")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agreement")),
    )
    op.create_index(op.f("ix_agreement_community_id"), "agreement", ["community_id"], unique=False)
    op.create_index(op.f("ix_agreement_household_id"), "agreement", ["household_id"], unique=False)
    op.create_index(
        op.f("ix_agreement_signatory_person_id"), "agreement", ["signatory_person_id"], unique=False
    )
    op.create_index(op.f("ix_agreement_valid_until"), "agreement", ["valid_until"], unique=False)

    op.create_table(
        "attendance",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", schemas.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", schemas.types.UTCDateTime(), nullable=False),
        sa.Column("recorded_at", schemas.types.UTCDateTime(), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("device_id", sa.Uuid(), nullable=True),
        sa.Column("deleted_at", schemas.types.UTCDateTime(), nullable=True),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("community_id", sa.Uuid(), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "participant", "facilitator", name="attendancerole", native_enum=False, length=32
            ),
            nullable=False,
        ),
        sa.Column("merged_into", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["community_id"], ["community.id"], name=op.f("fk_attendance_community_id_community")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attendance")),
    )
    op.create_index(
        op.f("ix_attendance_community_id"), "attendance", ["community_id"], unique=False
    )
    op.create_index(op.f("ix_attendance_person_id"), "attendance", ["person_id"], unique=False)
    op.create_index(op.f("ix_attendance_session_id"), "attendance", ["session_id"], unique=False)
    op.create_index(
        "uq_attendance_session_id_person_id_live",
        "attendance",
        ["session_id", "person_id"],
        unique=True,
        sqlite_where=sa.text("deleted_at IS NULL"),
        postgresql_where=sa.text("deleted_at IS NULL"),
    )

    op.create_table(
        "household",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", schemas.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", schemas.types.UTCDateTime(), nullable=False),
        sa.Column("recorded_at", schemas.types.UTCDateTime(), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("device_id", sa.Uuid(), nullable=True),
        sa.Column("deleted_at", schemas.types.UTCDateTime(), nullable=True),
        sa.Column("code", sa.String(length=200), nullable=True),
        sa.Column("community_id", sa.Uuid(), nullable=False),
        sa.Column("head_person_id", sa.Uuid(), nullable=True),
        sa.Column("location", schemas.types.JSONDocument, nullable=True),
        sa.Column("members", schemas.types.JSONDocument, nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"], ["community.id"], name=op.f("fk_household_community_id_community")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_household")),
    )
    op.create_index(op.f("ix_household_community_id"), "household", ["community_id"], unique=False)

    op.create_table(
        "person",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", schemas.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", schemas.types.UTCDateTime(), nullable=False),
        sa.Column("recorded_at", schemas.types.UTCDateTime(), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("device_id", sa.Uuid(), nullable=True),
        sa.Column("deleted_at", schemas.types.UTCDateTime(), nullable=True),
        sa.Column("given_names", sa.String(length=200), nullable=False),
        sa.Column("paternal_surname", sa.String(length=200), nullable=False),
        sa.Column("maternal_surname", sa.String(length=200), nullable=True),
        sa.Column(
            "sex",
            sa.Enum("female", "male", "other", "unknown", name="sex", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("birth_year", sa.Integer(), nullable=True),
        sa.Column(
            "doc_type",
            sa.Enum("dni", "ce", "none", name="doctype", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("doc_number", sa.String(length=32), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("community_id", sa.Uuid(), nullable=False),
        sa.Column("household_id", sa.Uuid(), nullable=True),
        sa.Column("merged_into", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["community_id"], ["community.id"], name=op.f("fk_person_community_id_community")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person")),
    )
    op.create_index(op.f("ix_person_community_id"), "person", ["community_id"], unique=False)
    op.create_index(op.f("ix_person_doc_number"), "person", ["doc_number"], unique=False)
    op.create_index(op.f("ix_person_household_id"), "person", ["household_id"], unique=False)

    op.create_table(
        "sync_change",
        sa.Column("change_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("batch_id", sa.Uuid(), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("entity", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=True),
        sa.Column("op", sa.String(length=16), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("result", schemas.types.JSONDocument, nullable=False),
        sa.Column("change", schemas.types.JSONDocument, nullable=False),
        sa.Column("received_at", schemas.types.UTCDateTime(), nullable=False),
        sa.Column("applied_at", schemas.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"], ["device.id"], name=op.f("fk_sync_change_device_id_device")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name=op.f("fk_sync_change_user_id_user")),
        sa.PrimaryKeyConstraint("change_id", name=op.f("pk_sync_change")),
    )
    op.create_index(
        op.f("ix_sync_change_device_id_seq"), "sync_change", ["device_id", "seq"], unique=False
    )
    op.create_index(
        op.f("ix_sync_change_status_received_at"),
        "sync_change",
        ["status", "received_at"],
        unique=False,
    )

    op.create_table(
        "training_session",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", schemas.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", schemas.types.UTCDateTime(), nullable=False),
        sa.Column("recorded_at", schemas.types.UTCDateTime(), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("device_id", sa.Uuid(), nullable=True),
        sa.Column("deleted_at", schemas.types.UTCDateTime(), nullable=True),
        sa.Column(
            "program",
            sa.Enum(
                "coffee_production",
                "financial_skills",
                "school_environmental_education",
                "other",
                name="program",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("topic", sa.Text(), nullable=True),
        sa.Column("community_id", sa.Uuid(), nullable=False),
        sa.Column("venue", sa.String(length=200), nullable=True),
        sa.Column("starts_at", schemas.types.UTCDateTime(), nullable=False),
        sa.Column("ends_at", schemas.types.UTCDateTime(), nullable=True),
        sa.Column("facilitators", schemas.types.JSONDocument, nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "planned", "held", "cancelled", name="sessionstatus", native_enum=False, length=32
            ),
            nullable=False,
        ),
        sa.Column("headcount", schemas.types.JSONDocument, nullable=True),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["community.id"],
            name=op.f("fk_training_session_community_id_community"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_session")),
    )
    op.create_index(
        op.f("ix_training_session_community_id"), "training_session", ["community_id"], unique=False
    )
    op.create_index(
        op.f("ix_training_session_starts_at"), "training_session", ["starts_at"], unique=False
    )

    op.create_table(
        "conflict",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("entity", sa.String(length=32), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("open", "resolved", name="conflictstatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("fields", schemas.types.JSONDocument, nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=True),
        sa.Column("server_version", sa.Integer(), nullable=False),
        sa.Column("change_id", sa.Uuid(), nullable=True),
        sa.Column("device_id", sa.Uuid(), nullable=True),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("recorded_at", schemas.types.UTCDateTime(), nullable=True),
        sa.Column("sector_id", sa.Uuid(), nullable=True),
        sa.Column("community_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", schemas.types.UTCDateTime(), nullable=False),
        sa.Column("resolved_at", schemas.types.UTCDateTime(), nullable=True),
        sa.Column("resolved_by", sa.Uuid(), nullable=True),
        sa.Column("resolution", sa.String(length=16), nullable=True),
        sa.Column("resolved_version", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["change_id"], ["sync_change.change_id"], name=op.f("fk_conflict_change_id_sync_change")
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by"], ["user.id"], name=op.f("fk_conflict_resolved_by_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conflict")),
    )
    op.create_index(op.f("ix_conflict_record_id"), "conflict", ["record_id"], unique=False)
    op.create_index(
        op.f("ix_conflict_status_entity_created_at"),
        "conflict",
        ["status", "entity", "created_at"],
        unique=False,
    )

    op.create_table(
        "deferred_change",
        sa.Column("change_id", sa.Uuid(), nullable=False),
        sa.Column("waiting_entity", sa.String(length=32), nullable=False),
        sa.Column("waiting_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", schemas.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["change_id"],
            ["sync_change.change_id"],
            name=op.f("fk_deferred_change_change_id_sync_change"),
        ),
        sa.PrimaryKeyConstraint("change_id", name=op.f("pk_deferred_change")),
    )
    op.create_index(
        op.f("ix_deferred_change_waiting_entity_waiting_id"),
        "deferred_change",
        ["waiting_entity", "waiting_id"],
        unique=False,
    )

    with op.batch_alter_table("device", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_seq", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("device", schema=None) as batch_op:
        batch_op.drop_column("last_seq")

    op.drop_index(
        op.f("ix_deferred_change_waiting_entity_waiting_id"), table_name="deferred_change"
    )

    op.drop_table("deferred_change")
    op.drop_index(op.f("ix_conflict_status_entity_created_at"), table_name="conflict")
    op.drop_index(op.f("ix_conflict_record_id"), table_name="conflict")

    op.drop_table("conflict")
    op.drop_index(op.f("ix_training_session_starts_at"), table_name="training_session")
    op.drop_index(op.f("ix_training_session_community_id"), table_name="training_session")

    op.drop_table("training_session")
    op.drop_index(op.f("ix_sync_change_status_received_at"), table_name="sync_change")
    op.drop_index(op.f("ix_sync_change_device_id_seq"), table_name="sync_change")

    op.drop_table("sync_change")
    op.drop_index(op.f("ix_person_household_id"), table_name="person")
    op.drop_index(op.f("ix_person_doc_number"), table_name="person")
    op.drop_index(op.f("ix_person_community_id"), table_name="person")

    op.drop_table("person")
    op.drop_index(op.f("ix_household_community_id"), table_name="household")

    op.drop_table("household")
    op.drop_index(
        "uq_attendance_session_id_person_id_live",
        table_name="attendance",
        sqlite_where=sa.text("deleted_at IS NULL"),
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.drop_index(op.f("ix_attendance_session_id"), table_name="attendance")
    op.drop_index(op.f("ix_attendance_person_id"), table_name="attendance")
    op.drop_index(op.f("ix_attendance_community_id"), table_name="attendance")

    op.drop_table("attendance")
    op.drop_index(op.f("ix_agreement_valid_until"), table_name="agreement")
    op.drop_index(op.f("ix_agreement_signatory_person_id"), table_name="agreement")
    op.drop_index(op.f("ix_agreement_household_id"), table_name="agreement")
    op.drop_index(op.f("ix_agreement_community_id"), table_name="agreement")

    op.drop_table("agreement")
    op.drop_index(op.f("ix_track_segment_patrol_id"), table_name="track_segment")

    op.drop_table("track_segment")
    op.drop_index(op.f("ix_patrol_started_at"), table_name="patrol")
    op.drop_index(op.f("ix_patrol_sector_id"), table_name="patrol")
    op.drop_index(op.f("ix_patrol_leader_id"), table_name="patrol")

    op.drop_table("patrol")
    op.drop_index(op.f("ix_observation_sector_id"), table_name="observation")
    op.drop_index(op.f("ix_observation_patrol_id"), table_name="observation")
    op.drop_index(op.f("ix_observation_category_key"), table_name="observation")

    op.drop_table("observation")
    op.drop_index(op.f("ix_sync_entry_sector_id_change_seq"), table_name="sync_entry")
    op.drop_index(op.f("ix_sync_entry_community_id_change_seq"), table_name="sync_entry")

    op.drop_table("sync_entry")
    op.drop_table("sync_clock")
    op.drop_table("record_version")
