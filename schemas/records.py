"""The field records tablets sync: their fields (validated) and their tables (queryable).

Each record type has a *fields model* — what a device may send, validated whole
(a create is validated as sent; an update is validated merged onto the current
state) — and a *table* with typed columns plus the columns every synced record has
(``SyncedColumns``). Server-owned fields are not in the fields models, so a device
cannot set them.
"""

import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, NotRequired, Self

import sqlalchemy as sa
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    PlainSerializer,
    TypeAdapter,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)
from pydantic import Field as PydanticField
from sqlmodel import Field, SQLModel
from typing_extensions import TypedDict

from schemas.attachments import AttachmentType
from schemas.track import MAX_POINTS, POINT_KEYS, TrackPointJSON, read_points
from schemas.types import JSONDocument, JSONText, UTCDateTime

Text = Annotated[str, PydanticField(min_length=1, max_length=2000)]
Name = Annotated[str, PydanticField(min_length=1, max_length=200)]
Latitude = Annotated[float, PydanticField(ge=-90, le=90)]
Longitude = Annotated[float, PydanticField(ge=-180, le=180)]


def _aware(value: datetime) -> datetime:
    """Timestamps must carry their offset; they are kept in UTC."""
    if value.tzinfo is None:
        raise ValueError("a timestamp needs its offset (RFC 3339)")
    return value.astimezone(UTC)


Moment = Annotated[datetime, AfterValidator(_aware)]


class Fields(BaseModel):
    """The fields a device sends for one record; unknown fields are refused."""

    # Not-a-number and infinities are not JSON, and no field means them.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)

    # Fields whose validated value is already their JSON form, taken as they are
    # instead of serialised again (``sync.engine.records.json_form``).
    JSON_FORM: ClassVar[frozenset[str]] = frozenset()


# ---------------------------------------------------------------- enumerations


class PatrolType(StrEnum):
    ground = "ground"
    water = "water"


class PatrolStatus(StrEnum):
    draft = "draft"
    submitted = "submitted"
    approved = "approved"
    returned = "returned"
    cancelled = "cancelled"


class ActionTaken(StrEnum):
    observed = "observed"
    warned = "warned"
    confiscated = "confiscated"
    reported = "reported"


class Sex(StrEnum):
    female = "female"
    male = "male"
    other = "other"
    unknown = "unknown"


class DocType(StrEnum):
    dni = "dni"
    ce = "ce"
    none = "none"


class AgreementStatus(StrEnum):
    draft = "draft"
    active = "active"
    suspended = "suspended"
    terminated = "terminated"
    expired = "expired"


class ConsentMethod(StrEnum):
    signature = "signature"
    thumbprint = "thumbprint"
    witnessed_verbal = "witnessed_verbal"


class Program(StrEnum):
    coffee_production = "coffee_production"
    financial_skills = "financial_skills"
    school_environmental_education = "school_environmental_education"
    other = "other"


class SessionStatus(StrEnum):
    planned = "planned"
    held = "held"
    cancelled = "cancelled"


class AttendanceRole(StrEnum):
    participant = "participant"
    facilitator = "facilitator"


# ---------------------------------------------------------------- nested values


class Member(BaseModel):
    """A patrol member or a facilitator: a user of the service, or a name."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    user_id: uuid.UUID | None = None
    name: Name | None = None
    role: Name | None = None

    @model_validator(mode="after")
    def _someone(self) -> Self:
        if self.user_id is None and self.name is None:
            raise ValueError("a member needs a user_id or a name")
        return self


class TrackPoint(TypedDict):
    """One fix of a track. A dictionary, not a model, and its time checked for an offset
    by pydantic itself: a push carries some 40 points a change, and a model and a
    Python validator each were most of the cost of reading them (docs/performance.md).
    The segment's validator turns the times to UTC in one pass (``_in_utc``)."""

    __pydantic_config__ = ConfigDict(extra="forbid", allow_inf_nan=False)  # type: ignore[misc]

    t: AwareDatetime
    lat: Latitude
    lon: Longitude
    accuracy_m: NotRequired[Annotated[float, PydanticField(ge=0)] | None]
    alt_m: NotRequired[float | None]


_TRACK = TypeAdapter(list[TrackPoint])


def _in_utc(points: list[TrackPoint]) -> list[TrackPointJSON]:
    """Points read by pydantic in their JSON form: each time in UTC, and each point
    with all five keys in sorted order (an accuracy or altitude not sent is null)."""
    for point in points:
        try:
            point["t"] = point["t"].astimezone(UTC)
        except OverflowError:
            raise ValueError("a point's time is out of range once in UTC") from None
        point.setdefault("accuracy_m", None)
        point.setdefault("alt_m", None)
    dumped = _TRACK.dump_python(points, mode="json")
    return [{key: point[key] for key in POINT_KEYS} for point in dumped]  # type: ignore[misc]


