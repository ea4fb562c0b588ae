"""Deciding one change against the records a batch holds: apply it, merge it, open a
conflict, defer it or reject it — in memory, through the workspace.

Creates apply. Updates merge field by field against the version the device last saw
(``sync.engine.merge``); a device never conflicts with itself. Edits of a locked record
and updates or deletes meeting a server-side delete open a conflict; nothing the
device sent is lost. What is particular to a record type comes from its spec and its
policy (``sync.engine.entities``): the decider names no record type.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from schemas.records import Fields
from schemas.sync import Change, ChangeResult, ConflictStatus, Op, Status
from sync.accounts.principal import Principal
from sync.engine import records
from sync.engine.changelog import MOVED_WITH_PARENT, entry_of
from sync.engine.entities import EntitySpec
from sync.engine.merge import changed_fields, merge_update
from sync.engine.prepare import Prepared
from sync.engine.rules import Deferred, Rejected, Rules, settable_problems
from sync.engine.workspace import Record, Version, Workspace
from sync.platform.errors import FieldProblem


@dataclass
class Actor:
    """Who a change is applied for: its pusher, also when a deferred change wakes later."""

    principal: Principal
    device_id: uuid.UUID


class Decider:
    """Decides changes one after another; ``arrived`` is told of each record a change
    creates, so that the changes waiting for it can wake (``sync.engine.wake``)."""

    def __init__(
        self,
        ws: Workspace,
        *,
        now: datetime,
        prepared: dict[uuid.UUID, Prepared],
        arrived: Callable[[str, uuid.UUID], None],
    ) -> None:
        self.ws = ws
        self.catalog = ws.catalog
        self.now = now
        self.prepared = prepared
        self.arrived = arrived
        self.rules = Rules(ws)
        # Conflicts opened by the change being applied, stored with it.
        self.conflicts: list[dict[str, Any]] = []

    def apply_undoably(self, actor: Actor, change: Change) -> ChangeResult:
        """``apply``, leaving nothing behind if it raises."""
        mark, opened = self.ws.mark(), len(self.conflicts)
        try:
            return self.apply(actor, change)
        except BaseException:
            self.ws.rollback(mark)
            del self.conflicts[opened:]
            raise

    def apply(self, actor: Actor, change: Change) -> ChangeResult:
        spec = self.catalog.get(change.entity)
        if spec is None:
            if change.entity in self.catalog.read_only:
                raise Rejected("entity", "read_only_entity", f"{change.entity} is made by admins")
            raise Rejected("entity", "unknown_entity", f"no record type {change.entity!r}")
        if change.op not in Op.__members__:
            raise Rejected("op", "unknown_op", "op is create, update or delete")
        if change.recorded_at is not None and change.recorded_at.tzinfo is None:
            raise Rejected(
                "recorded_at", "missing_offset", "a timestamp needs its offset (RFC 3339)"
            )
        if actor.principal.role not in spec.pushed_by:
            raise Rejected(
                "entity", "forbidden_entity", f"a {actor.principal.role} does not sync {spec.name}"
            )
        unsettable = settable_problems(spec, change.fields)
        if unsettable:
            raise Rejected.many(unsettable)
        row = self.ws.record(spec, change.id, lock=True)
        if row is not None and change.op == Op.update:
            instead = spec.policy.redirect(self.ws, row)
            if instead is not None:  # merged into another since the device last synced
                self.rules.check_in_scope(actor.principal, spec, row)
                self.rules.check_in_scope(actor.principal, spec, instead)
                # The device's fields are the edit it meant for this record: they land
                # on the one it now lives on as its latest edit.
                result = self._update(actor, spec, change, instead, base_version=instead.version)
                return result.model_copy(update={"merged_into": instead.id})
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
        spec.policy.check_incoming(state)  # a device cannot make a patrol approved
        if spec.policy.follow(self.ws, state, list(state)):
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
        record = Record(spec, values, new=True, locked=True)
        merged_into = self.rules.duplicate_of(record)
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
        self.arrived(spec.name, record.id)
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
        spec.policy.follow(self.ws, merged_state, change.fields)
        incoming = {name: merged_state[name] for name in change.fields}
        spec.policy.check_incoming(incoming)
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
        changed = changed_fields(current, new_state)
        moved = self.rules.moved_scope(
            actor.principal, spec, new_state, before=row.scope, changed=changed
        )
        if moved is not None and spec.scope_field in new_state:
            new_state[spec.scope_field] = str(moved)
        if spec.scope_field in decision.apply:
            self.rules.check_scope_value(
                actor.principal, spec, {spec.scope_field: new_state[spec.scope_field]}
            )
            self.rules.check_references(spec, new_state)
        if changed:
            model = records.validated(spec, new_state)
            columns = records.columns(spec, model, new_state)
            if moved is not None:  # also when the scope is not a field (a track segment's)
                columns[spec.scope_field] = moved
            row = row.changed(**columns, version=row.version + 1, updated_at=self.now)
            self.rules.check_single(row)
            self.ws.put(row)
            self._record_version(actor, row, new_state, "update", changed, change)
            if moved is not None:
                self._move_children(actor, row, change)
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

    # ------------------------------------------------------------ validation

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
        return model, records.json_form(model)

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

    def _move_children(self, actor: Actor, parent: Record, change: Change) -> None:
        """Move with ``parent`` the live records that take their scope from it (a
        patrol's track and observations), each as a new version of its own, and theirs
        in turn."""
        for spec, link in self.catalog.children_of(parent.spec.name):
            for child in self.ws.children(spec, link.field, parent.id):
                if child.scope == parent.scope:
                    continue
                state = records.state_from(spec, child.values)
                if spec.scope_field in state:
                    state[spec.scope_field] = str(parent.scope)
                child = child.changed(
                    **{spec.scope_field: parent.scope},
                    version=child.version + 1,
                    updated_at=self.now,
                )
                self.ws.put(child)
                self._record_version(
                    actor,
                    child,
                    state,
                    "update",
                    [spec.scope_field],
                    change,
                    reason=MOVED_WITH_PARENT,
                )
                self._move_children(actor, child, change)

    # ------------------------------------------------------------ what a decision writes

    def _record_version(
        self,
        actor: Actor,
        row: Record,
        state: dict[str, Any],
        op: str,
        changed: list[str],
        change: Change,
        *,
        reason: str | None = None,
    ) -> None:
        shown = records.written(row.spec, state)
        self.ws.add_version(
            row,
            Version(row.version, actor.device_id, frozenset(changed)),
            entity=row.spec.name,
            record_id=row.id,
            version=row.version,
            op=op,
            fields=shown,
            changed=changed,
            user_id=actor.principal.user_id,
            device_id=actor.device_id,
            change_id=change.change_id,
            reason=reason,
            recorded_at=change.recorded_at,
            now=self.now,
        )
        self.ws.touch(entry_of(row.spec, row.values, shown, new=row.new))

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
                "change_id": None,  # set when the change's row is stored
                "device_id": actor.device_id,
                "user_id": actor.principal.user_id,
                "recorded_at": change.recorded_at,
                **spec.scope_keys(scope),
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
