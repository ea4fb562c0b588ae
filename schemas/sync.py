"""The sync protocol: its bookkeeping tables and its wire models, field by field.

Tables:
- ``sync_clock``: one row; its ``seq`` is bumped at the end of every writing
  transaction, under the row's lock, so change sequence order is commit order.
- ``sync_entry``: one row per record a device can pull — its latest ``change_seq``,
  its scope keys, and its whole current state; pull is a range scan of it.
- ``record_version``: every version of every record: the audit trail (who, which
  device, when, what changed) and the base of three-way merges.
- ``sync_change``: every change a device sent, by ``change_id``, with the result it
  got: the same change sent again gets the same answer.
- ``deferred_change``: changes waiting for a record they refer to.
- ``conflict``: both sides of a conflict, until a person resolves it.
"""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict
from pydantic import Field as PydanticField
from sqlmodel import Field, SQLModel

from schemas.audit import Chained
from schemas.queries import Paging
from schemas.types import JSONDocument, JSONText, UTCDateTime, new_id, utcnow
from schemas.wire import RequestBody

# ---------------------------------------------------------------- enumerations


class Op(StrEnum):
    """What a change does: ``create`` carries the whole record, ``update`` only the
    fields the device changed, ``delete`` none."""

    create = "create"
    update = "update"
    delete = "delete"


class Status(StrEnum):
    """The result of one pushed change (see the table in docs/protocol.md)."""

    applied = "applied"
    merged = "merged"
    conflict = "conflict"
    rejected = "rejected"
    deferred = "deferred"


class ConflictStatus(StrEnum):
    open = "open"
    resolved = "resolved"


class Resolution(StrEnum):
    keep_server = "keep_server"
    take_device = "take_device"
    custom = "custom"


# ---------------------------------------------------------------- tables


CLOCK_ID = 1  # the id of the clock's one row


class SyncClock(SQLModel, table=True):
    """The one row that orders every change. ``epoch`` names this database's history:
    a cursor of another epoch cannot be served."""

    __tablename__ = "sync_clock"

    id: int = Field(primary_key=True)
    seq: int = Field(default=0, sa_type=sa.BigInteger)
    epoch: uuid.UUID = Field(default_factory=new_id)
    # The audit chain's head (``sync.platform.chain``): the last block's number and
    # hash, and the hash before it, advanced by the statement that advances ``seq``.
    chain_number: int = Field(default=0, sa_type=sa.BigInteger)
    chain_hash: str = Field(default="0" * 64, sa_type=sa.String(64))
    chain_prev: str = Field(default="0" * 64, sa_type=sa.String(64))
    # The key of the pseudonyms personal data is hashed as (hex, 32 bytes), drawn by
    # migration 0019: it stays with the data it hides (docs/audit.md).
    pseudonym_key: str | None = Field(default=None, sa_type=sa.String(64))
    # The pushes that deferred changes, counted as they commit (``sync.engine.wake``).
    deferrals: int = Field(
        default=0, sa_type=sa.BigInteger, sa_column_kwargs={"server_default": "0"}
    )


# Entries with no scope key: the reference data everyone pulls (observation categories).
UNSCOPED = "sector_id IS NULL AND community_id IS NULL"


class SyncEntry(SQLModel, table=True):
    """Pull reads it by index ranges in change-number order (see ``sync.engine.pull``): all of
    it (``change_seq``), one sector's or one community's entries, or the few unscoped
    ones, which a partial index keeps apart from the millions of scoped ones."""

    __tablename__ = "sync_entry"
    __table_args__ = (
        sa.Index(None, "sector_id", "change_seq"),
        sa.Index(None, "community_id", "change_seq"),
        # The scope columns lead, NULL in every entry of it, so that SQLite's planner
        # (which counts IS NULL as an equality) prefers it to the scope indexes above.
        sa.Index(
            "ix_sync_entry_unscoped_change_seq",
            "sector_id",
            "community_id",
            "change_seq",
            sqlite_where=sa.text(UNSCOPED),
            postgresql_where=sa.text(UNSCOPED),
        ),
    )

    entity: str = Field(sa_type=sa.String(32), primary_key=True)
    record_id: uuid.UUID = Field(primary_key=True)
    change_seq: int = Field(sa_type=sa.BigInteger, unique=True)
    version: int
    deleted: bool = False
    sector_id: uuid.UUID | None = None
    community_id: uuid.UUID | None = None
    fields: dict[str, Any] = Field(default_factory=dict, sa_type=JSONText)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class SyncExit(SQLModel, table=True):
    """A record leaving a scope: a patrol moved to another sector, a community to
    another sector. Numbered by the clock just before the record's entry in its new
    scope, it is read by the old scope's parts as a delete (``sync.engine.pull``), so
    that the tablets of the old scope hear of the move. ``sector_id`` and
    ``community_id`` hold only the scope keys the record left (the other is NULL)."""

    __tablename__ = "sync_exit"
    __table_args__ = (
        sa.Index(None, "sector_id", "change_seq"),
        sa.Index(None, "community_id", "change_seq"),
    )

    change_seq: int = Field(
        sa_type=sa.BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False}
    )
    entity: str = Field(sa_type=sa.String(32))
    record_id: uuid.UUID
    version: int
    sector_id: uuid.UUID | None = None
    community_id: uuid.UUID | None = None
    updated_at: datetime = Field(sa_type=UTCDateTime)


