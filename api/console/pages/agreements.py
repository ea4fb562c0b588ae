"""Families' conservation agreements, as the coordinator reads them: the list with the
API's filters (status as it reads today, search by signatory or code ignoring accents,
renewals due), and the same list as the API's CSV file. A signatory is shown by name,
never with a document number nor a phone, as in the API."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, StreamingResponse

from api.console.asked import asked, download, places
from api.console.programme_words import words
from api.console.web import CoordinatorViewer, console_router, language, render
from api.deps import EngineDep, SessionDep, SettingsDep
from schemas.agreements import AgreementQuery
from schemas.records import AgreementStatus
from sync.accounts import scope
from sync.people import agreements

router = console_router()

RENEWAL_WINDOWS = (30, 60, 90)
"""The choices of "renewal due within" the page offers (the API takes 1 to 366 days)."""


@router.get("/agreements", response_class=HTMLResponse)
def agreement_list(
    request: Request, viewer: CoordinatorViewer, session: SessionDep, settings: SettingsDep
) -> HTMLResponse:
    """Agreements, newest signed first, or the renewals due, soonest first."""
    query = asked(request, AgreementQuery, format="json")
    today = agreements.today(settings.zone)
    page = agreements.list_agreements(session, principal=viewer.principal, query=query, today=today)
    context = {
        "page": page,
        "today": today,
        "word": words(language(request)),
        "statuses": list(AgreementStatus),
        "windows": RENEWAL_WINDOWS,
        **places(session, viewer),
    }
    return render(request, "programme/agreements.html", context)


@router.get("/agreements.csv", response_class=StreamingResponse)
def agreements_csv(
    request: Request,
    viewer: CoordinatorViewer,
    session: SessionDep,
    engine: EngineDep,
    settings: SettingsDep,
) -> StreamingResponse:
    """The agreements for the filters asked: the API's CSV file."""
    query = asked(request, AgreementQuery, format="csv")
    scope.check_places(  # before streaming: an error page cannot follow a file
        session, viewer.principal, community_id=query.community_id, sector_id=query.sector_id
    )
    pieces = agreements.agreements_csv(
        engine,
        principal=viewer.principal,
        query=query,
        today=agreements.today(settings.zone),
        zone=settings.zone,
    )
    return download(pieces, "agreements.csv")
