"""Push: a device's batch of offline changes, each answered, none lost, none applied twice.

For every change, in ``seq`` order, inside the request's one transaction:

1. **Idempotency.** A ``change_id`` seen before gets the answer it got then
   (``replayed: true``); the same id with other content is ``change_id_reused``.
   Pushes of one device are serialised by a lock on its row, so the same batch
   arriving twice at once, on two server processes, is applied once.
2. **Validation and scope.** Unknown types, ops or fields, invalid values, and
   records outside the caller's scope are ``rejected``, and kept with their reason.
3. **Deferral.** A change naming a parent the server does not hold yet (an
   attendance before its session) is ``deferred``: stored, and applied by itself
   when the parent arrives, in any later push.
4. **The decision.** Creates apply. Updates merge field by field against the
   version the device last saw (``sync.engine.merge``); a device never conflicts with
   itself. Edits of an approved patrol and updates or deletes meeting a server-side
   delete open a conflict; nothing the device sent is lost.

The batch is set-based: what it names is read up front in a few statements, every
change is decided in memory (``sync.engine.workspace``), and each table is written with one
statement at the end. A change found invalid halfway is undone in memory, as a
savepoint would. When another device's batch wins a race for the same row (the same
attendance recorded on two tablets at once), the database refuses our write and the
whole batch is decided again, seeing the winner; should that keep failing, the last
attempt goes one change at a time, each in its own savepoint, so that one bad change
can never block the rest. The batch is answered only after the transaction commits
(``api.deps``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session, select

from schemas import Device, SyncChange, User
from schemas.records import Fields
from schemas.sync import (
    Change,
    ChangeError,
    ChangeResult,
    ConflictStatus,
    Op,
    PushRequest,
    PushResponse,
    Status,
)
from schemas.types import utcnow
from sync.accounts.auth import principal_of
from sync.accounts.principal import Principal
from sync.engine import records
from sync.engine.changelog import Changelog, PendingEntry
from sync.engine.entities import ENTITIES, PUSHABLE, REFERENCE_ENTITIES, Domain, EntitySpec
from sync.engine.merge import changed_fields, merge_update
from sync.engine.rules import (
    Deferred,
    Rejected,
    Rules,
    as_uuid,
    attribute_problems,
    settable_problems,
)
from sync.engine.workspace import Record, Version, Waiting, Workspace
from sync.platform.database import unavailable
from sync.platform.errors import FieldProblem, Forbidden, PayloadTooLarge
from sync.platform.settings import Settings

# How often a batch is decided again after losing a race; the last try goes one
# change at a time.
ATTEMPTS = 3
# PostgreSQL's deadlock_detected and serialization_failure: the batch lost a race.
RACE_STATES = frozenset({"40P01", "40001"})

log = logging.getLogger("fieldsync")


# The NUL character in canonical JSON: ``\u0000`` after an even number of backslashes
# (``\\u0000`` is a backslash, then the text "u0000").
NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def _document(change: Change) -> dict[str, Any]:
    """``change.model_dump(mode="json")``, without serialising ``fields`` value by value:
    they were read from JSON and are JSON already (pydantic's walk of a ``dict[str,
    Any]`` of a hundred track points was the largest cost of preparing a batch)."""
    document = change.model_dump(mode="json", exclude={"fields"})
    document["fields"] = change.fields
    return document


def canonical(document: dict[str, Any]) -> str:
    """A change's JSON form (``Change.model_dump(mode="json")``) as the text it is
    hashed by: keys sorted, no spaces, ASCII."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Prepared:
    """What can be worked out of a change without the database: its JSON form, the
    text it is hashed by, and, for a create, its fields validated (or why not)."""

    change: Change  # the very object prepared: a change_id sent twice is prepared once
    document: dict[str, Any]
    text: str
    digest: str
    created: tuple[Fields, dict[str, Any]] | records.InvalidFields | None


