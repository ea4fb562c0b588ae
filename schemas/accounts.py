"""Users, their scope, devices and the tokens that name them."""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

import sqlalchemy as sa
from pydantic import BaseModel, BeforeValidator, ConfigDict, StrictBool, StringConstraints
from pydantic import Field as PydanticField
from sqlmodel import Field, SQLModel

from schemas.enums import Role
from schemas.types import UTCDateTime, new_id, utcnow
from schemas.wire import RequestBody, TrimmedText, lowered

# ---------------------------------------------------------------- records


class User(SQLModel, table=True):
    """A person who signs in: at a browser, with a script, or through an enrolled device."""

    __tablename__ = "user"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    username: str = Field(sa_type=sa.String(64), unique=True, index=True)
    full_name: str = Field(sa_type=sa.String(200))
    role: Role = Field(
        sa_column=sa.Column(
            sa.Enum(Role, native_enum=False, length=32, validate_strings=True), nullable=False
        )
    )
    password_hash: str = Field(sa_type=sa.String(200))
    active: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class UserSector(SQLModel, table=True):
    """A sector in a user's scope (rangers and ranger leads)."""

    __tablename__ = "user_sector"

    user_id: uuid.UUID = Field(foreign_key="user.id", primary_key=True, ondelete="CASCADE")
    sector_id: uuid.UUID = Field(foreign_key="sector.id", primary_key=True, index=True)


class UserCommunity(SQLModel, table=True):
    """A community in a user's scope (extension workers)."""

    __tablename__ = "user_community"

    user_id: uuid.UUID = Field(foreign_key="user.id", primary_key=True, ondelete="CASCADE")
    community_id: uuid.UUID = Field(foreign_key="community.id", primary_key=True, index=True)


