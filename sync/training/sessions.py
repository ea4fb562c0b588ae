"""Training sessions and attendance as coordinators read them: lists with their
counts, one person's training history, and the same as CSV files.

Scope: extension workers see the sessions of their communities (and the attendance
at them); coordinators and admins see all. A person out of scope reads as absent.

Counting, here and in the report (``sync/attendance_report.py``):

- a *participant* is a person with a live attendance of role ``participant``; each
  person counts once per session however many tablets recorded them (the server
  folds the second attendance into the first on push);
- a person merged into another (``merged_into``) counts as that one: a merge always
  names a person who is not merged themselves, so one step reaches the kept record;
- women and men by the (kept) person's ``sex``; ``other`` and ``unknown`` count as
  participants but in neither;
- a session with a ``headcount`` (school sessions, where nobody is named) is counted
  by its headcount: its attendees, women and men are the headcount's.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, func, select

from schemas import Attendance, Community, Person, TrainingSession, User
from schemas.queries import Paging
from schemas.records import AttendanceRole, Sex
from schemas.trainings import (
    AttendancePage,
    AttendanceQuery,
    AttendanceRead,
    AttendeeBrief,
    Facilitator,
    HeadcountRead,
    PersonAttendanceQuery,
    SessionBrief,
    SessionFilters,
    SessionPage,
    SessionQuery,
    SessionRead,
)
from sync.accounts.principal import Principal
from sync.accounts.scope import check_places, in_communities
from sync.people import visible_person
from sync.platform.csv_files import csv_text, paged
from sync.platform.database import transaction
from sync.platform.errors import NotFound
from sync.platform.period import period

CHUNK = 500
"""Rows read at a time for a CSV file."""

Kept = aliased(Person, name="kept")
"""The person a merged person was folded into."""


# ---------------------------------------------------------------- scope and filters


def session_conditions(
    principal: Principal, filters: SessionFilters, zone: tzinfo
) -> list[ColumnElement[bool]]:
    """Live sessions in scope matching ``filters`` (program, place, period)."""
    where: list[ColumnElement[bool]] = [col(TrainingSession.deleted_at).is_(None)]
    where += in_communities(
        principal,
        TrainingSession.community_id,
        community_id=filters.community_id,
        sector_id=filters.sector_id,
    )
    if filters.program is not None:
        where.append(col(TrainingSession.program) == filters.program)
    span = period(filters.from_, filters.to, zone=zone)
    if span.start is not None:
        where.append(col(TrainingSession.starts_at) >= span.start)
    if span.end is not None:
        where.append(col(TrainingSession.starts_at) < span.end)
    return where


def check_filters(
    session: Session, principal: Principal, filters: SessionFilters, zone: tzinfo
) -> None:
    """Before anything is read or streamed: a period that runs backwards is a 422, and
    a community, sector, session or person the caller cannot see is a 404."""
    period(filters.from_, filters.to, zone=zone)
    check_places(session, principal, community_id=filters.community_id, sector_id=filters.sector_id)
    session_id = getattr(filters, "session_id", None)
    if session_id is not None:
        record = session.get(TrainingSession, session_id)
        scope = principal.sees_everything or (
            record is not None and record.community_id in principal.community_ids
        )
        if record is None or record.deleted_at is not None or not scope:
            raise NotFound("no such training session")
    person_id = getattr(filters, "person_id", None)
    if person_id is not None:
        visible_person(session, principal, person_id)


def kept_person_id() -> ColumnElement[uuid.UUID]:
    """The id a person counts as: the one they were merged into, or their own."""
    return func.coalesce(col(Kept.id), col(Person.id))


def kept_sex() -> ColumnElement[str]:
    return func.coalesce(col(Kept.sex), col(Person.sex))


def _with_people(query: Any) -> Any:
    """``query`` over attendance, joined to its person and the person they were merged into."""
    return query.join(Person, col(Person.id) == col(Attendance.person_id)).outerjoin(
        Kept, col(Kept.id) == col(Person.merged_into)
    )


# ---------------------------------------------------------------- sessions


@dataclass
class Counts:
    attendees: int = 0
    women: int = 0
    men: int = 0


def participant_counts(
    session: Session, session_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Counts]:
    """Each session's participants, women and men, each (kept) person once."""
    counts: dict[uuid.UUID, Counts] = {}
    if not session_ids:
        return counts
    people = _with_people(
        select(col(Attendance.session_id), kept_person_id(), kept_sex())
        .select_from(Attendance)
        .distinct()
    ).where(
        col(Attendance.session_id).in_(list(session_ids)),
        col(Attendance.deleted_at).is_(None),
        col(Attendance.role) == AttendanceRole.participant,
    )
    for session_id, _person, sex in session.execute(people):
        found = counts.setdefault(session_id, Counts())
        found.attendees += 1
        found.women += sex == Sex.female
        found.men += sex == Sex.male
    return counts