def _read_points(value: Any, pydantic: ValidatorFunctionWrapHandler) -> list[TrackPointJSON]:
    """A track's points, read by ``schemas.track.read_points`` where it can vouch for
    them, else by pydantic (``TrackPoint``), whose errors name the point and field."""
    read = read_points(value)
    return read if read is not None else _in_utc(pydantic(value))


def _as_read(points: list[TrackPointJSON]) -> list[TrackPointJSON]:
    return points


# Validated as ``TrackPoint``s, held and written in their JSON form.
TrackPoints = Annotated[
    list[TrackPoint],
    PydanticField(min_length=1, max_length=MAX_POINTS),
    WrapValidator(_read_points),
    PlainSerializer(_as_read, return_type=list[TrackPointJSON]),
]


class GpsFix(StrEnum):
    """How a position was fixed: by satellites, by the cell and Wi-Fi networks (rough),
    or placed by hand on the map."""

    gps = "gps"
    network = "network"
    manual = "manual"


class Gps(BaseModel):
    """How good an observation's position is (schema version 2; version 1 had
    ``accuracy_m`` alone, see ``schemas/versions.py``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    accuracy_m: float | None = PydanticField(
        default=None, ge=0, description="The position's accuracy in metres, as the device gave it."
    )
    fix: GpsFix | None = PydanticField(default=None, description="How it was fixed; null: unknown.")


class Location(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    lat: Latitude
    lon: Longitude


class HouseholdMember(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    person_id: uuid.UUID
    relation: Name | None = None


class Consent(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    method: ConsentMethod
    given_on: date


class Headcount(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    female: int = PydanticField(ge=0)
    male: int = PydanticField(ge=0)


MAX_ATTACHMENTS = 50  # files on one record


class AttachmentRef(BaseModel):
    """A file a record names: by the SHA-256 of its bytes, which it is uploaded under
    (tus, ``/attachments/uploads``) before or after the change that names it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)

    sha256: Annotated[str, PydanticField(pattern=r"^[0-9a-f]{64}$")]
    content_type: AttachmentType
    size: int = PydanticField(ge=0, le=2**62)
    caption: Text | None = None


def _one_each(refs: list[AttachmentRef]) -> list[AttachmentRef]:
    seen = [ref.sha256 for ref in refs]
    if len(set(seen)) != len(seen):
        raise ValueError("a file is named once in a record's attachments")
    return refs


Attachments = Annotated[
    list[AttachmentRef],
    PydanticField(max_length=MAX_ATTACHMENTS),
    AfterValidator(_one_each),
]

MONTH_MINUTES = 31 * 24 * 60  # no patrol rests longer than a month

