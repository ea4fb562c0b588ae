"""The ranger lead's pages: the review queue, a patrol with its map, flags, photos and
reviews, the review itself, the threat report, and the exports and photos as
downloads.

Every page calls the services the API calls, with the viewer's principal, so roles
and scope are the API's: the office and ranger leads read (``LeadViewer``), only
admins and ranger leads review (``ReviewerViewer``), a patrol of another sector is
the 404 page. Exports and files are streamed with the console's session, since the
API's own addresses need a bearer token that a browser does not hold.

Filters come from the address (a plain ``GET`` form: a filtered queue can be
bookmarked and sent); a blank field is no filter. The queue without a ``status`` is
the review queue (``submitted``, the longest waiting first); ``status=all`` is every
patrol, the newest first.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from babel.dates import format_date
from babel.numbers import format_decimal
from fastapi import Form, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from pydantic import ValidationError
from sqlmodel.sql.expression import SelectOfScalar

from api.answers import attachment
from api.console import charts, maps, report_cache
from api.console.flags import flag_views
from api.console.i18n import N_
from api.console.web import (
    PREFIX,
    AnyViewer,
    CheckedForm,
    LeadViewer,
    ReviewerViewer,
    Viewer,
    console_router,
    gettext,
    language,
    redirect,
    render,
)
from api.deps import EngineDep, SessionDep, SettingsDep
from api.routes import attachments as files
from schemas import Patrol
from schemas.enums import Role
from schemas.patrols import (
    ObservationRead,
    PatrolDetail,
    PatrolFilters,
    PatrolQuery,
    ReviewDecision,
)
from schemas.records import PatrolStatus
from schemas.reports import ThreatGrouping, ThreatQuery, ThreatReport
from sync.accounts import users
from sync.catalog import CATALOG
from sync.engine import moves
from sync.patrols import exports, review
from sync.patrols import reads as patrols
from sync.patrols import reports as patrol_reports
from sync.platform.errors import Conflict, Unprocessable
from sync.reference import service as reference

router = console_router()

PAGE_SIZE = 50
EVERY_STATUS = "all"
THREATS = "threat"
"""The threat report counts the categories under ``threat`` unless asked otherwise."""
NOT_FILTERS = frozenset({"lang"})
"""Parameters every page takes (the language), never a filter."""
# A download holds personal data, as the pages do: no browser or proxy keeps it.
NO_STORE = {"Cache-Control": "no-store"}
REVIEWERS = frozenset({Role.admin, Role.ranger_lead})

NOTICES = {
    "approved": N_(
        "Patrol approved. It is locked now: a later edit from the tablet opens a conflict."
    ),
    "returned": N_("Patrol returned to the ranger with your comment."),
    "moved": N_(
        "Patrol moved, with its track and observations. The tablets of the old sector "
        "delete it at their next sync; those of the new sector receive it."
    ),
}
FILTERS_UNREAD = N_(
    "These filters cannot be read: write dates as 2026-03-31, and end the period after it starts."
)
CHART_TITLES = {
    ThreatGrouping.month: N_("Observations per month"),
    ThreatGrouping.sector: N_("Observations per sector"),
    ThreatGrouping.category: N_("Observations per category"),
}
COMMENT_NEEDED = N_("Returning a patrol needs a comment: say what the ranger should fix.")
ALREADY_APPROVED = N_("This patrol is approved already.")
CANNOT_MOVE = N_(
    "The patrol cannot move to that sector: you may only move it between sectors you hold."
)
NOT_SUBMITTED = N_("Only a submitted patrol is reviewed, and this one is not waiting for review.")


# ---------------------------------------------------------------- filters


def _asked(request: Request) -> dict[str, str]:
    """The address's parameters that filter: blanks are no filter, nor is the language."""
    return {
        key: value
        for key, value in request.query_params.items()
        if value.strip() and key not in NOT_FILTERS
    }


def _patrol_filters(request: Request) -> dict[str, str]:
    """The queue's filters with its default: no ``status`` is the review queue."""
    asked = _asked(request)
    status = asked.pop("status", PatrolStatus.submitted.value)
    if status != EVERY_STATUS:
        asked["status"] = status
    return asked


def _matching(
    request: Request, viewer: Viewer, session: SessionDep, settings: SettingsDep
) -> SelectOfScalar[Patrol]:
    """The patrols an export's filters choose (the queue's, without paging), checked
    before anything streams."""
    asked = {key: value for key, value in _patrol_filters(request).items() if key != "offset"}
    try:
        filters = PatrolFilters.model_validate(asked)
    except ValidationError:
        raise Unprocessable("the export's filters cannot be read") from None
    return patrols.filtered(
        session, principal=viewer.principal, filters=filters, zone=settings.zone
    )