def _facilitators(
    session: Session, sessions: Sequence[TrainingSession]
) -> dict[uuid.UUID, list[Facilitator]]:
    """Who led each session: the session's facilitators, and people recorded as such."""
    user_ids = {
        uuid.UUID(str(member["user_id"]))
        for record in sessions
        for member in record.facilitators or []
        if member.get("user_id")
    }
    names = (
        dict(
            session.execute(select(User.id, User.full_name).where(col(User.id).in_(user_ids))).all()
        )
        if user_ids
        else {}
    )
    found: dict[uuid.UUID, list[Facilitator]] = defaultdict(list)
    for record in sessions:
        for member in record.facilitators or []:
            user_id = uuid.UUID(str(member["user_id"])) if member.get("user_id") else None
            found[record.id].append(
                Facilitator(
                    user_id=user_id,
                    name=member.get("name") or (names.get(user_id) if user_id else None),
                    role=member.get("role"),
                )
            )
    ids = [record.id for record in sessions]
    if ids:
        recorded = session.execute(
            select(Attendance.session_id, Person.id, Person.given_names, Person.paternal_surname)
            .join(Person, col(Person.id) == col(Attendance.person_id))
            .where(
                col(Attendance.session_id).in_(ids),
                col(Attendance.deleted_at).is_(None),
                col(Attendance.role) == AttendanceRole.facilitator,
            )
            .order_by(col(Person.paternal_surname), col(Person.given_names))
        )
        for session_id, person_id, given, surname in recorded:
            found[session_id].append(
                Facilitator(person_id=person_id, name=f"{given} {surname}", role="facilitator")
            )
    return found


def _places(
    session: Session, community_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, tuple[str, uuid.UUID]]:
    ids = set(community_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(Community.id, Community.name, Community.sector_id).where(col(Community.id).in_(ids))
    )
    return {community_id: (name, sector_id) for community_id, name, sector_id in rows}


def session_reads(session: Session, sessions: Sequence[TrainingSession]) -> list[SessionRead]:
    """Sessions with their counts, places and facilitators: a few queries, not per session."""
    counts = participant_counts(session, [record.id for record in sessions])
    facilitators = _facilitators(session, sessions)
    places = _places(session, (record.community_id for record in sessions))
    reads = []
    for record in sessions:
        headcount = HeadcountRead.model_validate(record.headcount) if record.headcount else None
        if headcount is not None:
            figures = Counts(headcount.female + headcount.male, headcount.female, headcount.male)
        else:
            figures = counts.get(record.id, Counts())
        place = places.get(record.community_id)
        reads.append(
            SessionRead(
                id=record.id,
                version=record.version,
                program=record.program,
                topic=record.topic,
                community_id=record.community_id,
                community_name=place[0] if place else None,
                sector_id=place[1] if place else None,
                venue=record.venue,
                starts_at=record.starts_at,
                ends_at=record.ends_at,
                status=record.status,
                headcount=headcount,
                counted_by="headcount" if headcount is not None else "attendance",
                attendees=figures.attendees,
                women=figures.women,
                men=figures.men,
                facilitators=facilitators.get(record.id, []),
                created_at=record.created_at,
                updated_at=record.updated_at,
            )
        )
    return reads


