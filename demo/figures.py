"""The programme's figures, counted by SQL on the database the server wrote.

The rules are the attendance report's: *participants* are unique people —
a person merged into another counts as that one — with a live attendance (not
deleted, not folded into another) at a live session that is not cancelled, starts in
the period (whole days, ``FIELDSYNC_TIMEZONE``) and has no ``headcount``; women and
men by the person's ``sex``. Sessions recorded by headcount count their headcount,
apart. An agreement is *in force* when live, ``active`` and valid past today.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

from schemas import (
    Agreement,
    Attendance,
    Community,
    Conflict,
    Household,
    Observation,
    Patrol,
    Person,
    Sector,
    TrackSegment,
    TrainingSession,
)
from schemas.records import Program, SessionStatus
from sync.platform.period import period

FIELD_RECORDS: tuple[type[SQLModel], ...] = (
    Patrol,
    TrackSegment,
    Observation,
    Person,
    Household,
    Agreement,
    TrainingSession,
    Attendance,
)
PROGRAMME_YEARS = (date(2018, 1, 1), date(2020, 12, 31))


@dataclass
class Trained:
    """One programme's figures over a period."""

    sessions: int = 0  # with attendance
    attendances: int = 0
    participants: int = 0
    women: int = 0
    men: int = 0
    headcount_sessions: int = 0
    young_people: int = 0
    girls: int = 0
    boys: int = 0

    @property
    def women_share(self) -> float:
        return self.women / self.participants if self.participants else 0.0


@dataclass
class Figures:
    sectors: int = 0
    communities: int = 0
    households: int = 0
    people: int = 0
    registered_twice: int = 0  # people beyond the first with one document number
    agreements: int = 0
    agreements_in_force: int = 0
    programmes: dict[str, Trained] = field(default_factory=dict)
    folded_attendance: int = 0
    open_conflicts: int = 0
    patrols: dict[str, int] = field(default_factory=dict)
    track_segments: int = 0
    track_points: int = 0
    observations: int = 0


def holds_field_records(engine: Engine) -> bool:
    """Whether any field record (live or deleted) is in the database."""
    with engine.connect() as connection:
        return any(
            connection.execute(sa.select(sa.literal(1)).select_from(records).limit(1)).first()
            for records in (table(model) for model in FIELD_RECORDS)
        )


def table(model: type[SQLModel]) -> sa.Table:
    found: sa.Table = model.__table__  # type: ignore[attr-defined]
    return found


def count(connection: Connection, table: Any, *where: Any) -> int:
    return int(
        connection.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one()
    )


def figures(engine: Engine, *, today: date, zone: ZoneInfo) -> Figures:
    made = Figures()
    with engine.connect() as connection:
        person = table(Person)
        made.sectors = count(connection, table(Sector))
        made.communities = count(connection, table(Community))
        household = table(Household)
        made.households = count(connection, household, household.c.deleted_at.is_(None))
        made.people = count(connection, person, person.c.deleted_at.is_(None))
        per_document = (
            sa.select(sa.func.count().label("people"))
            .where(person.c.deleted_at.is_(None), person.c.doc_number.is_not(None))
            .group_by(person.c.doc_number)
            .subquery()
        )
        made.registered_twice = int(
            connection.execute(
                sa.select(sa.func.coalesce(sa.func.sum(per_document.c.people - 1), 0))
            ).scalar_one()
        )
        agreement = table(Agreement)
        made.agreements = count(connection, agreement, agreement.c.deleted_at.is_(None))
        made.agreements_in_force = count(
            connection,
            agreement,
            agreement.c.deleted_at.is_(None),
            agreement.c.status == "active",
            agreement.c.valid_until > today,
        )
        for program in Program:
            made.programmes[program.value] = trained(
                connection,
                program=program,
                start=PROGRAMME_YEARS[0],
                end=PROGRAMME_YEARS[1],
                zone=zone,
            )
        attendance = table(Attendance)
        made.folded_attendance = count(
            connection, attendance, attendance.c.merged_into.is_not(None)
        )
        conflict = table(Conflict)
        made.open_conflicts = count(connection, conflict, conflict.c.status == "open")
        patrol = table(Patrol)
        made.patrols = {
            str(status): int(number)
            for status, number in connection.execute(
                sa.select(patrol.c.status, sa.func.count())
                .where(patrol.c.deleted_at.is_(None))
                .group_by(patrol.c.status)
            )
        }
        segment = table(TrackSegment)
        made.track_segments, made.track_points = (
            int(value)
            for value in connection.execute(
                sa.select(
                    sa.func.count(), sa.func.coalesce(sa.func.sum(segment.c.point_count), 0)
                ).where(segment.c.deleted_at.is_(None))
            ).one()
        )
        observation = table(Observation)
        made.observations = count(connection, observation, observation.c.deleted_at.is_(None))
    return made


def trained(
    connection: Connection, *, program: Program, start: date, end: date, zone: ZoneInfo
) -> Trained:
    """A programme's figures, the sessions ``start`` to ``end`` (whole local days)."""
    span = period(start, end, zone=zone)
    assert span.start is not None
    assert span.end is not None
    session = table(TrainingSession)
    rows = connection.execute(
        sa.select(session.c.id, session.c.headcount).where(
            session.c.program == program,
            session.c.deleted_at.is_(None),
            session.c.status != SessionStatus.cancelled,
            session.c.starts_at >= span.start,
            session.c.starts_at < span.end,
        )
    ).all()
    made = Trained()
    named = []
    for session_id, headcount in rows:
        if headcount is None:
            named.append(session_id)
            continue
        made.headcount_sessions += 1
        made.girls += int(headcount["female"])
        made.boys += int(headcount["male"])
    made.young_people = made.girls + made.boys
    if not named:
        return made
    attendance = table(Attendance)
    person = table(Person)
    kept = person.alias("kept")
    live = sa.and_(
        attendance.c.session_id.in_(named),
        attendance.c.deleted_at.is_(None),
        attendance.c.merged_into.is_(None),
    )
    joined = attendance.join(person, person.c.id == attendance.c.person_id).join(
        kept, kept.c.id == sa.func.coalesce(person.c.merged_into, person.c.id)
    )
    for sex, people in connection.execute(
        sa.select(kept.c.sex, sa.func.count(sa.distinct(kept.c.id)))
        .select_from(joined)
        .where(live)
        .group_by(kept.c.sex)
    ):
        made.participants += int(people)
        if str(sex) == "female":
            made.women += int(people)
        elif str(sex) == "male":
            made.men += int(people)
    made.attendances = count(connection, attendance, live)
    made.sessions = int(
        connection.execute(
            sa.select(sa.func.count(sa.distinct(attendance.c.session_id))).where(live)
        ).scalar_one()
    )
    return made
