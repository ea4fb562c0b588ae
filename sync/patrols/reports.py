"""The patrol reports: patrol effort, and threats per 10 km walked.

What is counted — these definitions are the product:

**Patrols counted.** Live (not deleted), in the caller's scope (ranger leads: their
sectors; coordinators and admins: all), and started in the period: a date is a
whole local day (``FIELDSYNC_TIMEZONE``, America/Lima), a timestamp that instant,
both ends inclusive, either open. Only patrols that happened: submitted, returned
or approved (drafts are still on the tablet, cancelled ones did not happen);
``status`` narrows to one of those. A patrol without ``started_at`` cannot be placed
in a period and is left out.

**Effort figures**, per patrol, summed per group:

- ``patrol_hours`` = end - start, ``field_hours`` = that minus declared rest (never
  below zero), as the patrol detail counts them. A patrol with no end, or an end
  before its start, adds no hours — a zero would read as a real, empty patrol —
  and is counted in ``patrols_without_hours`` instead.
- ``patrol_days`` = the local calendar days a patrol touches (out at 16:00, back
  next morning: 2); 1 for a patrol with no valid end.
- ``km`` = the walked length of its track exactly as the patrol detail measures it
  (``effort.build_track``: segments joined, gaps over 30 minutes not walked).

**Effort groups.** ``sector``: the patrol's sector, labelled ``code — name``, by code.
``month``: the local month the patrol started (a patrol out at 23:30 on 31 March in
Lima is March's, though it is April in UTC), ascending. ``ranger``: the patrol
counts once for its leader and once for each member who is a user of the service,
labelled with their full name, by name; the totals count each patrol once (a
patrol with no ranger who is a user is in the totals only).

**Threats.** Observations live, in scope, made in the period, of ``category`` or
below it when given, either on a patrol that is counted by its status (live,
submitted, returned or approved) or standalone (no patrol). Each group's count is
weighed against the km walked by the patrols counted for the period: all of them
for a category, those of the sector for a sector, those started in the month for
a month; ``per_10_km`` = ``observations / km * 10``, null when no km were walked.
Categories are grouped by their exact key (``threat.logging.timber``), labelled
with their Spanish and English names, by key.

**Which groups appear.** Those with something to show: a sector or month with
counted patrols or observations, a ranger with patrols, a category with
observations. Nothing in scope is an empty list and zero totals, not an error.

**Rounding.** Sums are exact (``math.fsum``) and stay exact in the report and its CSV;
a JSON answer rounds km, hours and rates to 2 decimals (``schemas/figures.py``).

**Cost.** One query for the patrols, streamed in chunks of ``CHUNK``; one for the
track segments of each chunk (never one per patrol), dropped once measured, so
memory holds one chunk of points; one or two for observations and labels.
"""

from __future__ import annotations

import math
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, func, select

from schemas import ObservationCategory, Patrol, Sector, User
from schemas.patrols import PatrolFilters
from schemas.records import Observation, PatrolStatus
from schemas.reports import (
    EffortFigures,
    EffortGroup,
    EffortGrouping,
    EffortQuery,
    PatrolEffortReport,
    ThreatFigures,
    ThreatGroup,
    ThreatGrouping,
    ThreatQuery,
    ThreatReport,
)
from sync.accounts.principal import Principal
from sync.patrols import effort
from sync.patrols.reads import filtered, hours, of_category, segments_of
from sync.platform.csv_files import csv_text
from sync.platform.period import days_spanned, local_month, period

COUNTED = (PatrolStatus.submitted, PatrolStatus.returned, PatrolStatus.approved)
"""Patrols that happened; a report never counts drafts nor cancelled patrols."""

CHUNK = 500
"""Patrols measured at a time: at ~100 points each, some 50,000 points in memory."""


# ---------------------------------------------------------------- one patrol


