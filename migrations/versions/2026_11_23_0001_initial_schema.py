"""The first schema: users and their scope, devices, tokens, reference data.

Revision ID: 0001
Revises:
Create Date: 2026-11-23 19:54:39.953004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import schemas.types

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_failure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("failed_at", schemas.types.UTCDateTime(), nullable=False),
        sa.Column("client_ip", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failure")),
    )
    op.create_index(
        op.f("ix_login_failure_username_failed_at"),
        "login_failure",
        ["username", "failed_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_login_failure_failed_at"), "login_failure", ["failed_at"], unique=False
    )

    op.create_table(
        "observation_category",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("name_es", sa.String(length=200), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=False),
        sa.Column("attributes", schemas.types.JSONDocument, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", schemas.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", schemas.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_observation_category")),
        sa.UniqueConstraint("key", name=op.f("uq_observation_category_key")),
    )
    op.create_table(
        "sector",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("zone", sa.String(length=64), nullable=True),
        sa.Column("boundary", schemas.types.JSONDocument, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", schemas.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", schemas.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sector")),
        sa.UniqueConstraint("code", name=op.f("uq_sector_code")),
    )
    op.create_table(
        "user",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "admin",
                "coordinator",
                "ranger_lead",
                "ranger",
                "extension_worker",
                name="role",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", schemas.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", schemas.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user")),
    )
    op.create_index(op.f("ix_user_username"), "user", ["username"], unique=True)

    op.create_table(
        "community",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("sector_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "settlement",
                "native_community",
                "hamlet",
                name="communitykind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("inside_protected_area", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", schemas.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", schemas.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sector_id"], ["sector.id"], name=op.f("fk_community_sector_id_sector")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community")),
        sa.UniqueConstraint("sector_id", "name", name=op.f("uq_community_sector_id_name")),
    )
    op.create_index(op.f("ix_community_sector_id"), "community", ["sector_id"], unique=False)

    op.create_table(
        "device",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("created_at", schemas.types.UTCDateTime(), nullable=False),
        sa.Column("enrollment_code_hash", sa.String(length=64), nullable=True),
        sa.Column("enrollment_expires_at", schemas.types.UTCDateTime(), nullable=True),
        sa.Column("enrolled_at", schemas.types.UTCDateTime(), nullable=True),
        sa.Column("last_seen_at", schemas.types.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", schemas.types.UTCDateTime(), nullable=True),
        sa.Column("revoked_by", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"], ["user.id"], name=op.f("fk_device_created_by_user")
        ),
        sa.ForeignKeyConstraint(
            ["revoked_by"], ["user.id"], name=op.f("fk_device_revoked_by_user")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name=op.f("fk_device_user_id_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device")),
        sa.UniqueConstraint("enrollment_code_hash", name=op.f("uq_device_enrollment_code_hash")),
    )
    op.create_index(op.f("ix_device_user_id"), "device", ["user_id"], unique=False)

    op.create_table(
        "user_sector",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("sector_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sector_id"], ["sector.id"], name=op.f("fk_user_sector_sector_id_sector")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_user_sector_user_id_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "sector_id", name=op.f("pk_user_sector")),
    )
    op.create_index(op.f("ix_user_sector_sector_id"), "user_sector", ["sector_id"], unique=False)

    op.create_table(
        "refresh_family",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", schemas.types.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", schemas.types.UTCDateTime(), nullable=True),
        sa.Column("revoked_reason", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"], ["device.id"], name=op.f("fk_refresh_family_device_id_device")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user.id"],
            name=op.f("fk_refresh_family_user_id_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refresh_family")),
    )
    op.create_index(
        op.f("ix_refresh_family_device_id"), "refresh_family", ["device_id"], unique=False
    )
    op.create_index(op.f("ix_refresh_family_user_id"), "refresh_family", ["user_id"], unique=False)

    op.create_table(
        "user_community",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("community_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["community.id"],
            name=op.f("fk_user_community_community_id_community"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user.id"],
            name=op.f("fk_user_community_user_id_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "community_id", name=op.f("pk_user_community")),
    )
    op.create_index(
        op.f("ix_user_community_community_id"), "user_community", ["community_id"], unique=False
    )

    op.create_table(
        "refresh_token",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("family_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("issued_at", schemas.types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", schemas.types.UTCDateTime(), nullable=False),
        sa.Column("used_at", schemas.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["family_id"],
            ["refresh_family.id"],
            name=op.f("fk_refresh_token_family_id_refresh_family"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refresh_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_refresh_token_token_hash")),
    )
    op.create_index(
        op.f("ix_refresh_token_family_id"), "refresh_token", ["family_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_refresh_token_family_id"), table_name="refresh_token")

    op.drop_table("refresh_token")
    op.drop_index(op.f("ix_user_community_community_id"), table_name="user_community")

    op.drop_table("user_community")
    op.drop_index(op.f("ix_refresh_family_user_id"), table_name="refresh_family")
    op.drop_index(op.f("ix_refresh_family_device_id"), table_name="refresh_family")

    op.drop_table("refresh_family")
    op.drop_index(op.f("ix_user_sector_sector_id"), table_name="user_sector")

    op.drop_table("user_sector")
    op.drop_index(op.f("ix_device_user_id"), table_name="device")

    op.drop_table("device")
    op.drop_index(op.f("ix_community_sector_id"), table_name="community")

    op.drop_table("community")
    op.drop_index(op.f("ix_user_username"), table_name="user")

    op.drop_table("user")
    op.drop_table("sector")
    op.drop_table("observation_category")
    op.drop_index(op.f("ix_login_failure_failed_at"), table_name="login_failure")
    op.drop_index(op.f("ix_login_failure_username_failed_at"), table_name="login_failure")

    op.drop_table("login_failure")
