"""Duplicate people: finding likely pairs, and folding one person into the other.

Extension workers register families on tablets that never meet, so one person is
often registered twice. Likely pairs are people with the same document (type and
number), or with the same name once accents and case are folded, the same birth
year and the same community.

A merge (``merge``) keeps one person and folds the other into it, in one
transaction, every change a new version that devices pull:

- the merged person is marked ``merged_into`` the kept one (people merged into it
  before now name the kept one too, so one step always reaches a kept person);
- the kept person's empty fields (maternal surname, birth year, document, phone,
  household) are filled from the merged one's;
- every reference follows: attendance (an attendance that would become double —
  both at one session — is made single: the merged one's is deleted, pointing at
  the kept one's), household heads and members, agreement signatories;
- a ``person_merge`` row logs who merged, when, and what moved.

A tablet that later pushes an edit of the merged person, or an attendance naming
it, has it applied to the kept person (``sync.engine.push``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from schemas import Agreement, Attendance, Household, Person
from schemas.records import DocType, SyncedColumns
from schemas.registry import (
    DuplicatePage,
    DuplicatePair,
    DuplicateQuery,
    MergeRead,
    MergeRequest,
    PersonBrief,
    PersonMerge,
)
from sync.accounts.principal import Principal
from sync.engine import records
from sync.engine.entities import Catalog
from sync.engine.writes import ServerWrites
from sync.people.entities import PERSON
from sync.platform.database import json_array_contains
from sync.platform.errors import Conflict, NotFound

SAME_DOCUMENT = "same_document"
SAME_NAME = "same_name_birth_year_community"

FILLED_FROM_MERGED = ("maternal_surname", "birth_year", "phone", "household_id")


# ---------------------------------------------------------------- finding


def find_duplicates(
    session: Session, *, principal: Principal, query: DuplicateQuery
) -> DuplicatePage:
    """Likely pairs among the live, unmerged people in scope, each pair once with its
    reasons, by name."""
    a, b = aliased(Person, name="a"), aliased(Person, name="b")

    def pairs(
        *match: ColumnElement[bool], same_community: bool = False
    ) -> set[tuple[uuid.UUID, uuid.UUID]]:
        where = [col(a.id) < col(b.id), *match]
        for person in (a, b):
            where += [col(person.deleted_at).is_(None), col(person.merged_into).is_(None)]
            if not principal.sees_everything:
                where.append(col(person.community_id).in_(principal.community_ids))
        if query.community_id is not None:
            where.append(
                sa.or_(
                    col(a.community_id) == query.community_id,
                    col(b.community_id) == query.community_id,
                )
            )
        rows = session.execute(
            sa.select(col(a.id), col(b.id), col(a.community_id), col(b.community_id)).where(*where)
        )
        return {
            (first, second)
            for first, second, one_place, other_place in rows
            if not same_community or one_place == other_place
        }

    by_document = pairs(
        col(a.doc_type) == col(b.doc_type),
        col(a.doc_type) != DocType.none,
        col(a.doc_number).is_not(None),
        col(a.doc_number) == col(b.doc_number),
    )
    by_name = pairs(
        col(a.name_key) == col(b.name_key),
        col(a.name_key) != "",
        col(a.birth_year).is_not(None),
        col(a.birth_year) == col(b.birth_year),
        # The same community is checked on the few pairs of one name and birth year: as
        # a condition of the join it led SQLite's planner (with no statistics) to pair
        # everyone of a community before comparing names, a thousand times the work.
        same_community=True,
    )
    found: dict[tuple[uuid.UUID, uuid.UUID], list[str]] = {}
    for pair in sorted(by_document):
        found.setdefault(pair, []).append(SAME_DOCUMENT)
    for pair in sorted(by_name):
        found.setdefault(pair, []).append(SAME_NAME)
    people = {
        person.id: person
        for person in session.scalars(
            select(Person).where(col(Person.id).in_({i for pair in found for i in pair}))
        )
    }
    ordered = sorted(
        found, key=lambda pair: (people[pair[0]].name_key, people[pair[0]].created_at, pair)
    )
    page = ordered[query.offset : query.offset + query.limit]
    return DuplicatePage(
        items=[
            DuplicatePair(
                a=PersonBrief.model_validate(people[first], from_attributes=True),
                b=PersonBrief.model_validate(people[second], from_attributes=True),
                reasons=found[(first, second)],
            )
            for first, second in page
        ],
        total=len(ordered),
        limit=query.limit,
        offset=query.offset,
    )


# ---------------------------------------------------------------- merging


def _members_include(session: Session, person_id: uuid.UUID) -> ColumnElement[bool]:
    """Households whose members list names ``person_id``."""
    return json_array_contains(session, Household.members, key="person_id", values=[str(person_id)])


class _Versions:
    """New versions of the records a merge touches (``sync.engine.writes``), published
    together; the merge moves records of other domains (attendance), found by name in
    the catalog."""

    def __init__(self, session: Session, principal: Principal, catalog: Catalog) -> None:
        self.session = session
        self.catalog = catalog
        self.writes = ServerWrites(session, user_id=principal.user_id)
        self.now = self.writes.now

    def save(self, entity: str, row: SyncedColumns, *, op: str, changed: Iterable[str]) -> None:
        self.writes.save(self.catalog[entity], row, op=op, reason="merge", changed=changed)


def _locked_person(session: Session, person_id: uuid.UUID, principal: Principal) -> Person:
    person = session.exec(select(Person).where(Person.id == person_id).with_for_update()).first()
    if person is None or person.deleted_at is not None:
        raise NotFound(f"no such person: {person_id}")
    if not principal.sees_everything and person.community_id not in principal.community_ids:
        raise NotFound(f"no such person: {person_id}")
    return person


def merge(
    session: Session, *, catalog: Catalog, principal: Principal, request: MergeRequest
) -> MergeRead:
    """Fold ``merge_id`` into ``keep_id`` (module docstring); all of it, or nothing."""
    if request.keep_id == request.merge_id:
        raise Conflict("a person cannot be merged into themselves", code="same_person")
    # Locked in id order, so two merges of the same pair cannot deadlock.
    first, second = sorted([request.keep_id, request.merge_id])
    locked = {pid: _locked_person(session, pid, principal) for pid in (first, second)}
    kept, merged = locked[request.keep_id], locked[request.merge_id]
    if merged.merged_into is not None:
        raise Conflict("this person was merged already", code="already_merged")
    if kept.merged_into is not None:
        raise Conflict(
            "the person to keep was merged into another; keep that one", code="already_merged"
        )
    versions = _Versions(session, principal, catalog)
    moved: dict[str, Any] = {}
    moved["attendance"], moved["attendance_folded"] = _move_attendance(versions, kept, merged)
    moved["households"] = _move_households(versions, kept, merged)
    moved["agreements"] = _move_agreements(versions, kept, merged)
    moved["people"] = _repoint_merged(versions, kept, merged)
    moved["filled"] = _fill_kept(versions, kept, merged)
    merged.merged_into = kept.id
    versions.save("person", merged, op="update", changed=["merged_into"])
    log = PersonMerge(
        id=uuid.uuid4(),
        kept_id=kept.id,
        merged_id=merged.id,
        merged_by=principal.user_id,
        merged_at=versions.now,
        moved=moved,
    )
    session.add(log)
    versions.writes.publish()  # last: it takes the clock, held until commit
    return MergeRead.model_validate(log, from_attributes=True)


def _move_attendance(versions: _Versions, kept: Person, merged: Person) -> tuple[int, int]:
    session = versions.session
    live = col(Attendance.deleted_at).is_(None)
    kept_at = {
        a.session_id: a.id
        for a in session.exec(
            select(Attendance).where(col(Attendance.person_id) == kept.id, live).with_for_update()
        )
    }
    moved = folded = 0
    rows = session.exec(
        select(Attendance)
        .where(col(Attendance.person_id) == merged.id, live)
        .order_by(col(Attendance.id))
        .with_for_update()
    ).all()
    for attendance in rows:  # the doubles first, so no two live rows share a pair
        if attendance.session_id in kept_at:
            attendance.deleted_at = versions.now
            attendance.merged_into = kept_at[attendance.session_id]
            versions.save("attendance", attendance, op="delete", changed=[])
            folded += 1
    for attendance in rows:
        if attendance.session_id not in kept_at:
            attendance.person_id = kept.id
            versions.save("attendance", attendance, op="update", changed=["person_id"])
            moved += 1
    return moved, folded


def _move_households(versions: _Versions, kept: Person, merged: Person) -> int:
    session = versions.session
    rows = session.exec(
        select(Household)
        .where(
            col(Household.deleted_at).is_(None),
            sa.or_(
                col(Household.head_person_id) == merged.id, _members_include(session, merged.id)
            ),
        )
        .order_by(col(Household.id))
        .with_for_update()
    ).all()
    for household in rows:
        changed = []
        if household.head_person_id == merged.id:
            household.head_person_id = kept.id
            changed.append("head_person_id")
        members, seen = [], set()
        for member in household.members or []:
            person_id = (
                str(kept.id) if member["person_id"] == str(merged.id) else member["person_id"]
            )
            if person_id not in seen:  # the kept person listed already: once is enough
                seen.add(person_id)
                members.append({**member, "person_id": person_id})
        if members != household.members:
            household.members = members
            changed.append("members")
        versions.save("household", household, op="update", changed=changed)
    return len(rows)


def _move_agreements(versions: _Versions, kept: Person, merged: Person) -> int:
    rows = versions.session.exec(
        select(Agreement)
        .where(col(Agreement.deleted_at).is_(None), col(Agreement.signatory_person_id) == merged.id)
        .order_by(col(Agreement.id))
        .with_for_update()
    ).all()
    for agreement in rows:
        agreement.signatory_person_id = kept.id
        versions.save("agreement", agreement, op="update", changed=["signatory_person_id"])
    return len(rows)


def _repoint_merged(versions: _Versions, kept: Person, merged: Person) -> int:
    """People merged into the merged one before now name the kept one."""
    rows = versions.session.exec(
        select(Person)
        .where(col(Person.merged_into) == merged.id)
        .order_by(col(Person.id))
        .with_for_update()
    ).all()
    for person in rows:
        person.merged_into = kept.id
        versions.save("person", person, op="update", changed=["merged_into"])
    return len(rows)


def _fill_kept(versions: _Versions, kept: Person, merged: Person) -> list[str]:
    """The kept person's empty fields, filled from the merged one's."""
    spec = PERSON
    state = records.state_of(spec, kept)
    theirs = records.state_of(spec, merged)
    filled = [
        name
        for name in FILLED_FROM_MERGED
        if state.get(name) is None and theirs.get(name) is not None
    ]
    if state.get("doc_number") is None and theirs.get("doc_number") is not None:
        filled += ["doc_type", "doc_number"]
    if not filled:
        return []
    records.write_state(spec, kept, {**state, **{name: theirs[name] for name in filled}})
    versions.save("person", kept, op="update", changed=filled)
    return sorted(filled)