@dataclass(frozen=True)
class Walked:
    """One counted patrol, measured: what every report sums."""

    patrol_id: uuid.UUID
    sector_id: uuid.UUID
    month: str
    rangers: frozenset[uuid.UUID]
    patrol_hours: float | None
    field_hours: float | None
    patrol_days: int
    km: float


def _rangers(patrol: Patrol) -> frozenset[uuid.UUID]:
    people = {patrol.leader_id} if patrol.leader_id else set()
    people |= {uuid.UUID(str(m["user_id"])) for m in patrol.members or [] if m.get("user_id")}
    return frozenset(people)


def _measure(patrol: Patrol, segments: list[Any], zone: tzinfo) -> Walked:
    assert patrol.started_at is not None  # the query leaves the others out
    patrol_hours, field_hours = hours(patrol)
    ended = patrol.ended_at
    track = effort.build_track(segments)
    return Walked(
        patrol_id=patrol.id,
        sector_id=patrol.sector_id,
        month=local_month(patrol.started_at, zone),
        rangers=_rangers(patrol),
        patrol_hours=patrol_hours,
        field_hours=field_hours,
        patrol_days=(
            days_spanned(patrol.started_at, ended, zone)
            if ended is not None and ended >= patrol.started_at
            else 1
        ),
        km=math.fsum(effort.run_distance_km(run) for run in track.runs),
    )


def walked(
    session: Session,
    *,
    principal: Principal,
    filters: PatrolFilters,
    zone: tzinfo,
) -> Iterator[Walked]:
    """Every counted patrol matching ``filters``, measured, a chunk of tracks at a time.

    ``filters.status`` narrows to one status; without it, every status in ``COUNTED``.
    """
    query = filtered(session, principal=principal, filters=filters, zone=zone).where(
        col(Patrol.started_at).is_not(None)
    )
    if filters.status is None:
        query = query.where(col(Patrol.status).in_(COUNTED))
    rows = session.exec(
        query.order_by(col(Patrol.started_at), col(Patrol.id)).execution_options(yield_per=CHUNK)
    )
    for chunk in rows.partitions(CHUNK):
        tracks = segments_of(session, [patrol.id for patrol in chunk])
        for patrol in chunk:
            yield _measure(patrol, tracks.get(patrol.id, []), zone)


# ---------------------------------------------------------------- sums


@dataclass
class _Effort:
    patrols: int = 0
    patrol_days: int = 0
    without_hours: int = 0
    patrol_hours: list[float] = field(default_factory=list)
    field_hours: list[float] = field(default_factory=list)
    km: list[float] = field(default_factory=list)

    def add(self, patrol: Walked) -> None:
        self.patrols += 1
        self.patrol_days += patrol.patrol_days
        self.km.append(patrol.km)
        if patrol.patrol_hours is None or patrol.field_hours is None:
            self.without_hours += 1
        else:
            self.patrol_hours.append(patrol.patrol_hours)
            self.field_hours.append(patrol.field_hours)

    def total_km(self) -> float:
        return math.fsum(self.km)

    def figures(self) -> EffortFigures:
        return EffortFigures(
            patrols=self.patrols,
            patrol_days=self.patrol_days,
            patrol_hours=math.fsum(self.patrol_hours),
            field_hours=math.fsum(self.field_hours),
            km=self.total_km(),
            patrols_without_hours=self.without_hours,
        )


def _threat_figures(observations: int, km: float) -> ThreatFigures:
    return ThreatFigures(
        observations=observations,
        km=km,
        per_10_km=observations / km * 10 if km > 0 else None,
    )


# ---------------------------------------------------------------- labels


Labelled = list[tuple[str, str | None, str | None]]
"""``(key, label, label_en)`` of each group, in the report's order."""


def _sector_labels(session: Session, keys: list[str]) -> Labelled:
    rows = session.execute(
        select(Sector.id, Sector.code, Sector.name).where(
            col(Sector.id).in_([uuid.UUID(key) for key in keys])
        )
    )
    sectors = {str(sector_id): (code, f"{code} — {name}") for sector_id, code, name in rows}
    order = sorted(keys, key=lambda key: (sectors.get(key, ("",))[0], key))
    return [(key, sectors[key][1] if key in sectors else None, None) for key in order]


