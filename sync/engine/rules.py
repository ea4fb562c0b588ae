"""The rules a record meets whoever writes it: a device's push or an office's
resolution of a conflict (``sync.engine.conflicts``).

What a record hangs from and the scope it takes from it, where it moves when a write
changes its scope (the writer holding both), that what it names exists, that it duplicates
no live record, and what locks it — each read from the record's ``EntitySpec``, whose
``Policy`` adds the rules of its domain. Each rule raises ``Rejected`` with the field,
a stable code and a message, or ``Deferred`` when a parent the record names has not
arrived yet.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable
from typing import Any

from schemas.sync import ChangeError
from sync.accounts.principal import Principal
from sync.engine.entities import EntitySpec, ScopeKind
from sync.engine.workspace import Record, Workspace
from sync.platform.errors import FieldProblem

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


def settable_problems(spec: EntitySpec, names: Iterable[str]) -> list[FieldProblem]:
    """What is wrong with the field names a writer sets: those the server owns
    (``server_owned_field``), else those the record does not have (``unknown_field``)."""
    given = set(names)
    owned = sorted(given & SERVER_OWNED)
    if owned:
        return [
            FieldProblem(f"fields.{n}", "server_owned_field", "set by the server") for n in owned
        ]
    return [
        FieldProblem(f"fields.{n}", "unknown_field", "no such field")
        for n in sorted(given - spec.settable)
    ]


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


class Rules:
    """The rules, read through a workspace (what a batch, or a resolution, has loaded)."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def parents(self, spec: EntitySpec, state: dict[str, Any]) -> dict[str, Record]:
        found: dict[str, Record] = {}
        for parent in spec.parents:
            value = state.get(parent.field)
            if value is None:
                continue
            parent_id = as_uuid(value)
            row = self.ws.record(self.ws.catalog[parent.entity], parent_id, lock=False)
            if row is None:
                raise Deferred(parent.entity, parent_id)
            if row.deleted:
                raise Rejected(
                    f"fields.{parent.field}", "parent_deleted", f"that {parent.entity} was deleted"
                )
            found[parent.field] = row
        return found

    def derive_scope(
        self, spec: EntitySpec, state: dict[str, Any], parents: dict[str, Record]
    ) -> dict[str, Any]:
        """The scope key a record takes from its parent (a segment from its patrol)."""
        for parent in spec.parents:
            if parent.scope and parent.field in parents:
                return {spec.scope_field: parents[parent.field].values[spec.scope_field]}
        value = state.get(spec.scope_field)
        if value is None:
            raise Rejected(f"fields.{spec.scope_field}", "missing", "the record needs its scope")
        return {spec.scope_field: as_uuid(value)}

    def check_scope_value(
        self, principal: Principal, spec: EntitySpec, derived: dict[str, Any]
    ) -> None:
        value = as_uuid(derived[spec.scope_field])
        if principal.sees_everything:
            return
        held = principal.sector_ids if spec.scope is ScopeKind.sector else principal.community_ids
        if value not in held:
            raise Rejected(
                f"fields.{spec.scope_field}", "out_of_scope", "that is not in this user's scope"
            )

    def check_in_scope(self, principal: Principal, spec: EntitySpec, row: Record) -> None:
        self.check_scope_value(principal, spec, {spec.scope_field: row.scope})

    def check_references(self, spec: EntitySpec, state: dict[str, Any]) -> None:
        """What the record names of the reference data exists; then the domain's own
        check of the whole state."""
        for reference in spec.checked_references:
            value = state.get(reference.field)
            if value is None:
                continue
            if reference.column == "id":
                value = as_uuid(value)
            if self.ws.reference(reference, value) is None:
                raise Rejected(f"fields.{reference.field}", reference.code, reference.message)
        spec.policy.check(self.ws, state)

    def moved_scope(
        self,
        principal: Principal,
        spec: EntitySpec,
        state: dict[str, Any],
        *,
        before: uuid.UUID,
        changed: Iterable[str],
    ) -> uuid.UUID | None:
        """The scope a record moves to by this write, or None when it stays in
        ``before``: it moves when its scope key changes (a patrol to another sector), or
        when it takes its scope from a parent and is put under another parent in another
        scope (an observation put under another sector's patrol). A record that takes its
        scope from a parent cannot be moved away from it (``scope_follows_parent``), and
        the writer must hold the new scope as well as the old."""
        deciding = {spec.scope_field, *(p.field for p in spec.parents if p.scope)}
        changed = set(changed)
        if not deciding & changed:
            return None
        derived = self.derive_scope(spec, state, self.parents(spec, state))
        scope = as_uuid(derived[spec.scope_field])
        asked = state.get(spec.scope_field)
        if spec.scope_field in changed and asked is not None and as_uuid(asked) != scope:
            raise Rejected(
                f"fields.{spec.scope_field}",
                "scope_follows_parent",
                f"a {spec.name} lies in the {spec.scope} of its parent: move the parent, "
                "or put it under a parent in the other one",
            )
        if scope == before:
            return None
        self.check_scope_value(principal, spec, derived)
        return scope

    def check_single(self, row: Record) -> None:
        """An update may not make a second live record of one duplicate key (one
        person's attendance at one session)."""
        duplicate = row.spec.duplicate
        if duplicate is not None and not row.deleted and self.duplicate_of(row) is not None:
            raise Rejected(f"fields.{duplicate.field}", duplicate.code, duplicate.message)

    def duplicate_of(self, row: Record) -> uuid.UUID | None:
        """The live record ``row`` duplicates, if its type has a duplicate key."""
        if row.spec.duplicate is None:
            return None
        others = self.ws.live_duplicates(row)
        others.discard(row.id)
        return min(others) if others else None

    def locked(self, spec: EntitySpec, row: Record) -> bool:
        """Whether the record takes no silent edits: its policy locks it, or a parent
        that locks its children is locked (an observation of an approved patrol)."""
        if spec.policy.locks(row.values):
            return True
        for parent in spec.parents:
            parent_id = row.values.get(parent.field)
            if parent.locks and parent_id is not None:
                parent_spec = self.ws.catalog[parent.entity]
                found = self.ws.record(parent_spec, parent_id, lock=False)
                if found is not None and parent_spec.policy.locks(found.values):
                    return True
        return False

    def locked_by_parent(self, spec: EntitySpec, parents: dict[str, Record]) -> bool:
        """Whether a new record would hang from a parent that locks its children."""
        return any(
            parent.locks
            and parent.field in parents
            and self.ws.catalog[parent.entity].policy.locks(parents[parent.field].values)
            for parent in spec.parents
        )


def as_uuid(value: Any) -> uuid.UUID:
    """A UUID, from its validated text form or as it is."""
    return value if isinstance(value, uuid.UUID) else _uuid_of(str(value))


# A record's parents and scope are read from its text several times a change, and the
# same patrol or session is named by many changes of a batch: a UUID made from text is
# 0.8 µs, one remembered 0.1. UUIDs never change, so the processes' threads share them.
@functools.lru_cache(maxsize=4096)
def _uuid_of(text: str) -> uuid.UUID:
    return uuid.UUID(text)