class RecordVersion(Chained, table=True):
    __tablename__ = "record_version"

    entity: str = Field(sa_type=sa.String(32), primary_key=True)
    record_id: uuid.UUID = Field(primary_key=True)
    version: int = Field(primary_key=True)
    op: str = Field(sa_type=sa.String(16))
    fields: dict[str, Any] = Field(default_factory=dict, sa_type=JSONText)
    changed: list[str] = Field(default_factory=list, sa_type=JSONDocument)
    user_id: uuid.UUID | None = None
    device_id: uuid.UUID | None = None
    change_id: uuid.UUID | None = None
    reason: str | None = Field(default=None, sa_type=sa.String(32))
    recorded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SyncChange(SQLModel, table=True):
    __tablename__ = "sync_change"
    __table_args__ = (
        sa.Index(None, "device_id", "seq"),
        sa.Index(None, "status", "received_at"),
    )

    change_id: uuid.UUID = Field(primary_key=True)
    device_id: uuid.UUID = Field(foreign_key="device.id")
    user_id: uuid.UUID = Field(foreign_key="user.id")
    batch_id: uuid.UUID | None = None
    seq: int = Field(sa_type=sa.BigInteger)
    entity: str = Field(sa_type=sa.String(64))
    record_id: uuid.UUID | None = None
    op: str = Field(sa_type=sa.String(16))
    content_hash: str = Field(sa_type=sa.String(64))
    status: str = Field(sa_type=sa.String(16))
    result: dict[str, Any] = Field(default_factory=dict, sa_type=JSONDocument)
    # The change as the device sent it, for a change the server may decide again or an
    # admin must read: rejected, deferred, merged, in conflict, or upcast from an older
    # version of the data model. JSON's null for one applied as sent, which its version
    # (``record_version``) holds, validated (``sync.engine.store``).
    change: dict[str, Any] | None = Field(default=None, sa_type=JSONText, nullable=False)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    applied_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class RefusedChange(SQLModel, table=True):
    """A change refused before it could be stored under its own id: a ``change_id``
    already used for other content. Kept so admins see it with the other rejections."""

    __tablename__ = "refused_change"

    id: int | None = Field(default=None, primary_key=True)
    change_id: uuid.UUID = Field(index=True)
    device_id: uuid.UUID = Field(foreign_key="device.id")
    user_id: uuid.UUID = Field(foreign_key="user.id")
    batch_id: uuid.UUID | None = None
    seq: int = Field(sa_type=sa.BigInteger)
    entity: str = Field(sa_type=sa.String(64))
    record_id: uuid.UUID | None = None
    op: str = Field(sa_type=sa.String(16))
    errors: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONDocument)
    change: dict[str, Any] = Field(default_factory=dict, sa_type=JSONDocument)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class DeferredChange(SQLModel, table=True):
    __tablename__ = "deferred_change"
    __table_args__ = (sa.Index(None, "waiting_entity", "waiting_id"),)

    change_id: uuid.UUID = Field(foreign_key="sync_change.change_id", primary_key=True)
    waiting_entity: str = Field(sa_type=sa.String(32))
    waiting_id: uuid.UUID
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Conflict(SQLModel, table=True):
    __tablename__ = "conflict"
    __table_args__ = (sa.Index(None, "status", "entity", "created_at"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    entity: str = Field(sa_type=sa.String(32))
    record_id: uuid.UUID = Field(index=True)
    status: ConflictStatus = Field(
        sa_column=sa.Column(
            sa.Enum(ConflictStatus, native_enum=False, length=16, validate_strings=True),
            nullable=False,
        )
    )
    kind: str = Field(sa_type=sa.String(32))
    fields: dict[str, Any] = Field(default_factory=dict, sa_type=JSONDocument)
    base_version: int | None = None
    server_version: int
    change_id: uuid.UUID | None = Field(default=None, foreign_key="sync_change.change_id")
    device_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    recorded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sector_id: uuid.UUID | None = None
    community_id: uuid.UUID | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_by: uuid.UUID | None = Field(default=None, foreign_key="user.id")
    resolution: str | None = Field(default=None, sa_type=sa.String(16))
    resolved_version: int | None = None


# ---------------------------------------------------------------- wire: push


def _a_number(value: Any) -> Any:
    """A number is sent as a JSON number: ``"5"`` and ``true`` are not 5 and 1."""
    if isinstance(value, str | bool):
        raise ValueError("a number, not text or true/false")
    return value


WholeNumber = Annotated[int, BeforeValidator(_a_number)]

MAX_SEQ = 2**63 - 1  # a BIGINT
MAX_VERSION = 2**31 - 1  # an INTEGER
# A record's version as a device names it: a JSON number within an INTEGER.
Version = Annotated[int, PydanticField(ge=0, le=MAX_VERSION), BeforeValidator(_a_number)]


class Change(BaseModel):
    """One change a device made offline."""

    model_config = ConfigDict(extra="forbid")

    change_id: uuid.UUID = PydanticField(
        description="Unique forever. Sent again, it gets the answer it got the first time."
    )
    seq: WholeNumber = PydanticField(
        ge=0, le=MAX_SEQ, description="Strictly increasing per device."
    )
    entity: str = PydanticField(description="The record type, such as `attendance`.")
    id: uuid.UUID = PydanticField(description="The record's id, made on the device.")
    op: str = PydanticField(description="`create`, `update` or `delete`.")
    base_version: Version | None = PydanticField(
        default=None,
        description="The server version of the record the device last saw (null for create).",
    )
    schema_version: WholeNumber = PydanticField(default=1, ge=1, le=MAX_VERSION)
    recorded_at: datetime | None = PydanticField(
        default=None, description="The device's clock: kept, never trusted for ordering."
    )
    fields: dict[str, Any] = PydanticField(
        default_factory=dict,
        description="create: the whole record; update: the fields changed; delete: none.",
    )


class ClientReport(BaseModel):
    """What a tablet says of itself with a push, for the office's view of the fleet.

    Keys this server does not know are ignored, not refused: a newer app may report
    more, and its pushes must go on being taken."""

    model_config = ConfigDict(extra="ignore")

    app_version: str | None = PydanticField(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[\x21-\x7e]+$",
        description="The app's version, such as `2.4.1` or `2.5.0-beta.2`.",
    )
    schema_version: WholeNumber | None = PydanticField(
        default=None, ge=1, le=MAX_VERSION, description="The newest record schema it writes."
    )
    pending_changes: WholeNumber | None = PydanticField(
        default=None, ge=0, le=MAX_SEQ, description="Changes it holds that it has not pushed."
    )
    oldest_pending_at: AwareDatetime | None = PydanticField(
        default=None, description="When the oldest of those was made, by its own clock."
    )
    free_storage_mb: WholeNumber | None = PydanticField(
        default=None, ge=0, le=MAX_SEQ, description="Free storage left on it, in MB."
    )


class PushRequest(BaseModel):
    """A batch. Only what identifies a change is checked here: anything else wrong
    with one change (a NUL character, an unknown entity) rejects that change alone."""

    model_config = ConfigDict(extra="forbid")

    protocol: Literal[1]
    device_id: uuid.UUID
    batch_id: uuid.UUID | None = None
    changes: list[Change]
    client: ClientReport | None = PydanticField(
        default=None, description="The tablet's own report of its state (optional)."
    )


class ChangeError(BaseModel):
    field: str
    code: str
    message: str


class ChangeResult(BaseModel):
    change_id: uuid.UUID
    status: Status
    version: int | None = None
    conflict_id: uuid.UUID | None = None
    errors: list[ChangeError] | None = None
    replayed: bool | None = None
    merged_into: uuid.UUID | None = PydanticField(
        default=None, description="The record this one was folded into (a duplicate attendance)."
    )
    missing_attachments: list[str] | None = PydanticField(
        default=None,
        description="The files (SHA-256) this change names that the server does not hold "
        "yet: upload them (`/attachments/uploads`). Absent when there are none.",
    )


class PushResponse(BaseModel):
    results: list[ChangeResult]
    last_seq: int | None
    server_time: datetime


# ---------------------------------------------------------------- wire: pull


class PulledChange(BaseModel):
    entity: str
    id: uuid.UUID
    version: int
    op: Literal["upsert", "delete"]
    fields: dict[str, Any]
    updated_at: datetime


class PullResponse(BaseModel):
    changes: list[PulledChange]
    cursor: str = PydanticField(description="Opaque; send it as `cursor` on the next pull.")
    has_more: bool
    last_seq: int | None = PydanticField(
        description="The highest change `seq` of this device the server holds."
    )


# ---------------------------------------------------------------- wire: conflicts


class ConflictField(BaseModel):
    server: Any = PydanticField(description="The server's value; null for a create.")
    device: Any = PydanticField(description="The value the device sent.")


class ConflictUser(BaseModel):
    """A user as a resolver reads them; names null for a user no longer known."""

    user_id: uuid.UUID
    username: str | None = None
    full_name: str | None = None


class ConflictRead(BaseModel):
    id: uuid.UUID
    entity: str
    record_id: uuid.UUID
    status: ConflictStatus
    kind: str = PydanticField(
        description="`fields` (both sides changed), `locked` (an approved patrol), "
        "`deleted` (the server deleted it) or `create_locked` (a record made on the "
        "device under an approved patrol: the server holds none yet)."
    )
    device_op: Op = PydanticField(
        description="What the device sent: `create` (`fields` are the whole record it "
        "made, every `server` side null), `update` (the fields it changed), or `delete` "
        "(no fields: the device deleted the record)."
    )
    fields: dict[str, ConflictField] = PydanticField(
        description="Field by field, both sides; empty for a delete."
    )
    base_version: int | None
    server_version: int
    change_id: uuid.UUID | None
    device_id: uuid.UUID | None
    device_label: str | None = PydanticField(description="Which tablet sent the change.")
    user_id: uuid.UUID | None
    user: ConflictUser | None = PydanticField(description="Whose change: the device's user.")
    server_user: ConflictUser | None = PydanticField(
        description="Who made the server's version the change met, if known (null for "
        "`create_locked`, where the server holds no version)."
    )
    recorded_at: datetime | None
    created_at: datetime
    resolved_at: datetime | None
    resolved_by: uuid.UUID | None
    resolution: str | None
    resolved_version: int | None


class ConflictPage(BaseModel):
    items: list[ConflictRead]
    total: int = PydanticField(description="How many conflicts match, over every page.")
    limit: int
    offset: int


class ConflictQuery(Paging):
    status: ConflictStatus | None = PydanticField(
        default=ConflictStatus.open, description="Open ones by default."
    )
    entity: str | None = PydanticField(default=None, max_length=64)
    limit: int = PydanticField(default=100, ge=1, le=1000, description="Rows in the page.")


class ResolveRequest(RequestBody):
    resolution: Resolution
    fields: dict[str, Any] = PydanticField(
        default_factory=dict,
        description="The fields a `custom` resolution sets (at least one); none with "
        "the other resolutions.",
    )


class DeferredRead(BaseModel):
    """A change still waiting for a record the server has not received."""

    change_id: uuid.UUID
    device_id: uuid.UUID
    user_id: uuid.UUID
    entity: str
    record_id: uuid.UUID | None
    op: str
    seq: int
    waiting_for_entity: str
    waiting_for_id: uuid.UUID
    change: dict[str, Any]
    received_at: datetime


class RejectedChange(BaseModel):
    change_id: uuid.UUID
    device_id: uuid.UUID
    user_id: uuid.UUID
    entity: str
    record_id: uuid.UUID | None
    op: str
    seq: int
    errors: list[ChangeError]
    change: dict[str, Any]
    received_at: datetime


class HeldChangesQuery(Paging):
    limit: int = PydanticField(default=100, ge=1, le=1000, description="Rows in the page.")


class RejectedPage(BaseModel):
    items: list[RejectedChange]
    total: int = PydanticField(description="How many rejected changes are kept, over every page.")
    limit: int
    offset: int


class DeferredPage(BaseModel):
    items: list[DeferredRead]
    total: int = PydanticField(description="How many changes wait, over every page.")
    limit: int
    offset: int
