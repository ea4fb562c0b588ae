"""The rangers' records as the engine syncs them, and the rules that are theirs.

A patrol is approved or returned only by a ranger lead's review (``sync.patrols.review``):
a device may file it as a draft, submit it or cancel it, never approve it. An approved
patrol, and the observations made on it, take no silent edits: what a tablet sends for
them opens a conflict for the office. An observation's attributes are checked against
its category's typed attributes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from schemas import ObservationCategory
from schemas.enums import Role
from schemas.records import (
    Observation,
    ObservationFields,
    Patrol,
    PatrolFields,
    PatrolStatus,
    TrackSegment,
    TrackSegmentFields,
)
from sync.engine.entities import EntitySpec, Parent, Policy, Reference, ScopeKind
from sync.engine.rules import Rejected
from sync.engine.workspace import Workspace
from sync.platform.errors import FieldProblem

PUSHED_BY = frozenset({Role.admin, Role.coordinator, Role.ranger_lead, Role.ranger})
DEVICE_STATUSES = frozenset({PatrolStatus.draft, PatrolStatus.submitted, PatrolStatus.cancelled})


class PatrolPolicy(Policy):
    def check_incoming(self, incoming: Mapping[str, Any]) -> None:
        if incoming.get("status", PatrolStatus.draft) not in DEVICE_STATUSES:
            raise Rejected(
                "fields.status", "review_status", "approved and returned are set by a review"
            )

    def check_transition(self, current: Mapping[str, Any], incoming: Mapping[str, Any]) -> None:
        if (
            current.get("status") == PatrolStatus.approved
            and incoming.get("status", PatrolStatus.approved) != PatrolStatus.approved
        ):
            raise Rejected(
                "fields.status", "review_status", "an approved patrol is changed by a review only"
            )

    def locks(self, values: Mapping[str, Any]) -> bool:
        return bool(values["status"] == PatrolStatus.approved)


CATEGORY = Reference(
    "category_key",
    ObservationCategory,
    "key",
    "unknown_category",
    "no such category",
    reads=("attributes",),
)


class ObservationPolicy(Policy):
    def check(self, ws: Workspace, state: Mapping[str, Any]) -> None:
        category = ws.reference(CATEGORY, state["category_key"])
        assert category is not None  # the spec's reference: checked first
        problems = attribute_problems(category["attributes"], state.get("attributes") or {})
        if problems:
            raise Rejected.many(problems)


PATROL = EntitySpec(
    "patrol",
    Patrol,
    PatrolFields,
    ScopeKind.sector,
    PUSHED_BY,
    policy=PatrolPolicy(),
    server_fields=("reviewed_by", "reviewed_at", "review_comment"),
)
TRACK_SEGMENT = EntitySpec(
    "track_segment",
    TrackSegment,
    TrackSegmentFields,
    ScopeKind.sector,
    PUSHED_BY,
    parents=(Parent("patrol_id", "patrol", scope=True),),
    append_only=True,
    server_fields=("sector_id", "point_count"),
    derived=lambda segment: {"point_count": len(segment["points"])},
    derived_columns=("point_count",),
)
OBSERVATION = EntitySpec(
    "observation",
    Observation,
    ObservationFields,
    ScopeKind.sector,
    PUSHED_BY,
    parents=(Parent("patrol_id", "patrol", scope=True, locks=True),),
    references=(CATEGORY,),
    policy=ObservationPolicy(),
)
ENTITIES = (PATROL, TRACK_SEGMENT, OBSERVATION)


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
