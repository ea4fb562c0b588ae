"""Sync conflicts, as the coordinator settles them: the queue, one conflict with both
sides field by field, and its resolution — keep the server's, take the tablet's, or
edit the fields — through a confirmation page, posted with the form's token, made by
the API's service (``sync.engine.conflicts.resolve``) into a new version devices pull.

A conflict over a person's document or phone, or a home's location, shows personal
data: each page showing it is written in the personal-data log first.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.datastructures import FormData

from api.console.asked import asked
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
from api.deps import EngineDep, SessionDep
from schemas.sync import (
    ConflictField,
    ConflictQuery,
    ConflictRead,
    ConflictStatus,
    Resolution,
    ResolveRequest,
)
from sync.catalog import CATALOG
from sync.engine import conflicts
from sync.people import agreements, privacy
from sync.people import registry as people
from sync.platform.errors import NotFound, Unprocessable

router = console_router()

SIDES = ("server", "device", "edit")
"""What a field of an edit takes: the server's value, the tablet's, or what was typed."""


# ---------------------------------------------------------------- values in forms


def as_text(value: Any) -> str:
    """A field's value as it is shown and typed: text as it is, anything else as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def typed(text: str, sides: ConflictField) -> Any:
    """What a person typed for a field, as the field holds it: text where either side
    is text, otherwise JSON (a number, a list), otherwise the text itself for the
    service to refuse; nothing typed is no value."""
    text = text.strip()
    if not text:
        return None
    if isinstance(sides.server, str) or isinstance(sides.device, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def edited(conflict: ConflictRead, form: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of an edit, from the form: each the server's, the tablet's, or typed."""
    fields: dict[str, Any] = {}
    for name, sides in conflict.fields.items():
        side = str(form.get(f"side.{name}", "server"))
        if side == "device":
            fields[name] = sides.device
        elif side == "edit":
            fields[name] = typed(str(form.get(f"value.{name}", "")), sides)
        else:
            fields[name] = sides.server
    return fields


def resolution_asked(conflict: ConflictRead, form: Mapping[str, Any]) -> ResolveRequest:
    """The resolution a form asks for, as the API's request."""
    try:
        resolution = Resolution(str(form.get("resolution", "")))
    except ValueError:
        raise Unprocessable("no such resolution", code="validation_failed") from None
    fields = edited(conflict, form) if resolution is Resolution.custom else {}
    return ResolveRequest(resolution=resolution, fields=fields)


def outcome(conflict: ConflictRead, request: ResolveRequest) -> dict[str, Any]:
    """Each field as the resolution leaves it, for the confirmation page."""
    if request.resolution is Resolution.keep_server:
        return {name: sides.server for name, sides in conflict.fields.items()}
    if request.resolution is Resolution.take_device:
        return {name: sides.device for name, sides in conflict.fields.items()}
    return dict(request.fields)


async def posted_form(request: Request) -> FormData:
    """The form posted (read once, then kept by the request)."""
    return await request.form()


PostedForm = Annotated[FormData, Depends(posted_form)]


# ---------------------------------------------------------------- pages


def _log_personal_data(
    request: Request, engine: Engine, viewer: Viewer, conflict: ConflictRead
) -> None:
    """A conflict over personal data shows it: logged first, as the API logs its lists."""
    personal = privacy.PERSONAL_FIELDS.get(conflict.entity, frozenset())
    if personal & set(conflict.fields) and privacy.shows_personal_data(
        viewer.principal, asked=True
    ):
        privacy.log_access(
            engine,
            principal=viewer.principal,
            path=request.url.path,
            format="html",
            filters={"conflict_id": conflict.id},
        )


def _record(
    request: Request, session: Session, viewer: Viewer, conflict: ConflictRead
) -> dict[str, str | None]:
    """Which record the conflict is over, by its name or code, and its page if the
    console has one; nothing for a record the server holds none of yet."""
    principal, record_id = viewer.principal, conflict.record_id
    try:
        if conflict.entity == "person":
            found = people.person_detail(
                session, principal=principal, person_id=record_id, shown=False
            ).person
            names = (found.given_names, found.paternal_surname, found.maternal_surname)
            return {"name": " ".join(n for n in names if n), "href": None}
        if conflict.entity == "household":
            household = people.household_detail(
                session, principal=principal, household_id=record_id, shown=False
            ).household
            return {"name": household.code, "href": None}
        if conflict.entity == "agreement":
            today = agreements.today(request.app.state.settings.zone)
            agreement = agreements.agreement_detail(
                session, principal=principal, agreement_id=record_id, today=today
            )
            return {"name": agreement.code, "href": None}
    except NotFound:
        return {"name": None, "href": None}
    pages = {"training_session": f"{PREFIX}/sessions/", "patrol": f"{PREFIX}/patrols/"}
    href = pages.get(conflict.entity)
    return {"name": None, "href": f"{href}{record_id}" if href else None}


def _conflict_page(
    request: Request,
    session: Session,
    engine: Engine,
    viewer: Viewer,
    conflict_id: uuid.UUID,
    *,
    problems: list[tuple[str, str]] | None = None,
    status: int = 200,
) -> HTMLResponse:
    conflict = conflicts.get(session, principal=viewer.principal, conflict_id=conflict_id)
    _log_personal_data(request, engine, viewer, conflict)
    context = {
        "conflict": conflict,
        "record": _record(request, session, viewer, conflict),
        "word": words(language(request)),
        "as_text": as_text,
        "problems": problems or [],
        "refused": problems is not None,
    }
    return render(request, "conflicts/detail.html", context, status=status)


@router.get("/conflicts", response_class=HTMLResponse)
def conflict_list(request: Request, viewer: CoordinatorViewer, session: SessionDep) -> HTMLResponse:
    """Conflicts, oldest first (open ones unless asked), with whose change and which
    tablet sent it."""
    query = asked(request, ConflictQuery)
    page = conflicts.list_conflicts(session, principal=viewer.principal, query=query)
    context = {"page": page, "word": words(language(request)), "statuses": list(ConflictStatus)}
    return render(request, "conflicts/list.html", context)


@router.get("/conflicts/{conflict_id}", response_class=HTMLResponse)
def conflict_detail(
    request: Request,
    conflict_id: uuid.UUID,
    viewer: CoordinatorViewer,
    session: SessionDep,
    engine: EngineDep,
) -> HTMLResponse:
    """One conflict: both sides field by field, who and which tablet, and the three
    ways to settle it."""
    return _conflict_page(request, session, engine, viewer, conflict_id)


@router.post(
    "/conflicts/{conflict_id}/confirm", response_class=HTMLResponse, dependencies=[CheckedForm]
)
def confirm(
    request: Request,
    conflict_id: uuid.UUID,
    viewer: CoordinatorViewer,
    session: SessionDep,
    engine: EngineDep,
    form: PostedForm,
) -> HTMLResponse:
    """What the resolution chosen would make of each field, to confirm; nothing is
    changed yet."""
    # Posted, so the request holds a writer's transaction; this page writes nothing, and
    # the personal-data log takes its own, which SQLite (one writer) would make wait.
    session.rollback()
    conflict = conflicts.get(session, principal=viewer.principal, conflict_id=conflict_id)
    asked_for = resolution_asked(conflict, form)
    _log_personal_data(request, engine, viewer, conflict)
    context = {
        "conflict": conflict,
        "resolution": asked_for,
        "after": outcome(conflict, asked_for),
        "form": form,
        "sides": SIDES,
        "word": words(language(request)),
        "as_text": as_text,
    }
    return render(request, "conflicts/confirm.html", context)


@router.post("/conflicts/{conflict_id}/resolve", dependencies=[CheckedForm])
def resolve(
    request: Request,
    conflict_id: uuid.UUID,
    viewer: CoordinatorViewer,
    session: SessionDep,
    engine: EngineDep,
    form: PostedForm,
) -> Response:
    """Settle the conflict as confirmed: a new version of the record, which tablets
    receive on their next sync."""
    conflict = conflicts.get(session, principal=viewer.principal, conflict_id=conflict_id)
    try:
        conflicts.resolve(
            session,
            catalog=CATALOG,
            principal=viewer.principal,
            conflict_id=conflict_id,
            request=resolution_asked(conflict, form),
        )
    except Unprocessable as refused:
        session.rollback()  # the service may have touched the record before refusing
        problems = [(_field(problem.field), problem.code) for problem in refused.errors or []]
        return _conflict_page(
            request, session, engine, viewer, conflict_id, problems=problems, status=422
        )
    return redirect(f"{PREFIX}/conflicts/{conflict_id}?done=resolved")


def _field(name: str) -> str:
    """``fields.status`` → ``status``: a problem's field as the record names it."""
    return name.removeprefix("fields.")
