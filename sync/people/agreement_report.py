"""Families under agreement, per community or sector: the coverage coordinators
report, and where to go next.

Every figure is as of ``today`` (the local date; see ``sync/agreements.py`` for how
an agreement reads on a day, what renews it and what is due):

- **households**: live households of the community;
- **households_with_active_agreement**: those of them with at least one live
  agreement reading ``active``; **coverage_share** = their share, a fraction 0 to 1
  (exact here and in the CSV, 3 decimals in JSON: ``schemas/figures.py``), null
  without households;
- **hectares_total / forest / coffee**: summed over the live agreements reading
  ``active`` (a missing area counts 0). An agreement renewed by one that itself
  reads ``active`` is left out: during the overlap of an early renewal the family's
  land is counted once, as the renewal says it;
- **renewals_due_30 / 60**: agreements stored ``active`` whose ``valid_until``
  falls within 30 (60) days of today, both days included, and not renewed;
- **lapsed**: live agreements reading ``expired`` that no live agreement renews.

Households count where they live (``household.community_id``), agreements where
they were signed (``agreement.community_id``); the two agree, since a record keeps
its community. Every community of the caller's scope and filters is a group, with
zeros where nothing is signed — that is the community a coordinator looks for; by
sector, every sector holding one (for the office: every sector). The totals are
the sums of the communities.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from datetime import date, tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, func, select

from schemas import Agreement, Community, Household, Sector
from schemas.agreements import (
    AgreementFigures,
    AgreementGroup,
    AgreementGrouping,
    AgreementReport,
    AgreementReportQuery,
)
from sync.accounts.principal import Principal
from sync.accounts.scope import check_places
from sync.people.agreements import (
    Renewal,
    due_within,
    place_conditions,
    reads_active,
    reads_expired,
)
from sync.platform.csv_files import csv_text


@dataclass
class Tally:
    households: int = 0
    with_active: int = 0
    hectares_total: float = 0.0
    hectares_forest: float = 0.0
    hectares_coffee: float = 0.0
    due_30: int = 0
    due_60: int = 0
    lapsed: int = 0

    def add(self, other: Tally) -> None:
        for figure in fields(self):
            setattr(self, figure.name, getattr(self, figure.name) + getattr(other, figure.name))

    def figures(self) -> AgreementFigures:
        return AgreementFigures(
            households=self.households,
            households_with_active_agreement=self.with_active,
            coverage_share=self.with_active / self.households if self.households else None,
            hectares_total=self.hectares_total,
            hectares_forest=self.hectares_forest,
            hectares_coffee=self.hectares_coffee,
            renewals_due_30=self.due_30,
            renewals_due_60=self.due_60,
            lapsed=self.lapsed,
        )


def _communities(
    session: Session, principal: Principal, query: AgreementReportQuery
) -> dict[uuid.UUID, tuple[str, uuid.UUID]]:
    """The communities of the caller's scope and the filters: id → (name, sector)."""
    rows = session.execute(
        select(Community.id, Community.name, Community.sector_id).where(
            *place_conditions(principal, query, Community.id)
        )
    )
    return {community_id: (name, sector_id) for community_id, name, sector_id in rows}


def _households(
    session: Session, communities: Any, today: date
) -> Iterator[tuple[uuid.UUID, int, int]]:
    """(community, live households, those with an agreement reading active)."""
    covered = (
        select(col(Agreement.household_id))
        .where(col(Agreement.deleted_at).is_(None), reads_active(today))
        .distinct()
        .subquery()
    )
    rows = session.execute(
        select(
            col(Household.community_id),
            func.count(col(Household.id)),
            func.count(covered.c.household_id),
        )
        .outerjoin(covered, covered.c.household_id == col(Household.id))
        .where(col(Household.deleted_at).is_(None), col(Household.community_id).in_(communities))
        .group_by(col(Household.community_id))
    )
    for community_id, households, with_active in rows:
        yield community_id, int(households), int(with_active)


def _renewing(today: date | None = None) -> Any:
    """The ids of agreements a live agreement renews (reading active, given ``today``)."""
    where: list[ColumnElement[bool]] = [
        col(Renewal.deleted_at).is_(None),
        col(Renewal.renews_agreement_id).is_not(None),
    ]
    if today is not None:
        where.append(reads_active(today, Renewal))
    return select(col(Renewal.renews_agreement_id).label("id")).where(*where).distinct().subquery()


def _counted(condition: ColumnElement[bool], value: Any = 1) -> Any:
    return func.coalesce(func.sum(sa.case((condition, value), else_=0)), 0)


