"""The families' registry: people and households, listed, searched and shown with
their version history.

Scope is by community: extension workers see the families of their communities;
coordinators and admins see all. A record out of scope reads as absent. Search
compares names folded (``schemas.text``): accents and case do not matter, and every
word asked must be in the name. Personal data is shown as ``sync.people.privacy`` says.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, func, select

from schemas import Agreement, Community, Household, Person
from schemas.registry import (
    AgreementBrief,
    HouseholdDetail,
    HouseholdPage,
    HouseholdQuery,
    HouseholdRead,
    MemberRead,
    PeopleQuery,
    PersonDetail,
    PersonPage,
    PersonRead,
    RegistryQuery,
)
from schemas.text import folded
from sync.accounts.principal import Principal
from sync.accounts.scope import check_places, in_communities
from sync.engine.history import history
from sync.people.privacy import hidden_fields
from sync.platform.csv_files import csv_text, paged
from sync.platform.database import transaction
from sync.platform.errors import NotFound

CHUNK = 500


def name_matches(column: Any, q: str) -> ColumnElement[bool]:
    """Every word of ``q``, folded, appears in ``column`` (a folded name)."""
    words = folded(q).split() or [""]
    return sa.and_(*(column.contains(word, autoescape=True) for word in words))


def _community_filters(
    principal: Principal, column: Any, query: RegistryQuery
) -> list[ColumnElement[bool]]:
    return in_communities(
        principal, column, community_id=query.community_id, sector_id=query.sector_id
    )


def _community_names(session: Session, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    rows = session.execute(
        sa.select(col(Community.id), col(Community.name)).where(col(Community.id).in_(ids))
    )
    return dict(rows.all())


# ---------------------------------------------------------------- people


def person_read(person: Person, community_name: str | None, *, shown: bool) -> PersonRead:
    return PersonRead(
        id=person.id,
        version=person.version,
        given_names=person.given_names,
        paternal_surname=person.paternal_surname,
        maternal_surname=person.maternal_surname,
        sex=person.sex,
        birth_year=person.birth_year,
        doc_type=person.doc_type,
        doc_number=person.doc_number if shown else None,
        phone=person.phone if shown else None,
        community_id=person.community_id,
        community_name=community_name,
        household_id=person.household_id,
        merged_into=person.merged_into,
        personal_data=shown,
        created_at=person.created_at,
        updated_at=person.updated_at,
    )


def _people_query(principal: Principal, query: PeopleQuery) -> Any:
    where: list[ColumnElement[bool]] = [col(Person.deleted_at).is_(None)]
    where += _community_filters(principal, col(Person.community_id), query)
    if query.status == "active":
        where.append(col(Person.merged_into).is_(None))
    elif query.status == "merged":
        where.append(col(Person.merged_into).is_not(None))
    if query.sex is not None:
        where.append(col(Person.sex) == query.sex)
    if query.q:
        where.append(name_matches(col(Person.name_key), query.q))
    return select(Person).where(*where)


PEOPLE_ORDER = (col(Person.name_key), col(Person.id))


def list_people(
    session: Session, *, principal: Principal, query: PeopleQuery, shown: bool
) -> PersonPage:
    """People matching the filters, by name, with the total."""
    check_places(session, principal, community_id=query.community_id, sector_id=query.sector_id)
    matching = _people_query(principal, query)
    total = session.scalar(select(func.count()).select_from(matching.subquery())) or 0
    found = list(
        session.scalars(matching.order_by(*PEOPLE_ORDER).offset(query.offset).limit(query.limit))
    )
    names = _community_names(session, {p.community_id for p in found})
    return PersonPage(
        items=[person_read(p, names.get(p.community_id), shown=shown) for p in found],
        total=total,
        limit=query.limit,
        offset=query.offset,
    )


PEOPLE_COLUMNS = (
    "person_id", "given_names", "paternal_surname", "maternal_surname", "sex", "birth_year",
    "doc_type", "doc_number", "phone", "community", "household_id", "merged_into",
)  # fmt: skip


def people_csv(
    engine: Engine, *, principal: Principal, query: PeopleQuery, shown: bool, zone: Any
) -> Iterator[str]:
    """The people of ``list_people`` as CSV, read ``CHUNK`` at a time."""

    def rows(db: Session) -> Iterator[list[Any]]:
        matching = paged(_people_query(principal, query).order_by(*PEOPLE_ORDER), query)
        for chunk in db.scalars(matching.execution_options(yield_per=CHUNK)).partitions(CHUNK):
            names = _community_names(db, {p.community_id for p in chunk})
            for p in chunk:
                yield [
                    p.id, p.given_names, p.paternal_surname, p.maternal_surname, p.sex,
                    p.birth_year, p.doc_type, p.doc_number if shown else None,
                    p.phone if shown else None, names.get(p.community_id), p.household_id,
                    p.merged_into,
                ]  # fmt: skip
            db.expunge_all()

    with transaction(engine, write=False) as db:
        yield from csv_text(PEOPLE_COLUMNS, rows(db), zone=zone)


def visible_person(session: Session, principal: Principal, person_id: uuid.UUID) -> Person:
    person = session.get(Person, person_id)
    if person is None or person.deleted_at is not None:
        raise NotFound("no such person")
    if not principal.sees_everything and person.community_id not in principal.community_ids:
        raise NotFound("no such person")
    return person


def _agreements(session: Session, where: ColumnElement[bool]) -> list[AgreementBrief]:
    rows = session.scalars(
        select(Agreement)
        .where(where, col(Agreement.deleted_at).is_(None))
        .order_by(col(Agreement.valid_from).desc(), col(Agreement.id))
    )
    return [
        AgreementBrief(
            id=a.id,
            code=a.code,
            status=a.status,
            valid_from=a.valid_from,
            valid_until=a.valid_until,
        )
        for a in rows
    ]


def person_detail(
    session: Session, *, principal: Principal, person_id: uuid.UUID, shown: bool
) -> PersonDetail:
    """A person with their household, the agreements they signed, the people merged
    into them, and their version history."""
    person = visible_person(session, principal, person_id)
    names = _community_names(session, {person.community_id})
    household = None
    if person.household_id is not None:
        row = session.get(Household, person.household_id)
        if row is not None and row.deleted_at is None:
            household = household_reads(session, [row], shown=shown)[0]
    merged_from = list(
        session.scalars(
            select(Person.id).where(col(Person.merged_into) == person.id).order_by(col(Person.id))
        )
    )
    return PersonDetail(
        person=person_read(person, names.get(person.community_id), shown=shown),
        household=household,
        agreements_signed=_agreements(session, col(Agreement.signatory_person_id) == person.id),
        merged_from=merged_from,
        history=history(
            session,
            entity="person",
            record_id=person.id,
            hidden=hidden_fields("person", shown=shown),
        ),
    )


# ---------------------------------------------------------------- households


def household_reads(
    session: Session, households: Sequence[Household], *, shown: bool
) -> list[HouseholdRead]:
    """Households with their head's and members' names: two queries, not one per row."""
    person_ids = {h.head_person_id for h in households if h.head_person_id}
    person_ids |= {uuid.UUID(str(m["person_id"])) for h in households for m in h.members or []}
    people: dict[uuid.UUID, str] = {}
    if person_ids:
        rows = session.execute(
            sa.select(col(Person.id), col(Person.given_names), col(Person.paternal_surname)).where(
                col(Person.id).in_(person_ids)
            )
        )
        people = {pid: f"{given} {surname}" for pid, given, surname in rows}
    names = _community_names(session, {h.community_id for h in households})
    return [
        HouseholdRead(
            id=h.id,
            version=h.version,
            code=h.code,
            community_id=h.community_id,
            community_name=names.get(h.community_id),
            head_person_id=h.head_person_id,
            head_name=people.get(h.head_person_id) if h.head_person_id else None,
            members=[
                MemberRead(
                    person_id=m["person_id"],
                    relation=m.get("relation"),
                    name=people.get(uuid.UUID(str(m["person_id"]))),
                )
                for m in h.members or []
            ],
            location=h.location if shown else None,
            personal_data=shown,
            created_at=h.created_at,
            updated_at=h.updated_at,
        )
        for h in households
    ]


def _households_query(principal: Principal, query: HouseholdQuery) -> Any:
    where: list[ColumnElement[bool]] = [col(Household.deleted_at).is_(None)]
    where += _community_filters(principal, col(Household.community_id), query)
    if query.q:
        head = select(Person.id).where(name_matches(col(Person.name_key), query.q))
        code = sa.func.lower(sa.func.coalesce(col(Household.code), ""))
        where.append(
            sa.or_(
                col(Household.head_person_id).in_(head),
                code.contains(query.q.strip().lower(), autoescape=True),
            )
        )
    return select(Household).where(*where)


HOUSEHOLD_ORDER = (col(Household.code), col(Household.id))


def list_households(
    session: Session, *, principal: Principal, query: HouseholdQuery, shown: bool
) -> HouseholdPage:
    """Households matching the filters (``q``: the head's name or the code), with the total."""
    check_places(session, principal, community_id=query.community_id, sector_id=query.sector_id)
    matching = _households_query(principal, query)
    total = session.scalar(select(func.count()).select_from(matching.subquery())) or 0
    found = list(
        session.scalars(matching.order_by(*HOUSEHOLD_ORDER).offset(query.offset).limit(query.limit))
    )
    return HouseholdPage(
        items=household_reads(session, found, shown=shown),
        total=total,
        limit=query.limit,
        offset=query.offset,
    )


HOUSEHOLD_COLUMNS = (
    "household_id", "code", "community", "head_person_id", "head_name", "members",
    "lat", "lon",
)  # fmt: skip


def households_csv(
    engine: Engine, *, principal: Principal, query: HouseholdQuery, shown: bool, zone: Any
) -> Iterator[str]:
    def rows(db: Session) -> Iterator[list[Any]]:
        matching = paged(_households_query(principal, query).order_by(*HOUSEHOLD_ORDER), query)
        for chunk in db.scalars(matching.execution_options(yield_per=CHUNK)).partitions(CHUNK):
            for h in household_reads(db, chunk, shown=shown):
                place = h.location or {}
                yield [
                    h.id, h.code, h.community_name, h.head_person_id, h.head_name,
                    "; ".join(m.name or str(m.person_id) for m in h.members),
                    place.get("lat"), place.get("lon"),
                ]  # fmt: skip
            db.expunge_all()

    with transaction(engine, write=False) as db:
        yield from csv_text(HOUSEHOLD_COLUMNS, rows(db), zone=zone)


def household_detail(
    session: Session, *, principal: Principal, household_id: uuid.UUID, shown: bool
) -> HouseholdDetail:
    household = session.get(Household, household_id)
    if household is None or household.deleted_at is not None:
        raise NotFound("no such household")
    if not principal.sees_everything and household.community_id not in principal.community_ids:
        raise NotFound("no such household")
    return HouseholdDetail(
        household=household_reads(session, [household], shown=shown)[0],
        agreements=_agreements(session, col(Agreement.household_id) == household.id),
        history=history(
            session,
            entity="household",
            record_id=household.id,
            hidden=hidden_fields("household", shown=shown),
        ),
    )
