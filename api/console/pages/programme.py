"""The coordinator's programme at a glance: participants by programme and year and the
women's share, school sessions and the young people they reached, families under
agreement and coverage by community, renewals due; with the reports' filters, charts,
and both reports as the API's CSV files.

Every figure is the API's report (``sync/training/attendance_report.py``,
``sync/people/agreement_report.py``) asked by the viewer: a year's figures are the
report of that year, so a person trained twice in a year counts once in it, as in
the API.
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from typing import Any
from urllib.parse import urlencode

from babel.numbers import format_decimal, format_percent
from fastapi import Request
from fastapi.responses import HTMLResponse, StreamingResponse
from sqlmodel import Session

from api.console import report_cache
from api.console.asked import asked, download, places
from api.console.figures_charts import Series, Share, grouped_bars, share_bars
from api.console.i18n import N_
from api.console.pages import agreements, conflicts, people, trainings
from api.console.programme_words import words
from api.console.web import CoordinatorViewer, console_router, gettext, language, render
from api.deps import SessionDep, SettingsDep
from schemas.agreements import AgreementReport, AgreementReportQuery
from schemas.records import Program
from schemas.trainings import (
    AttendanceGrouping,
    AttendanceReport,
    AttendanceReportQuery,
    SessionFilters,
    SessionQuery,
)
from sync.accounts.principal import Principal
from sync.people import agreement_report
from sync.people import agreements as sync_agreements
from sync.platform.errors import Unprocessable
from sync.training import attendance_report
from sync.training import sessions as training_sessions

router = console_router()

PARTS = (trainings, people, agreements, conflicts)
"""The coordinator's other pages, registered with this one (``api.console.PAGES``)."""

ATTENDANCE_GROUPINGS = tuple(AttendanceGrouping)


def _day(bound: date | datetime, zone: tzinfo) -> date:
    return bound.astimezone(zone).date() if isinstance(bound, datetime) else bound


def _within(query: AttendanceReportQuery, year: int, zone: tzinfo) -> AttendanceReportQuery:
    """The question asked, narrowed to ``year`` (the asked bounds where they are tighter)."""
    first, last = date(year, 1, 1), date(year, 12, 31)
    start = query.from_ if query.from_ is not None and _day(query.from_, zone) > first else first
    end = query.to if query.to is not None and _day(query.to, zone) < last else last
    return query.model_copy(
        update={"from_": start, "to": end, "group_by": AttendanceGrouping.program}
    )


def _years(
    session: Session, principal: Principal, query: AttendanceReportQuery, zone: tzinfo
) -> list[int]:
    """The years from the oldest session asked to the newest (two rows read, not all)."""
    filters = query.model_dump(include=set(SessionFilters.model_fields))
    newest = training_sessions.list_sessions(
        session, principal=principal, query=SessionQuery(**filters, limit=1), zone=zone
    )
    if not newest.items:
        return []
    oldest = training_sessions.list_sessions(
        session,
        principal=principal,
        query=SessionQuery(**filters, limit=1, offset=newest.total - 1),
        zone=zone,
    )
    first, last = (page.items[0].starts_at.astimezone(zone).year for page in (oldest, newest))
    return list(range(first, last + 1))


def _attendance(
    session: Session, principal: Principal, query: AttendanceReportQuery, zone: tzinfo
) -> AttendanceReport:
    """The API's attendance report for ``query``, kept while its data is unchanged."""
    return report_cache.kept(
        session,
        principal,
        "attendance",
        query,
        lambda: attendance_report.attendance_report(
            session, principal=principal, query=query, zone=zone
        ),
        str(zone),
    )


def _agreements(
    session: Session, principal: Principal, query: AgreementReportQuery, today: date
) -> AgreementReport:
    """The API's agreements report for ``query`` as of ``today``, kept likewise."""
    return report_cache.kept(
        session,
        principal,
        "agreements",
        query,
        lambda: agreement_report.agreement_report(
            session, principal=principal, query=query, today=today
        ),
        today,
    )


def _by_year(
    session: Session,
    principal: Principal,
    query: AttendanceReportQuery,
    totals: AttendanceReport,
    zone: tzinfo,
) -> list[tuple[str, AttendanceReport]]:
    """Each year with a session counted, and its report by programme: together one more
    reading of the period's attendance, a year at a time; none when the sessions asked
    all lie in one year, whose report is then the totals."""
    years = _years(session, principal, query, zone)
    if len(years) == 1:
        return [(str(years[0]), totals)] if totals.groups else []
    reports = (
        (str(year), _attendance(session, principal, _within(query, year, zone), zone))
        for year in years
    )
    return [(year, report) for year, report in reports if report.groups]