def prepare(batch: PushRequest) -> dict[uuid.UUID, Prepared]:
    """Each change of the batch, prepared. This is about half of a batch's CPU, and it
    runs before the transaction opens: on SQLite the write lock is held only for the
    decisions that need the database, and several server processes prepare at once."""
    prepared: dict[uuid.UUID, Prepared] = {}
    for change in batch.changes:
        document = _document(change)
        text = canonical(document)
        created: tuple[Fields, dict[str, Any]] | records.InvalidFields | None = None
        spec = ENTITIES.get(change.entity)
        if spec is not None and change.op == Op.create and set(change.fields) <= spec.settable:
            try:
                model = records.validated(spec, change.fields)
                created = model, model.model_dump(mode="json")
            except records.InvalidFields as invalid:
                created = invalid
        prepared.setdefault(
            change.change_id, Prepared(change, document, text, content_hash(text), created)
        )
    return prepared


def push(
    session: Session,
    *,
    principal: Principal,
    batch: PushRequest,
    settings: Settings,
    prepared: dict[uuid.UUID, Prepared] | None = None,
) -> PushResponse:
    """Apply a batch; one result per change, in the order sent. ``prepared`` is
    ``prepare(batch)``, when the caller made it outside the transaction."""
    if principal.device_id is None:
        raise Forbidden("pushing needs a device's token; enroll the device", code="device_required")
    if batch.device_id != principal.device_id:
        raise Forbidden("this batch names another device than the token's", code="wrong_device")
    if len(batch.changes) > settings.max_batch:
        raise PayloadTooLarge(
            f"a batch holds at most {settings.max_batch} changes; send smaller ones",
            code="batch_too_large",
        )
    # Pushes of one device take turns: the same batch sent twice at once (two server
    # processes, a retry racing its original) is applied once and replayed once.
    device = session.exec(
        select(Device).where(Device.id == principal.device_id).with_for_update()
    ).one()
    now = utcnow()
    if prepared is None:
        prepared = prepare(batch)
    attempt = 1
    while True:
        one_by_one = attempt == ATTEMPTS
        try:
            with session.begin_nested():
                return _push_once(
                    session, principal, batch, prepared, device, now=now, one_by_one=one_by_one
                )
        except DBAPIError as error:
            if one_by_one or unavailable(error):
                raise
            # A lost race is decided again; anything else goes one change at a time at
            # once, so that the change the database refuses is rejected alone.
            attempt = attempt + 1 if _lost_race(error) else ATTEMPTS


def _lost_race(error: DBAPIError) -> bool:
    return isinstance(error, IntegrityError) or (
        getattr(error.orig, "sqlstate", None) in RACE_STATES
    )


def _push_once(
    session: Session,
    principal: Principal,
    batch: PushRequest,
    prepared: dict[uuid.UUID, Prepared],
    device: Device,
    *,
    now: datetime,
    one_by_one: bool,
) -> PushResponse:
    engine = PushEngine(session, now=now, batch_id=batch.batch_id, prepared=prepared)
    known = _stored(session, [c.change_id for c in batch.changes])
    if not one_by_one:
        engine.ws.prefetch(batch.changes)
    floor = device.last_seq if device.last_seq is not None else -1
    used_seqs: set[int] = set()
    results: list[ChangeResult | None] = [None] * len(batch.changes)
    for index in sorted(range(len(batch.changes)), key=lambda i: batch.changes[i].seq):
        change = batch.changes[index]
        ready = prepared.get(change.change_id)
        if ready is not None and ready.change is change:
            document, text, digest = ready.document, ready.text, ready.digest
        else:  # the same change_id a second time in the batch
            document = _document(change)
            text = canonical(document)
            digest = content_hash(text)
        prior = known.get(change.change_id)
        if prior is not None:
            result = _replay(prior, change, digest, device.id)
            if result.replayed is not True:  # the id was used for other content
                engine.refuse(principal, change, result)
            results[index] = result
            continue
        unstorable = _unstorable(change, text)
        if unstorable is not None:
            kept = _storable(change)
            result = engine.reject(
                principal, kept, kept.model_dump(mode="json"), unstorable, digest
            )
            used_seqs.add(change.seq)
        elif change.seq <= floor or change.seq in used_seqs:
            result = engine.reject(
                principal,
                change,
                document,
                Rejected("seq", "seq_not_increasing", f"seq {change.seq} was already used"),
                digest,
            )
        elif one_by_one:
            result = engine.receive_alone(principal, change, document, digest)
            used_seqs.add(change.seq)
        else:
            result = engine.receive(principal, change, document, digest)
            used_seqs.add(change.seq)
        known[change.change_id] = engine.ws.stored(change.change_id)
        results[index] = result
    engine.ws.flush()
    if used_seqs:
        device.last_seq = max(max(used_seqs), floor)
    device.last_seen_at = now
    session.add(device)
    engine.changelog.publish()  # last: it takes the clock, held until commit
    return PushResponse(
        results=[r for r in results if r is not None],
        last_seq=device.last_seq,
        server_time=now,
    )


