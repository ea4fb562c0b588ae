"""What a push batch reads and writes, loaded in a few statements and written in a few.

A batch of hundreds of changes is decided in memory. ``prefetch()`` loads, set-wise,
everything the batch names: its records (locked, in id order, so concurrent batches
lock in one order), their parents, their version history, the sectors, communities
and observation categories they point at, the live attendances they could duplicate,
and the changes deferred until they arrive. The engine (``sync.engine.push``) then reads and
writes only the workspace; what it did not foresee (a parent named by a change that
woke up) is loaded when first asked for. Nothing is written until ``flush()``, which
writes each table with one statement.

What a change does can be undone (``mark()`` / ``rollback()``), as a savepoint would
undo it, so a change found invalid halfway leaves nothing behind.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from schemas import (
    Attendance,
    Community,
    Conflict,
    DeferredChange,
    ObservationCategory,
    RecordVersion,
    RefusedChange,
    Sector,
    SyncChange,
)
from schemas.sync import Change
from sync.engine.changelog import Changelog, PendingEntry
from sync.engine.entities import ENTITIES, EntitySpec

Key = tuple[str, uuid.UUID]  # (entity, record id)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Pair = tuple[uuid.UUID, uuid.UUID]  # (session id, person id) of an attendance


@dataclass(frozen=True)
class Record:
    """A record as the batch sees it: every column, and what flushing it takes."""

    spec: EntitySpec
    values: dict[str, Any]
    new: bool = False  # to be inserted
    dirty: bool = False  # to be updated
    locked: bool = False  # loaded FOR UPDATE (or made here)

    @property
    def id(self) -> uuid.UUID:
        value: uuid.UUID = self.values["id"]
        return value

    @property
    def version(self) -> int:
        value: int = self.values["version"]
        return value

    @property
    def deleted(self) -> bool:
        return self.values["deleted_at"] is not None

    @property
    def scope(self) -> uuid.UUID:
        value: uuid.UUID = self.values[self.spec.scope_field]
        return value

    def changed(self, **values: Any) -> Record:
        """A copy with ``values`` set, to be written."""
        return replace(self, values={**self.values, **values}, dirty=not self.new)


@dataclass(frozen=True)
class Version:
    """One version of a record, as merges need it: who made it and what it changed."""

    version: int
    device_id: uuid.UUID | None
    changed: frozenset[str]


@dataclass
class Waiting:
    """A stored change deferred until a record arrives."""

    change_id: uuid.UUID
    device_id: uuid.UUID
    user_id: uuid.UUID
    seq: int
    received_at: datetime
    change: dict[str, Any]
    result: dict[str, Any]


@dataclass
class _Writes:
    """Rows to write at ``flush()``, by table."""

    changes: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    change_updates: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    deferred: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    undeferred: set[uuid.UUID] = field(default_factory=set)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)


class Workspace:
    def __init__(self, session: Session, changelog: Changelog) -> None:
        self.session = session
        self.connection = session.connection()
        self.changelog = changelog
        self._records: dict[Key, Record | None] = {}
        self._history: dict[Key, list[Version]] = {}
        self._sectors: dict[uuid.UUID, bool] = {}
        self._communities: dict[uuid.UUID, bool] = {}
        self._categories: dict[str, ObservationCategory | None] = {}
        self._live: dict[Pair, set[uuid.UUID]] = defaultdict(set)
        self._pairs_loaded: list[tuple[frozenset[uuid.UUID], frozenset[uuid.UUID]]] = []
        self._waiting: dict[Key, list[Waiting]] = {}
        self._waiting_loaded: set[uuid.UUID] = set()
        self._waiting_seen: set[uuid.UUID] = set()  # every change id in ``_waiting``, ever
        self._writes = _Writes()
        self._stored: dict[uuid.UUID, dict[str, Any]] = {}
        self._undo: list[Callable[[], None]] = []

    # ------------------------------------------------------------ undo

    def mark(self) -> int:
        return len(self._undo)

    def rollback(self, mark: int) -> None:
        """Undo everything done since ``mark``, newest first."""
        while len(self._undo) > mark:
            self._undo.pop()()

    # ------------------------------------------------------------ loading

    def prefetch(self, changes: Sequence[Change]) -> None:
        """Load what ``changes`` name, a few statements per record type."""
        targets: dict[str, set[uuid.UUID]] = defaultdict(set)
        for change in changes:
            if change.entity in ENTITIES:
                targets[change.entity].add(change.id)
        for entity, ids in targets.items():
            self._load(ENTITIES[entity], ids, lock=True)
        parents: dict[str, set[uuid.UUID]] = defaultdict(set)
        for change in changes:
            spec = ENTITIES.get(change.entity)
            if spec is not None:
                _collect_parents(spec, change.fields, parents)
        for record in self._records.values():
            if record is not None:
                _collect_parents(record.spec, record.values, parents)
        for entity, ids in parents.items():
            self._load(ENTITIES[entity], ids - self._known(entity), lock=False)
        self._load_history([k for k, r in self._records.items() if r is not None and r.locked])
        self._load_references(changes)
        self._load_attendance_pairs(changes)
        self._load_waiting({change.id for change in changes})

    def _known(self, entity: str) -> set[uuid.UUID]:
        return {record_id for name, record_id in self._records if name == entity}

    def _load(self, spec: EntitySpec, ids: Iterable[uuid.UUID], *, lock: bool) -> None:
        wanted = sorted(ids)
        if not wanted:
            return
        table = spec.table.__table__  # type: ignore[attr-defined]
        query = sa.select(table).where(table.c.id.in_(wanted)).order_by(table.c.id)
        if lock:
            query = query.with_for_update()
        for record_id in wanted:
            self._records[(spec.name, record_id)] = None
        for row in self.connection.execute(query).mappings():
            record = Record(spec, dict(row), locked=lock)
            self._records[(spec.name, record.id)] = record
            self._index_attendance(None, record)

    def _load_history(self, keys: Sequence[Key]) -> None:
        by_entity: dict[str, list[uuid.UUID]] = defaultdict(list)
        for entity, record_id in keys:
            if (entity, record_id) not in self._history:
                by_entity[entity].append(record_id)
                self._history[(entity, record_id)] = []
        table = RecordVersion.__table__  # type: ignore[attr-defined]
        for entity, ids in by_entity.items():
            rows = self.connection.execute(
                sa.select(table.c.record_id, table.c.version, table.c.device_id, table.c.changed)
                .where(table.c.entity == entity, table.c.record_id.in_(sorted(ids)))
                .order_by(table.c.record_id, table.c.version)
            )
            for record_id, version, device_id, changed in rows:
                self._history[(entity, record_id)].append(
                    Version(version, device_id, frozenset(changed))
                )

    def _load_references(self, changes: Sequence[Change]) -> None:
        sectors, communities, categories = set(), set(), set()
        for change in changes:
            sectors.update(_ids(change.fields.get("sector_id")))
            communities.update(_ids(change.fields.get("community_id")))
            key = change.fields.get("category_key")
            if isinstance(key, str):
                categories.add(key)
        self._load_existing(Sector, sectors, self._sectors)
        self._load_existing(Community, communities, self._communities)
        if categories:
            for key in categories:
                self._categories[key] = None
            rows = self.session.exec(
                select(ObservationCategory).where(
                    col(ObservationCategory.key).in_(sorted(categories))
                )
            )
            for category in rows:
                self._categories[category.key] = category

    def _load_existing(
        self,
        model: type[Sector] | type[Community],
        ids: set[uuid.UUID],
        known: dict[uuid.UUID, bool],
    ) -> None:
        wanted = sorted(ids - set(known))
        if not wanted:
            return
        table = _table(model)
        found = set(self.connection.scalars(sa.select(table.c.id).where(table.c.id.in_(wanted))))
        for value in wanted:
            known[value] = value in found

    def _load_attendance_pairs(self, changes: Sequence[Change]) -> None:
        pairs: set[Pair] = set()
        for change in changes:
            if change.entity == "attendance":
                sessions = _ids(change.fields.get("session_id"))
                persons = _ids(change.fields.get("person_id"))
                pairs.update((s, p) for s in sessions for p in persons)
        self._load_pairs(pairs)

    def _load_pairs(self, pairs: set[Pair]) -> None:
        wanted = {pair for pair in pairs if not self._pair_loaded(pair)}
        if not wanted:
            return
        sessions = sorted({s for s, _ in wanted})
        persons = sorted({p for _, p in wanted})
        table = Attendance.__table__  # type: ignore[attr-defined]
        rows = self.connection.execute(
            sa.select(table.c.id, table.c.session_id, table.c.person_id).where(
                table.c.deleted_at.is_(None),
                table.c.session_id.in_(sessions),
                table.c.person_id.in_(persons),
            )
        )
        for record_id, session_id, person_id in rows:
            if ("attendance", record_id) not in self._records:  # else indexed as loaded
                self._live[(session_id, person_id)].add(record_id)
        self._pairs_loaded.append((frozenset(sessions), frozenset(persons)))

    def _pair_loaded(self, pair: Pair) -> bool:
        """Whether a query has read this pair: it asked for these sessions and these persons."""
        session_id, person_id = pair
        return any(session_id in s and person_id in p for s, p in self._pairs_loaded)

    def _load_waiting(self, ids: set[uuid.UUID]) -> None:
        wanted = sorted(ids - self._waiting_loaded)
        if not wanted:
            return
        self._waiting_loaded.update(wanted)
        deferred = DeferredChange.__table__  # type: ignore[attr-defined]
        stored = SyncChange.__table__  # type: ignore[attr-defined]
        rows = self.connection.execute(
            sa.select(
                deferred.c.waiting_entity,
                deferred.c.waiting_id,
                stored.c.change_id,
                stored.c.device_id,
                stored.c.user_id,
                stored.c.seq,
                stored.c.received_at,
                stored.c.change,
                stored.c.result,
            )
            .join(stored, stored.c.change_id == deferred.c.change_id)
            .where(deferred.c.waiting_id.in_(wanted))
            .order_by(stored.c.received_at, stored.c.seq)
        )
        for entity, waiting_id, *rest in rows:
            waiting = Waiting(*rest)
            # What this workspace deferred or woke itself, it knows better than storage
            # (one change at a time, its deferrals are written before it is done).
            if waiting.change_id not in self._waiting_seen:
                self._waiting_seen.add(waiting.change_id)
                self._waiting.setdefault((entity, waiting_id), []).append(waiting)

    # ------------------------------------------------------------ reading

    def record(self, spec: EntitySpec, record_id: uuid.UUID, *, lock: bool) -> Record | None:
        """The record as the batch sees it; loaded (and locked, if asked) when first met."""
        key = (spec.name, record_id)
        if key not in self._records:
            self._load(spec, [record_id], lock=lock)
        record = self._records[key]
        if lock and record is not None and not record.locked:
            if record.new or record.dirty:
                return record
            self._records.pop(key)
            self._unindex_attendance(record)
            self._load(spec, [record_id], lock=True)
            record = self._records[key]
        return record

    def history(self, spec: EntitySpec, record_id: uuid.UUID) -> list[Version]:
        key = (spec.name, record_id)
        if key not in self._history:
            self._load_history([key])
        return self._history[key]

    def sector_exists(self, sector_id: uuid.UUID) -> bool:
        self._load_existing(Sector, {sector_id}, self._sectors)
        return self._sectors[sector_id]

    def community_exists(self, community_id: uuid.UUID) -> bool:
        self._load_existing(Community, {community_id}, self._communities)
        return self._communities[community_id]

    def category(self, key: str) -> ObservationCategory | None:
        if key not in self._categories:
            self._categories[key] = self.session.exec(
                select(ObservationCategory).where(col(ObservationCategory.key) == key)
            ).first()
        return self._categories[key]

    def live_attendance(self, session_id: uuid.UUID, person_id: uuid.UUID) -> set[uuid.UUID]:
        """The live attendances of this person at this session."""
        self._load_pairs({(session_id, person_id)})
        return set(self._live[(session_id, person_id)])

    def waiting_for(self, entity: str, record_id: uuid.UUID) -> list[Waiting]:
        """The changes deferred until this record arrives, oldest first."""
        self._load_waiting({record_id})
        return list(self._waiting.get((entity, record_id), []))

    # ------------------------------------------------------------ writing

    def put(self, record: Record) -> None:
        """Keep ``record`` as the record's new state, to be written at ``flush()``."""
        key = (record.spec.name, record.id)
        before = self._records.get(key)
        self._records[key] = record
        self._index_attendance(before, record)

        def undo() -> None:
            self._records[key] = before
            self._index_attendance(record, before)

        self._undo.append(undo)

    def add_version(self, record: Record, made: Version, **entry: Any) -> None:
        """Record a version: in the history merges read, and in the change log."""
        key = (record.spec.name, record.id)
        if record.new and key not in self._history:
            self._history[key] = []  # a record made in this batch has no past
        history = self.history(record.spec, record.id)
        history.append(made)
        self.changelog.version(**entry)

        def undo() -> None:
            history.pop()
            self.changelog.drop_last_version()

        self._undo.append(undo)

    def touch(self, entry: PendingEntry) -> None:
        replaced = self.changelog.touch(entry)
        self._undo.append(lambda: self.changelog.untouch(entry.entity, entry.record_id, replaced))

    def open_conflict(self, row: dict[str, Any]) -> None:
        conflicts = self._writes.conflicts
        conflicts.append(row)
        self._undo.append(lambda: conflicts.remove(row))

    def store_change(self, row: dict[str, Any]) -> None:
        """A change received in this batch, with its answer."""
        self._writes.changes[row["change_id"]] = row
        self._stored[row["change_id"]] = row

    def stored(self, change_id: uuid.UUID) -> dict[str, Any]:
        """A change stored in this batch (written or not yet)."""
        return self._stored[change_id]

    def update_stored(self, change_id: uuid.UUID, **values: Any) -> None:
        """Change a stored change's bookkeeping (a deferred change that woke up)."""
        if change_id in self._writes.changes:
            target = self._writes.changes[change_id]
        else:
            target = self._writes.change_updates.setdefault(change_id, {})
        before = dict(target)
        target.update(values)

        def undo() -> None:
            target.clear()
            target.update(before)

        self._undo.append(undo)

    def defer(self, entity: str, record_id: uuid.UUID, waiting: Waiting, now: datetime) -> None:
        self._writes.deferred[waiting.change_id] = {
            "change_id": waiting.change_id,
            "waiting_entity": entity,
            "waiting_id": record_id,
            "created_at": now,
        }
        queue = self._waiting.setdefault((entity, record_id), [])
        queue.append(waiting)
        self._waiting_seen.add(waiting.change_id)

        def undo() -> None:
            self._writes.deferred.pop(waiting.change_id, None)
            queue.remove(waiting)

        self._undo.append(undo)

    def wake(self, entity: str, record_id: uuid.UUID, waiting: Waiting) -> None:
        """``waiting`` no longer waits for this record."""
        queue = self._waiting[(entity, record_id)]
        position = queue.index(waiting)
        queue.pop(position)
        pending = self._writes.deferred.pop(waiting.change_id, None)
        was_gone = waiting.change_id in self._writes.undeferred
        if pending is None:
            self._writes.undeferred.add(waiting.change_id)

        def undo() -> None:
            queue.insert(position, waiting)
            if pending is not None:
                self._writes.deferred[waiting.change_id] = pending
            elif not was_gone:
                self._writes.undeferred.discard(waiting.change_id)

        self._undo.append(undo)

    def refuse(self, row: dict[str, Any]) -> None:
        self._writes.refused.append(row)

    def discard_writes(self) -> None:
        """Forget what was not written (its savepoint was rolled back)."""
        for change_id in self._writes.changes:
            self._stored.pop(change_id, None)
        self._writes = _Writes()
        self._undo.clear()

    def flush(self) -> None:
        """Write everything, one statement per table and kind; then forget the undo log."""
        run = self.connection.execute
        for spec in ENTITIES.values():
            table = spec.table.__table__  # type: ignore[attr-defined]
            mine = [r for (name, _), r in self._records.items() if name == spec.name and r]
            updates = [
                {"_id": r.id, **{k: v for k, v in r.values.items() if k != "id"}}
                for r in mine
                if r.dirty
            ]
            if updates and spec.name == "attendance":
                # One live attendance per (session, person) is a unique index, checked
                # row by row: the batch's final rows agree with it, but written in any
                # order one may meet another's old pair. So the changed rows leave the
                # index first (as deleted), then take their final state.
                ids = [u["_id"] for u in updates]
                run(sa.update(table).where(table.c.id.in_(ids)).values(deleted_at=_EPOCH))
            if updates:
                run(sa.update(table).where(table.c.id == sa.bindparam("_id")), updates)
            inserts = [r.values for r in mine if r.new]
            if inserts:
                run(sa.insert(table), inserts)
            for record in mine:
                if record.new or record.dirty:
                    self._records[(spec.name, record.id)] = replace(
                        record, new=False, dirty=False, locked=True
                    )
        writes = self._writes
        if writes.changes:
            run(sa.insert(_table(SyncChange)), list(writes.changes.values()))
        for change_id, values in writes.change_updates.items():
            if values:
                stored = _table(SyncChange)
                run(sa.update(stored).where(stored.c.change_id == change_id).values(values))
        if writes.undeferred:
            deferred = _table(DeferredChange)
            run(sa.delete(deferred).where(deferred.c.change_id.in_(sorted(writes.undeferred))))
        if writes.deferred:
            run(sa.insert(_table(DeferredChange)), list(writes.deferred.values()))
        if writes.conflicts:
            run(sa.insert(_table(Conflict)), writes.conflicts)
        if writes.refused:
            run(sa.insert(_table(RefusedChange)), writes.refused)
        self._writes = _Writes()
        self._undo.clear()

    # ------------------------------------------------------------ attendance index

    def _index_attendance(self, before: Record | None, after: Record | None) -> None:
        if before is not None:
            self._unindex_attendance(before)
        if after is not None and after.spec.name == "attendance" and not after.deleted:
            self._live[_pair(after)].add(after.id)

    def _unindex_attendance(self, record: Record) -> None:
        if record.spec.name == "attendance":
            self._live[_pair(record)].discard(record.id)


def _pair(record: Record) -> Pair:
    return record.values["session_id"], record.values["person_id"]


def _table(model: type[Any]) -> sa.Table:
    table: sa.Table = model.__table__
    return table


def _ids(value: Any) -> list[uuid.UUID]:
    """``value`` as a UUID if it is one (fields are not validated yet)."""
    if isinstance(value, uuid.UUID):
        return [value]
    if isinstance(value, str):
        try:
            return [uuid.UUID(value)]
        except ValueError:
            return []
    return []


def _collect_parents(
    spec: EntitySpec, values: dict[str, Any], into: dict[str, set[uuid.UUID]]
) -> None:
    for parent in spec.parents:
        into[parent.entity].update(_ids(values.get(parent.field)))


__all__ = ["Record", "Version", "Waiting", "Workspace"]
