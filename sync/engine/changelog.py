"""The change log: versions of records, the clock that orders changes, pull entries.

Every writing transaction that changes records ends with ``publish()``: it takes
``n`` numbers from the clock (``UPDATE … RETURNING``) and gives them to the pull
entries of the records it changed, in order. The clock row stays locked until the
transaction commits, so a later transaction gets its numbers only after this one is
durable: **change sequence order is commit order**, on PostgreSQL with any number of
server processes, and on SQLite (one writer at a time) by construction. A pull that
sees number N has therefore seen everything below N, and a cursor is never handed out
past a change that could still commit before it.

On PostgreSQL the clock is taken by the transaction's last statement, so that other
writers wait for it as briefly as can be: the entries are written before, under
stand-in numbers of the transaction's own, which that statement renumbers. Stand-ins
are never seen by anyone else: they are uncommitted, and gone by the commit. On SQLite,
where the whole transaction holds the one write lock anyway, the clock is taken first
and the entries written under their own numbers.

A record that changes scope (a patrol moved to another sector, a community to another
sector) leaves an **exit** in its old scope (``sync_exit``), numbered just before its
entry in the new one, in the same ``publish()``: the old scope's tablets read it as a
delete, the new scope's the entry, and both are in commit order as every change is.
The exit is found here, by comparing the entry's scope keys with the stored ones, so
that no writer (a push, a resolution, an admin's edit of a community) can forget it.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from schemas import Conflict, RecordVersion, SyncClock, SyncEntry, SyncExit
from schemas.records import SyncedColumns
from schemas.sync import CLOCK_ID
from sync.engine import files, records
from sync.engine.entities import EntitySpec
from sync.platform import chain
from sync.platform.database import insert_rows, is_postgresql, one_of, upsert

# The reason of the version a record takes when the record it hangs from moves scope
# (a patrol's observations, moved with it to another sector).
MOVED_WITH_PARENT = "moved_with_parent"


@dataclass
class PendingEntry:
    entity: str
    record_id: uuid.UUID
    version: int
    deleted: bool
    sector_id: uuid.UUID | None
    community_id: uuid.UUID | None
    fields: dict[str, Any]
    updated_at: datetime
    # Made by this transaction: it has no stored entry, so it left no scope.
    new: bool = False

    @property
    def key(self) -> tuple[str, uuid.UUID]:
        return self.entity, self.record_id


class Changelog:
    """Collects the versions a transaction made and the records it changed;
    ``publish()`` writes the versions and stamps the records' entries in order, each
    with one statement."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._pending: dict[tuple[str, uuid.UUID], PendingEntry] = {}
        self._versions: list[dict[str, Any]] = []
        # The clock's count of deferrals, as its holder sees it, once this transaction
        # has taken the clock to number its entries (PostgreSQL).
        self.deferrals_held: int | None = None

    def touch(self, entry: PendingEntry) -> PendingEntry | None:
        """Queue ``entry``; the entry it replaces, if the record was touched before."""
        replaced = self._pending.pop(entry.key, None)  # re-touched: it moves to the end
        if replaced is not None and replaced.new:
            entry.new = True  # still made by this transaction
        self._pending[entry.key] = entry
        return replaced

    def untouch(self, entity: str, record_id: uuid.UUID, replaced: PendingEntry | None) -> None:
        """Undo a ``touch``: put back the entry it replaced, or none."""
        key = (entity, record_id)
        if replaced is None:
            self._pending.pop(key, None)
        else:
            self._pending[key] = replaced

    def drop_last_version(self) -> None:
        """Undo the last ``version()``."""
        self._versions.pop()

    def version(
        self,
        *,
        entity: str,
        record_id: uuid.UUID,
        version: int,
        op: str,
        fields: dict[str, Any],
        changed: list[str],
        user_id: uuid.UUID | None,
        device_id: uuid.UUID | None,
        change_id: uuid.UUID | None,
        reason: str | None,
        recorded_at: datetime | None,
        now: datetime,
    ) -> None:
        self._versions.append(
            {
                "entity": entity,
                "record_id": record_id,
                "version": version,
                "op": op,
                "fields": fields,
                "changed": changed,
                "user_id": user_id,
                "device_id": device_id,
                "change_id": change_id,
                "reason": reason,
                "recorded_at": recorded_at,
                "created_at": now,
            }
        )

    def publish(self) -> None:
        self.session.flush()
        if self._versions:
            table = _table(RecordVersion)
            versions = [chain.chained_row(self.session, table, v) for v in self._versions]
            insert_rows(self.session.connection(), table, versions)
            self._versions = []
        if not self._pending:
            return
        pending = list(self._pending.values())
        left = _scopes_left(self.session, pending)
        # What needs no change number is written before the clock is taken: from then
        # until commit, every other writer waits.
        if left:
            _conflicts_follow(self.session, [e for e in pending if e.key in left])
        files.relink(
            self.session, ((e.entity, e.record_id, e.deleted, e.new, e.fields) for e in pending)
        )
        count = len(pending) + len(left)
        seal = chain.pending(self.session)
        if is_postgresql(self.session):
            # The entries (and exits) are written now, under stand-in numbers below
            # zero that are this transaction's own, and renumbered from the clock by
            # one statement: from the clock until commit, every other writer waits,
            # and the server's Python (which must win the GIL back after each
            # statement) has no part of that wait.
            base = _stand_in_base(count)
            first, step = -base, -1
        else:
            first, step = _take_numbers(self.session, count=count, seal=seal), 1
        rows: list[dict[str, Any]] = []
        made: list[dict[str, Any]] = []  # of records this transaction made
        exits: list[dict[str, Any]] = []
        at = 0  # the next row's place in this publish's run of numbers
        for entry in pending:
            keys = left.get(entry.key)
            if keys is not None:  # numbered just before the record's entry
                exits.append(
                    {
                        "change_seq": first + step * at,
                        "entity": entry.entity,
                        "record_id": entry.record_id,
                        "version": entry.version,
                        **keys,
                        "updated_at": entry.updated_at,
                    }
                )
                at += 1
            row = _entry_row(entry, first + step * at)
            at += 1
            (made if entry.new else rows).append(row)
        if exits:
            self.session.connection().execute(sa.insert(_table(SyncExit)), exits)
        # A record made by this transaction has no entry yet (its own row's insert
        # would have failed): its entry is inserted, by COPY on PostgreSQL, which
        # costs a third of an upsert's statement run for each.
        if made:
            insert_rows(self.session.connection(), _table(SyncEntry), made)
        if rows:
            _upsert_entries(self.session, rows)
        if is_postgresql(self.session):
            # Takes the clock, and seals the audit chain's block of what this wrote.
            self.deferrals_held = number(
                self.session, base=base, count=count, exits=bool(exits), seal=seal
            )
        self._pending.clear()


