"""Training sessions and their attendance, as the coordinator reads them: the list with
the API's filters, one session with the people recorded at it, and both lists as the
API's CSV files. Attendance carries names, never a document number nor a phone
(``schemas.trainings.AttendeeBrief``), as in the API."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from api.console.asked import asked, download, places
from api.console.i18n import N_
from api.console.programme_words import words
from api.console.web import (
    PREFIX,
    CheckedForm,
    CoordinatorViewer,
    Viewer,
    console_router,
    gettext,
    language,
    redirect,
    render,
)
from api.deps import EngineDep, SessionDep, SettingsDep
from schemas import TrainingSession
from schemas.records import Program, SessionStatus
from schemas.trainings import AttendanceQuery, SessionQuery
from sync.catalog import CATALOG
from sync.engine import moves
from sync.platform.errors import NotFound, Unprocessable
from sync.reference import service as reference
from sync.training import sessions as trainings

router = console_router()

MOVED = N_(
    "Session moved, with its attendance. The tablets of the old community delete it at "
    "their next sync; those of the new community receive it."
)
CANNOT_MOVE = N_("The session cannot move to that community.")


@router.get("/sessions", response_class=HTMLResponse)
def session_list(
    request: Request, viewer: CoordinatorViewer, session: SessionDep, settings: SettingsDep
) -> HTMLResponse:
    """Training sessions, newest first, with their attendees, women and men."""
    query = asked(request, SessionQuery, format="json")
    page = trainings.list_sessions(
        session, principal=viewer.principal, query=query, zone=settings.zone
    )
    context = {
        "page": page,
        "word": words(language(request)),
        "programs": list(Program),
        "statuses": list(SessionStatus),
        **places(session, viewer),
    }
    return render(request, "programme/sessions.html", context)


@router.get("/sessions/{session_id}", response_class=HTMLResponse)
def session_detail(
    request: Request,
    session_id: uuid.UUID,
    viewer: CoordinatorViewer,
    session: SessionDep,
    settings: SettingsDep,
) -> HTMLResponse:
    """One training session: when, where, who led it, and who attended; and the form
    that files it under another community."""
    return _session_page(request, session_id, viewer, session, settings)


def _session_page(
    request: Request,
    session_id: uuid.UUID,
    viewer: Viewer,
    session: SessionDep,
    settings: SettingsDep,
    *,
    refused: bool = False,
) -> HTMLResponse:
    query = asked(request, AttendanceQuery, session_id=session_id, format="json")
    attendance = trainings.list_attendance(  # a session out of reach is the 404 page first
        session, principal=viewer.principal, query=query, zone=settings.zone
    )
    record = session.get(TrainingSession, session_id)
    if record is None:
        raise NotFound("no such training session")
    (training,) = trainings.session_reads(session, [record])
    done = request.query_params.get("done")
    context = {
        "training": training,
        "page": attendance,
        "word": words(language(request)),
        "notice": gettext(request, MOVED) if done == "moved" else None,
        "problem": gettext(request, CANNOT_MOVE) if refused else None,
        "move_to": [
            c
            for c in reference.list_communities(session, principal=viewer.principal)
            if c.id != record.community_id
        ],
    }
    return render(request, "programme/session.html", context, status=422 if refused else 200)


@router.post("/sessions/{session_id}/move", response_class=HTMLResponse, dependencies=[CheckedForm])
def move_session(
    request: Request,
    session_id: uuid.UUID,
    viewer: CoordinatorViewer,
    session: SessionDep,
    settings: SettingsDep,
    community_id: Annotated[uuid.UUID, Form()],
) -> Response:
    """File a session under another community, with its attendance."""
    try:
        moves.move(
            session,
            catalog=CATALOG,
            principal=viewer.principal,
            entity="training_session",
            record_id=session_id,
            to=community_id,
        )
    except Unprocessable:
        return _session_page(request, session_id, viewer, session, settings, refused=True)
    return redirect(f"{PREFIX}/sessions/{session_id}?done=moved")


@router.get("/sessions.csv", response_class=StreamingResponse)
def sessions_csv(
    request: Request,
    viewer: CoordinatorViewer,
    session: SessionDep,
    engine: EngineDep,
    settings: SettingsDep,
) -> StreamingResponse:
    """The sessions for the filters asked: the API's CSV file."""
    query = asked(request, SessionQuery, format="csv")
    trainings.check_filters(session, viewer.principal, query, settings.zone)  # before streaming
    pieces = trainings.sessions_csv(
        engine, principal=viewer.principal, query=query, zone=settings.zone
    )
    return download(pieces, "training-sessions.csv")


@router.get("/attendance.csv", response_class=StreamingResponse)
def attendance_csv(
    request: Request,
    viewer: CoordinatorViewer,
    session: SessionDep,
    engine: EngineDep,
    settings: SettingsDep,
) -> StreamingResponse:
    """Attendance for the filters asked (one session's, or every session's): the API's
    CSV file."""
    query = asked(request, AttendanceQuery, format="csv")
    trainings.check_filters(session, viewer.principal, query, settings.zone)
    pieces = trainings.attendance_csv(
        engine, principal=viewer.principal, query=query, zone=settings.zone
    )
    return download(pieces, "attendance.csv")