def _agreements(session: Session, communities: Any, today: date) -> Iterator[tuple[Any, ...]]:
    """Per community: hectares under active agreement, renewals due, lapsed."""
    renewed = _renewing()
    superseded = _renewing(today)
    counted = sa.and_(reads_active(today), superseded.c.id.is_(None))
    not_renewed = renewed.c.id.is_(None)
    rows = session.execute(
        sa.select(
            col(Agreement.community_id),
            _counted(counted, func.coalesce(col(Agreement.area_total_ha), 0.0)),
            _counted(counted, func.coalesce(col(Agreement.area_forest_ha), 0.0)),
            _counted(counted, func.coalesce(col(Agreement.area_coffee_ha), 0.0)),
            _counted(due_within(30, today, not_renewed=not_renewed)),
            _counted(due_within(60, today, not_renewed=not_renewed)),
            _counted(sa.and_(reads_expired(today), not_renewed)),
        )
        .outerjoin(renewed, renewed.c.id == col(Agreement.id))
        .outerjoin(superseded, superseded.c.id == col(Agreement.id))
        .where(col(Agreement.deleted_at).is_(None), col(Agreement.community_id).in_(communities))
        .group_by(col(Agreement.community_id))
    )
    yield from (tuple(row) for row in rows)


def _sectors(
    session: Session, principal: Principal, query: AgreementReportQuery, held: Iterable[uuid.UUID]
) -> list[tuple[str, str]]:
    """``(key, label)`` of the sectors reported, by code: those holding a community
    reported, and for the office every sector (unless a community is asked)."""
    where: list[ColumnElement[bool]] = []
    if not principal.sees_everything or query.community_id is not None:
        where.append(col(Sector.id).in_(set(held)))
    if query.sector_id is not None:
        where.append(col(Sector.id) == query.sector_id)
    rows = session.execute(
        select(Sector.id, Sector.code, Sector.name).where(*where).order_by(col(Sector.code))
    )
    return [(str(sector_id), f"{code} — {name}") for sector_id, code, name in rows]


def agreement_report(
    session: Session, *, principal: Principal, query: AgreementReportQuery, today: date
) -> AgreementReport:
    """Households, coverage, hectares, renewals due and lapsed agreements, per
    community or sector of the caller's scope and in total, as of ``today``."""
    check_places(session, principal, community_id=query.community_id, sector_id=query.sector_id)
    communities = _communities(session, principal, query)
    in_report = select(Community.id).where(*place_conditions(principal, query, Community.id))
    tallies = {community_id: Tally() for community_id in communities}
    # A community made between these statements is not in the report: ``.get``.
    for community_id, households, with_active in _households(session, in_report, today):
        tally = tallies.get(community_id, Tally())
        tally.households, tally.with_active = households, with_active
    for community_id, total, forest, coffee, due_30, due_60, lapsed in _agreements(
        session, in_report, today
    ):
        tally = tallies.get(community_id, Tally())
        tally.hectares_total, tally.hectares_forest = float(total), float(forest)
        tally.hectares_coffee = float(coffee)
        tally.due_30, tally.due_60, tally.lapsed = int(due_30), int(due_60), int(lapsed)

    totals = Tally()
    for tally in tallies.values():
        totals.add(tally)
    groups: list[tuple[str, str, Tally]]
    if query.group_by is AgreementGrouping.sector:
        by_sector: dict[str, Tally] = {}
        for community_id, (_name, sector_id) in communities.items():
            by_sector.setdefault(str(sector_id), Tally()).add(tallies[community_id])
        sectors = _sectors(session, principal, query, (s for _n, s in communities.values()))
        groups = [(key, label, by_sector.get(key, Tally())) for key, label in sectors]
    else:
        ordered = sorted(communities.items(), key=lambda item: (item[1][0], str(item[0])))
        groups = [(str(cid), name, tallies[cid]) for cid, (name, _sector) in ordered]
    return AgreementReport(
        as_of=today,
        group_by=query.group_by,
        groups=[
            AgreementGroup(key=key, label=label, **tally.figures().model_dump())
            for key, label, tally in groups
        ],
        **totals.figures().model_dump(),
    )


REPORT_COLUMNS = (
    "group", "label", "households", "households_with_active_agreement", "coverage_share",
    "hectares_total", "hectares_forest", "hectares_coffee", "renewals_due_30",
    "renewals_due_60", "lapsed",
)  # fmt: skip


def _row(key: str, label: str | None, figures: AgreementFigures) -> list[Any]:
    return [
        key, label, figures.households, figures.households_with_active_agreement,
        figures.coverage_share, figures.hectares_total, figures.hectares_forest,
        figures.hectares_coffee, figures.renewals_due_30, figures.renewals_due_60,
        figures.lapsed,
    ]  # fmt: skip


def report_csv(report: AgreementReport, *, zone: tzinfo) -> Iterator[str]:
    """The report as a CSV: one row per group, then the totals (``group`` = ``total``)."""
    rows = [_row(group.key, group.label, group) for group in report.groups]
    rows.append(_row("total", None, report))
    yield from csv_text(REPORT_COLUMNS, rows, zone=zone)


__all__ = ["agreement_report", "report_csv"]
