"""The patrol reports ranger leads send the park agency: effort, and threats per 10 km."""

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.answers import attachment, json_or_csv
from api.body import JSONRoute
from api.deps import EngineDep, PeopleReader, SessionDep, SettingsDep, Supervisor
from schemas.agreements import AgreementReport, AgreementReportQuery
from schemas.queries import Format
from schemas.reports import EffortQuery, PatrolEffortReport, ThreatQuery, ThreatReport
from schemas.trainings import AttendanceReport, AttendanceReportQuery
from sync.patrols import reports as patrol_reports
from sync.people import agreement_report
from sync.people import agreements as sync_agreements
from sync.training import attendance_report

router = APIRouter(route_class=JSONRoute, prefix="/reports", tags=["reports"])


@router.get(
    "/patrol-effort",
    response_model=PatrolEffortReport,
    responses=json_or_csv("JSON, or CSV."),
)
def patrol_effort(
    query: Annotated[EffortQuery, Query()],
    principal: Supervisor,
    session: SessionDep,
    settings: SettingsDep,
) -> Any:
    """Patrols, patrol-days, patrol and field hours and km walked, per sector, local month
    or ranger, and in total, for the patrols started in the period in the caller's
    sectors (submitted, returned and approved, or the one ``status`` asked).
    ``sync/patrol_reports.py`` defines every figure. ``format=csv`` answers a CSV file,
    one row per group and the totals, figures exact. Unknown parameters are refused (422)."""
    report = patrol_reports.effort_report(
        session, principal=principal, query=query, zone=settings.zone
    )
    if query.format is Format.csv:
        return attachment(
            patrol_reports.effort_csv(report, zone=settings.zone), "patrol-effort-report.csv"
        )
    return report


@router.get(
    "/threats",
    response_model=ThreatReport,
    responses=json_or_csv("JSON, or CSV."),
)
def threats(
    query: Annotated[ThreatQuery, Query()],
    principal: Supervisor,
    session: SessionDep,
    settings: SettingsDep,
) -> Any:
    """Observations made in the period per category, sector or local month, each weighed
    against the km walked by the patrols counted for it: the rate per 10 km walked.
    ``category`` takes a key or a dotted prefix (``threat``). ``format=csv`` answers a
    CSV file, one row per group and the totals, figures exact. Unknown parameters are
    refused (422)."""
    report = patrol_reports.threat_report(
        session, principal=principal, query=query, zone=settings.zone
    )
    if query.format is Format.csv:
        return attachment(
            patrol_reports.threat_csv(report, zone=settings.zone), "threats-report.csv"
        )
    return report


@router.get(
    "/attendance",
    response_model=AttendanceReport,
    responses=json_or_csv("JSON, or CSV."),
)
def attendance(
    query: Annotated[AttendanceReportQuery, Query()],
    principal: PeopleReader,
    session: SessionDep,
    engine: EngineDep,
    settings: SettingsDep,
) -> Any:
    """The programme's figures for the sessions in the period: participants (unique
    people, merged duplicates once), attendances, sessions, women, men and the women's
    share, and school sessions counted by headcount apart; in total and per
    ``group_by``. ``sync/attendance_report.py`` defines every figure. ``format=csv``
    answers a CSV file, one row per group and the totals."""
    if query.format is Format.csv:
        report = attendance_report.attendance_report(
            session, principal=principal, query=query, zone=settings.zone
        )
        return attachment(
            attendance_report.report_csv(report, zone=settings.zone), "attendance-report.csv"
        )
    return attendance_report.attendance_report(
        session, principal=principal, query=query, zone=settings.zone
    )


@router.get(
    "/agreements",
    response_model=AgreementReport,
    responses=json_or_csv("JSON, or CSV."),
)
def agreements(
    query: Annotated[AgreementReportQuery, Query()],
    principal: PeopleReader,
    session: SessionDep,
    settings: SettingsDep,
) -> Any:
    """Families under agreement today, per community (or sector) of the caller's scope
    — every one, also those where nobody signed — and in total: households, households
    with an agreement reading active, their share (a fraction), hectares (total, forest, coffee),
    renewals due in 30 and 60 days, lapsed agreements. ``sync/agreement_report.py``
    defines every figure. ``format=csv`` answers a CSV file, one row per group and the
    totals."""
    report = agreement_report.agreement_report(
        session, principal=principal, query=query, today=sync_agreements.today(settings.zone)
    )
    if query.format is Format.csv:
        return attachment(
            agreement_report.report_csv(report, zone=settings.zone), "agreements-report.csv"
        )
    return report