def _charts(
    lang: str,
    by_year: list[tuple[str, AttendanceReport]],
    coverage: AgreementReport,
    say: Any,
) -> dict[str, Any]:
    """The three charts of the page, their words in ``lang``."""
    word = words(lang)
    years = [year for year, _ in by_year]

    def count(value: float) -> str:
        return str(format_decimal(value, format="#,##0", locale=lang))

    named: list[Series] = []
    for program in Program:
        values = [
            float(next((g.participants for g in r.groups if g.key == program), 0))
            for _, r in by_year
        ]
        if any(values):
            named.append(Series(word("program", program), values, [count(v) for v in values]))
    young = [float(report.headcount.people) for _, report in by_year]
    school = [Series(say(N_("Young people reached")), young, [count(v) for v in young])]
    shares = [
        Share(
            group.label or group.key,
            group.coverage_share,
            "—"
            if group.coverage_share is None
            else str(format_percent(group.coverage_share, format="#,##0 %", locale=lang)),
        )
        for group in coverage.groups
    ]
    return {
        "participants": grouped_bars(
            years, named, title=say(N_("Participants by programme and year"))
        )
        if named
        else None,
        "school": grouped_bars(
            years, school, title=say(N_("Young people reached at school sessions, by year"))
        )
        if any(young)
        else None,
        "coverage": share_bars(shares, title=say(N_("Families under agreement, by community")))
        if shares
        else None,
    }


def _downloads(request: Request) -> dict[str, Any]:
    """The CSV links of the page: the same filters, each grouping of the reports."""
    asked_filters = {
        name: value
        for name, value in request.query_params.items()
        if name in ("from", "to", "program", "community_id", "sector_id") and value
    }
    places_only = {
        name: value
        for name, value in asked_filters.items()
        if name in ("community_id", "sector_id")
    }
    return {
        "attendance": {
            grouping.value: "/console/programme/attendance.csv?"
            + urlencode({**asked_filters, "group_by": grouping.value})
            for grouping in ATTENDANCE_GROUPINGS
        },
        "attendance_totals": "/console/programme/attendance.csv?" + urlencode(asked_filters),
        "agreements": {
            grouping: "/console/programme/agreements.csv?"
            + urlencode({**places_only, "group_by": grouping})
            for grouping in ("community", "sector")
        },
    }


@router.get("/programme", response_class=HTMLResponse)
def programme(
    request: Request, viewer: CoordinatorViewer, session: SessionDep, settings: SettingsDep
) -> HTMLResponse:
    """The programme's figures for the period, programme and places asked, with charts."""
    query = asked(request, AttendanceReportQuery, group_by="program", format="json")
    zone = settings.zone
    lang = language(request)
    context: dict[str, Any] = {
        "word": words(lang),
        "programs": list(Program),
        "downloads": _downloads(request),
        **places(session, viewer),
    }
    try:
        totals = _attendance(session, viewer.principal, query, zone)
        by_year = _by_year(session, viewer.principal, query, totals, zone)
    except Unprocessable:
        context["problem"] = gettext(request, N_("The period ends before it starts."))
        return render(request, "programme/figures.html", context, status=422)
    coverage = _agreements(
        session,
        viewer.principal,
        AgreementReportQuery(community_id=query.community_id, sector_id=query.sector_id),
        sync_agreements.today(zone),
    )
    context |= {
        "totals": totals,
        "by_year": by_year,
        "coverage": coverage,
        "charts": _charts(lang, by_year, coverage, lambda m: gettext(request, m)),
    }
    return render(request, "programme/figures.html", context)


@router.get("/programme/attendance.csv", response_class=StreamingResponse)
def attendance_csv(
    request: Request, viewer: CoordinatorViewer, session: SessionDep, settings: SettingsDep
) -> StreamingResponse:
    """The attendance report for the filters and grouping asked: the API's CSV file."""
    query = asked(request, AttendanceReportQuery, format="csv")
    report = _attendance(session, viewer.principal, query, settings.zone)
    return download(
        attendance_report.report_csv(report, zone=settings.zone), "attendance-report.csv"
    )


@router.get("/programme/agreements.csv", response_class=StreamingResponse)
def agreements_csv(
    request: Request, viewer: CoordinatorViewer, session: SessionDep, settings: SettingsDep
) -> StreamingResponse:
    """Families under agreement per community or sector: the API's CSV file."""
    query = asked(request, AgreementReportQuery, format="csv")
    report = _agreements(session, viewer.principal, query, sync_agreements.today(settings.zone))
    return download(
        agreement_report.report_csv(report, zone=settings.zone), "agreements-report.csv"
    )
