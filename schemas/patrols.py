"""What ranger leads ask of patrols and what they get back: filters, the queue, the detail.

Query models forbid unknown parameters: ``?satus=submitted`` is a 422, not a list of
every patrol. ``from`` and ``to`` take a date (a whole day in the service's time zone,
``FIELDSYNC_TIMEZONE``) or a timestamp with its offset.
"""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import BaseModel
from pydantic import Field as PydanticField
from sqlmodel import Field

from schemas.attachments import AttachmentRead
from schemas.audit import Chained
from schemas.figures import Hours, Km, NamedFigures
from schemas.queries import Bound, Paging, QueryParams
from schemas.records import ActionTaken, Gps, PatrolStatus, PatrolType
from schemas.types import UTCDateTime

CategoryKey = Annotated[
    str,
    PydanticField(
        min_length=1,
        max_length=128,
        pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)*$",
        description="A category key or a dotted prefix: `threat` matches `threat.logging.timber`.",
    ),
]


class PatrolFilters(QueryParams):
    sector_id: uuid.UUID | None = None
    ranger_id: uuid.UUID | None = PydanticField(
        default=None, description="The patrol's leader or one of its members."
    )
    status: PatrolStatus | None = None
    from_: Bound | None = PydanticField(
        default=None, alias="from", description="`started_at` on or after this."
    )
    to: Bound | None = PydanticField(
        default=None, description="`started_at` on or before this (a date: the whole day)."
    )
    category: CategoryKey | None = PydanticField(
        default=None, description="Has an observation of this category (or below it)."
    )


class PatrolQuery(PatrolFilters, Paging):
    pass


# ---------------------------------------------------------------- review history


class ReviewDecision(StrEnum):
    approve = "approve"
    return_ = "return"


class PatrolReview(Chained, table=True):
    """One review of a patrol. A patrol returned, fixed and approved has two; all kept."""

    __tablename__ = "patrol_review"

    id: uuid.UUID = Field(primary_key=True)
    patrol_id: uuid.UUID = Field(foreign_key="patrol.id", index=True)
    version: int = Field(description="The patrol version the review made.")
    decision: ReviewDecision = Field(
        sa_column=sa.Column(
            sa.Enum(
                ReviewDecision,
                native_enum=False,
                length=16,
                validate_strings=True,
                values_callable=lambda kind: [member.value for member in kind],
            ),
            nullable=False,
        )
    )
    comment: str | None = Field(default=None, sa_type=sa.Text)
    reviewed_by: uuid.UUID = Field(foreign_key="user.id")
    reviewed_at: datetime = Field(sa_type=UTCDateTime)


# ---------------------------------------------------------------- wire: answers


class UserRef(BaseModel):
    """A user of the service as a reviewer sees them; ``None`` fields when unknown."""

    user_id: uuid.UUID
    username: str | None = None
    full_name: str | None = None


class PatrolMember(BaseModel):
    user_id: uuid.UUID | None = None
    name: str | None = PydanticField(
        default=None, description="As the tablet recorded it, or the user's full name."
    )
    role: str | None = None


class PatrolSummary(BaseModel):
    """A patrol as a row of the queue: its fields, review, and quick figures."""

    id: uuid.UUID
    version: int
    sector_id: uuid.UUID
    patrol_type: PatrolType
    objective: str | None
    leader_id: uuid.UUID | None
    members: list[PatrolMember]
    transport: str | None
    started_at: datetime | None
    ended_at: datetime | None
    rest_minutes: int | None
    comment: str | None
    status: PatrolStatus
    reviewed_by: uuid.UUID | None
    reviewed_at: datetime | None
    review_comment: str | None
    created_by: uuid.UUID | None
    device_id: uuid.UUID | None
    recorded_at: datetime | None
    created_at: datetime
    updated_at: datetime = PydanticField(
        description="When the server received the latest version: the queue's order."
    )
    patrol_hours: Hours | None = PydanticField(description="`ended_at - started_at`.")
    field_hours: Hours | None = PydanticField(description="Patrol hours minus rest.")
    observation_count: int
    point_count: int
    attachment_count: int = PydanticField(
        description="The files the patrol and its observations name."
    )
    attachments_missing: int = PydanticField(
        description="Of those, how many the tablet has not uploaded yet: the review waits "
        "for the evidence."
    )


class PatrolPage(BaseModel):
    items: list[PatrolSummary]
    total: int = PydanticField(description="How many patrols match, over every page.")
    limit: int
    offset: int


class ObservationRead(BaseModel):
    id: uuid.UUID
    version: int
    category_key: str
    category_name_es: str | None
    category_name_en: str | None
    observed_at: datetime
    lat: float
    lon: float
    gps: Gps | None = PydanticField(
        description="How good the position is: `{accuracy_m, fix}`, as the tablet recorded it."
    )
    attributes: dict[str, Any]
    notes: str | None
    action_taken: ActionTaken
    distance_to_track_km: Km | None = PydanticField(
        description="How far from the nearest point of the track; none without a track."
    )
    attachments: list[AttachmentRead]


class ReviewRead(BaseModel):
    decision: ReviewDecision
    comment: str | None
    reviewed_by: UserRef
    reviewed_at: datetime
    version: int


class EffortRead(BaseModel):
    """Derived from the patrol and its track; never stored by the device."""

    patrol_hours: Hours | None
    field_hours: Hours | None
    distance_km: Km
    point_count: int
    transport: str = PydanticField(description="The transport class speeds are judged by.")
    flags: list[NamedFigures] = PydanticField(
        description="Each with its `code` (docs/protocol.md lists them) and its particulars "
        "(km, km/h and minutes to 2 decimals)."
    )


class PatrolDetail(BaseModel):
    patrol: PatrolSummary
    leader: UserRef | None
    attachments: list[AttachmentRead] = PydanticField(
        description="The patrol's own files; each observation lists its own."
    )
    observations: list[ObservationRead]
    track: NamedFigures = PydanticField(
        description="A GeoJSON FeatureCollection: one LineString per stretch without a "
        "gap, with `coordTimes` (positions exact, `distance_km` to 2 decimals)."
    )
    reviews: list[ReviewRead]
    effort: EffortRead