def _ranger_labels(session: Session, keys: list[str]) -> Labelled:
    rows = session.execute(
        select(User.id, User.full_name).where(col(User.id).in_([uuid.UUID(key) for key in keys]))
    )
    names = {str(user_id): full_name for user_id, full_name in rows if full_name}
    # Rangers who are not users of the service (no name to sort by) come last.
    order = sorted(keys, key=lambda key: (key not in names, names.get(key, "").casefold(), key))
    return [(key, names.get(key), None) for key in order]


def _category_labels(session: Session, keys: list[str]) -> Labelled:
    rows = session.execute(
        select(
            ObservationCategory.key, ObservationCategory.name_es, ObservationCategory.name_en
        ).where(col(ObservationCategory.key).in_(keys))
    )
    names = {key: (name_es, name_en) for key, name_es, name_en in rows}
    return [(key, *names.get(key, (key, None))) for key in keys]


def _labelled(session: Session, grouping: str, keys: Iterable[str]) -> Labelled:
    ordered = sorted(set(keys))
    if not ordered or grouping == "month":
        return [(key, key, None) for key in ordered]
    if grouping == "sector":
        return _sector_labels(session, ordered)
    if grouping == "ranger":
        return _ranger_labels(session, ordered)
    return _category_labels(session, ordered)


# ---------------------------------------------------------------- the reports


def _patrol_filters(
    query: EffortQuery | ThreatQuery, status: PatrolStatus | None = None
) -> PatrolFilters:
    return PatrolFilters(sector_id=query.sector_id, status=status, from_=query.from_, to=query.to)


def effort_report(
    session: Session, *, principal: Principal, query: EffortQuery, zone: tzinfo
) -> PatrolEffortReport:
    """Patrols, patrol-days, patrol and field hours and km, per group and in total."""
    status = PatrolStatus(query.status) if query.status is not None else None
    totals = _Effort()
    groups: dict[str, _Effort] = {}
    for patrol in walked(
        session, principal=principal, filters=_patrol_filters(query, status), zone=zone
    ):
        totals.add(patrol)
        if query.group_by is EffortGrouping.sector:
            keys = [str(patrol.sector_id)]
        elif query.group_by is EffortGrouping.month:
            keys = [patrol.month]
        else:
            keys = [str(ranger) for ranger in patrol.rangers]
        for key in keys:
            groups.setdefault(key, _Effort()).add(patrol)
    return PatrolEffortReport(
        from_=query.from_,
        to=query.to,
        group_by=query.group_by,
        totals=totals.figures(),
        groups=[
            EffortGroup(key=key, label=label, **groups[key].figures().model_dump())
            for key, label, _ in _labelled(session, query.group_by, groups)
        ],
    )


def _observations_in(
    principal: Principal, query: ThreatQuery, zone: tzinfo
) -> list[ColumnElement[bool]]:
    """The observations a threat report counts (module docstring)."""
    span = period(query.from_, query.to, zone=zone)
    counted_patrol = sa.exists(
        select(1).where(
            col(Patrol.id) == col(Observation.patrol_id),
            col(Patrol.deleted_at).is_(None),
            col(Patrol.status).in_(COUNTED),
        )
    )
    where: list[ColumnElement[bool]] = [
        col(Observation.deleted_at).is_(None),
        sa.or_(col(Observation.patrol_id).is_(None), counted_patrol),
    ]
    if not principal.sees_everything:
        where.append(col(Observation.sector_id).in_(principal.sector_ids))
    if query.sector_id is not None:
        where.append(col(Observation.sector_id) == query.sector_id)
    if span.start is not None:
        where.append(col(Observation.observed_at) >= span.start)
    if span.end is not None:
        where.append(col(Observation.observed_at) < span.end)
    if query.category is not None:
        where.append(of_category(query.category))
    return where