def _entry_row(entry: PendingEntry, change_seq: int) -> dict[str, Any]:
    """The ``sync_entry`` row of ``entry``, under (stand-in) number ``change_seq``."""
    return {
        "entity": entry.entity,
        "record_id": entry.record_id,
        "change_seq": change_seq,
        "version": entry.version,
        "deleted": entry.deleted,
        "sector_id": entry.sector_id,
        "community_id": entry.community_id,
        "fields": entry.fields,
        "updated_at": entry.updated_at,
    }


def entry_of(
    spec: EntitySpec, values: Mapping[str, Any], state: dict[str, Any], *, new: bool = False
) -> PendingEntry:
    """A record's pull entry, from its column values and its state (stamped with a
    change number at ``publish()``): the scope key of its kind, and what devices see.
    ``new``: the record is made by this transaction."""
    deleted = values["deleted_at"] is not None
    return PendingEntry(
        entity=spec.name,
        record_id=values["id"],
        version=values["version"],
        deleted=deleted,
        **spec.scope_keys(values[spec.scope_field]),
        fields={} if deleted else records.snapshot_from(spec, values, state),
        updated_at=values["updated_at"],
        new=new,
    )


def row_entry(spec: EntitySpec, row: SyncedColumns, state: dict[str, Any]) -> PendingEntry:
    """``entry_of`` an ORM row."""
    names = {"id", "version", "deleted_at", "updated_at", spec.scope_field}
    names |= {*spec.server_fields, *records.SNAPSHOT_META}
    return entry_of(spec, {name: getattr(row, name) for name in names}, state)