def _stored(session: Session, change_ids: list[uuid.UUID]) -> dict[uuid.UUID, Mapping[str, Any]]:
    """The changes of this batch the server has already received, by id."""
    table = SyncChange.__table__  # type: ignore[attr-defined]
    rows = session.connection().execute(
        sa.select(table.c.change_id, table.c.content_hash, table.c.device_id, table.c.result).where(
            table.c.change_id.in_(sorted(set(change_ids)))
        )
    )
    return {row.change_id: dict(row._mapping) for row in rows}


MAX_NAME = 64  # sync_change.entity
MAX_OP = 16  # sync_change.op


def _unstorable(change: Change, text: str) -> Rejected | None:
    """Why a change cannot even be looked at: text PostgreSQL cannot hold (NUL), or
    names longer than any record type or op has."""
    if "\\u0000" in text and NUL_ESCAPE.search(text):
        return Rejected("fields", "nul_character", "text must not contain the NUL character")
    if len(change.entity) > MAX_NAME:
        return Rejected("entity", "unknown_entity", "no such record type")
    if len(change.op) > MAX_OP:
        return Rejected("op", "unknown_op", "op is create, update or delete")
    return None


def _storable(change: Change) -> Change:
    """The change as it can be kept for admins to read: NULs shown as U+FFFD."""
    text = json.dumps(change.model_dump(mode="json")).replace("\\u0000", "\\ufffd")
    kept = Change.model_validate(json.loads(text))
    return kept.model_copy(update={"entity": kept.entity[:MAX_NAME], "op": kept.op[:MAX_OP]})


def _replay(
    prior: Mapping[str, Any], change: Change, digest: str, device_id: uuid.UUID
) -> ChangeResult:
    if prior["content_hash"] == digest and prior["device_id"] == device_id:
        return ChangeResult.model_validate({**prior["result"], "replayed": True})
    return ChangeResult(
        change_id=change.change_id,
        status=Status.rejected,
        errors=[
            ChangeError(
                field="change_id",
                code="change_id_reused",
                message="this change_id was already used for another change",
            )
        ],
    )


@dataclass
class Actor:
    """Who a change is applied for: its pusher, also when a deferred change wakes later."""

    principal: Principal
    device_id: uuid.UUID