def _observation_counts(
    session: Session, where: list[ColumnElement[bool]], grouping: ThreatGrouping, zone: tzinfo
) -> Counter[str]:
    if grouping is ThreatGrouping.month:
        # The local month of each observation: the database has no zone to ask.
        moments = session.scalars(
            select(Observation.observed_at).where(*where).execution_options(yield_per=5000)
        )
        return Counter(local_month(moment, zone) for moment in moments)
    column = (
        col(Observation.category_key)
        if grouping is ThreatGrouping.category
        else col(Observation.sector_id)
    )
    rows = session.execute(select(column, func.count()).where(*where).group_by(column))
    return Counter({str(key): count for key, count in rows})


def threat_report(
    session: Session, *, principal: Principal, query: ThreatQuery, zone: tzinfo
) -> ThreatReport:
    """Observations per group, and per 10 km walked by the patrols counted."""
    where = _observations_in(principal, query, zone)
    counts = _observation_counts(session, where, query.group_by, zone)
    walked_km: dict[str, list[float]] = {}
    every_km: list[float] = []
    for patrol in walked(session, principal=principal, filters=_patrol_filters(query), zone=zone):
        every_km.append(patrol.km)
        if query.group_by is ThreatGrouping.sector:
            walked_km.setdefault(str(patrol.sector_id), []).append(patrol.km)
        elif query.group_by is ThreatGrouping.month:
            walked_km.setdefault(patrol.month, []).append(patrol.km)
    total_km = math.fsum(every_km)

    def km_of(key: str) -> float:
        if query.group_by is ThreatGrouping.category:
            return total_km
        return math.fsum(walked_km.get(key, []))

    return ThreatReport(
        from_=query.from_,
        to=query.to,
        group_by=query.group_by,
        totals=_threat_figures(counts.total(), total_km),
        groups=[
            ThreatGroup(
                key=key,
                label=label,
                label_en=label_en,
                **_threat_figures(counts[key], km_of(key)).model_dump(),
            )
            for key, label, label_en in _labelled(session, query.group_by, {*counts, *walked_km})
        ],
    )


# ---------------------------------------------------------------- as CSV

EFFORT_FIGURES = (
    "patrols", "patrol_days", "patrol_hours", "field_hours", "km", "patrols_without_hours",
)  # fmt: skip
THREAT_FIGURES = ("observations", "km", "per_10_km")


def _report_csv(
    names: Sequence[str],
    groups: Iterable[tuple[Sequence[str | None], Any]],
    totals: Any,
    labels: int,
    zone: tzinfo,
) -> Iterator[str]:
    """One row per group, then the totals (``group`` = ``total``), figures exact."""
    header = ["group", "label", "label_en"][: 1 + labels] + list(names)
    rows = [[*keys, *(getattr(figures, name) for name in names)] for keys, figures in groups]
    rows.append(["total", *[None] * labels, *(getattr(totals, name) for name in names)])
    yield from csv_text(header, rows, zone=zone)


def effort_csv(report: PatrolEffortReport, *, zone: tzinfo) -> Iterator[str]:
    """The effort report as a CSV: group, label and the figures, exact."""
    groups = (((group.key, group.label), group) for group in report.groups)
    yield from _report_csv(EFFORT_FIGURES, groups, report.totals, 1, zone)


def threat_csv(report: ThreatReport, *, zone: tzinfo) -> Iterator[str]:
    """The threats report as a CSV: group, its Spanish and English labels, the figures."""
    groups = (((group.key, group.label, group.label_en), group) for group in report.groups)
    yield from _report_csv(THREAT_FIGURES, groups, report.totals, 2, zone)


__all__ = [
    "COUNTED",
    "Walked",
    "effort_csv",
    "effort_report",
    "threat_csv",
    "threat_report",
    "walked",
]
