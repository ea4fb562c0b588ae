"""Training sessions and their attendance as the engine syncs them.

A person attends a session once: a second live attendance of one person at one
session, recorded on another tablet, is kept as merged into the first. An attendance
of a person since merged into another counts for the person kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from schemas.enums import Role
from schemas.records import Attendance, AttendanceFields, TrainingSession, TrainingSessionFields
from sync.engine.entities import Duplicate, EntitySpec, Parent, Policy, ScopeKind
from sync.engine.rules import as_uuid
from sync.engine.workspace import Workspace

PUSHED_BY = frozenset({Role.admin, Role.coordinator, Role.extension_worker})


class AttendancePolicy(Policy):
    def follow(self, ws: Workspace, state: dict[str, Any], names: Iterable[str]) -> bool:
        """Point the attendance at the kept person when it names a merged one. A merge
        always keeps a person who is not merged, so one step is enough."""
        if "person_id" not in names:
            return False
        person = ws.record(ws.catalog["person"], as_uuid(state.get("person_id")), lock=False)
        kept_id = person.values.get("merged_into") if person is not None else None
        if kept_id is None:
            return False
        state["person_id"] = str(kept_id)
        return True


TRAINING_SESSION = EntitySpec(
    "training_session", TrainingSession, TrainingSessionFields, ScopeKind.community, PUSHED_BY
)
ATTENDANCE = EntitySpec(
    "attendance",
    Attendance,
    AttendanceFields,
    ScopeKind.community,
    PUSHED_BY,
    parents=(
        Parent("session_id", "training_session", scope=True),
        Parent("person_id", "person"),
    ),
    duplicate=Duplicate(
        key=("session_id", "person_id"),
        field="person_id",
        code="duplicate_attendance",
        message="this person's attendance at this session is already recorded",
    ),
    policy=AttendancePolicy(),
    server_fields=("community_id", "merged_into"),
)
ENTITIES = (TRAINING_SESSION, ATTENDANCE)
