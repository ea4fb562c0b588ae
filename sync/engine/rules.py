"""The rules a record meets whoever writes it: a device's push or an office's
resolution of a conflict (``sync.engine.conflicts``).

What a record hangs from and the scope it takes from it, that it stays in the scope
and under the parent it was made with, that what it names exists, that a device
cannot set a review's status, and what locks a record (an approved patrol). Each rule
raises ``Rejected`` with the field, a stable code and a message, or ``Deferred`` when
a parent the record names has not arrived yet.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from schemas.records import PatrolStatus
from schemas.sync import ChangeError
from sync.accounts.principal import Principal
from sync.engine.entities import ENTITIES, Domain, EntitySpec
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
DEVICE_PATROL_STATUSES = frozenset(
    {PatrolStatus.draft, PatrolStatus.submitted, PatrolStatus.cancelled}
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
            row = self.ws.record(ENTITIES[parent.entity], parent_id, lock=False)
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
        held = principal.sector_ids if spec.domain is Domain.patrol else principal.community_ids
        if value not in held:
            raise Rejected(
                f"fields.{spec.scope_field}", "out_of_scope", "that is not in this user's scope"
            )

    def check_in_scope(self, principal: Principal, spec: EntitySpec, row: Record) -> None:
        self.check_scope_value(principal, spec, {spec.scope_field: row.scope})

    def check_references(self, spec: EntitySpec, state: dict[str, Any]) -> None:
        sector_id = state.get("sector_id")
        if sector_id is not None and not self.ws.sector_exists(as_uuid(sector_id)):
            raise Rejected("fields.sector_id", "unknown_reference", "no such sector")
        community_id = state.get("community_id")
        if community_id is not None and not self.ws.community_exists(as_uuid(community_id)):
            raise Rejected("fields.community_id", "unknown_reference", "no such community")
        if spec.name == "observation":
            self.check_category(state)

    def check_category(self, state: dict[str, Any]) -> None:
        category = self.ws.category(state["category_key"])
        if category is None:
            raise Rejected("fields.category_key", "unknown_category", "no such category")
        problems = attribute_problems(category.attributes, state.get("attributes") or {})
        if problems:
            raise Rejected.many(problems)

    def check_stays_put(
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

    def check_patrol_status(self, spec: EntitySpec, incoming: dict[str, Any]) -> None:
        if spec.name == "patrol" and incoming.get("status", "draft") not in DEVICE_PATROL_STATUSES:
            raise Rejected(
                "fields.status", "review_status", "approved and returned are set by a review"
            )

    def check_review_kept(
        self, spec: EntitySpec, current: dict[str, Any], incoming: dict[str, Any]
    ) -> None:
        """An approved patrol leaves ``approved`` only by a review: what an office writes
        outside the review (a conflict's resolution) cannot un-approve it."""
        if (
            spec.name == "patrol"
            and current.get("status") == PatrolStatus.approved
            and incoming.get("status", PatrolStatus.approved) != PatrolStatus.approved
        ):
            raise Rejected(
                "fields.status", "review_status", "an approved patrol is changed by a review only"
            )

    def check_single_attendance(self, row: Record) -> None:
        """An update may not make a second live attendance of one person at one session."""
        if (
            row.spec.name == "attendance"
            and not row.deleted
            and self.duplicate_attendance(row) is not None
        ):
            raise Rejected(
                "fields.person_id",
                "duplicate_attendance",
                "this person's attendance at this session is already recorded",
            )

    def locked(self, spec: EntitySpec, row: Record) -> bool:
        """An approved patrol, and its observations, take no silent edits."""
        if spec.name == "patrol":
            return bool(row.values["status"] == PatrolStatus.approved)
        if spec.name == "observation" and row.values["patrol_id"] is not None:
            patrol = self.ws.record(ENTITIES["patrol"], row.values["patrol_id"], lock=False)
            return patrol is not None and patrol.values["status"] == PatrolStatus.approved
        return False

    def locked_by_parent(self, spec: EntitySpec, parents: dict[str, Record]) -> bool:
        patrol = parents.get("patrol_id")
        return (
            spec.name == "observation"
            and patrol is not None
            and patrol.values["status"] == PatrolStatus.approved
        )

    def duplicate_attendance(self, row: Record) -> uuid.UUID | None:
        if row.spec.name != "attendance":
            return None
        others = self.ws.live_attendance(row.values["session_id"], row.values["person_id"])
        others.discard(row.id)
        return min(others) if others else None


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
            problems.append(FieldProblem(where, "invalid_attribute", _expected(attribute)))
    return problems


def _expected(attribute: dict[str, Any]) -> str:
    """What an attribute takes, in words a ranger can act on: a list names its options."""
    kind = attribute["type"]
    if kind == "list":
        return "expected one of: " + ", ".join(attribute.get("options") or [])
    if kind == "date":
        return "expected a date (2026-03-01)"
    return f"expected a {kind}"


def _is_date(value: str) -> bool:
    try:
        datetime.strptime(value, "%Y-%m-%d")  # noqa: DTZ007 (a calendar date, no time)
    except ValueError:
        return False
    return True


def as_uuid(value: Any) -> uuid.UUID:
    """A UUID, from its validated text form or as it is."""
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
