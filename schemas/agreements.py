"""What coordinators and extension workers ask of families' conservation agreements,
and what they get back.

The life cycle and the figures are defined in ``sync/agreements.py`` and
``sync/agreement_report.py``: an ``active`` agreement past its ``valid_until`` reads
as ``expired`` (computed on read, never stored); a renewal is a new agreement whose
``renews_agreement_id`` names the one it renews.
"""

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from pydantic import Field as PydanticField

from schemas.figures import Hectares, Share
from schemas.history import VersionRead
from schemas.queries import Format, QueryParams
from schemas.records import AgreementStatus
from schemas.trainings import ListQuery

# ---------------------------------------------------------------- wire: questions


class AgreementFilters(QueryParams):
    community_id: uuid.UUID | None = None
    sector_id: uuid.UUID | None = PydanticField(
        default=None, description="The agreements of the communities of this sector."
    )


class AgreementQuery(AgreementFilters, ListQuery):
    status: AgreementStatus | None = PydanticField(
        default=None,
        description="The status as it reads today: `expired` takes in the `active` "
        "agreements past their `valid_until`, which `active` leaves out.",
    )
    q: str | None = PydanticField(
        default=None,
        min_length=1,
        max_length=200,
        description="Words that must each appear, accents and case aside, in the "
        "signatory's full name, the agreement's code or its household's code.",
    )
    renewal_due_within: int | None = PydanticField(
        default=None,
        ge=1,
        le=366,
        description="Active agreements whose `valid_until` falls from today to today + "
        "this many days, both included, that no live agreement renews yet; soonest first.",
    )


class AgreementGrouping(StrEnum):
    community = "community"
    sector = "sector"


class AgreementReportQuery(AgreementFilters):
    group_by: AgreementGrouping = AgreementGrouping.community
    format: Format = Format.json


# ---------------------------------------------------------------- wire: answers


class HouseholdBrief(BaseModel):
    id: uuid.UUID
    code: str | None


class Signatory(BaseModel):
    """The person who signed, by name: no document number, no phone."""

    id: uuid.UUID
    given_names: str
    paternal_surname: str
    maternal_surname: str | None


class AgreementRead(BaseModel):
    id: uuid.UUID
    version: int
    code: str | None
    status: AgreementStatus = PydanticField(
        description="As it reads today: `expired` for an `active` agreement past its "
        "`valid_until` (local date)."
    )
    recorded_status: AgreementStatus = PydanticField(description="As devices sent it.")
    community_id: uuid.UUID
    community_name: str | None
    sector_id: uuid.UUID | None
    household: HouseholdBrief
    signatory: Signatory | None
    signed_on: date | None
    valid_from: date | None
    valid_until: date | None
    renews_agreement_id: uuid.UUID | None
    renewed_by_id: uuid.UUID | None = PydanticField(
        description="The live agreement that renews this one (the newest, if several)."
    )
    area_total_ha: float | None
    area_forest_ha: float | None
    area_coffee_ha: float | None
    commitments: list[str]
    benefits: list[str]
    consent: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime


class AgreementPage(BaseModel):
    items: list[AgreementRead]
    total: int
    limit: int
    offset: int


class AgreementLink(BaseModel):
    """The agreement one renews, or the one renewing it."""

    id: uuid.UUID
    code: str | None
    status: AgreementStatus = PydanticField(description="As it reads today.")
    valid_from: date | None
    valid_until: date | None


class AgreementDetail(AgreementRead):
    renews: AgreementLink | None = PydanticField(
        description="The agreement this one renews, if the caller may see it."
    )
    renewed_by: AgreementLink | None
    history: list[VersionRead] = PydanticField(description="Every version, oldest first.")


class AgreementFigures(BaseModel):
    households: int = PydanticField(description="Live households.")
    households_with_active_agreement: int = PydanticField(
        description="Live households with at least one live agreement reading `active`."
    )
    coverage_share: Share | None = PydanticField(
        description="`households_with_active_agreement / households`, a fraction 0 to 1; "
        "null without households."
    )
    hectares_total: Hectares = PydanticField(
        description="Over the agreements reading `active` (an agreement renewed by one "
        "that reads `active` counts once, as its renewal); missing areas count 0."
    )
    hectares_forest: Hectares
    hectares_coffee: Hectares
    renewals_due_30: int = PydanticField(
        description="Active agreements ending within 30 days that no live agreement renews."
    )
    renewals_due_60: int
    lapsed: int = PydanticField(
        description="Agreements reading `expired` that no live agreement renews."
    )


class AgreementGroup(AgreementFigures):
    key: str
    label: str | None = PydanticField(description="The community's name; a sector's `code — name`.")


class AgreementReport(AgreementFigures):
    as_of: date = PydanticField(description="Today, where the work happens: what `active` means.")
    group_by: AgreementGrouping
    groups: list[AgreementGroup] = PydanticField(
        description="Every community (or sector) of the caller's scope and the filters, "
        "also those with no household or agreement."
    )
