"""Training sessions and attendance, as coordinators and extension workers read them.

Every list is JSON by default, or with ``format=csv`` a CSV file (UTF-8 with a BOM)
written as it is read: every matching row, or the page asked when ``limit`` or
``offset`` is given. Filters are checked before anything streams.
"""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.answers import attachment, json_or_csv
from api.body import JSONRoute
from api.deps import EngineDep, OfficeStaff, PeopleReader, SessionDep, SettingsDep
from schemas.moves import SessionMove, SessionMoved
from schemas.queries import Format
from schemas.trainings import (
    AttendancePage,
    AttendanceQuery,
    PersonAttendanceQuery,
    SessionPage,
    SessionQuery,
)
from sync.catalog import CATALOG
from sync.engine import moves
from sync.people import registry as people
from sync.training import sessions as trainings

router = APIRouter(route_class=JSONRoute, tags=["trainings"])


@router.get("/training-sessions", response_model=SessionPage, responses=json_or_csv())
def list_sessions(
    query: Annotated[SessionQuery, Query()],
    principal: PeopleReader,
    session: SessionDep,
    engine: EngineDep,
    settings: SettingsDep,
) -> Any:
    """Sessions in the caller's communities, newest first, each with its attendees,
    women and men (each person once; a school session by its headcount) and its
    facilitators; with the total."""
    if query.format is Format.csv:
        trainings.check_filters(session, principal, query, settings.zone)  # before streaming
        pieces = trainings.sessions_csv(
            engine, principal=principal, query=query, zone=settings.zone
        )
        return attachment(pieces, "training-sessions.csv")
    return trainings.list_sessions(session, principal=principal, query=query, zone=settings.zone)


@router.get("/attendance", response_model=AttendancePage, responses=json_or_csv())
def list_attendance(
    query: Annotated[AttendanceQuery, Query()],
    principal: PeopleReader,
    session: SessionDep,
    engine: EngineDep,
    settings: SettingsDep,
) -> Any:
    """Attendance at the caller's communities' sessions, each row with its session and
    its person (never a document number nor a phone); ``person_id`` includes the
    records merged into that person; with the total."""
    if query.format is Format.csv:
        trainings.check_filters(session, principal, query, settings.zone)
        pieces = trainings.attendance_csv(
            engine, principal=principal, query=query, zone=settings.zone
        )
        return attachment(pieces, "attendance.csv")
    return trainings.list_attendance(session, principal=principal, query=query, zone=settings.zone)


@router.get(
    "/people/{person_id}/attendance", response_model=AttendancePage, responses=json_or_csv()
)
def person_attendance(
    person_id: uuid.UUID,
    query: Annotated[PersonAttendanceQuery, Query()],
    principal: PeopleReader,
    session: SessionDep,
    engine: EngineDep,
    settings: SettingsDep,
) -> Any:
    """One person's training history, oldest first, with the sessions attended under
    records merged into them. A person out of the caller's communities is a 404."""
    if query.format is Format.csv:
        person = people.visible_person(session, principal, person_id)
        pieces = trainings.person_attendance_csv(
            engine, person, principal=principal, query=query, zone=settings.zone
        )
        return attachment(pieces, f"attendance-{person_id}.csv")
    return trainings.person_attendance(
        session, principal=principal, person_id=person_id, query=query, zone=settings.zone
    )


@router.post("/training-sessions/{session_id}/move")
def move_session(
    session_id: uuid.UUID, body: SessionMove, principal: OfficeStaff, session: SessionDep
) -> SessionMoved:
    """File a training session under another community, with its attendance: a new
    version of each. The old community's tablets pull them as deletes, the new one's as
    records; the people stay where they live. ``422 unknown_reference`` for no such
    community."""
    moved = moves.move(
        session,
        catalog=CATALOG,
        principal=principal,
        entity="training_session",
        record_id=session_id,
        to=body.community_id,
    )
    return SessionMoved(id=moved.id, version=moved.version, community_id=moved.scope)