def _sessions_query(principal: Principal, query: SessionQuery, zone: tzinfo) -> Any:
    where = session_conditions(principal, query, zone)
    if query.status is not None:
        where.append(col(TrainingSession.status) == query.status)
    return select(TrainingSession).where(*where)


SESSION_ORDER = (col(TrainingSession.starts_at).desc(), col(TrainingSession.id))


def list_sessions(
    session: Session, *, principal: Principal, query: SessionQuery, zone: tzinfo
) -> SessionPage:
    """Sessions matching the filters, newest first, with their counts and a total."""
    check_filters(session, principal, query, zone)
    matching = _sessions_query(principal, query, zone)
    total = session.scalar(select(func.count()).select_from(matching.subquery())) or 0
    found = list(
        session.scalars(matching.order_by(*SESSION_ORDER).offset(query.offset).limit(query.limit))
    )
    return SessionPage(
        items=session_reads(session, found), total=total, limit=query.limit, offset=query.offset
    )


SESSION_COLUMNS = (
    "session_id", "program", "topic", "community", "sector_id", "venue", "starts_at",
    "ends_at", "status", "counted_by", "attendees", "women", "men", "facilitators",
)  # fmt: skip


def sessions_csv(
    engine: Engine, *, principal: Principal, query: SessionQuery, zone: tzinfo
) -> Iterator[str]:
    """The sessions of ``list_sessions`` as CSV, ``CHUNK`` at a time, from its own session."""

    def rows(db: Session) -> Iterator[list[Any]]:
        matching = paged(_sessions_query(principal, query, zone).order_by(*SESSION_ORDER), query)
        result = db.scalars(matching.execution_options(yield_per=CHUNK))
        for chunk in result.partitions(CHUNK):
            for read in session_reads(db, chunk):
                yield [
                    read.id, read.program, read.topic, read.community_name, read.sector_id,
                    read.venue, read.starts_at, read.ends_at, read.status, read.counted_by,
                    read.attendees, read.women, read.men,
                    "; ".join(f.name or str(f.user_id or f.person_id) for f in read.facilitators),
                ]  # fmt: skip
            db.expunge_all()

    with transaction(engine, write=False) as db:
        yield from csv_text(SESSION_COLUMNS, rows(db), zone=zone)


# ---------------------------------------------------------------- attendance


def _attendance_query(principal: Principal, filters: SessionFilters, zone: tzinfo) -> Any:
    return (
        select(Attendance, TrainingSession, Person)
        .join(TrainingSession, col(TrainingSession.id) == col(Attendance.session_id))
        .join(Person, col(Person.id) == col(Attendance.person_id))
        .where(col(Attendance.deleted_at).is_(None), *session_conditions(principal, filters, zone))
    )


def _attendance_conditions(query: AttendanceQuery) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if query.session_id is not None:
        where.append(col(Attendance.session_id) == query.session_id)
    if query.person_id is not None:
        where.append(
            sa.or_(
                col(Attendance.person_id) == query.person_id,
                col(Person.merged_into) == query.person_id,
            )
        )
    if query.sex is not None:
        where.append(col(Person.sex) == query.sex)
    return where


ATTENDANCE_ORDER = (
    col(TrainingSession.starts_at).desc(),
    col(TrainingSession.id),
    col(Person.paternal_surname),
    col(Person.given_names),
    col(Attendance.id),
)


