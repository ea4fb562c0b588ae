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
   version the device last saw (``sync.merge``); a device never conflicts with
   itself. Edits of an approved patrol and updates or deletes meeting a server-side
   delete open a conflict; nothing the device sent is lost.

Each change runs in a savepoint, so one that fails cannot spoil the others; the
batch is answered only after the transaction commits (``api.deps``).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from schemas import (
    Attendance,
    Conflict,
    DeferredChange,
    Device,
    ObservationCategory,
    Patrol,
    RecordVersion,
    RefusedChange,
    SyncChange,
    User,
)
from schemas.records import PatrolStatus, SyncedColumns
from schemas.reference import Community, Sector
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
from schemas.wire import has_nul
from sync import records
from sync.auth import principal_of
from sync.changelog import Changelog, PendingEntry, changed_by_others
from sync.entities import ENTITIES, PUSHABLE, REFERENCE_ENTITIES, Domain, EntitySpec
from sync.errors import FieldProblem, Forbidden, PayloadTooLarge
from sync.merge import changed_fields, merge_update
from sync.principal import Principal
from sync.settings import Settings

SERVER_OWNED = frozenset(
    {
        "version",
        "created_at",
        "updated_at",
        "created_by",
        "device_id",
        "deleted_at",
        "reviewed_by",
        "reviewed_at",
        "review_comment",
        "merged_into",
        "point_count",
    }
)
DEVICE_PATROL_STATUSES = frozenset(
    {PatrolStatus.draft, PatrolStatus.submitted, PatrolStatus.cancelled}
)


class Rejected(Exception):
    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(message)
        self.errors = [ChangeError(field=field, code=code, message=message)]

    @classmethod
    def many(cls, problems: list[FieldProblem]) -> Rejected:
        error = cls(problems[0].field, problems[0].code, problems[0].message)
        error.errors = [
            ChangeError(field=p.field, code=p.code, message=p.message) for p in problems
        ]
        return error


class Deferred(Exception):
    def __init__(self, entity: str, record_id: uuid.UUID) -> None:
        super().__init__(f"waiting for {entity} {record_id}")
        self.entity = entity
        self.record_id = record_id