class Device(SQLModel, table=True):
    """A tablet, known from the moment an enrollment code is made for it.

    The enrollment code itself is never stored, only its SHA-256: it is a bearer secret.
    """

    __tablename__ = "device"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    label: str = Field(sa_type=sa.String(200))
    user_id: uuid.UUID = Field(foreign_key="user.id", index=True)
    created_by: uuid.UUID = Field(foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    enrollment_code_hash: str | None = Field(default=None, sa_type=sa.String(64), unique=True)
    enrollment_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    enrolled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_seen_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_by: uuid.UUID | None = Field(default=None, foreign_key="user.id")
    last_seq: int | None = Field(default=None, sa_type=sa.BigInteger)
    # When a push last brought a change the server had not received (not a replay).
    last_push_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Its pulls, noted at most once a minute and on the page that catches it up
    # (``sync.accounts.contact``): when, and the change number it had everything up to.
    last_pull_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    pulled_seq: int | None = Field(default=None, sa_type=sa.BigInteger)
    # What the tablet said of itself in its last push's ``client`` report.
    reported_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    app_version: str | None = Field(default=None, sa_type=sa.String(64))
    # ``app_version`` made sortable as text, for "older than 2.4" (``contact.version_key``).
    app_version_key: str | None = Field(default=None, sa_type=sa.String(128), index=True)
    client_schema_version: int | None = None
    pending_changes: int | None = Field(default=None, sa_type=sa.BigInteger)
    oldest_pending_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    free_storage_mb: int | None = Field(default=None, sa_type=sa.BigInteger)
    # When a push of its app was last refused as too old for the data model (426
    # app_too_old); cleared by the next push the server takes.
    app_too_old_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class RefreshFamily(SQLModel, table=True):
    """One sign-in (a login or an enrollment) and every refresh token rotated from it.

    Replaying a refresh token that was already used revokes the family: the tokens
    of a stolen chain die together, access tokens included.
    """

    __tablename__ = "refresh_family"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    device_id: uuid.UUID | None = Field(default=None, foreign_key="device.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_reason: str | None = Field(default=None, sa_type=sa.String(64))


class RefreshToken(SQLModel, table=True):
    """One refresh token of a family, stored as its SHA-256; usable once."""

    __tablename__ = "refresh_token"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    family_id: uuid.UUID = Field(foreign_key="refresh_family.id", index=True, ondelete="CASCADE")
    token_hash: str = Field(sa_type=sa.String(64), unique=True)
    issued_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class LoginFailure(SQLModel, table=True):
    """A failed password login, kept for a while to throttle guessing across processes.

    Counted per (username, address) and per address, so both are looked up by
    address first; ``client_ip`` is null where the server knew no address.
    """

    __tablename__ = "login_failure"
    __table_args__ = (
        sa.Index(None, "client_ip", "username", "failed_at"),
        sa.Index(None, "failed_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(sa_type=sa.String(64))
    failed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    client_ip: str | None = Field(default=None, sa_type=sa.String(64))


class EnrollmentFailure(SQLModel, table=True):
    """A wrong enrollment code, kept for a while to throttle guessing per address.

    The code tried is not kept: a near miss of a real code is almost a secret.
    """

    __tablename__ = "enrollment_failure"
    __table_args__ = (sa.Index(None, "client_ip", "failed_at"), sa.Index(None, "failed_at"))

    id: int | None = Field(default=None, primary_key=True)
    failed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    client_ip: str | None = Field(default=None, sa_type=sa.String(64))


# ---------------------------------------------------------------- wire models

Username = Annotated[
    str,
    StringConstraints(min_length=3, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]*$"),
    BeforeValidator(lowered),
]
Password = Annotated[str, StringConstraints(min_length=10, max_length=256)]
Label = Annotated[TrimmedText, StringConstraints(max_length=200)]


class UserCreate(RequestBody):
    username: Username
    password: Password
    full_name: Label
    role: Role
    sector_ids: list[uuid.UUID] = []
    community_ids: list[uuid.UUID] = []


class UserUpdate(RequestBody):
    """Fields an admin may change; those left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    full_name: Label | None = None
    role: Role | None = None
    sector_ids: list[uuid.UUID] | None = None
    community_ids: list[uuid.UUID] | None = None
    active: StrictBool | None = None
    password: Password | None = None


class UserRead(BaseModel):
    id: uuid.UUID
    username: str
    full_name: str
    role: Role
    active: bool
    sector_ids: list[uuid.UUID]
    community_ids: list[uuid.UUID]
    created_at: datetime
    updated_at: datetime


class TokenPair(BaseModel):
    """What a login, a refresh or an enrollment returns."""

    access_token: str
    refresh_token: str
    token_type: str = "bearer"  # noqa: S105 (a name, not a secret)
    expires_in: int = PydanticField(description="Seconds the access token is valid for.")
    refresh_expires_in: int = PydanticField(
        description="Seconds the refresh token is valid for, if not used first."
    )


class RefreshRequest(RequestBody):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=512)]


class DeviceCreate(RequestBody):
    label: Label
    user_id: uuid.UUID


class DeviceUpdate(RequestBody):
    label: Label


class EnrollmentCode(BaseModel):
    """A one-time code to enroll a tablet, shown to the user as a QR code."""

    device_id: uuid.UUID
    enrollment_code: str
    expires_at: datetime


class EnrollRequest(RequestBody):
    enrollment_code: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class Enrollment(TokenPair):
    device_id: uuid.UUID
    user_id: uuid.UUID


class DeviceStatus(StrEnum):
    pending = "pending"  # a code was made, not yet used
    expired = "expired"  # the code ran out before it was used
    active = "active"
    revoked = "revoked"


class DeviceRead(BaseModel):
    id: uuid.UUID
    label: str
    user_id: uuid.UUID
    username: str
    status: DeviceStatus
    created_at: datetime
    enrollment_expires_at: datetime | None
    enrolled_at: datetime | None
    last_seen_at: datetime | None
    revoked_at: datetime | None


class ConsoleSession(SQLModel, table=True):
    """A person signed in to the web console. The browser holds a random secret in a
    cookie; the server keeps only its SHA-256, so a copy of the database signs no one
    in. Kept in the database, so that every server process knows it; it ends when the
    person signs out, stays idle too long, or is deactivated."""

    __tablename__ = "console_session"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    secret_hash: str = Field(sa_type=sa.String(64), unique=True, index=True)
    user_id: uuid.UUID = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    # The session's anti-forgery token: every form of the console carries it.
    csrf_token: str = Field(sa_type=sa.String(64))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
