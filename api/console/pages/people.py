"""People, as the coordinator looks for them: search by name ignoring accents and case,
likely duplicates side by side, and a merge through a confirmation page.

Personal data (document numbers, phones) is shown as the API shows it
(``sync.people.privacy``): to admins and coordinators, only when asked, and every
page or file carrying it is first written in the personal-data log, as the API's
lists and exports are.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from sqlalchemy.engine import Engine

from api.console.asked import asked, download, flag, places
from api.console.programme_words import words
from api.console.web import (
    PREFIX,
    CheckedForm,
    CoordinatorViewer,
    Viewer,
    console_router,
    language,
    redirect,
    render,
)
from api.deps import EngineDep, SessionDep, SettingsDep
from schemas.records import Sex
from schemas.registry import DuplicateQuery, MergeRequest, PeopleQuery
from sync.accounts import scope
from sync.catalog import CATALOG
from sync.people import duplicates, privacy
from sync.people import registry as people

router = console_router()


def _shown(
    request: Request,
    engine: Engine,
    viewer: Viewer,
    *,
    asked_for: bool,
    format: str,
    **filters: Any,
) -> bool:
    """Whether the page carries personal data; if it does, that is logged first."""
    shown = privacy.shows_personal_data(viewer.principal, asked=asked_for)
    if shown:
        privacy.log_access(
            engine,
            principal=viewer.principal,
            path=request.url.path,
            format=format,
            filters=filters,
        )
    return shown


def _people_query(request: Request, format: str) -> PeopleQuery:
    """The API's question; personal data only when the box is ticked (the API's
    default is to show it: the console asks for it)."""
    return asked(request, PeopleQuery, pii=flag(request, "pii"), format=format)


def _logged_filters(query: PeopleQuery) -> dict[str, Any]:
    filters: dict[str, Any] = query.model_dump(exclude={"pii", "format"}, exclude_defaults=True)
    return filters


@router.get("/people", response_class=HTMLResponse)
def people_list(
    request: Request,
    viewer: CoordinatorViewer,
    session: SessionDep,
    engine: EngineDep,
) -> HTMLResponse:
    """People by name; the search ignores accents and case, every word must match."""
    query = _people_query(request, "json")
    scope.check_places(
        session, viewer.principal, community_id=query.community_id, sector_id=query.sector_id
    )
    shown = _shown(
        request,
        engine,
        viewer,
        asked_for=query.pii,
        format="html",
        **_logged_filters(query),
    )
    page = people.list_people(session, principal=viewer.principal, query=query, shown=shown)
    context = {
        "page": page,
        "shown": shown,
        "word": words(language(request)),
        "sexes": list(Sex),
        **places(session, viewer),
    }
    return render(request, "people/list.html", context)


@router.get("/people.csv", response_class=StreamingResponse)
def people_csv(
    request: Request,
    viewer: CoordinatorViewer,
    session: SessionDep,
    engine: EngineDep,
    settings: SettingsDep,
) -> StreamingResponse:
    """The people for the search asked: the API's CSV file (with personal data only
    when asked, and then logged)."""
    query = _people_query(request, "csv")
    scope.check_places(
        session, viewer.principal, community_id=query.community_id, sector_id=query.sector_id
    )
    shown = _shown(
        request, engine, viewer, asked_for=query.pii, format="csv", **_logged_filters(query)
    )
    pieces = people.people_csv(
        engine, principal=viewer.principal, query=query, shown=shown, zone=settings.zone
    )
    return download(pieces, "people.csv")


@router.get("/people/duplicates", response_class=HTMLResponse)
def duplicate_list(
    request: Request, viewer: CoordinatorViewer, session: SessionDep
) -> HTMLResponse:
    """Likely duplicate people, each pair side by side with why it looks like one."""
    query = asked(request, DuplicateQuery)
    page = duplicates.find_duplicates(session, principal=viewer.principal, query=query)
    found = places(session, viewer)
    names = {community.id: community.name for community in found["communities"]}
    context = {"page": page, "names": names, "word": words(language(request)), **found}
    return render(request, "people/duplicates.html", context)


@router.get("/people/merge", response_class=HTMLResponse)
def merge_form(
    request: Request,
    viewer: CoordinatorViewer,
    session: SessionDep,
    engine: EngineDep,
    keep_id: uuid.UUID,
    merge_id: uuid.UUID,
) -> HTMLResponse:
    """The merge to confirm: both people whole, the one kept and the one folded in."""
    shown = _shown(
        request,
        engine,
        viewer,
        asked_for=True,
        format="html",
        keep_id=keep_id,
        merge_id=merge_id,
    )
    kept, merged = (
        people.person_detail(session, principal=viewer.principal, person_id=pid, shown=shown)
        for pid in (keep_id, merge_id)
    )
    context = {"kept": kept, "merged": merged, "word": words(language(request))}
    return render(request, "people/merge.html", context)


@router.post("/people/merge", dependencies=[CheckedForm])
def merge(
    viewer: CoordinatorViewer,
    session: SessionDep,
    keep_id: Annotated[uuid.UUID, Form()],
    merge_id: Annotated[uuid.UUID, Form()],
) -> Response:
    """Fold one person into the other, as the API's merge does; then back to the list."""
    request = MergeRequest(keep_id=keep_id, merge_id=merge_id)
    duplicates.merge(session, catalog=CATALOG, principal=viewer.principal, request=request)
    return redirect(f"{PREFIX}/people/duplicates?done=merged")
