"""The patrol reports ranger leads send the park agency: what they ask, what they get.

``sync/patrol_reports.py`` defines every figure (which patrols count, how km and hours
are measured). Figures are exact here and rounded only in JSON answers, as every
figure is (``schemas/figures.py``: km, hours and rates to 2 decimals); the CSV keeps
them exact. Totals are summed before rounding, so a total may differ from the sum of
its rounded groups in the last digit.
"""

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField

from schemas.figures import Hours, Km, Rate
from schemas.patrols import CategoryKey
from schemas.queries import Bound, Format, QueryParams

ReportedStatus = Literal["submitted", "returned", "approved"]
"""The statuses a report may narrow to: drafts and cancelled patrols never count."""


class EffortGrouping(StrEnum):
    sector = "sector"
    month = "month"
    ranger = "ranger"


class ThreatGrouping(StrEnum):
    category = "category"
    sector = "sector"
    month = "month"


# ---------------------------------------------------------------- wire: questions


class ReportQuery(QueryParams):
    from_: Bound | None = PydanticField(
        default=None,
        alias="from",
        description="Patrols started (observations made) on or after this; none: no start.",
    )
    to: Bound | None = PydanticField(
        default=None, description="On or before this (a date: the whole day); none: no end."
    )
    sector_id: uuid.UUID | None = PydanticField(default=None, description="Only this sector.")
    format: Format = PydanticField(
        default=Format.json, description="`csv`: one row per group, then the totals."
    )


class EffortQuery(ReportQuery):
    group_by: EffortGrouping = EffortGrouping.sector
    status: ReportedStatus | None = PydanticField(
        default=None,
        description="Only patrols of this status (`approved`: what the reviews confirmed); "
        "none: submitted, returned and approved.",
    )


class ThreatQuery(ReportQuery):
    group_by: ThreatGrouping = ThreatGrouping.category
    category: CategoryKey | None = None


# ---------------------------------------------------------------- wire: answers


class Report(BaseModel):
    """The period as asked (``null``: open on that side) and how the groups are cut."""

    model_config = ConfigDict(populate_by_name=True)

    from_: date | datetime | None = PydanticField(alias="from")
    to: date | datetime | None


class Grouped(BaseModel):
    key: str = PydanticField(
        description="The sector's or ranger's id, the month (`2026-03`), the category key."
    )
    label: str | None = PydanticField(
        description="`code — name` of a sector, a ranger's full name, the month, a "
        "category's Spanish name; null for a ranger who is not a user of the service."
    )


class EffortFigures(BaseModel):
    patrols: int = PydanticField(description="Patrols counted.")
    patrol_days: int = PydanticField(
        description="Local calendar days the patrols touch (one for a patrol with no valid end)."
    )
    patrol_hours: Hours = PydanticField(description="From start to end, where both are known.")
    field_hours: Hours = PydanticField(description="Patrol hours minus declared rest.")
    km: Km = PydanticField(description="Walked length of the tracks, gaps left out.")
    patrols_without_hours: int = PydanticField(
        description="Patrols with no end, or an end before the start: in `patrols`, "
        "not in the hours."
    )


class EffortGroup(EffortFigures, Grouped):
    pass


class PatrolEffortReport(Report):
    group_by: EffortGrouping
    totals: EffortFigures = PydanticField(
        description="Every patrol once, even one counted under each of its rangers."
    )
    groups: list[EffortGroup]


class ThreatFigures(BaseModel):
    observations: int
    km: Km = PydanticField(description="The km walked the observations are weighed against.")
    per_10_km: Rate | None = PydanticField(
        description="`observations / km * 10`; null when no km were walked."
    )


class ThreatGroup(ThreatFigures, Grouped):
    label_en: str | None = PydanticField(
        default=None, description="A category's English name; null for other groups."
    )


class ThreatReport(Report):
    group_by: ThreatGrouping
    totals: ThreatFigures
    groups: list[ThreatGroup]