# Stand-in numbers are -(base + i) for the i-th row of a publish: ``base`` a random
# multiple of 2**20 below 2**62, so that the stand-ins of transactions open at once
# never meet in the unique index of change numbers (were two ever to, the later
# transaction's batch would be decided again, as after any lost race).
STAND_IN_SPAN = 2**20


def _stand_in_base(count: int) -> int:
    if count >= STAND_IN_SPAN:
        raise ValueError(f"a publish of {count} changes; at most {STAND_IN_SPAN - 1}")
    return (secrets.randbelow(2**42 - 1) + 1) * STAND_IN_SPAN


def deferrals(session: Session) -> int:
    """How many pushes that deferred changes had committed, as of now
    (``sync.engine.wake``)."""
    return _deferrals(session, hold=False)


def hold_clock(session: Session) -> int | None:
    """PostgreSQL: lock the clock's row now, until the transaction ends, as numbering
    does (``number``), and read its count of deferrals: a transaction that holds it sees
    all that the ones that held it before wrote (``sync.engine.wake``). None on SQLite,
    whose writers hold the whole database already."""
    return _deferrals(session, hold=True) if is_postgresql(session) else None


def _deferrals(session: Session, *, hold: bool) -> int:
    clock = _table(SyncClock)
    query = sa.select(clock.c.deferrals).where(clock.c.id == CLOCK_ID)
    if hold:
        query = query.with_for_update()
    count: int = session.connection().execute(query).scalar_one()  # not the ORM's: 0.2 ms less
    return count


def count_deferral(session: Session) -> None:
    """Count this transaction among those that deferred changes (the clock held)."""
    clock = _table(SyncClock)
    session.connection().execute(
        sa.update(clock).where(clock.c.id == CLOCK_ID).values(deferrals=clock.c.deferrals + 1)
    )


def number(
    session: Session, *, base: int, count: int, exits: bool, seal: chain.Seal | None = None
) -> int:
    """PostgreSQL: take ``count`` numbers from the clock and give them, in order, to this
    transaction's entries and exits written under stand-ins ``-(base + i)``; and
    ``seal`` the audit chain's block of what it wrote, whose head the clock row holds.
    One statement: the clock's ``UPDATE … RETURNING``, the renumbering ``UPDATE`` and the
    block's ``INSERT`` as common table expressions of a ``SELECT`` of the clock's count
    of deferrals, which is returned (as ``hold_clock`` reads it), so that no statement
    need follow this one. Locks the clock row until the transaction ends (call it
    last)."""
    tables = [_table(SyncEntry), *([_table(SyncExit)] if exits else [])]
    clock_cte = _advance(count, seal).cte("clock")
    top: Any = sa.select(clock_cte.c.seq).scalar_subquery()
    statement = sa.select(clock_cte.c.deferrals).add_cte(clock_cte)
    # Each run to completion by PostgreSQL, though the statement reads none of them.
    for table in tables:
        statement = statement.add_cte(
            _renumber(table, top, base, count).cte(f"{table.name}_renumbered")
        )
    if seal is not None:
        statement = statement.add_cte(seal.block(clock_cte).cte("sealed"))
    held: int = session.execute(statement).scalar_one()
    if seal is not None:
        chain.sealed(session)
    return held


def _take_numbers(session: Session, *, count: int, seal: chain.Seal | None) -> int:
    """SQLite: the first of ``count`` numbers taken from the clock now, and ``seal``
    written. Its writers take turns for their whole transaction (``BEGIN IMMEDIATE``),
    so the clock can be taken before the entries are written, under their own numbers:
    renumbering them rewrote every entry, its document with it, which took longer than
    writing it (docs/performance.md)."""
    head = session.execute(_advance(count, seal)).one()
    if seal is not None:
        session.execute(seal.block_after(head))
        chain.sealed(session)
    first: int = head.seq - count + 1
    return first


