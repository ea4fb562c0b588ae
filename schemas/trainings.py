"""What coordinators ask of training sessions and attendance, and what they get back.

The figures are defined in ``sync/attendance.py``: who counts as a participant, how
merged duplicates and two tablets recording one attendance count once, and how
school sessions recorded by headcount are counted apart.
"""

import uuid
from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField

from schemas.figures import Share
from schemas.queries import Bound, Format, Paging, QueryParams
from schemas.records import AttendanceRole, Program, SessionStatus, Sex

# ---------------------------------------------------------------- wire: questions


class ListQuery(Paging):
    format: Format = PydanticField(
        default=Format.json,
        description="`csv`: every matching row as a CSV file (UTF-8 with a BOM), streamed; "
        "`limit` and `offset` apply to it only when given.",
    )


class SessionFilters(QueryParams):
    program: Program | None = None
    community_id: uuid.UUID | None = None
    sector_id: uuid.UUID | None = None
    from_: Bound | None = PydanticField(
        default=None, alias="from", description="`starts_at` on or after this."
    )
    to: Bound | None = PydanticField(
        default=None, description="`starts_at` on or before this (a date: the whole day)."
    )


class SessionQuery(SessionFilters, ListQuery):
    status: SessionStatus | None = None


class AttendanceQuery(SessionFilters, ListQuery):
    session_id: uuid.UUID | None = None
    person_id: uuid.UUID | None = PydanticField(
        default=None, description="The person, and the records merged into them."
    )
    sex: Sex | None = None


class PersonAttendanceQuery(ListQuery):
    pass


class AttendanceGrouping(StrEnum):
    program = "program"
    community = "community"
    sector = "sector"
    month = "month"
    sex = "sex"


class AttendanceReportQuery(SessionFilters):
    group_by: AttendanceGrouping | None = PydanticField(
        default=None, description="Figures per group besides the totals; none: totals only."
    )
    format: Format = Format.json


# ---------------------------------------------------------------- wire: answers


class Facilitator(BaseModel):
    user_id: uuid.UUID | None = None
    person_id: uuid.UUID | None = None
    name: str | None = None
    role: str | None = None


# A school session's headcount as read back; schemas.records.Headcount is the one a
# device sends, validated.
class HeadcountRead(BaseModel):
    female: int
    male: int


class SessionRead(BaseModel):
    id: uuid.UUID
    version: int
    program: Program
    topic: str | None
    community_id: uuid.UUID
    community_name: str | None
    sector_id: uuid.UUID | None
    venue: str | None
    starts_at: datetime
    ends_at: datetime | None
    status: SessionStatus
    headcount: HeadcountRead | None
    counted_by: str = PydanticField(
        description="`attendance` (people recorded by name) or `headcount` (a school "
        "session: the figures are its headcount)."
    )
    attendees: int = PydanticField(description="Participants, each person once.")
    women: int
    men: int
    facilitators: list[Facilitator]
    created_at: datetime
    updated_at: datetime


class SessionPage(BaseModel):
    items: list[SessionRead]
    total: int
    limit: int
    offset: int


class SessionBrief(BaseModel):
    id: uuid.UUID
    program: Program
    topic: str | None
    community_id: uuid.UUID
    starts_at: datetime
    status: SessionStatus


# Not schemas.registry.PersonBrief, a person as a list of duplicates shows them.
class AttendeeBrief(BaseModel):
    """A person as an attendance list shows them: no document number, no phone."""

    id: uuid.UUID
    given_names: str
    paternal_surname: str
    maternal_surname: str | None
    sex: Sex
    birth_year: int | None
    community_id: uuid.UUID
    merged_into: uuid.UUID | None


class AttendanceRead(BaseModel):
    id: uuid.UUID
    version: int
    role: AttendanceRole
    session: SessionBrief
    person: AttendeeBrief
    recorded_at: datetime | None
    created_at: datetime
    created_by: uuid.UUID | None
    device_id: uuid.UUID | None


class AttendancePage(BaseModel):
    items: list[AttendanceRead]
    total: int
    limit: int
    offset: int


class HeadcountFigures(BaseModel):
    """School sessions recorded by headcount, counted apart (nobody is named)."""

    sessions: int
    people: int
    women: int
    men: int


class AttendanceFigures(BaseModel):
    participants: int = PydanticField(description="Unique people; merged duplicates once.")
    attendances: int = PydanticField(description="Person-sessions, each once.")
    sessions: int
    women: int
    men: int
    women_share: Share | None = PydanticField(
        description="`women / participants`, a fraction 0 to 1; null without participants."
    )
    headcount: HeadcountFigures


class AttendanceGroup(AttendanceFigures):
    key: str
    label: str | None


class AttendanceReport(AttendanceFigures):
    """The period as asked (``null``: open on that side), the totals, and the groups."""

    model_config = ConfigDict(populate_by_name=True)

    from_: date | datetime | None = PydanticField(alias="from")
    to: date | datetime | None
    group_by: AttendanceGrouping | None
    groups: list[AttendanceGroup]
