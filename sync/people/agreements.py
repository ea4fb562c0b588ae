"""Families' conservation agreements as coordinators and extension workers read them:
lists with filters and text search, renewals due, one agreement with its history,
and the same lists as CSV files.

Scope: extension workers see the agreements of their communities; coordinators and
admins see all. An agreement out of scope reads as absent (404).

The life cycle, here and in the report (``sync/agreement_report.py``), as of
``today`` — the local date where the work happens, a parameter of every function:

- an agreement whose stored status is ``active`` and whose ``valid_until`` is before
  today **reads as** ``expired``; nothing is stored, so it reads so on the day after
  its last, without anyone touching it. Every other status reads as stored;
- a **renewal** is a new agreement whose ``renews_agreement_id`` names the one it
  renews; an agreement is *renewed* while a live (not deleted) agreement names it;
- a **renewal is due** within N days for an agreement stored ``active`` whose
  ``valid_until`` falls from today to today + N, both included, and not renewed;
- a **lapsed** agreement reads ``expired`` and is not renewed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, func, select

from schemas import Agreement, Community, Household, Person
from schemas.agreements import (
    AgreementDetail,
    AgreementFilters,
    AgreementLink,
    AgreementPage,
    AgreementQuery,
    AgreementRead,
    HouseholdBrief,
    Signatory,
)
from schemas.records import AgreementStatus
from schemas.text import folded
from sync.accounts.principal import Principal
from sync.accounts.scope import check_places, in_communities
from sync.engine.history import history
from sync.platform.csv_files import csv_text, paged
from sync.platform.database import transaction
from sync.platform.errors import NotFound

CHUNK = 500
"""Rows read at a time for a CSV file."""

Renewal = aliased(Agreement, name="renewal")
"""An agreement that renews another."""


# ---------------------------------------------------------------- the life cycle


def today(zone: tzinfo) -> date:
    """The date where the work happens: what ``expired`` and ``due`` count from."""
    return datetime.now(zone).date()


def status_on(status: AgreementStatus, valid_until: date | None, today: date) -> AgreementStatus:
    """How an agreement reads on ``today``: ``active`` past its ``valid_until`` is expired."""
    if status == AgreementStatus.active and valid_until is not None and valid_until < today:
        return AgreementStatus.expired
    return AgreementStatus(status)


def reads_active(today: date, record: Any = Agreement) -> ColumnElement[bool]:
    """``record`` (the table or an alias of it) reads ``active`` on ``today``."""
    return sa.and_(
        record.status == AgreementStatus.active,
        sa.or_(record.valid_until.is_(None), record.valid_until >= today),
    )


def reads_expired(today: date) -> ColumnElement[bool]:
    return sa.or_(
        col(Agreement.status) == AgreementStatus.expired,
        sa.and_(
            col(Agreement.status) == AgreementStatus.active, col(Agreement.valid_until) < today
        ),
    )


def reads_as(status: AgreementStatus, today: date) -> ColumnElement[bool]:
    if status == AgreementStatus.active:
        return reads_active(today)
    if status == AgreementStatus.expired:
        return reads_expired(today)
    return col(Agreement.status) == status


def renewed() -> ColumnElement[bool]:
    """A live agreement renews this one."""
    return sa.exists().where(
        col(Renewal.renews_agreement_id) == col(Agreement.id), col(Renewal.deleted_at).is_(None)
    )


def due_within(
    days: int, today: date, *, not_renewed: ColumnElement[bool] | None = None
) -> ColumnElement[bool]:
    """Stored ``active``, ending from ``today`` to ``today + days``, not renewed
    (``not_renewed`` says so where a query joined the renewals already)."""
    return sa.and_(
        col(Agreement.status) == AgreementStatus.active,
        col(Agreement.valid_until) >= today,
        col(Agreement.valid_until) <= today + timedelta(days=days),
        ~renewed() if not_renewed is None else not_renewed,
    )


# ---------------------------------------------------------------- scope and filters


def place_conditions(
    principal: Principal, filters: AgreementFilters, column: Any
) -> list[ColumnElement[bool]]:
    """``column`` (a community id) is in scope and in the community or sector asked."""
    return in_communities(
        principal, column, community_id=filters.community_id, sector_id=filters.sector_id
    )


def _search(text: str) -> list[ColumnElement[bool]]:
    """Each word in the signatory's folded name or in either code."""
    where: list[ColumnElement[bool]] = []
    for word in folded(text).split():
        where.append(
            sa.or_(
                col(Person.name_key).contains(word, autoescape=True),
                func.lower(col(Agreement.code)).contains(word, autoescape=True),
                func.lower(col(Household.code)).contains(word, autoescape=True),
            )
        )
    return where