def _names(session: SessionDep, user_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Users' full names, in one query."""
    return {
        user_id: person.full_name or person.username or str(user_id)
        for user_id, person in patrols.users(session, user_ids).items()
    }


def _categories(session: SessionDep, lang: str) -> list[tuple[str, str]]:
    """Each category as ``(key, name in the viewer's language)``, by key."""
    return [
        (category.key, (category.name_en if lang == "en" else category.name_es) or category.key)
        for category in reference.list_categories(session)
    ]


# ---------------------------------------------------------------- the queue


@router.get("/patrols", response_class=HTMLResponse)
def queue(
    request: Request, viewer: LeadViewer, session: SessionDep, settings: SettingsDep
) -> HTMLResponse:
    """The review queue, the longest waiting first, or the patrols the filters choose."""
    asked = _patrol_filters(request)
    status = asked.get("status", EVERY_STATUS)
    sectors = reference.list_sectors(session, principal=viewer.principal)
    context: dict[str, Any] = {
        "status": status,
        "queue": status == PatrolStatus.submitted.value,
        "statuses": [*(value.value for value in PatrolStatus), EVERY_STATUS],
        "sectors": {sector.id: sector for sector in sectors},
        "categories": _categories(session, language(request)),
        "rangers": users.rangers_in_scope(session, principal=viewer.principal),
        "downloads": urlencode({k: v for k, v in asked.items() if k != "offset"}),
        "page": None,
        "ranger_id": None,
        "names": {},
        "problem": None,
    }
    try:
        query = PatrolQuery.model_validate({**asked, "limit": PAGE_SIZE})
        page = patrols.list_patrols(
            session, principal=viewer.principal, query=query, zone=settings.zone
        )
    except (ValidationError, Unprocessable):
        context["problem"] = gettext(request, FILTERS_UNREAD)
        return render(request, "patrols/queue.html", context, status=422)
    # Named: the leaders on the page, and the ranger chosen if the page shows them (a
    # ranger of another sector is not named by their id).
    people = {patrol.leader_id for patrol in page.items if patrol.leader_id}
    shown = people | {m.user_id for patrol in page.items for m in patrol.members if m.user_id}
    if query.ranger_id in shown:
        people.add(query.ranger_id)
    context.update(page=page, ranger_id=query.ranger_id, names=_names(session, people))
    return render(request, "patrols/queue.html", context)


# ---------------------------------------------------------------- exports


def _download(answer: StreamingResponse) -> StreamingResponse:
    answer.headers.update(NO_STORE)
    return answer


@router.get("/patrols/export.csv", response_class=StreamingResponse)
def export_csv(
    request: Request,
    viewer: LeadViewer,
    session: SessionDep,
    engine: EngineDep,
    settings: SettingsDep,
) -> StreamingResponse:
    """The queue's patrols as a spreadsheet, one row per observation (the API's CSV)."""
    matching = _matching(request, viewer, session, settings)
    rows = exports.patrols_csv(engine, matching, zone=settings.zone, base_url=str(request.base_url))
    return _download(attachment(rows, "patrols.csv"))


@router.get("/patrols/export.geojson", response_class=StreamingResponse)
def export_geojson(
    request: Request,
    viewer: LeadViewer,
    session: SessionDep,
    engine: EngineDep,
    settings: SettingsDep,
) -> StreamingResponse:
    """The queue's patrols for a GIS, tracks and observations (the API's GeoJSON)."""
    matching = _matching(request, viewer, session, settings)
    pieces = exports.patrols_geojson(
        engine, matching, zone=settings.zone, base_url=str(request.base_url)
    )
    return _download(attachment(pieces, "patrols.geojson", media_type=exports.GEOJSON_MEDIA_TYPE))


@router.get("/patrols/{patrol_id}/track.gpx", response_class=StreamingResponse)
def export_gpx(
    patrol_id: uuid.UUID,
    viewer: LeadViewer,
    session: SessionDep,
    engine: EngineDep,
    settings: SettingsDep,
) -> StreamingResponse:
    """One patrol's track for a GPS or Google Earth (the API's GPX)."""
    patrol = patrols.visible(session, viewer.principal, patrol_id)
    pieces = exports.patrol_gpx(engine, patrol.id, zone=settings.zone)
    return _download(
        attachment(pieces, f"patrol-{patrol.id}.gpx", media_type=exports.GPX_MEDIA_TYPE)
    )


# ---------------------------------------------------------------- one patrol


def category_name(observation: ObservationRead, lang: str) -> str:
    """An observation's category in the viewer's language, or its key."""
    named = observation.category_name_en if lang == "en" else observation.category_name_es
    return named or observation.category_key


def _places(detail: PatrolDetail, lang: str) -> list[maps.Place]:
    """The observations on the map, numbered as the list under it."""
    return [
        maps.Place(number=n, lat=o.lat, lon=o.lon, title=f"{n}. {category_name(o, lang)}")
        for n, o in enumerate(detail.observations, start=1)
    ]


@dataclass(frozen=True)
class Said:
    """What a patrol's page says above it after a review was refused."""

    status: int
    problem: str
    comment: str = ""


def _patrol_page(
    request: Request,
    viewer: Viewer,
    session: SessionDep,
    settings: SettingsDep,
    patrol_id: uuid.UUID,
    said: Said | None = None,
) -> HTMLResponse:
    lang = language(request)
    detail = patrols.detail(session, principal=viewer.principal, patrol_id=patrol_id)
    sector = reference.get_sector(
        session, sector_id=detail.patrol.sector_id, principal=viewer.principal
    )
    drawn = maps.patrol_map(
        title=gettext(request, N_("Map of the patrol: its track, observations and sector")),
        track=detail.track,
        places=_places(detail, lang),
        boundary=sector.boundary,
    )
    notice = NOTICES.get(request.query_params.get("notice", ""))
    context = {
        "detail": detail,
        "patrol": detail.patrol,
        "sector": sector,
        "map": drawn,
        "flags": flag_views(detail, zone=settings.zone, lang=lang),
        "may_review": viewer.role in REVIEWERS,
        # Where the viewer may move it: the other sectors they hold, if any.
        "move_to": [
            s
            for s in reference.list_sectors(session, principal=viewer.principal)
            if s.id != detail.patrol.sector_id
        ],
        "notice": gettext(request, notice) if notice else None,
        "problem": said.problem if said else None,
        "comment": said.comment if said else "",
    }
    return render(request, "patrols/detail.html", context, status=said.status if said else 200)


@router.get("/patrols/{patrol_id}", response_class=HTMLResponse)
def patrol_page(
    patrol_id: uuid.UUID,
    request: Request,
    viewer: LeadViewer,
    session: SessionDep,
    settings: SettingsDep,
) -> HTMLResponse:
    """One patrol as a reviewer weighs it: map, effort and flags, observations with their
    photos, the reviews so far, and the review form."""
    return _patrol_page(request, viewer, session, settings, patrol_id)


@router.post("/patrols/{patrol_id}/review", response_class=HTMLResponse, dependencies=[CheckedForm])
def review_patrol(
    patrol_id: uuid.UUID,
    request: Request,
    viewer: ReviewerViewer,
    session: SessionDep,
    settings: SettingsDep,
    decision: Annotated[ReviewDecision, Form()],
    comment: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Approve a submitted patrol, or return it to the ranger with a comment."""
    asked = review.ReviewRequest(decision=decision, comment=comment or None)
    try:
        done = review.review(
            session, principal=viewer.principal, patrol_id=patrol_id, request=asked
        )
    except Unprocessable:
        said = Said(422, gettext(request, COMMENT_NEEDED))
        return _patrol_page(request, viewer, session, settings, patrol_id, said)
    except Conflict as refused:
        message = ALREADY_APPROVED if refused.code == "already_approved" else NOT_SUBMITTED
        said = Said(409, gettext(request, message), comment)
        return _patrol_page(request, viewer, session, settings, patrol_id, said)
    return redirect(f"{PREFIX}/patrols/{patrol_id}?notice={done.status.value}")


@router.post("/patrols/{patrol_id}/move", response_class=HTMLResponse, dependencies=[CheckedForm])
def move_patrol(
    patrol_id: uuid.UUID,
    request: Request,
    viewer: LeadViewer,
    session: SessionDep,
    settings: SettingsDep,
    sector_id: Annotated[uuid.UUID, Form()],
) -> Response:
    """File a patrol under another sector, with its track and observations."""
    try:
        moves.move(
            session,
            catalog=CATALOG,
            principal=viewer.principal,
            entity="patrol",
            record_id=patrol_id,
            to=sector_id,
        )
    except Unprocessable:
        said = Said(422, gettext(request, CANNOT_MOVE))
        return _patrol_page(request, viewer, session, settings, patrol_id, said)
    return redirect(f"{PREFIX}/patrols/{patrol_id}?notice=moved")


# ---------------------------------------------------------------- photos


@router.get("/attachments/{sha256}")
def attachment_file(
    sha256: Annotated[str, PathParam(pattern=files.SHA256_PATH)],
    request: Request,
    viewer: AnyViewer,
    session: SessionDep,
    storage: files.StorageDep,
    variant: Annotated[Literal["thumbnail"] | None, Query()] = None,
) -> Response:
    """A file a record names (a photo, a scan), or a photo's thumbnail, for whoever may
    see that record: the API's download, with the session instead of a token."""
    answer = files.download(
        sha256=sha256,
        request=request,
        principal=viewer.principal,
        session=session,
        storage=storage,
        variant=variant,
    )
    answer.headers.update(NO_STORE)
    return answer


# ---------------------------------------------------------------- threats


def _threat_query(request: Request) -> dict[str, str]:
    """The report's filters with its defaults: by month, threats only. An empty
    ``category`` (every observation) is a choice, not a blank."""
    asked = _asked(request)
    asked.setdefault("group_by", ThreatGrouping.month.value)
    category = request.query_params.get("category", THREATS).strip()
    asked.pop("category", None)
    if category:
        asked["category"] = category
    return asked


def _group_label(
    group_label: str | None, key: str, label_en: str | None, grouping: str, lang: str
) -> str:
    if grouping == ThreatGrouping.month:
        year, month = (int(part) for part in key.split("-"))
        return format_date(date(year, month, 1), format="MMM y", locale=lang)
    if grouping == ThreatGrouping.category and lang == "en" and label_en:
        return label_en
    return group_label or key


def _count(value: int, lang: str) -> str:
    """A count as the table beside the chart writes it."""
    return format_decimal(value, format="#,##0", locale=lang)


def _threat_report(
    request: Request, viewer: Viewer, session: SessionDep, settings: SettingsDep
) -> ThreatReport:
    """The threat report the address asks for. It measures every track of the period
    (about a second for the demo's six months), so it is kept while the sync clock
    stands still: moving from the chart to its CSV, or back, reads it once."""
    try:
        query = ThreatQuery.model_validate(_threat_query(request))
    except ValidationError:
        raise Unprocessable("the report's filters cannot be read") from None
    return report_cache.kept(
        session,
        viewer.principal,
        "threats",
        query,
        lambda: patrol_reports.threat_report(
            session, principal=viewer.principal, query=query, zone=settings.zone
        ),
    )


@router.get("/threats", response_class=HTMLResponse)
def threats(
    request: Request, viewer: LeadViewer, session: SessionDep, settings: SettingsDep
) -> HTMLResponse:
    """Threats observed per month, sector or category, weighed by the km walked, with a chart."""
    lang = language(request)
    asked = _threat_query(request)
    context: dict[str, Any] = {
        "asked": asked,
        "category": asked.get("category", ""),
        "sectors": reference.list_sectors(session, principal=viewer.principal),
        "categories": _categories(session, lang),
        "downloads": urlencode({**asked, "category": asked.get("category", "")}),
        "report": None,
        "rows": [],
        "chart": None,
        "problem": None,
    }
    try:
        report = _threat_report(request, viewer, session, settings)
    except Unprocessable:
        context["problem"] = gettext(request, FILTERS_UNREAD)
        return render(request, "threats.html", context, status=422)
    rows = [
        (_group_label(g.label, g.key, g.label_en, report.group_by, lang), g) for g in report.groups
    ]
    bars = [
        charts.Bar(label=label, value=group.observations, text=_count(group.observations, lang))
        for label, group in rows
    ]
    title = gettext(request, CHART_TITLES[report.group_by])
    context.update(report=report, rows=rows, chart=charts.bar_chart(bars, title=title))
    return render(request, "threats.html", context)


@router.get("/threats/export.csv", response_class=StreamingResponse)
def threats_csv(
    request: Request, viewer: LeadViewer, session: SessionDep, settings: SettingsDep
) -> StreamingResponse:
    """The threat report as a spreadsheet: a row per group, then the totals (the API's CSV)."""
    report = _threat_report(request, viewer, session, settings)
    rows = patrol_reports.threat_csv(report, zone=settings.zone)
    return _download(attachment(rows, "threats-report.csv"))


__all__ = ["router"]
