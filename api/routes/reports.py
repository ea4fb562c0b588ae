"""The patrol reports ranger leads send the park agency: effort, and threats per 10 km."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.deps import SessionDep, SettingsDep, require
from schemas.enums import Role
from schemas.reports import EffortQuery, PatrolEffortReport, ThreatQuery, ThreatReport
from sync import patrol_reports
from sync.principal import Principal

router = APIRouter(prefix="/reports", tags=["reports"])

# Reports are for those who answer for sectors: rangers read their own patrols, and
# extension workers hold communities, not sectors.
Reporter = Annotated[Principal, Depends(require(Role.admin, Role.coordinator, Role.ranger_lead))]


@router.get("/patrol-effort")
def patrol_effort(
    query: Annotated[EffortQuery, Query()],
    principal: Reporter,
    session: SessionDep,
    settings: SettingsDep,
) -> PatrolEffortReport:
    """Patrols, patrol-days, patrol and field hours and km walked, per sector, local month
    or ranger, and in total, for the patrols started in the period in the caller's
    sectors (submitted, returned and approved, or the one ``status`` asked).
    ``sync/patrol_reports.py`` defines every figure. Unknown parameters are refused (422)."""
    return patrol_reports.effort_report(
        session, principal=principal, query=query, zone=settings.zone
    )


@router.get("/threats")
def threats(
    query: Annotated[ThreatQuery, Query()],
    principal: Reporter,
    session: SessionDep,
    settings: SettingsDep,
) -> ThreatReport:
    """Observations made in the period per category, sector or local month, each weighed
    against the km walked by the patrols counted for it: the rate per 10 km walked.
    ``category`` takes a key or a dotted prefix (``threat``). Unknown parameters are
    refused (422)."""
    return patrol_reports.threat_report(
        session, principal=principal, query=query, zone=settings.zone
    )