Key = Annotated[str, PydanticField(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]

# ---------------------------------------------------------------- fields models


class PatrolFields(Fields):
    sector_id: uuid.UUID
    patrol_type: PatrolType = PatrolType.ground
    objective: Text | None = None
    leader_id: uuid.UUID | None = None
    members: list[Member] = []
    transport: Name | None = None
    started_at: Moment | None = None
    ended_at: Moment | None = None
    rest_minutes: int | None = PydanticField(default=None, ge=0, le=MONTH_MINUTES)
    comment: Text | None = None
    status: PatrolStatus = PatrolStatus.draft
    attachments: Attachments = []


class TrackSegmentFields(Fields):
    patrol_id: uuid.UUID
    JSON_FORM = frozenset({"points"})

    points: TrackPoints


class ObservationFields(Fields):
    patrol_id: uuid.UUID | None = None
    sector_id: uuid.UUID | None = None
    category_key: Annotated[str, PydanticField(min_length=1, max_length=128)]
    observed_at: Moment
    lat: Latitude
    lon: Longitude
    gps: Gps | None = None
    attributes: dict[str, Any] = {}
    notes: Text | None = None
    action_taken: ActionTaken = ActionTaken.observed
    attachments: Attachments = []

    @model_validator(mode="after")
    def _placed(self) -> Self:
        if self.patrol_id is None and self.sector_id is None:
            raise ValueError("a standalone observation (no patrol_id) needs its sector_id")
        return self


class PersonFields(Fields):
    given_names: Name
    paternal_surname: Name
    maternal_surname: Name | None = None
    sex: Sex = Sex.unknown
    birth_year: int | None = PydanticField(default=None, ge=1900, le=2100)
    doc_type: DocType = DocType.none
    doc_number: Annotated[str, PydanticField(min_length=1, max_length=32)] | None = None
    phone: Annotated[str, PydanticField(min_length=3, max_length=32)] | None = None
    community_id: uuid.UUID
    household_id: uuid.UUID | None = None


class HouseholdFields(Fields):
    code: Name | None = None
    community_id: uuid.UUID
    head_person_id: uuid.UUID | None = None
    location: Location | None = None
    members: list[HouseholdMember] = []
    attachments: Attachments = []


class AgreementFields(Fields):
    code: Name | None = None
    household_id: uuid.UUID
    signatory_person_id: uuid.UUID | None = None
    community_id: uuid.UUID
    signed_on: date | None = None
    valid_from: date | None = None
    valid_until: date | None = None
    renews_agreement_id: uuid.UUID | None = None
    status: AgreementStatus = AgreementStatus.draft
    area_total_ha: float | None = PydanticField(default=None, ge=0)
    area_forest_ha: float | None = PydanticField(default=None, ge=0)
    area_coffee_ha: float | None = PydanticField(default=None, ge=0)
    commitments: list[Key] = []
    benefits: list[Key] = []
    consent: Consent | None = None
    attachments: Attachments = []

    @model_validator(mode="after")
    def _dates_in_order(self) -> Self:
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            raise ValueError("valid_until is before valid_from")
        return self


class TrainingSessionFields(Fields):
    program: Program
    topic: Text | None = None
    community_id: uuid.UUID
    venue: Name | None = None
    starts_at: Moment
    ends_at: Moment | None = None
    facilitators: list[Member] = []
    status: SessionStatus = SessionStatus.planned
    headcount: Headcount | None = None
    attachments: Attachments = []


class AttendanceFields(Fields):
    session_id: uuid.UUID
    person_id: uuid.UUID
    role: AttendanceRole = AttendanceRole.participant


# ---------------------------------------------------------------- tables


def _enum(kind: type[StrEnum]) -> Any:
    return sa.Column(
        sa.Enum(kind, native_enum=False, length=32, validate_strings=True), nullable=False
    )


class SyncedColumns(SQLModel):
    """What every synced record has besides its fields. All of it is server-owned but
    ``recorded_at`` (the device's clock, kept, never trusted for ordering)."""

    id: uuid.UUID = Field(primary_key=True)
    version: int = Field(default=1)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    recorded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_by: uuid.UUID | None = Field(default=None)
    device_id: uuid.UUID | None = Field(default=None)
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Patrol(SyncedColumns, table=True):
    __tablename__ = "patrol"
    # The review queue: submitted patrols, the longest waiting first.
    __table_args__ = (sa.Index("ix_patrol_status_updated_at_id", "status", "updated_at", "id"),)

    sector_id: uuid.UUID = Field(foreign_key="sector.id", index=True)
    patrol_type: PatrolType = Field(sa_column=_enum(PatrolType))
    objective: str | None = Field(default=None, sa_type=sa.Text)
    leader_id: uuid.UUID | None = Field(default=None, index=True)
    members: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONDocument)
    transport: str | None = Field(default=None, sa_type=sa.String(200))
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    # Indexed for the overlap check: patrols ending after this one starts.
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    rest_minutes: int | None = None
    comment: str | None = Field(default=None, sa_type=sa.Text)
    status: PatrolStatus = Field(sa_column=_enum(PatrolStatus))
    reviewed_by: uuid.UUID | None = Field(default=None, foreign_key="user.id")
    reviewed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    review_comment: str | None = Field(default=None, sa_type=sa.Text)
    attachments: list[dict[str, Any]] = Field(
        default_factory=list, sa_type=JSONDocument, sa_column_kwargs={"server_default": "[]"}
    )


class TrackSegment(SyncedColumns, table=True):
    __tablename__ = "track_segment"

    patrol_id: uuid.UUID = Field(index=True)
    sector_id: uuid.UUID = Field(foreign_key="sector.id")
    # Written and read whole, never queried inside: JSON text (migration 0016).
    points: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONText)
    point_count: int = 0


class Observation(SyncedColumns, table=True):
    __tablename__ = "observation"

    patrol_id: uuid.UUID | None = Field(default=None, index=True)
    sector_id: uuid.UUID = Field(foreign_key="sector.id", index=True)
    category_key: str = Field(sa_type=sa.String(128), index=True)
    observed_at: datetime = Field(sa_type=UTCDateTime)
    lat: float
    lon: float
    # {accuracy_m, fix} (``Gps``): one document, as the record has it, read and written whole.
    gps: dict[str, Any] | None = Field(default=None, sa_type=JSONDocument)
    attributes: dict[str, Any] = Field(default_factory=dict, sa_type=JSONDocument)
    notes: str | None = Field(default=None, sa_type=sa.Text)
    action_taken: ActionTaken = Field(sa_column=_enum(ActionTaken))
    attachments: list[dict[str, Any]] = Field(
        default_factory=list, sa_type=JSONDocument, sa_column_kwargs={"server_default": "[]"}
    )