def _agreements_query(principal: Principal, query: AgreementQuery, today: date) -> Any:
    where = [
        col(Agreement.deleted_at).is_(None),
        *place_conditions(principal, query, Agreement.community_id),
    ]
    if query.status is not None:
        where.append(reads_as(query.status, today))
    if query.renewal_due_within is not None:
        where.append(due_within(query.renewal_due_within, today))
    matching = select(Agreement)
    if query.q is not None:
        matching = matching.outerjoin(
            Household, col(Household.id) == col(Agreement.household_id)
        ).outerjoin(Person, col(Person.id) == col(Agreement.signatory_person_id))
        where.extend(_search(query.q))
    return matching.where(*where)


NEWEST_FIRST = (
    sa.func.coalesce(col(Agreement.signed_on), col(Agreement.valid_from)).desc().nulls_last(),
    col(Agreement.created_at).desc(),
    col(Agreement.id),
)
SOONEST_DUE = (col(Agreement.valid_until), col(Agreement.id))


def _order(query: AgreementQuery) -> tuple[Any, ...]:
    return SOONEST_DUE if query.renewal_due_within is not None else NEWEST_FIRST


# ---------------------------------------------------------------- reading


def _renewals(session: Session, agreement_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    """The live agreement renewing each of ``agreement_ids`` (the newest, if several)."""
    if not agreement_ids:
        return {}
    rows = session.execute(
        select(Agreement.renews_agreement_id, Agreement.id)
        .where(
            col(Agreement.renews_agreement_id).in_(list(agreement_ids)),
            col(Agreement.deleted_at).is_(None),
        )
        .order_by(col(Agreement.created_at), col(Agreement.id))
    )
    return dict(rows.all())


def agreement_reads(
    session: Session, agreements: Sequence[Agreement], today: date
) -> list[AgreementRead]:
    """Agreements with their household, signatory, place and renewal: a few queries."""
    household_ids = {record.household_id for record in agreements}
    households = (
        dict(
            session.execute(
                select(Household.id, Household.code).where(col(Household.id).in_(household_ids))
            ).all()
        )
        if household_ids
        else {}
    )
    person_ids = {r.signatory_person_id for r in agreements if r.signatory_person_id}
    signatories = (
        {
            row.id: Signatory.model_validate(row, from_attributes=True)
            for row in session.execute(
                select(
                    Person.id, Person.given_names, Person.paternal_surname, Person.maternal_surname
                ).where(col(Person.id).in_(person_ids))
            )
        }
        if person_ids
        else {}
    )
    community_ids = {record.community_id for record in agreements}
    places = (
        {
            community_id: (name, sector_id)
            for community_id, name, sector_id in session.execute(
                select(Community.id, Community.name, Community.sector_id).where(
                    col(Community.id).in_(community_ids)
                )
            )
        }
        if community_ids
        else {}
    )
    renewals = _renewals(session, [record.id for record in agreements])
    reads = []
    for record in agreements:
        place = places.get(record.community_id)
        reads.append(
            AgreementRead(
                id=record.id,
                version=record.version,
                code=record.code,
                status=status_on(record.status, record.valid_until, today),
                recorded_status=record.status,
                community_id=record.community_id,
                community_name=place[0] if place else None,
                sector_id=place[1] if place else None,
                household=HouseholdBrief(
                    id=record.household_id, code=households.get(record.household_id)
                ),
                signatory=signatories.get(record.signatory_person_id)
                if record.signatory_person_id
                else None,
                signed_on=record.signed_on,
                valid_from=record.valid_from,
                valid_until=record.valid_until,
                renews_agreement_id=record.renews_agreement_id,
                renewed_by_id=renewals.get(record.id),
                area_total_ha=record.area_total_ha,
                area_forest_ha=record.area_forest_ha,
                area_coffee_ha=record.area_coffee_ha,
                commitments=list(record.commitments or []),
                benefits=list(record.benefits or []),
                consent=record.consent,
                created_at=record.created_at,
                updated_at=record.updated_at,
            )
        )
    return reads


def list_agreements(
    session: Session, *, principal: Principal, query: AgreementQuery, today: date
) -> AgreementPage:
    """Agreements matching the filters as they read on ``today``, with the total:
    newest first, or for ``renewal_due_within`` the soonest due first."""
    check_places(session, principal, community_id=query.community_id, sector_id=query.sector_id)
    matching = _agreements_query(principal, query, today)
    total = session.scalar(select(func.count()).select_from(matching.subquery())) or 0
    found = list(
        session.scalars(matching.order_by(*_order(query)).offset(query.offset).limit(query.limit))
    )
    return AgreementPage(
        items=agreement_reads(session, found, today),
        total=total,
        limit=query.limit,
        offset=query.offset,
    )


AGREEMENT_COLUMNS = (
    "agreement_id", "code", "status", "recorded_status", "community", "sector_id",
    "household_id", "household_code", "signatory_id", "signatory_given_names",
    "signatory_paternal_surname", "signatory_maternal_surname", "signed_on", "valid_from",
    "valid_until", "renews_agreement_id", "renewed_by_id", "area_total_ha", "area_forest_ha",
    "area_coffee_ha", "commitments", "benefits",
)  # fmt: skip


def _row(read: AgreementRead) -> list[Any]:
    signatory = read.signatory
    return [
        read.id, read.code, read.status, read.recorded_status, read.community_name,
        read.sector_id, read.household.id, read.household.code,
        signatory.id if signatory else None,
        signatory.given_names if signatory else None,
        signatory.paternal_surname if signatory else None,
        signatory.maternal_surname if signatory else None,
        read.signed_on, read.valid_from, read.valid_until, read.renews_agreement_id,
        read.renewed_by_id, read.area_total_ha, read.area_forest_ha, read.area_coffee_ha,
        "; ".join(read.commitments), "; ".join(read.benefits),
    ]  # fmt: skip


def agreements_csv(
    engine: Engine, *, principal: Principal, query: AgreementQuery, today: date, zone: tzinfo
) -> Iterator[str]:
    """The agreements of ``list_agreements`` as CSV, ``CHUNK`` at a time, from its own
    session: every match, or the page asked when ``limit`` or ``offset`` is given."""

    def rows(db: Session) -> Iterator[list[Any]]:
        matching = paged(_agreements_query(principal, query, today).order_by(*_order(query)), query)
        result = db.scalars(matching.execution_options(yield_per=CHUNK))
        for chunk in result.partitions(CHUNK):
            for read in agreement_reads(db, chunk, today):
                yield _row(read)
            db.expunge_all()

    with transaction(engine, write=False) as db:
        yield from csv_text(AGREEMENT_COLUMNS, rows(db), zone=zone)


# ---------------------------------------------------------------- one agreement


def _visible(principal: Principal, record: Agreement | None) -> bool:
    return (
        record is not None
        and record.deleted_at is None
        and (principal.sees_everything or record.community_id in principal.community_ids)
    )


def _link(record: Agreement, today: date) -> AgreementLink:
    return AgreementLink(
        id=record.id,
        code=record.code,
        status=status_on(record.status, record.valid_until, today),
        valid_from=record.valid_from,
        valid_until=record.valid_until,
    )


def agreement_detail(
    session: Session, *, principal: Principal, agreement_id: uuid.UUID, today: date
) -> AgreementDetail:
    """One agreement as it reads on ``today``, with the agreement it renews, the one
    renewing it (each if the caller may see it) and its version history."""
    record = session.get(Agreement, agreement_id)
    if record is None or not _visible(principal, record):
        raise NotFound("no such agreement")
    (read,) = agreement_reads(session, [record], today)
    renews = (
        session.get(Agreement, record.renews_agreement_id) if record.renews_agreement_id else None
    )
    renewed_by = session.get(Agreement, read.renewed_by_id) if read.renewed_by_id else None
    return AgreementDetail(
        **read.model_dump(),
        renews=_link(renews, today) if renews is not None and _visible(principal, renews) else None,
        renewed_by=_link(renewed_by, today)
        if renewed_by is not None and _visible(principal, renewed_by)
        else None,
        history=history(session, entity="agreement", record_id=record.id),
    )