def attendance_read(
    attendance: Attendance, record: TrainingSession, person: Person
) -> AttendanceRead:
    return AttendanceRead(
        id=attendance.id,
        version=attendance.version,
        role=attendance.role,
        session=SessionBrief.model_validate(record, from_attributes=True),
        person=AttendeeBrief.model_validate(person, from_attributes=True),
        recorded_at=attendance.recorded_at,
        created_at=attendance.created_at,
        created_by=attendance.created_by,
        device_id=attendance.device_id,
    )


def _page(session: Session, matching: Any, order: Sequence[Any], paging: Paging) -> AttendancePage:
    total = session.scalar(select(func.count()).select_from(matching.subquery())) or 0
    rows = session.execute(matching.order_by(*order).offset(paging.offset).limit(paging.limit))
    return AttendancePage(
        items=[attendance_read(*row) for row in rows],
        total=total,
        limit=paging.limit,
        offset=paging.offset,
    )


def list_attendance(
    session: Session, *, principal: Principal, query: AttendanceQuery, zone: tzinfo
) -> AttendancePage:
    """Attendance matching the filters, newest sessions first, each row with its session
    and person (no document number nor phone), and the total."""
    check_filters(session, principal, query, zone)
    matching = _attendance_query(principal, query, zone).where(*_attendance_conditions(query))
    return _page(session, matching, ATTENDANCE_ORDER, query)


ATTENDANCE_COLUMNS = (
    "attendance_id", "role", "session_id", "program", "topic", "community_id", "starts_at",
    "session_status", "person_id", "given_names", "paternal_surname", "maternal_surname",
    "sex", "birth_year", "person_community_id", "merged_into", "recorded_at", "device_id",
)  # fmt: skip


def _attendance_csv(engine: Engine, matching: Any, zone: tzinfo) -> Iterator[str]:
    def rows(db: Session) -> Iterator[list[Any]]:
        for attendance, record, person in db.execute(matching.execution_options(yield_per=CHUNK)):
            yield [
                attendance.id, attendance.role, record.id, record.program, record.topic,
                record.community_id, record.starts_at, record.status, person.id,
                person.given_names, person.paternal_surname, person.maternal_surname,
                person.sex, person.birth_year, person.community_id, person.merged_into,
                attendance.recorded_at, attendance.device_id,
            ]  # fmt: skip

    with transaction(engine, write=False) as db:
        yield from csv_text(ATTENDANCE_COLUMNS, rows(db), zone=zone)


def attendance_csv(
    engine: Engine, *, principal: Principal, query: AttendanceQuery, zone: tzinfo
) -> Iterator[str]:
    matching = _attendance_query(principal, query, zone).where(*_attendance_conditions(query))
    return _attendance_csv(engine, paged(matching.order_by(*ATTENDANCE_ORDER), query), zone)


# ---------------------------------------------------------------- one person


HISTORY_ORDER = (
    col(TrainingSession.starts_at),
    col(TrainingSession.id),
    col(Attendance.id),
)


def _history(principal: Principal, person: Person, zone: tzinfo) -> Any:
    """The person's attendance, and that of the records merged into them, in scope."""
    return _attendance_query(principal, SessionFilters(), zone).where(
        sa.or_(col(Attendance.person_id) == person.id, col(Person.merged_into) == person.id)
    )


def person_attendance(
    session: Session,
    *,
    principal: Principal,
    person_id: uuid.UUID,
    query: PersonAttendanceQuery,
    zone: tzinfo,
) -> AttendancePage:
    """One person's training history, oldest session first."""
    person = visible_person(session, principal, person_id)
    return _page(session, _history(principal, person, zone), HISTORY_ORDER, query)


def person_attendance_csv(
    engine: Engine, person: Person, *, principal: Principal, query: PersonAttendanceQuery,
    zone: tzinfo,
) -> Iterator[str]:  # fmt: skip
    matching = paged(_history(principal, person, zone).order_by(*HISTORY_ORDER), query)
    return _attendance_csv(engine, matching, zone)
