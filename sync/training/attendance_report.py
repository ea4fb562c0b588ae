"""The programme's attendance figures, for funders and the park agency.

These definitions are the product; they must give the same number however many
tablets recorded an attendance and however many times a person was registered:

- **Sessions counted**: live, not cancelled, ``starts_at`` in the period (dates are
  whole local days, ``FIELDSYNC_TIMEZONE``), of the program, community or sector
  asked, in the caller's scope; and held — status ``held``, or with someone recorded
  at it (a tablet that took attendance but never marked the session held still
  counts it).
- **Participants**: unique people with a live attendance of role ``participant`` at
  a counted session. A person merged into another counts as the kept one, so
  duplicates registered on two tablets count once after the merge; two tablets
  recording the same attendance are folded into one by push.
- **Attendances**: person-sessions, each once. **Women** and **men**: participants
  by the (kept) person's sex; ``other`` and ``unknown`` are participants in neither.
  **women_share** = women / participants, a fraction 0 to 1 (exact here and in the
  CSV, 3 decimals in JSON: ``schemas/figures.py``), null without participants.
- **Headcount sessions** (school sessions recorded by headcount, nobody named) are
  counted apart, in ``headcount``: sessions, people (female + male), women, men.
  Their attendance rows, if any, are not counted as participants.
- **Groups** (``group_by``): program, community, sector, local month of the
  session, or the person's sex. A person counts once in each group they are in and
  once in the totals, so groups may add up to more participants than the total (a
  person trained in two programs). Groups appear when they have something to count.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from schemas import Attendance, Community, Sector, TrainingSession
from schemas.records import AttendanceRole, Program, SessionStatus, Sex
from schemas.trainings import (
    AttendanceFigures,
    AttendanceGroup,
    AttendanceGrouping,
    AttendanceReport,
    AttendanceReportQuery,
    HeadcountFigures,
)
from sync.accounts.principal import Principal
from sync.platform.csv_files import csv_text
from sync.platform.period import local_month
from sync.training.sessions import (
    _with_people,
    check_filters,
    kept_person_id,
    kept_sex,
    session_conditions,
)


@dataclass(frozen=True)
class Held:
    """A counted session: where and when, and its headcount if it was counted so."""

    id: uuid.UUID
    program: Program
    community_id: uuid.UUID
    sector_id: uuid.UUID
    month: str
    marked_held: bool
    female: int | None = None
    male: int | None = None

    @property
    def by_headcount(self) -> bool:
        return self.female is not None and self.male is not None


@dataclass
class Tally:
    people: dict[uuid.UUID, str] = field(default_factory=dict)  # kept person → sex
    attendances: set[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=set)
    sessions: set[uuid.UUID] = field(default_factory=set)
    headcount_sessions: set[uuid.UUID] = field(default_factory=set)
    headcount_women: int = 0
    headcount_men: int = 0

    def figures(self) -> AttendanceFigures:
        women = sum(1 for sex in self.people.values() if sex == Sex.female)
        men = sum(1 for sex in self.people.values() if sex == Sex.male)
        participants = len(self.people)
        return AttendanceFigures(
            participants=participants,
            attendances=len(self.attendances),
            sessions=len(self.sessions),
            women=women,
            men=men,
            women_share=women / participants if participants else None,
            headcount=HeadcountFigures(
                sessions=len(self.headcount_sessions),
                people=self.headcount_women + self.headcount_men,
                women=self.headcount_women,
                men=self.headcount_men,
            ),
        )


def _sessions(
    session: Session, principal: Principal, query: AttendanceReportQuery, zone: tzinfo
) -> dict[uuid.UUID, Held]:
    """The sessions that may count, by id (held or not: attendance decides the rest)."""
    rows = session.execute(
        sa.select(
            col(TrainingSession.id),
            col(TrainingSession.program),
            col(TrainingSession.community_id),
            col(Community.sector_id),
            col(TrainingSession.starts_at),
            col(TrainingSession.status),
            col(TrainingSession.headcount),
        )
        .join(Community, col(Community.id) == col(TrainingSession.community_id))
        .where(
            *session_conditions(principal, query, zone),
            col(TrainingSession.status) != SessionStatus.cancelled,
        )
    )
    return {
        session_id: Held(
            id=session_id,
            program=program,
            community_id=community_id,
            sector_id=sector_id,
            month=local_month(starts_at, zone),
            marked_held=status is SessionStatus.held,
            female=int(headcount["female"]) if headcount else None,
            male=int(headcount["male"]) if headcount else None,
        )
        for session_id, program, community_id, sector_id, starts_at, status, headcount in rows
    }


def _participants(
    session: Session, principal: Principal, query: AttendanceReportQuery, zone: tzinfo
) -> Iterator[tuple[uuid.UUID, uuid.UUID, str]]:
    """(session, kept person, sex) of every live participant attendance at the sessions."""
    rows = _with_people(
        select(col(Attendance.session_id), kept_person_id(), kept_sex()).select_from(Attendance)
    ).where(
        col(Attendance.deleted_at).is_(None),
        col(Attendance.role) == AttendanceRole.participant,
        col(Attendance.session_id).in_(
            select(TrainingSession.id).where(*session_conditions(principal, query, zone))
        ),
    )
    for session_id, person_id, sex in session.execute(rows.execution_options(yield_per=5000)):
        yield session_id, person_id, str(sex)


def _labels(
    session: Session, grouping: AttendanceGrouping, keys: list[str]
) -> list[tuple[str, str | None]]:
    """``(key, label)`` in the report's order."""
    if grouping is AttendanceGrouping.community:
        names = {
            str(community_id): name
            for community_id, name in session.execute(
                select(Community.id, Community.name).where(
                    col(Community.id).in_([uuid.UUID(key) for key in keys])
                )
            )
        }
        return sorted(((key, names.get(key)) for key in keys), key=lambda kl: (kl[1] or "", kl[0]))
    if grouping is AttendanceGrouping.sector:
        sectors = {
            str(sector_id): (code, f"{code} — {name}")
            for sector_id, code, name in session.execute(
                select(Sector.id, Sector.code, Sector.name).where(
                    col(Sector.id).in_([uuid.UUID(key) for key in keys])
                )
            )
        }
        ordered = sorted(keys, key=lambda key: (sectors.get(key, ("",))[0], key))
        return [(key, sectors[key][1] if key in sectors else None) for key in ordered]
    return [(key, key) for key in sorted(keys)]