class PushEngine:
    def __init__(
        self,
        session: Session,
        *,
        now: datetime,
        batch_id: uuid.UUID | None,
        prepared: dict[uuid.UUID, Prepared] | None = None,
    ) -> None:
        self.session = session
        self.now = now
        self.batch_id = batch_id
        self.prepared = prepared or {}
        self.changelog = Changelog(session)
        self.ws = Workspace(session, self.changelog)
        self.rules = Rules(self.ws)
        # Conflicts opened by the change being applied, stored with it.
        self.conflicts: list[dict[str, Any]] = []
        self._principals: dict[tuple[uuid.UUID, uuid.UUID], Principal | None] = {}

    # ------------------------------------------------------------ receiving

    def receive(
        self, principal: Principal, change: Change, document: dict[str, Any], digest: str
    ) -> ChangeResult:
        assert principal.device_id is not None
        actor = Actor(principal, principal.device_id)
        try:
            result = self._apply_undoably(actor, change)
        except Rejected as rejection:
            return self.reject(principal, change, document, rejection, digest)
        except Deferred as waiting:
            result = ChangeResult(change_id=change.change_id, status=Status.deferred)
            row = self._store(principal, change, document, digest, result)
            self.ws.defer(waiting.entity, waiting.record_id, _waiting(row), self.now)
            return result
        self._store(principal, change, document, digest, result)
        return result

    def receive_alone(
        self, principal: Principal, change: Change, document: dict[str, Any], digest: str
    ) -> ChangeResult:
        """``receive`` in a savepoint of its own, written at once: a change the
        database refuses is rejected alone."""
        mark = self.ws.mark()
        try:
            with self.session.begin_nested():
                self.ws.prefetch([change])
                result = self.receive(principal, change, document, digest)
                self.ws.flush()
                return result
        except DBAPIError as error:
            if unavailable(error):
                raise
            self.ws.rollback(mark)
            self.ws.discard_writes()
            refused = error
        if _lost_race(refused):
            rejection = Rejected(
                "id", "storage_conflict", "the record changed under this change; resend it"
            )
        else:
            # A value the checks let through and the database cannot hold: a bug of ours,
            # logged for the operators; the change is kept, rejected, for an admin.
            log.error("the database refused change %s", change.change_id, exc_info=refused)
            rejection = Rejected("id", "storage_error", "the database refused this change")
        with self.session.begin_nested():
            result = self.reject(principal, change, document, rejection, digest)
            self.ws.flush()
        return result

    def reject(
        self,
        principal: Principal,
        change: Change,
        document: dict[str, Any],
        rejection: Rejected,
        digest: str,
    ) -> ChangeResult:
        result = ChangeResult(
            change_id=change.change_id, status=Status.rejected, errors=rejection.errors
        )
        self._store(principal, change, document, digest, result)
        return result

    def refuse(self, principal: Principal, change: Change, result: ChangeResult) -> None:
        """Keep a change that cannot be stored under its own id, for admins to see."""
        assert principal.device_id is not None
        kept = _storable(change)
        self.ws.refuse(
            {
                "change_id": kept.change_id,
                "device_id": principal.device_id,
                "user_id": principal.user_id,
                "batch_id": self.batch_id,
                "seq": kept.seq,
                "entity": kept.entity,
                "record_id": kept.id,
                "op": kept.op,
                "errors": [e.model_dump() for e in result.errors or []],
                "change": kept.model_dump(mode="json"),
                "received_at": self.now,
            }
        )

    def _store(
        self,
        principal: Principal,
        change: Change,
        document: dict[str, Any],
        digest: str,
        result: ChangeResult,
    ) -> dict[str, Any]:
        assert principal.device_id is not None
        row = {
            "change_id": change.change_id,
            "device_id": principal.device_id,
            "user_id": principal.user_id,
            "batch_id": self.batch_id,
            "seq": change.seq,
            "entity": change.entity,
            "record_id": change.id,
            "op": change.op,
            "content_hash": digest,
            "status": str(result.status),
            "result": result.model_dump(mode="json", exclude_none=True),
            "change": document,
            "received_at": self.now,
            "applied_at": self.now if result.status in (Status.applied, Status.merged) else None,
        }
        self.ws.store_change(row)
        self._link_conflicts(change.change_id)
        return row

    def _link_conflicts(self, change_id: uuid.UUID) -> None:
        for conflict in self.conflicts:
            self.ws.open_conflict({**conflict, "change_id": change_id})
        self.conflicts.clear()

    def _apply_undoably(self, actor: Actor, change: Change) -> ChangeResult:
        """``apply``, leaving nothing behind if it raises."""
        mark, opened = self.ws.mark(), len(self.conflicts)
        try:
            return self.apply(actor, change)
        except BaseException:
            self.ws.rollback(mark)
            del self.conflicts[opened:]
            raise

    # ------------------------------------------------------------ applying

    def apply(self, actor: Actor, change: Change) -> ChangeResult:
        spec = ENTITIES.get(change.entity)
        if spec is None:
            if change.entity in REFERENCE_ENTITIES:
                raise Rejected("entity", "read_only_entity", f"{change.entity} is made by admins")
            raise Rejected("entity", "unknown_entity", f"no record type {change.entity!r}")
        if change.op not in Op.__members__:
            raise Rejected("op", "unknown_op", "op is create, update or delete")
        if change.recorded_at is not None and change.recorded_at.tzinfo is None:
            raise Rejected(
                "recorded_at", "missing_offset", "a timestamp needs its offset (RFC 3339)"
            )
        if spec.domain not in PUSHABLE[actor.principal.role]:
            raise Rejected(
                "entity", "forbidden_entity", f"a {actor.principal.role} does not sync {spec.name}"
            )
        unsettable = settable_problems(spec, change.fields)
        if unsettable:
            raise Rejected.many(unsettable)
        row = self.ws.record(spec, change.id, lock=True)
        if row is not None and spec.name == "person" and change.op == Op.update:
            kept = self._kept_person(row)
            if kept is not None:  # merged into another since the device last synced
                self.rules.check_in_scope(actor.principal, spec, row)
                self.rules.check_in_scope(actor.principal, spec, kept)
                # The device's fields are the edit it meant for this person: they land
                # on the kept record as its latest edit.
                result = self._update(actor, spec, change, kept, base_version=kept.version)
                return result.model_copy(update={"merged_into": kept.id})
        if change.op == Op.create:
            if row is None:
                return self._create(actor, spec, change)
            self.rules.check_in_scope(actor.principal, spec, row)
            if spec.append_only:
                if records.state_from(spec, row.values) == self._validated(spec, change.fields)[1]:
                    return ChangeResult(
                        change_id=change.change_id, status=Status.applied, version=row.version
                    )
                raise Rejected("id", "id_taken", f"another {spec.name} has this id")
            # The record exists (a create re-sent under a new change_id, or made by
            # another device with the same id): it meets the record as an update would.
            return self._update(actor, spec, change, row, base_version=change.base_version or 0)
        if row is None:
            raise Deferred(spec.name, change.id)
        self.rules.check_in_scope(actor.principal, spec, row)
        if spec.append_only:
            raise Rejected("op", "append_only", f"{spec.name} records are only ever created")
        if change.op == Op.update:
            if change.base_version is None:
                raise Rejected("base_version", "base_version_required", "an update names its base")
            return self._update(actor, spec, change, row, base_version=change.base_version)
        return self._delete(actor, spec, change, row)

    def _create(self, actor: Actor, spec: EntitySpec, change: Change) -> ChangeResult:
        model, state = self._validated_create(spec, change)
        self.rules.check_patrol_status(spec, state)  # a device cannot make a patrol approved
        if spec.name == "attendance" and self._follow_merged_person(state):
            model = spec.fields.model_validate(state)
        parents = self.rules.parents(spec, state)
        derived = self.rules.derive_scope(spec, state, parents)
        if spec.scope_field in state:  # an observation shows the sector it lies in
            state[spec.scope_field] = str(derived[spec.scope_field])
        self.rules.check_scope_value(actor.principal, spec, derived)
        self.rules.check_references(spec, state)
        if self.rules.locked_by_parent(spec, parents):
            return self._open_conflict(
                actor,
                spec,
                change,
                row=None,
                kind="create_locked",
                fields={n: (None, v) for n, v in state.items()},
                version=0,
                scope=derived[spec.scope_field],
            )
        values: dict[str, Any] = dict.fromkeys(spec.columns)
        values.update(
            id=change.id,
            version=1,
            created_at=self.now,
            updated_at=self.now,
            recorded_at=change.recorded_at and change.recorded_at.astimezone(UTC),
            created_by=actor.principal.user_id,
            device_id=actor.device_id,
        )
        values.update(records.columns(spec, model, state))
        values.update(derived)
        if spec.name == "track_segment":
            values["point_count"] = len(state["points"])
        record = Record(spec, values, new=True, locked=True)
        merged_into = self.rules.duplicate_attendance(record)
        if merged_into is not None:
            record = Record(
                spec, {**values, "deleted_at": self.now, "merged_into": merged_into}, new=True
            )
        self.ws.put(record)
        self._record_version(actor, record, state, "create", sorted(state), change)
        if merged_into is not None:
            return ChangeResult(
                change_id=change.change_id, status=Status.merged, version=1, merged_into=merged_into
            )
        self._wake(spec.name, record.id)
        return ChangeResult(change_id=change.change_id, status=Status.applied, version=1)

    def _update(
        self,
        actor: Actor,
        spec: EntitySpec,
        change: Change,
        row: Record,
        *,
        base_version: int,
    ) -> ChangeResult:
        if spec.append_only:
            raise Rejected("op", "append_only", f"{spec.name} records are only ever created")
        if base_version > row.version:
            raise Rejected("base_version", "unknown_base_version", "the server has no such version")
        current = records.state_from(spec, row.values)
        _, merged_state = self._validated(spec, {**current, **change.fields})
        if spec.name == "attendance" and "person_id" in change.fields:
            self._follow_merged_person(merged_state)
        incoming = {name: merged_state[name] for name in change.fields}
        self.rules.check_stays_put(spec, current, incoming)
        self.rules.check_patrol_status(spec, incoming)
        if row.deleted:
            if self._last_change_was(actor, row):
                raise Rejected("id", "deleted", "this device deleted the record")
            return self._open_conflict(
                actor,
                spec,
                change,
                row=row,
                kind="deleted",
                fields={n: (None, v) for n, v in incoming.items()},
                version=row.version,
            )
        if self.rules.locked(spec, row):
            return self._open_conflict(
                actor,
                spec,
                change,
                row=row,
                kind="locked",
                fields={n: (current.get(n), v) for n, v in incoming.items() if current.get(n) != v},
                version=row.version,
            )
        others = self._changed_by_others(row, after_version=base_version, device_id=actor.device_id)
        decision = merge_update(incoming=incoming, current=current, changed_by_others=others)
        new_state = {**current, **decision.apply}
        if spec.scope_field in decision.apply:
            self.rules.check_scope_value(
                actor.principal, spec, {spec.scope_field: new_state[spec.scope_field]}
            )
            self.rules.check_references(spec, new_state)
        changed = changed_fields(current, new_state)
        if changed:
            model = records.validated(spec, new_state)
            row = row.changed(
                **records.columns(spec, model, new_state),
                version=row.version + 1,
                updated_at=self.now,
            )
            self.rules.check_single_attendance(row)
            self.ws.put(row)
            self._record_version(actor, row, new_state, "update", changed, change)
        if decision.status == "conflict":
            return self._open_conflict(
                actor,
                spec,
                change,
                row=row,
                kind="fields",
                fields=decision.conflicts,
                version=row.version,
                base_version=base_version,
            )
        return ChangeResult(
            change_id=change.change_id, status=Status(decision.status), version=row.version
        )

    def _delete(self, actor: Actor, spec: EntitySpec, change: Change, row: Record) -> ChangeResult:
        current = records.state_from(spec, row.values)
        if row.deleted:
            if self._last_change_was(actor, row):
                return ChangeResult(
                    change_id=change.change_id, status=Status.applied, version=row.version
                )
            return self._open_conflict(
                actor, spec, change, row=row, kind="deleted", fields={}, version=row.version
            )
        if self.rules.locked(spec, row):
            return self._open_conflict(
                actor, spec, change, row=row, kind="locked", fields={}, version=row.version
            )
        others = (
            self._changed_by_others(
                row, after_version=change.base_version, device_id=actor.device_id
            )
            if change.base_version is not None
            else set()
        )
        row = row.changed(deleted_at=self.now, version=row.version + 1, updated_at=self.now)
        self.ws.put(row)
        self._record_version(actor, row, current, "delete", [], change)
        status = Status.merged if others else Status.applied
        return ChangeResult(change_id=change.change_id, status=status, version=row.version)

    # ------------------------------------------------------------ rules

    def _validated_create(self, spec: EntitySpec, change: Change) -> tuple[Fields, dict[str, Any]]:
        """A create's fields, validated: by ``prepare`` if it could, else now."""
        ready = self.prepared.get(change.change_id)
        created = ready.created if ready is not None and ready.change is change else None
        if created is None:
            return self._validated(spec, change.fields)
        if isinstance(created, records.InvalidFields):
            raise Rejected.many(
                [FieldProblem(f"fields.{p.field}", p.code, p.message) for p in created.problems]
            )
        model, state = created
        return model, dict(state)  # the caller may change its copy

    def _validated(self, spec: EntitySpec, state: dict[str, Any]) -> tuple[Fields, dict[str, Any]]:
        """The fields as their model and as their state (JSON form); or rejected."""
        try:
            model = records.validated(spec, state)
        except records.InvalidFields as invalid:
            raise Rejected.many(
                [FieldProblem(f"fields.{p.field}", p.code, p.message) for p in invalid.problems]
            ) from invalid
        return model, model.model_dump(mode="json")

    def _kept_person(self, person: Record) -> Record | None:
        """The live person ``person`` was merged into, if it was (issue 7's merge)."""
        kept_id = person.values.get("merged_into")
        if kept_id is None:
            return None
        kept = self.ws.record(person.spec, as_uuid(kept_id), lock=True)
        return kept if kept is not None and not kept.deleted else None

    def _follow_merged_person(self, state: dict[str, Any]) -> bool:
        """Point an attendance at the kept person when it names a merged one; whether
        it did. A merge always names a person who is not merged, so one step is enough."""
        person_id = state.get("person_id")
        person = self.ws.record(ENTITIES["person"], as_uuid(person_id), lock=False)
        kept_id = person.values.get("merged_into") if person is not None else None
        if kept_id is None:
            return False
        state["person_id"] = str(kept_id)
        return True

    def _changed_by_others(
        self, row: Record, *, after_version: int, device_id: uuid.UUID
    ) -> set[str]:
        """Fields changed after ``after_version`` by anyone but this device (the
        server's own changes — reviews, resolutions — count as others)."""
        changed: set[str] = set()
        for version in self.ws.history(row.spec, row.id):
            if version.version > after_version and version.device_id != device_id:
                changed |= version.changed
        return changed

    def _last_change_was(self, actor: Actor, row: Record) -> bool:
        """Whether the record's latest version is this device's own."""
        for version in self.ws.history(row.spec, row.id):
            if version.version == row.version:
                return version.device_id == actor.device_id
        return False

    # ------------------------------------------------------------ writing

    def _record_version(
        self,
        actor: Actor,
        row: Record,
        state: dict[str, Any],
        op: str,
        changed: list[str],
        change: Change,
    ) -> None:
        self.ws.add_version(
            row,
            Version(row.version, actor.device_id, frozenset(changed)),
            entity=row.spec.name,
            record_id=row.id,
            version=row.version,
            op=op,
            fields=state,
            changed=changed,
            user_id=actor.principal.user_id,
            device_id=actor.device_id,
            change_id=change.change_id,
            reason=None,
            recorded_at=change.recorded_at,
            now=self.now,
        )
        self.ws.touch(entry_of(row.spec, row.values, state))

    def _open_conflict(
        self,
        actor: Actor,
        spec: EntitySpec,
        change: Change,
        *,
        row: Record | None,
        kind: str,
        fields: dict[str, tuple[Any, Any]],
        version: int,
        base_version: int | None = None,
        scope: uuid.UUID | None = None,
    ) -> ChangeResult:
        if row is not None:
            scope = row.scope
        shown = {name: {"server": s, "device": d} for name, (s, d) in fields.items()}
        if kind == "create_locked":
            shown = {"__create__": {"server": None, "device": change.fields}}
        conflict_id = uuid.uuid4()
        self.conflicts.append(
            {
                "id": conflict_id,
                "entity": spec.name,
                "record_id": change.id,
                "status": ConflictStatus.open,
                "kind": kind,
                "fields": shown,
                "base_version": base_version if base_version is not None else change.base_version,
                "server_version": version,
                "change_id": None,  # set by _store, once the change's row exists
                "device_id": actor.device_id,
                "user_id": actor.principal.user_id,
                "recorded_at": change.recorded_at,
                "sector_id": scope if spec.domain is Domain.patrol else None,
                "community_id": scope if spec.domain is Domain.people else None,
                "created_at": self.now,
                "resolved_at": None,
                "resolved_by": None,
                "resolution": None,
                "resolved_version": None,
            }
        )
        return ChangeResult(
            change_id=change.change_id,
            status=Status.conflict,
            version=version,
            conflict_id=conflict_id,
        )

    # ------------------------------------------------------------ deferred changes

    def _wake(self, entity: str, record_id: uuid.UUID) -> None:
        """Apply the changes that were waiting for this record, oldest first."""
        for waiting in self.ws.waiting_for(entity, record_id):
            self.ws.wake(entity, record_id, waiting)
            principal = self._principal(waiting.user_id, waiting.device_id)
            if principal is None:
                continue
            change = Change.model_validate(waiting.change)
            try:
                result = self._apply_undoably(Actor(principal, waiting.device_id), change)
            except Rejected as rejection:
                self.ws.update_stored(
                    waiting.change_id,
                    status=str(Status.rejected),
                    result={
                        **waiting.result,
                        "later_errors": [e.model_dump() for e in rejection.errors],
                    },
                )
            except Deferred as again:
                self.ws.defer(again.entity, again.record_id, waiting, self.now)
            else:
                self.ws.update_stored(
                    waiting.change_id, status=str(result.status), applied_at=self.now
                )
                self._link_conflicts(waiting.change_id)

    def _principal(self, user_id: uuid.UUID, device_id: uuid.UUID) -> Principal | None:
        """The pusher of a deferred change, with their scope as it is now."""
        key = (user_id, device_id)
        if key not in self._principals:
            user = self.session.get(User, user_id)
            self._principals[key] = (
                None
                if user is None
                else principal_of(self.session, user, family_id=None, device_id=device_id)
            )
        return self._principals[key]


