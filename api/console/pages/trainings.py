"""Training sessions and their attendance, as the coordinator reads them: the list with
the API's filters, one session with the people recorded at it, and both lists as the
API's CSV files. Attendance carries names, never a document number nor a phone
(``schemas.trainings.AttendeeBrief``), as in the API."""

from __future__ import annotations

import uuid

from fastapi import Request
from fastapi.responses import HTMLResponse, StreamingResponse

from api.console.asked import asked, download, places
from api.console.programme_words import words
from api.console.web import CoordinatorViewer, console_router, language, render
from api.deps import EngineDep, SessionDep, SettingsDep
from schemas import TrainingSession
from schemas.records import Program, SessionStatus
from schemas.trainings import AttendanceQuery, SessionQuery
from sync.platform.errors import NotFound
from sync.training import sessions as trainings

router = console_router()


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
    """One training session: when, where, who led it, and who attended."""
    query = asked(request, AttendanceQuery, session_id=session_id, format="json")
    attendance = trainings.list_attendance(  # a session out of reach is the 404 page first
        session, principal=viewer.principal, query=query, zone=settings.zone
    )
    record = session.get(TrainingSession, session_id)
    if record is None:
        raise NotFound("no such training session")
    (training,) = trainings.session_reads(session, [record])
    context = {"training": training, "page": attendance, "word": words(language(request))}
    return render(request, "programme/session.html", context)


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