def attendance_report(
    session: Session, *, principal: Principal, query: AttendanceReportQuery, zone: tzinfo
) -> AttendanceReport:
    """Participants, attendances, sessions, women and men, in total and per group."""
    check_filters(session, principal, query, zone)
    sessions = _sessions(session, principal, query, zone)
    totals = Tally()
    groups: dict[str, Tally] = {}

    def group_of(held: Held, sex: str | None) -> str:
        if query.group_by is AttendanceGrouping.program:
            return str(held.program)
        if query.group_by is AttendanceGrouping.community:
            return str(held.community_id)
        if query.group_by is AttendanceGrouping.sector:
            return str(held.sector_id)
        if query.group_by is AttendanceGrouping.month:
            return held.month
        return str(sex)

    def tallies(held: Held, sex: str) -> list[Tally]:
        if query.group_by is None:
            return [totals]
        return [totals, groups.setdefault(group_of(held, sex), Tally())]

    for held in sessions.values():
        if held.by_headcount:
            female, male = held.female or 0, held.male or 0
            _count_headcount(totals, held, female, male)
            if query.group_by is AttendanceGrouping.sex:
                for who, women, men in ((Sex.female, female, 0), (Sex.male, 0, male)):
                    if women or men:
                        _count_headcount(groups.setdefault(str(who), Tally()), held, women, men)
            elif query.group_by is not None:
                group = groups.setdefault(group_of(held, None), Tally())
                _count_headcount(group, held, female, male)
        elif held.marked_held:
            # Counted even if nobody was recorded; by sex, only where someone was.
            totals.sessions.add(held.id)
            if query.group_by not in (None, AttendanceGrouping.sex):
                groups.setdefault(group_of(held, None), Tally()).sessions.add(held.id)

    for session_id, person_id, sex in _participants(session, principal, query, zone):
        attended = sessions.get(session_id)
        if attended is None or attended.by_headcount:
            continue  # cancelled, or counted by its headcount
        for tally in tallies(attended, sex):
            tally.people[person_id] = sex
            tally.attendances.add((session_id, person_id))
            tally.sessions.add(session_id)

    figures = totals.figures()
    labelled = _labels(session, query.group_by, list(groups)) if query.group_by else []
    return AttendanceReport(
        from_=query.from_,
        to=query.to,
        group_by=query.group_by,
        groups=[
            AttendanceGroup(key=group, label=label, **groups[group].figures().model_dump())
            for group, label in labelled
        ],
        **figures.model_dump(),
    )


def _count_headcount(tally: Tally, held: Held, women: int, men: int) -> None:
    tally.headcount_sessions.add(held.id)
    tally.headcount_women += women
    tally.headcount_men += men


REPORT_COLUMNS = (
    "group", "label", "participants", "attendances", "sessions", "women", "men",
    "women_share", "headcount_sessions", "headcount_people", "headcount_women",
    "headcount_men",
)  # fmt: skip


def _row(key: str, label: str | None, figures: AttendanceFigures) -> list[Any]:
    return [
        key, label, figures.participants, figures.attendances, figures.sessions,
        figures.women, figures.men, figures.women_share, figures.headcount.sessions,
        figures.headcount.people, figures.headcount.women, figures.headcount.men,
    ]  # fmt: skip


def report_csv(report: AttendanceReport, *, zone: tzinfo) -> Iterator[str]:
    """The report as a CSV: one row per group, then the totals (``group`` = ``total``)."""
    rows = [_row(group.key, group.label, group) for group in report.groups]
    rows.append(_row("total", None, report))
    yield from csv_text(REPORT_COLUMNS, rows, zone=zone)


__all__ = ["attendance_report", "report_csv"]