def _waiting(row: dict[str, Any]) -> Waiting:
    return Waiting(
        change_id=row["change_id"],
        device_id=row["device_id"],
        user_id=row["user_id"],
        seq=row["seq"],
        received_at=row["received_at"],
        change=row["change"],
        result=row["result"],
    )


def entry_of(spec: EntitySpec, values: Mapping[str, Any], state: dict[str, Any]) -> PendingEntry:
    """The record's pull entry (stamped with a change number at ``publish()``)."""
    scope = values[spec.scope_field]
    deleted = values["deleted_at"] is not None
    return PendingEntry(
        entity=spec.name,
        record_id=values["id"],
        version=values["version"],
        deleted=deleted,
        sector_id=scope if spec.domain is Domain.patrol else None,
        community_id=scope if spec.domain is Domain.people else None,
        fields={} if deleted else records.snapshot_from(spec, values, state),
        updated_at=values["updated_at"],
    )


def publish(changelog: Changelog, spec: EntitySpec, row: Any, state: dict[str, Any]) -> None:
    """Queue an ORM row's pull entry (reviews and resolutions)."""
    names = {"id", "version", "deleted_at", "updated_at", spec.scope_field}
    names |= {*spec.server_fields, *records.SNAPSHOT_META}
    changelog.touch(entry_of(spec, {name: getattr(row, name) for name in names}, state))


__all__ = ["PushEngine", "attribute_problems", "canonical", "content_hash", "publish", "push"]