def _advance(count: int, seal: chain.Seal | None) -> sa.Update:
    """The clock's ``UPDATE … RETURNING``: ``count`` numbers taken, and the chain's head
    moved past ``seal``'s block."""
    clock_table = _table(SyncClock)
    return (
        sa.update(clock_table)
        .where(clock_table.c.id == CLOCK_ID)
        .values(seq=clock_table.c.seq + count, **(seal.advance(clock_table) if seal else {}))
        .returning(
            clock_table.c.seq,
            clock_table.c.deferrals,
            *(seal.returning(clock_table) if seal else []),
        )
    )


def _renumber(table: sa.Table, top: Any, base: int, count: int) -> sa.Update:
    """Give the rows of ``table`` under stand-ins ``-(base + i)`` the numbers
    ``top - count + 1 + i``."""
    stand_in = table.c.change_seq
    return (
        sa.update(table)
        .where(stand_in <= -base, stand_in > -(base + count))
        .values(change_seq=top - count + 1 - stand_in - base)
    )


def clock(session: Session) -> tuple[int, uuid.UUID]:
    """The highest change number committed (as this transaction sees it), and the epoch."""
    row = session.exec(select(SyncClock).where(SyncClock.id == CLOCK_ID)).one()
    return row.seq, row.epoch


SCOPE_KEYS = ("sector_id", "community_id")


def _scopes_left(
    session: Session, entries: Iterable[PendingEntry]
) -> dict[tuple[str, uuid.UUID], dict[str, uuid.UUID | None]]:
    """The scope keys each entry's record leaves, by (entity, record id): of its stored
    entry, the keys that differ from the new one's (the other set to None). One query
    per record type; records made by this transaction are not asked for."""
    wanted: dict[str, dict[uuid.UUID, PendingEntry]] = {}
    for entry in entries:
        if not entry.new:
            wanted.setdefault(entry.entity, {})[entry.record_id] = entry
    left: dict[tuple[str, uuid.UUID], dict[str, uuid.UUID | None]] = {}
    table = _table(SyncEntry)
    for entity, by_id in wanted.items():
        stored = session.connection().execute(
            sa.select(table.c.record_id, table.c.sector_id, table.c.community_id).where(
                table.c.entity == entity,
                one_of(session, table.c.record_id, sorted(by_id)),
            )
        )
        for record_id, *old in stored:
            entry = by_id[record_id]
            keys = {
                name: before if before is not None and before != getattr(entry, name) else None
                for name, before in zip(SCOPE_KEYS, old, strict=True)
            }
            if any(keys.values()):
                left[(entity, record_id)] = keys
    return left


def _conflicts_follow(session: Session, moved: list[PendingEntry]) -> None:
    """The conflicts of records that moved take their new scope, so that the people of
    the new one see and settle them (a ranger lead of the patrol's new sector)."""
    table = _table(Conflict)
    session.connection().execute(
        sa.update(table)
        .where(
            table.c.entity == sa.bindparam("_entity"),
            table.c.record_id == sa.bindparam("_record_id"),
        )
        .values(sector_id=sa.bindparam("_sector_id"), community_id=sa.bindparam("_community_id")),
        [
            {
                "_entity": e.entity,
                "_record_id": e.record_id,
                "_sector_id": e.sector_id,
                "_community_id": e.community_id,
            }
            for e in moved
        ],
    )


def _upsert_entries(session: Session, rows: list[dict[str, Any]]) -> None:
    updated = (
        "change_seq",
        "version",
        "deleted",
        "sector_id",
        "community_id",
        "fields",
        "updated_at",
    )
    # One statement run for every row (executemany): compiled once and cached, where
    # a VALUES list of n rows would be a new statement for every n.
    session.connection().execute(
        upsert(session, SyncEntry, key=("entity", "record_id"), update=updated), rows
    )


def _table(model: type[Any]) -> sa.Table:
    table: sa.Table = model.__table__
    return table
