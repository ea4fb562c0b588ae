"""The families' registry as the office reads it: people and households, their
duplicates and merges, and the log of who took personal data out.

Personal data (Peru's law 29733: consent, least access) is a person's document
number and phone and a household's home location. It is shown only to admins,
coordinators and the extension workers of the family's community, and only when
asked (``pii=true``, the default); every list or file that carries it is logged.
"""

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from pydantic import Field as PydanticField
from sqlmodel import Field

from schemas.audit import Chained
from schemas.history import VersionRead
from schemas.queries import Format, Paging, QueryParams
from schemas.records import DocType, Sex
from schemas.types import JSONDocument, UTCDateTime
from schemas.wire import RequestBody

# ---------------------------------------------------------------- tables


class PersonMerge(Chained, table=True):
    """One merge of a duplicate person into the kept one, and what followed."""

    __tablename__ = "person_merge"

    id: uuid.UUID = Field(primary_key=True)
    kept_id: uuid.UUID = Field(foreign_key="person.id", index=True)
    merged_id: uuid.UUID = Field(foreign_key="person.id", index=True)
    merged_by: uuid.UUID = Field(foreign_key="user.id")
    merged_at: datetime = Field(sa_type=UTCDateTime)
    moved: dict[str, Any] = Field(default_factory=dict, sa_type=JSONDocument)


class PersonalDataAccess(Chained, table=True):
    """A list or a file that carried personal data out: who, when, what they asked."""

    __tablename__ = "personal_data_access"

    id: uuid.UUID = Field(primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="user.id", index=True)
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    path: str = Field(sa_type=sa.String(200))
    format: str = Field(sa_type=sa.String(16))
    filters: dict[str, Any] = Field(default_factory=dict, sa_type=JSONDocument)


# ---------------------------------------------------------------- wire: questions


class RegistryQuery(Paging):
    community_id: uuid.UUID | None = None
    sector_id: uuid.UUID | None = None
    q: str | None = PydanticField(
        default=None,
        min_length=1,
        max_length=200,
        description="Words of a name, accents and case ignored: `jose nunez` finds José Núñez.",
    )
    pii: bool = PydanticField(
        default=True,
        description="Personal data (document number, phone, home location), to roles "
        "that may see it; `false` leaves it out. Each answer carrying it is logged.",
    )
    format: Format = Format.json


class PeopleQuery(RegistryQuery):
    sex: Sex | None = None
    status: str | None = PydanticField(
        default="active",
        pattern="^(active|merged|all)$",
        description="`active` (default), `merged` (folded into another), or `all`.",
    )


class HouseholdQuery(RegistryQuery):
    pass


class DetailQuery(QueryParams):
    pii: bool = True


class DuplicateQuery(Paging):
    community_id: uuid.UUID | None = None
    limit: int = PydanticField(default=100, ge=1, le=500)


class MergeRequest(RequestBody):
    keep_id: uuid.UUID
    merge_id: uuid.UUID


class AccessLogQuery(Paging):
    user_id: uuid.UUID | None = None
    limit: int = PydanticField(default=100, ge=1, le=1000)


# ---------------------------------------------------------------- wire: answers


class PersonRead(BaseModel):
    id: uuid.UUID
    version: int
    given_names: str
    paternal_surname: str
    maternal_surname: str | None
    sex: Sex
    birth_year: int | None
    doc_type: DocType
    doc_number: str | None = PydanticField(description="Personal data: null when not shown.")
    phone: str | None = PydanticField(description="Personal data: null when not shown.")
    community_id: uuid.UUID
    community_name: str | None
    household_id: uuid.UUID | None
    merged_into: uuid.UUID | None
    personal_data: bool = PydanticField(description="Whether personal data is shown.")
    created_at: datetime
    updated_at: datetime


class PersonPage(BaseModel):
    items: list[PersonRead]
    total: int
    limit: int
    offset: int


class MemberRead(BaseModel):
    person_id: uuid.UUID
    relation: str | None
    name: str | None


class HouseholdRead(BaseModel):
    id: uuid.UUID
    version: int
    code: str | None
    community_id: uuid.UUID
    community_name: str | None
    head_person_id: uuid.UUID | None
    head_name: str | None
    members: list[MemberRead]
    location: dict[str, Any] | None = PydanticField(
        description="Personal data (the home's place): null when not shown."
    )
    personal_data: bool
    created_at: datetime
    updated_at: datetime


class HouseholdPage(BaseModel):
    items: list[HouseholdRead]
    total: int
    limit: int
    offset: int


class AgreementBrief(BaseModel):
    id: uuid.UUID
    code: str | None
    status: str
    valid_from: Any
    valid_until: Any


class PersonDetail(BaseModel):
    person: PersonRead
    household: HouseholdRead | None
    agreements_signed: list[AgreementBrief]
    merged_from: list[uuid.UUID] = PydanticField(description="People merged into this one.")
    history: list[VersionRead]


class HouseholdDetail(BaseModel):
    household: HouseholdRead
    agreements: list[AgreementBrief]
    history: list[VersionRead]


class PersonBrief(BaseModel):
    id: uuid.UUID
    given_names: str
    paternal_surname: str
    maternal_surname: str | None
    birth_year: int | None
    community_id: uuid.UUID
    doc_type: DocType
    created_at: datetime


class DuplicatePair(BaseModel):
    a: PersonBrief
    b: PersonBrief
    reasons: list[str] = PydanticField(
        description="`same_document` (type and number), `same_name_birth_year_community`."
    )


class DuplicatePage(BaseModel):
    items: list[DuplicatePair]
    total: int
    limit: int
    offset: int


class MergeRead(BaseModel):
    id: uuid.UUID
    kept_id: uuid.UUID
    merged_id: uuid.UUID
    merged_by: uuid.UUID
    merged_at: datetime
    moved: dict[str, Any] = PydanticField(
        description="What followed the kept person: `attendance`, `attendance_folded` "
        "(made single), `households`, `agreements`, `people` (merged earlier into the "
        "merged one), and the kept person's fields filled from the merged one."
    )


class AccessRead(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    username: str | None
    at: datetime
    path: str
    format: str
    filters: dict[str, Any]


class AccessPage(BaseModel):
    items: list[AccessRead]
    total: int
    limit: int
    offset: int