class Person(SyncedColumns, table=True):
    __tablename__ = "person"

    given_names: str = Field(sa_type=sa.String(200))
    paternal_surname: str = Field(sa_type=sa.String(200))
    maternal_surname: str | None = Field(default=None, sa_type=sa.String(200))
    sex: Sex = Field(sa_column=_enum(Sex))
    birth_year: int | None = None
    doc_type: DocType = Field(sa_column=_enum(DocType))
    doc_number: str | None = Field(default=None, sa_type=sa.String(32), index=True)
    phone: str | None = Field(default=None, sa_type=sa.String(32))
    community_id: uuid.UUID = Field(foreign_key="community.id", index=True)
    household_id: uuid.UUID | None = Field(default=None, index=True)
    merged_into: uuid.UUID | None = Field(default=None)
    # Server-derived: the full name folded (no accents, lower case) for search and
    # the duplicate finder; written from the fields whenever they are.
    name_key: str = Field(
        default="", sa_type=sa.String(620), index=True, sa_column_kwargs={"server_default": ""}
    )


class Household(SyncedColumns, table=True):
    __tablename__ = "household"

    code: str | None = Field(default=None, sa_type=sa.String(200))
    community_id: uuid.UUID = Field(foreign_key="community.id", index=True)
    head_person_id: uuid.UUID | None = Field(default=None)
    location: dict[str, Any] | None = Field(default=None, sa_type=JSONDocument)
    members: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONDocument)
    attachments: list[dict[str, Any]] = Field(
        default_factory=list, sa_type=JSONDocument, sa_column_kwargs={"server_default": "[]"}
    )


class Agreement(SyncedColumns, table=True):
    __tablename__ = "agreement"

    code: str | None = Field(default=None, sa_type=sa.String(200))
    household_id: uuid.UUID = Field(index=True)
    signatory_person_id: uuid.UUID | None = Field(default=None, index=True)
    community_id: uuid.UUID = Field(foreign_key="community.id", index=True)
    signed_on: date | None = None
    valid_from: date | None = None
    valid_until: date | None = Field(default=None, index=True)
    renews_agreement_id: uuid.UUID | None = None
    status: AgreementStatus = Field(sa_column=_enum(AgreementStatus))
    area_total_ha: float | None = None
    area_forest_ha: float | None = None
    area_coffee_ha: float | None = None
    commitments: list[str] = Field(default_factory=list, sa_type=JSONDocument)
    benefits: list[str] = Field(default_factory=list, sa_type=JSONDocument)
    consent: dict[str, Any] | None = Field(default=None, sa_type=JSONDocument)
    attachments: list[dict[str, Any]] = Field(
        default_factory=list, sa_type=JSONDocument, sa_column_kwargs={"server_default": "[]"}
    )


class TrainingSession(SyncedColumns, table=True):
    __tablename__ = "training_session"

    program: Program = Field(sa_column=_enum(Program))
    topic: str | None = Field(default=None, sa_type=sa.Text)
    community_id: uuid.UUID = Field(foreign_key="community.id", index=True)
    venue: str | None = Field(default=None, sa_type=sa.String(200))
    starts_at: datetime = Field(sa_type=UTCDateTime, index=True)
    ends_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    facilitators: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONDocument)
    status: SessionStatus = Field(sa_column=_enum(SessionStatus))
    headcount: dict[str, Any] | None = Field(default=None, sa_type=JSONDocument)
    attachments: list[dict[str, Any]] = Field(
        default_factory=list, sa_type=JSONDocument, sa_column_kwargs={"server_default": "[]"}
    )


class Attendance(SyncedColumns, table=True):
    """One person at one session. Two tablets recording the same person at the same
    session make one attendance: the second is folded into the first."""

    __tablename__ = "attendance"
    __table_args__ = (
        sa.Index(
            "uq_attendance_session_id_person_id_live",
            "session_id",
            "person_id",
            unique=True,
            sqlite_where=sa.text("deleted_at IS NULL"),
            postgresql_where=sa.text("deleted_at IS NULL"),
        ),
    )

    session_id: uuid.UUID = Field(index=True)
    person_id: uuid.UUID = Field(index=True)
    community_id: uuid.UUID = Field(foreign_key="community.id", index=True)
    role: AttendanceRole = Field(sa_column=_enum(AttendanceRole))
    merged_into: uuid.UUID | None = Field(default=None)
