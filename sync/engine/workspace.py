"""What a push batch reads and writes, loaded in a few statements and written in a few.

A batch of hundreds of changes is decided in memory. ``prefetch()`` loads, set-wise,
everything the batch names: its records (locked, in id order, so concurrent batches
lock in one order), their parents, their version history, the reference data they
point at (sectors, communities, categories), the live records they could duplicate,
and the changes deferred until they arrive. What to load is read from the specs of
the catalog it is given; it names no record type. The engine (``sync.engine.push``) then reads and
writes only the workspace; what it did not foresee (a parent named by a change that
woke up) is loaded when first asked for. Nothing is written until ``flush()``, which
writes each table with one statement.

What a change does can be undone (``mark()`` / ``rollback()``), as a savepoint would
undo it, so a change found invalid halfway leaves nothing behind.
"""

from __future__ import annotations

import itertools
import operator
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from schemas import Conflict, DeferredChange, RecordVersion, RefusedChange, SyncChange
from schemas.sync import Change
from sync.engine.changelog import Changelog, PendingEntry
from sync.engine.entities import Catalog, EntitySpec, Reference
from sync.platform.database import insert_rows, one_of

Key = tuple[str, uuid.UUID]  # (entity, record id)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Values = tuple[Any, ...]  # a duplicate key's values (a session id and a person id)


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
    def __init__(self, session: Session, changelog: Changelog, catalog: Catalog) -> None:
        self.session = session
        self.connection = session.connection()
        self.changelog = changelog
        self.catalog = catalog
        self._records: dict[Key, Record | None] = {}
        self._history: dict[Key, list[Version]] = {}
        self._references: dict[Reference, dict[Any, Mapping[str, Any] | None]] = defaultdict(dict)
        self._live: dict[tuple[str, Values], set[uuid.UUID]] = defaultdict(set)
        self._keys_loaded: dict[str, list[tuple[frozenset[Any], ...]]] = defaultdict(list)
        self._waiting: dict[Key, list[Waiting]] = {}
        self._waiting_loaded: set[uuid.UUID] = set()
        self._waiting_seen: set[uuid.UUID] = set()  # every change id in ``_waiting``, ever
        self._writes = _Writes()
        self._stored: dict[uuid.UUID, dict[str, Any]] = {}
        self._undo: list[Callable[[], None]] = []
        # Written by this workspace, for ``sync.engine.wake.check_waits``: the records it
        # made, and what each change it deferred (and did not wake since) waits for.
        self.made: dict[str, list[uuid.UUID]] = defaultdict(list)
        self._deferred_for: dict[uuid.UUID, Key] = {}

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
            if change.entity in self.catalog:
                targets[change.entity].add(change.id)
        for entity, ids in targets.items():
            self._load(self.catalog[entity], ids, lock=True)
        parents: dict[str, set[uuid.UUID]] = defaultdict(set)
        for change in changes:
            spec = self.catalog.get(change.entity)
            if spec is not None:
                _collect_parents(spec, change.fields, parents)
        for record in self._records.values():
            if record is not None:
                _collect_parents(record.spec, record.values, parents)
        for entity, ids in parents.items():
            self._load(self.catalog[entity], ids - self._known(entity), lock=False)
        self._load_history([k for k, r in self._records.items() if r is not None and r.locked])
        self._load_references(changes)
        self._load_duplicate_keys(changes)
        self._load_waiting({change.id for change in changes})

    def _known(self, entity: str) -> set[uuid.UUID]:
        return {record_id for name, record_id in self._records if name == entity}

    def _load(self, spec: EntitySpec, ids: Iterable[uuid.UUID], *, lock: bool) -> None:
        wanted = in_order(ids)
        if not wanted:
            return
        table = spec.table.__table__  # type: ignore[attr-defined]
        query = (
            sa.select(table).where(one_of(self.connection, table.c.id, wanted)).order_by(table.c.id)
        )
        if lock:
            query = query.with_for_update()
        for record_id in wanted:
            self._records[(spec.name, record_id)] = None
        for row in self.connection.execute(query).mappings():
            record = Record(spec, dict(row), locked=lock)
            self._records[(spec.name, record.id)] = record
            self._index(None, record)

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
                .where(
                    table.c.entity == entity,
                    one_of(self.connection, table.c.record_id, in_order(ids)),
                )
                .order_by(table.c.record_id, table.c.version)
            )
            for record_id, version, device_id, changed in rows:
                self._history[(entity, record_id)].append(
                    Version(version, device_id, frozenset(changed))
                )

    def _load_references(self, changes: Sequence[Change]) -> None:
        wanted: dict[Reference, set[Any]] = defaultdict(set)
        for change in changes:
            spec = self.catalog.get(change.entity)
            for reference in spec.checked_references if spec is not None else ():
                wanted[reference].update(_values(reference, change.fields.get(reference.field)))
        for reference, values in wanted.items():
            self._load_reference(reference, values)

    def _load_reference(self, reference: Reference, values: Iterable[Any]) -> None:
        known = self._references[reference]
        wanted = sorted(set(values) - set(known), key=str)
        if not wanted:
            return
        table = _table(reference.table)
        column = table.c[reference.column]
        read = [column, *(table.c[name] for name in reference.reads)]
        for value in wanted:
            known[value] = None
        for row in self.connection.execute(
            sa.select(*read).where(one_of(self.connection, column, wanted))
        ).mappings():
            known[row[reference.column]] = dict(row)

    def _load_duplicate_keys(self, changes: Sequence[Change]) -> None:
        keys: dict[str, set[Values]] = defaultdict(set)
        for change in changes:
            spec = self.catalog.get(change.entity)
            if spec is not None and spec.duplicate is not None:
                found = [_ids(change.fields.get(name)) for name in spec.duplicate.key]
                keys[spec.name].update(itertools.product(*found))
        for entity, wanted in keys.items():
            self._load_live(self.catalog[entity], wanted)

    def _load_live(self, spec: EntitySpec, keys: set[Values]) -> None:
        """The live records of these duplicate keys, read by one query."""
        assert spec.duplicate is not None
        wanted = {key for key in keys if not self._key_loaded(spec, key)}
        if not wanted:
            return
        asked = tuple(frozenset(key[i] for key in wanted) for i in range(len(spec.duplicate.key)))
        table = _table(spec.table)
        key_columns = [table.c[name] for name in spec.duplicate.key]
        rows = self.connection.execute(
            sa.select(table.c.id, *key_columns).where(
                table.c.deleted_at.is_(None),
                *(
                    one_of(self.connection, c, in_order(values))
                    for c, values in zip(key_columns, asked, strict=True)
                ),
            )
        )
        for record_id, *key in rows:
            if (spec.name, record_id) not in self._records:  # else indexed as loaded
                self._live[(spec.name, tuple(key))].add(record_id)
        self._keys_loaded[spec.name].append(asked)

    def _key_loaded(self, spec: EntitySpec, key: Values) -> bool:
        """Whether a query has read this key: it asked for each of its values."""
        return any(
            all(value in values for value, values in zip(key, asked, strict=True))
            for asked in self._keys_loaded[spec.name]
        )

    def _load_waiting(self, ids: set[uuid.UUID]) -> None:
        wanted = in_order(ids - self._waiting_loaded)
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
            .where(one_of(self.connection, deferred.c.waiting_id, wanted))
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
            self._unindex(record)
            self._load(spec, [record_id], lock=True)
            record = self._records[key]
        return record

    def children(self, spec: EntitySpec, field: str, parent_id: uuid.UUID) -> list[Record]:
        """The live records of ``spec`` whose ``field`` names ``parent_id``, as the batch
        sees them (made in it or changed by it too), locked."""
        table = _table(spec.table)
        stored = self.connection.execute(
            sa.select(table.c.id).where(table.c[field] == parent_id, table.c.deleted_at.is_(None))
        ).scalars()
        self._load(spec, [i for i in stored if (spec.name, i) not in self._records], lock=True)
        ids = sorted(
            record.id
            for (name, _), record in self._records.items()
            if name == spec.name
            and record is not None
            and not record.deleted
            and record.values.get(field) == parent_id
        )
        found = [self.record(spec, record_id, lock=True) for record_id in ids]
        return [record for record in found if record is not None]

    def history(self, spec: EntitySpec, record_id: uuid.UUID) -> list[Version]:
        key = (spec.name, record_id)
        if key not in self._history:
            self._load_history([key])
        return self._history[key]

    def reference(self, reference: Reference, value: Any) -> Mapping[str, Any] | None:
        """The reference data ``value`` names (the columns ``reference`` reads of it),
        or None when there is none."""
        self._load_reference(reference, [value])
        return self._references[reference][value]

    def live_duplicates(self, record: Record) -> set[uuid.UUID]:
        """The live records with ``record``'s duplicate key (itself too, if live)."""
        key = _key(record)
        self._load_live(record.spec, {key})
        return set(self._live[(record.spec.name, key)])

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
        self._index(before, record)

        def undo() -> None:
            self._records[key] = before
            self._index(record, before)

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
        for spec in self.catalog.values():
            table = spec.table.__table__  # type: ignore[attr-defined]
            mine = [r for (name, _), r in self._records.items() if name == spec.name and r]
            updates = [
                {"_id": r.id, **{k: v for k, v in r.values.items() if k != "id"}}
                for r in mine
                if r.dirty
            ]
            if updates and spec.duplicate is not None:
                # One live record per duplicate key (one attendance per session and
                # person) is a unique index, checked row by row: the batch's final rows
                # agree with it, but written in any order one may meet another's old
                # key. So the changed rows leave the index first (as deleted), then take
                # their final state.
                ids = [u["_id"] for u in updates]
                leave = sa.update(table).where(one_of(self.connection, table.c.id, ids))
                run(leave.values(deleted_at=_EPOCH))
            if updates:
                run(sa.update(table).where(table.c.id == sa.bindparam("_id")), updates)
            inserts = [r.values for r in mine if r.new]
            if inserts:
                insert_rows(self.connection, table, inserts)
                self.made[spec.name] += [r.id for r in mine if r.new]  # unhashed: cheap
            for record in mine:
                if record.new or record.dirty:
                    self._records[(spec.name, record.id)] = replace(
                        record, new=False, dirty=False, locked=True
                    )
        writes = self._writes
        if writes.changes:
            insert_rows(self.connection, _table(SyncChange), list(writes.changes.values()))
        for change_id, values in writes.change_updates.items():
            if values:
                stored = _table(SyncChange)
                run(sa.update(stored).where(stored.c.change_id == change_id).values(values))
        for change_id in writes.undeferred:
            self._deferred_for.pop(change_id, None)
        if writes.undeferred:
            deferred = _table(DeferredChange)
            woken = one_of(self.connection, deferred.c.change_id, in_order(writes.undeferred))
            run(sa.delete(deferred).where(woken))
        if writes.deferred:
            run(sa.insert(_table(DeferredChange)), list(writes.deferred.values()))
            for row in writes.deferred.values():
                self._deferred_for[row["change_id"]] = (row["waiting_entity"], row["waiting_id"])
        if writes.conflicts:
            run(sa.insert(_table(Conflict)), writes.conflicts)
        if writes.refused:
            run(sa.insert(_table(RefusedChange)), writes.refused)
        self._writes = _Writes()
        self._undo.clear()

    @property
    def waits(self) -> dict[str, set[uuid.UUID]]:
        """The records the changes this workspace deferred wait for, by type."""
        waits: dict[str, set[uuid.UUID]] = defaultdict(set)
        for entity, record_id in self._deferred_for.values():
            waits[entity].add(record_id)
        return waits

    # ------------------------------------------------------------ duplicate keys

    def _index(self, before: Record | None, after: Record | None) -> None:
        if before is not None:
            self._unindex(before)
        if after is not None and after.spec.duplicate is not None and not after.deleted:
            self._live[(after.spec.name, _key(after))].add(after.id)

    def _unindex(self, record: Record) -> None:
        if record.spec.duplicate is not None:
            self._live[(record.spec.name, _key(record))].discard(record.id)


def _key(record: Record) -> Values:
    assert record.spec.duplicate is not None
    return tuple(record.values[name] for name in record.spec.duplicate.key)


def _values(reference: Reference, value: Any) -> list[Any]:
    """What a reference names, as the column holds it (fields are not validated yet)."""
    if reference.column == "id":
        return _ids(value)
    return [value] if isinstance(value, str) else []


def in_order(ids: Iterable[uuid.UUID]) -> list[uuid.UUID]:
    """``ids`` in the order ``sorted`` gives them, each id's number read in C as its
    key: ``UUID.__lt__`` is Python, called about twelve times an id of a batch."""
    return sorted(ids, key=_NUMBER)


_NUMBER = operator.attrgetter("int")


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


__all__ = ["Record", "Version", "Waiting", "Workspace", "in_order"]