def content_hash(change: Change) -> str:
    canonical = json.dumps(change.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def push(
    session: Session, *, principal: Principal, batch: PushRequest, settings: Settings
) -> PushResponse:
    """Apply a batch; one result per change, in the order sent."""
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
    engine = PushEngine(session, now=utcnow(), batch_id=batch.batch_id)
    known = {
        row.change_id: row
        for row in session.exec(
            select(SyncChange).where(
                col(SyncChange.change_id).in_([c.change_id for c in batch.changes])
            )
        )
    }
    floor = device.last_seq if device.last_seq is not None else -1
    used_seqs: set[int] = set()
    results: list[ChangeResult | None] = [None] * len(batch.changes)
    for index in sorted(range(len(batch.changes)), key=lambda i: batch.changes[i].seq):
        change = batch.changes[index]
        digest = content_hash(change)
        prior = known.get(change.change_id)
        if prior is not None:
            result = _replay(prior, change, digest, device.id)
            if result.replayed is not True:  # the id was used for other content
                engine.refuse(principal, change, result)
            results[index] = result
            continue
        unstorable = _unstorable(change)
        if unstorable is not None:
            result = engine.reject(principal, _storable(change), unstorable, digest)
            used_seqs.add(change.seq)
        elif change.seq <= floor or change.seq in used_seqs:
            result = engine.reject(
                principal,
                change,
                Rejected("seq", "seq_not_increasing", f"seq {change.seq} was already used"),
                digest,
            )
        else:
            result = engine.receive(principal, change, digest)
            used_seqs.add(change.seq)
        known[change.change_id] = engine.stored[change.change_id]
        results[index] = result
    if used_seqs:
        device.last_seq = max(max(used_seqs), floor)
    device.last_seen_at = engine.now
    session.add(device)
    engine.changelog.publish()
    return PushResponse(
        results=[r for r in results if r is not None],
        last_seq=device.last_seq,
        server_time=engine.now,
    )


MAX_NAME = 64  # sync_change.entity
MAX_OP = 16  # sync_change.op


def _unstorable(change: Change) -> Rejected | None:
    """Why a change cannot even be looked at: text PostgreSQL cannot hold (NUL), or
    names longer than any record type or op has."""
    if has_nul(change.model_dump(mode="json")):
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


def _replay(prior: SyncChange, change: Change, digest: str, device_id: uuid.UUID) -> ChangeResult:
    if prior.content_hash == digest and prior.device_id == device_id:
        return ChangeResult.model_validate({**prior.result, "replayed": True})
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
    def __init__(self, session: Session, *, now: datetime, batch_id: uuid.UUID | None) -> None:
        self.session = session
        self.now = now
        self.batch_id = batch_id
        self.changelog = Changelog(session)
        self.stored: dict[uuid.UUID, SyncChange] = {}
        self.conflicts: list[Conflict] = []

    # ------------------------------------------------------------ receiving

    def receive(self, principal: Principal, change: Change, digest: str) -> ChangeResult:
        assert principal.device_id is not None
        actor = Actor(principal, principal.device_id)
        try:
            result = self._apply_in_savepoint(actor, change)
        except Rejected as rejection:
            return self.reject(principal, change, rejection, digest)
        except Deferred as waiting:
            result = ChangeResult(change_id=change.change_id, status=Status.deferred)
            self._store(principal, change, digest, result)
            self.session.add(
                DeferredChange(
                    change_id=change.change_id,
                    waiting_entity=waiting.entity,
                    waiting_id=waiting.record_id,
                    created_at=self.now,
                )
            )
            return result
        self._store(principal, change, digest, result)
        return result

    def reject(
        self, principal: Principal, change: Change, rejection: Rejected, digest: str
    ) -> ChangeResult:
        result = ChangeResult(
            change_id=change.change_id, status=Status.rejected, errors=rejection.errors
        )
        self._store(principal, change, digest, result)
        return result

    def refuse(self, principal: Principal, change: Change, result: ChangeResult) -> None:
        """Keep a change that cannot be stored under its own id, for admins to see."""
        assert principal.device_id is not None
        kept = _storable(change)
        self.session.add(
            RefusedChange(
                change_id=kept.change_id,
                device_id=principal.device_id,
                user_id=principal.user_id,
                batch_id=self.batch_id,
                seq=kept.seq,
                entity=kept.entity,
                record_id=kept.id,
                op=kept.op,
                errors=[e.model_dump() for e in result.errors or []],
                change=kept.model_dump(mode="json"),
                received_at=self.now,
            )
        )

    def _store(
        self, principal: Principal, change: Change, digest: str, result: ChangeResult
    ) -> None:
        assert principal.device_id is not None
        row = SyncChange(
            change_id=change.change_id,
            device_id=principal.device_id,
            user_id=principal.user_id,
            batch_id=self.batch_id,
            seq=change.seq,
            entity=change.entity,
            record_id=change.id,
            op=change.op,
            content_hash=digest,
            status=result.status,
            result=result.model_dump(mode="json", exclude_none=True),
            change=change.model_dump(mode="json"),
            received_at=self.now,
            applied_at=self.now if result.status in (Status.applied, Status.merged) else None,
        )
        self.session.add(row)
        self.session.flush()
        self.stored[change.change_id] = row
        self._link_conflicts(change.change_id)

    def _link_conflicts(self, change_id: uuid.UUID) -> None:
        for conflict in self.conflicts:
            conflict.change_id = change_id
            self.session.add(conflict)
        self.conflicts.clear()
        self.session.flush()

    def _apply_in_savepoint(self, actor: Actor, change: Change) -> ChangeResult:
        for attempt in (1, 2):
            # What a change queued outside the database goes back with its savepoint.
            entries = self.changelog.checkpoint()
            conflicts = len(self.conflicts)
            try:
                with self.session.begin_nested():
                    return self.apply(actor, change)
            except BaseException as failure:
                self.changelog.restore(entries)
                del self.conflicts[conflicts:]
                if not isinstance(failure, IntegrityError):
                    raise
                # Another device's push took the same unique key (an attendance of the
                # same person at the same session) between our read and our write.
                if attempt == 2:
                    raise Rejected(
                        "id", "storage_conflict", "the record changed under this change; resend it"
                    ) from None
        raise AssertionError("unreachable")

    # ------------------------------------------------------------ applying

    def apply(self, actor: Actor, change: Change) -> ChangeResult:
        spec = ENTITIES.get(change.entity)
        if spec is None:
            if change.entity in REFERENCE_ENTITIES:
                raise Rejected("entity", "read_only_entity", f"{change.entity} is made by admins")
            raise Rejected("entity", "unknown_entity", f"no record type {change.entity!r}")
        if change.op not in Op.__members__:
            raise Rejected("op", "unknown_op", "op is create, update or delete")
        if spec.domain not in PUSHABLE[actor.principal.role]:
            raise Rejected(
                "entity", "forbidden_entity", f"a {actor.principal.role} does not sync {spec.name}"
            )
        given = set(change.fields)
        owned = sorted(given & SERVER_OWNED)
        if owned:
            raise Rejected.many(
                [
                    FieldProblem(f"fields.{n}", "server_owned_field", "set by the server")
                    for n in owned
                ]
            )
        unknown = sorted(given - spec.settable)
        if unknown:
            raise Rejected.many(
                [FieldProblem(f"fields.{n}", "unknown_field", "no such field") for n in unknown]
            )
        row = records.load(self.session, spec, change.id, for_update=True)
        if change.op == Op.create:
            if row is None:
                return self._create(actor, spec, change)
            self._check_in_scope(actor, spec, row)
            if spec.append_only:
                if records.state_of(spec, row) == self._validated(spec, change.fields):
                    return ChangeResult(
                        change_id=change.change_id, status=Status.applied, version=row.version
                    )
                raise Rejected("id", "id_taken", f"another {spec.name} has this id")
            # The record exists (a create re-sent under a new change_id, or made by
            # another device with the same id): it meets the record as an update would.
            return self._update(actor, spec, change, row, base_version=change.base_version or 0)
        if row is None:
            raise Deferred(spec.name, change.id)
        self._check_in_scope(actor, spec, row)
        if spec.append_only:
            raise Rejected("op", "append_only", f"{spec.name} records are only ever created")
        if change.op == Op.update:
            if change.base_version is None:
                raise Rejected("base_version", "base_version_required", "an update names its base")
            return self._update(actor, spec, change, row, base_version=change.base_version)
        return self._delete(actor, spec, change, row)

    def _create(self, actor: Actor, spec: EntitySpec, change: Change) -> ChangeResult:
        state = self._validated(spec, change.fields)
        self._check_patrol_status(spec, state)  # a device cannot make a patrol approved
        parents = self._parents(spec, state)
        derived = self._derive_scope(spec, state, parents)
        if spec.scope_field in state:  # an observation shows the sector it lies in
            state[spec.scope_field] = str(derived[spec.scope_field])
        self._check_scope_value(actor, spec, derived)
        self._check_references(spec, state)
        if self._locked_by_parent(spec, parents):
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
        row = spec.table(
            id=change.id,
            version=1,
            created_at=self.now,
            updated_at=self.now,
            recorded_at=change.recorded_at,
            created_by=actor.principal.user_id,
            device_id=actor.device_id,
        )
        records.write_state(spec, row, state)
        for name, value in derived.items():
            setattr(row, name, value)
        if spec.name == "track_segment":
            row.point_count = len(state["points"])
        merged_into = self._duplicate_attendance(spec, row)
        if merged_into is not None:
            row.deleted_at = self.now
            row.merged_into = merged_into
        self.session.add(row)
        self.session.flush()
        self._record_version(actor, spec, row, state, "create", sorted(state), change)
        if merged_into is not None:
            return ChangeResult(
                change_id=change.change_id, status=Status.merged, version=1, merged_into=merged_into
            )
        self._wake(spec.name, row.id)
        return ChangeResult(change_id=change.change_id, status=Status.applied, version=1)

    def _update(
        self,
        actor: Actor,
        spec: EntitySpec,
        change: Change,
        row: SyncedColumns,
        *,
        base_version: int,
    ) -> ChangeResult:
        if spec.append_only:
            raise Rejected("op", "append_only", f"{spec.name} records are only ever created")
        if base_version > row.version:
            raise Rejected("base_version", "unknown_base_version", "the server has no such version")
        current = records.state_of(spec, row)
        merged_state = self._validated(spec, {**current, **change.fields})
        incoming = {name: merged_state[name] for name in change.fields}
        self._check_stays_put(spec, current, incoming)
        self._check_patrol_status(spec, incoming)
        if row.deleted_at is not None:
            if self._last_change_was(actor, spec, row):
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
        if self._locked(spec, row):
            return self._open_conflict(
                actor,
                spec,
                change,
                row=row,
                kind="locked",
                fields={n: (current.get(n), v) for n, v in incoming.items() if current.get(n) != v},
                version=row.version,
            )
        others = changed_by_others(
            self.session,
            entity=spec.name,
            record_id=row.id,
            after_version=base_version,
            device_id=actor.device_id,
        )
        decision = merge_update(incoming=incoming, current=current, changed_by_others=others)
        new_state = {**current, **decision.apply}
        if spec.scope_field in decision.apply:
            self._check_scope_value(actor, spec, {spec.scope_field: new_state[spec.scope_field]})
            self._check_references(spec, new_state)
        changed = changed_fields(current, new_state)
        if changed:
            records.write_state(spec, row, new_state)
            self._bump(actor, spec, row, new_state, "update", changed, change)
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

    def _delete(
        self, actor: Actor, spec: EntitySpec, change: Change, row: SyncedColumns
    ) -> ChangeResult:
        current = records.state_of(spec, row)
        if row.deleted_at is not None:
            if self._last_change_was(actor, spec, row):
                return ChangeResult(
                    change_id=change.change_id, status=Status.applied, version=row.version
                )
            return self._open_conflict(
                actor, spec, change, row=row, kind="deleted", fields={}, version=row.version
            )
        if self._locked(spec, row):
            return self._open_conflict(
                actor, spec, change, row=row, kind="locked", fields={}, version=row.version
            )
        others = (
            changed_by_others(
                self.session,
                entity=spec.name,
                record_id=row.id,
                after_version=change.base_version,
                device_id=actor.device_id,
            )
            if change.base_version is not None
            else set()
        )
        row.deleted_at = self.now
        self._bump(actor, spec, row, current, "delete", [], change)
        status = Status.merged if others else Status.applied
        return ChangeResult(change_id=change.change_id, status=status, version=row.version)

    # ------------------------------------------------------------ rules

    def _validated(self, spec: EntitySpec, state: dict[str, Any]) -> dict[str, Any]:
        try:
            return records.validate(spec, state)
        except records.InvalidFields as invalid:
            raise Rejected.many(
                [FieldProblem(f"fields.{p.field}", p.code, p.message) for p in invalid.problems]
            ) from invalid

    def _parents(self, spec: EntitySpec, state: dict[str, Any]) -> dict[str, SyncedColumns]:
        found: dict[str, SyncedColumns] = {}
        for parent in spec.parents:
            value = state.get(parent.field)
            if value is None:
                continue
            parent_id = uuid.UUID(str(value))
            row = records.load(self.session, ENTITIES[parent.entity], parent_id)
            if row is None:
                raise Deferred(parent.entity, parent_id)
            if row.deleted_at is not None:
                raise Rejected(
                    f"fields.{parent.field}", "parent_deleted", f"that {parent.entity} was deleted"
                )
            found[parent.field] = row
        return found

    def _derive_scope(
        self, spec: EntitySpec, state: dict[str, Any], parents: dict[str, SyncedColumns]
    ) -> dict[str, Any]:
        """The scope key a record takes from its parent (a segment from its patrol)."""
        for parent in spec.parents:
            if parent.scope and parent.field in parents:
                return {spec.scope_field: getattr(parents[parent.field], spec.scope_field)}
        value = state.get(spec.scope_field)
        if value is None:
            raise Rejected(f"fields.{spec.scope_field}", "missing", "the record needs its scope")
        return {spec.scope_field: uuid.UUID(str(value))}

    def _check_scope_value(self, actor: Actor, spec: EntitySpec, derived: dict[str, Any]) -> None:
        value = uuid.UUID(str(derived[spec.scope_field]))
        principal = actor.principal
        if principal.sees_everything:
            return
        held = principal.sector_ids if spec.domain is Domain.patrol else principal.community_ids
        if value not in held:
            raise Rejected(
                f"fields.{spec.scope_field}", "out_of_scope", "that is not in this user's scope"
            )

    def _check_in_scope(self, actor: Actor, spec: EntitySpec, row: SyncedColumns) -> None:
        self._check_scope_value(actor, spec, {spec.scope_field: getattr(row, spec.scope_field)})

    def _check_references(self, spec: EntitySpec, state: dict[str, Any]) -> None:
        sector_id = state.get("sector_id")
        if sector_id is not None and self.session.get(Sector, uuid.UUID(sector_id)) is None:
            raise Rejected("fields.sector_id", "unknown_reference", "no such sector")
        community_id = state.get("community_id")
        if (
            community_id is not None
            and self.session.get(Community, uuid.UUID(community_id)) is None
        ):
            raise Rejected("fields.community_id", "unknown_reference", "no such community")
        if spec.name == "observation":
            self._check_category(state)

    def _check_category(self, state: dict[str, Any]) -> None:
        category = self.session.exec(
            select(ObservationCategory).where(ObservationCategory.key == state["category_key"])
        ).first()
        if category is None:
            raise Rejected("fields.category_key", "unknown_category", "no such category")
        problems = attribute_problems(category.attributes, state.get("attributes") or {})
        if problems:
            raise Rejected.many(problems)

    def _check_stays_put(
        self, spec: EntitySpec, current: dict[str, Any], incoming: dict[str, Any]
    ) -> None:
        """A record stays in the scope it was made in, and hangs from the parent it was
        made under: moving it would leave it on the tablets of its old scope, which
        would never hear of the move."""
        fixed = [spec.scope_field] + [p.field for p in spec.parents if p.scope]
        for name in fixed:
            if name in incoming and incoming[name] != current.get(name) and current.get(name):
                raise Rejected(
                    f"fields.{name}",
                    "scope_immutable",
                    f"a {spec.name} keeps the {name} it was made with; delete it and make it anew",
                )

    def _check_patrol_status(self, spec: EntitySpec, incoming: dict[str, Any]) -> None:
        if spec.name == "patrol" and incoming.get("status", "draft") not in DEVICE_PATROL_STATUSES:
            raise Rejected(
                "fields.status", "review_status", "approved and returned are set by a review"
            )

    def _locked(self, spec: EntitySpec, row: SyncedColumns) -> bool:
        """An approved patrol, and its observations, take no silent edits."""
        if spec.name == "patrol":
            return bool(row.status == PatrolStatus.approved)  # type: ignore[attr-defined]
        if spec.name == "observation" and row.patrol_id is not None:  # type: ignore[attr-defined]
            patrol = self.session.get(Patrol, row.patrol_id)  # type: ignore[attr-defined]
            return patrol is not None and patrol.status == PatrolStatus.approved
        return False

    def _locked_by_parent(self, spec: EntitySpec, parents: dict[str, SyncedColumns]) -> bool:
        patrol = parents.get("patrol_id")
        return (
            spec.name == "observation"
            and isinstance(patrol, Patrol)
            and patrol.status == PatrolStatus.approved
        )

    def _duplicate_attendance(self, spec: EntitySpec, row: SyncedColumns) -> uuid.UUID | None:
        if spec.name != "attendance":
            return None
        return self.session.exec(
            select(Attendance.id).where(
                Attendance.session_id == row.session_id,  # type: ignore[attr-defined]
                Attendance.person_id == row.person_id,  # type: ignore[attr-defined]
                col(Attendance.deleted_at).is_(None),
                Attendance.id != row.id,
            )
        ).first()

    def _last_change_was(self, actor: Actor, spec: EntitySpec, row: SyncedColumns) -> bool:
        """Whether the record's latest version is this device's own."""
        last = self.session.get(RecordVersion, (spec.name, row.id, row.version))
        return last is not None and last.device_id == actor.device_id

    # ------------------------------------------------------------ writing

    def _bump(
        self,
        actor: Actor,
        spec: EntitySpec,
        row: SyncedColumns,
        state: dict[str, Any],
        op: str,
        changed: list[str],
        change: Change,
    ) -> None:
        row.version += 1
        row.updated_at = self.now
        self.session.add(row)
        self.session.flush()
        self._record_version(actor, spec, row, state, op, changed, change)

    def _record_version(
        self,
        actor: Actor,
        spec: EntitySpec,
        row: SyncedColumns,
        state: dict[str, Any],
        op: str,
        changed: list[str],
        change: Change,
    ) -> None:
        self.changelog.version(
            entity=spec.name,
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
        publish(self.changelog, spec, row, state)

    def _open_conflict(
        self,
        actor: Actor,
        spec: EntitySpec,
        change: Change,
        *,
        row: SyncedColumns | None,
        kind: str,
        fields: dict[str, tuple[Any, Any]],
        version: int,
        base_version: int | None = None,
        scope: uuid.UUID | None = None,
    ) -> ChangeResult:
        if row is not None:
            scope = getattr(row, spec.scope_field)
        conflict = Conflict(
            entity=spec.name,
            record_id=change.id,
            status=ConflictStatus.open,
            kind=kind,
            fields={name: {"server": s, "device": d} for name, (s, d) in fields.items()},
            base_version=base_version if base_version is not None else change.base_version,
            server_version=version,
            change_id=None,  # set by _store, once the change's row exists
            device_id=actor.device_id,
            user_id=actor.principal.user_id,
            recorded_at=change.recorded_at,
            sector_id=scope if spec.domain is Domain.patrol else None,
            community_id=scope if spec.domain is Domain.people else None,
            created_at=self.now,
        )
        if kind == "create_locked":
            conflict.fields = {"__create__": {"server": None, "device": change.fields}}
        self.conflicts.append(conflict)
        return ChangeResult(
            change_id=change.change_id,
            status=Status.conflict,
            version=version,
            conflict_id=conflict.id,
        )

    # ------------------------------------------------------------ deferred changes

    def _wake(self, entity: str, record_id: uuid.UUID) -> None:
        """Apply the changes that were waiting for this record, oldest first."""
        waiting = self.session.exec(
            select(DeferredChange, SyncChange)
            .join(SyncChange, col(SyncChange.change_id) == DeferredChange.change_id)
            .where(DeferredChange.waiting_entity == entity, DeferredChange.waiting_id == record_id)
            .order_by(col(SyncChange.received_at), col(SyncChange.seq))
        ).all()
        for deferred, stored in waiting:
            self.session.delete(deferred)
            self.session.flush()
            user = self.session.get(User, stored.user_id)
            if user is None:
                continue
            principal = principal_of(self.session, user, family_id=None, device_id=stored.device_id)
            change = Change.model_validate(stored.change)
            try:
                result = self._apply_in_savepoint(Actor(principal, stored.device_id), change)
                stored.status = result.status
                stored.applied_at = self.now
                self._link_conflicts(stored.change_id)
            except Rejected as rejection:
                stored.status = Status.rejected
                stored.result = {
                    **stored.result,
                    "later_errors": [e.model_dump() for e in rejection.errors],
                }
            except Deferred as again:
                self.session.add(
                    DeferredChange(
                        change_id=stored.change_id,
                        waiting_entity=again.entity,
                        waiting_id=again.record_id,
                        created_at=self.now,
                    )
                )
            self.session.add(stored)


def publish(
    changelog: Changelog, spec: EntitySpec, row: SyncedColumns, state: dict[str, Any]
) -> None:
    """Queue the record's pull entry (stamped with a change number at the end)."""
    scope = getattr(row, spec.scope_field)
    changelog.touch(
        PendingEntry(
            entity=spec.name,
            record_id=row.id,
            version=row.version,
            deleted=row.deleted_at is not None,
            sector_id=scope if spec.domain is Domain.patrol else None,
            community_id=scope if spec.domain is Domain.people else None,
            fields={} if row.deleted_at is not None else records.snapshot(spec, row, state),
            updated_at=row.updated_at,
        )
    )


def attribute_problems(
    attributes: list[dict[str, Any]], values: dict[str, Any]
) -> list[FieldProblem]:
    """An observation's attributes, checked against its category's typed attributes."""
    problems: list[FieldProblem] = []
    declared = {a["key"]: a for a in attributes}
    for key in sorted(set(values) - set(declared)):
        problems.append(
            FieldProblem(f"fields.attributes.{key}", "unknown_attribute", "not in the category")
        )
    for key, attribute in declared.items():
        value = values.get(key)
        where = f"fields.attributes.{key}"
        if value is None:
            if attribute.get("required"):
                problems.append(FieldProblem(where, "missing", "this attribute is required"))
            continue
        kind = attribute["type"]
        ok = {
            "number": isinstance(value, int | float) and not isinstance(value, bool),
            "text": isinstance(value, str),
            "bool": isinstance(value, bool),
            "date": isinstance(value, str) and _is_date(value),
            "list": isinstance(value, str) and value in (attribute.get("options") or []),
        }[kind]
        if not ok:
            problems.append(FieldProblem(where, "invalid_attribute", f"expected a {kind}"))
    return problems


def _is_date(value: str) -> bool:
    try:
        datetime.strptime(value, "%Y-%m-%d")  # noqa: DTZ007 (a calendar date, no time)
    except ValueError:
        return False
    return True


__all__ = ["PushEngine", "attribute_problems", "content_hash", "publish", "push"]
