"""Field records in storage: a record's state as a dict, its typed row, its pull snapshot.

A record's *state* is its device-settable fields in JSON form (UUIDs and times as
strings, times in UTC): what versions store, what merges compare, what conflicts
hold. The typed row is written from it; the pull snapshot adds the server-owned
fields devices are shown.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlmodel import Session, col, select

from schemas.records import SyncedColumns
from sync.entities import EntitySpec
from sync.errors import FieldProblem

SNAPSHOT_META = ("created_at", "created_by", "device_id", "recorded_at")


class InvalidFields(Exception):
    """A record's fields do not validate; ``problems`` say which and why."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems


def validate(spec: EntitySpec, state: dict[str, Any]) -> dict[str, Any]:
    """The state, validated whole and normalised (JSON form, UTC)."""
    try:
        return spec.fields.model_validate(state).model_dump(mode="json")
    except ValidationError as error:
        raise InvalidFields(
            [
                FieldProblem(
                    ".".join(str(part) for part in problem["loc"]) or "fields",
                    problem["type"],
                    problem["msg"],
                )
                for problem in error.errors()
            ]
        ) from error


def state_of(spec: EntitySpec, row: SyncedColumns) -> dict[str, Any]:
    values = {name: getattr(row, name) for name in spec.settable}
    return spec.fields.model_validate(values).model_dump(mode="json")


def write_state(spec: EntitySpec, row: SyncedColumns, state: dict[str, Any]) -> None:
    """Set the row's typed columns from a (validated) state."""
    model = spec.fields.model_validate(state)
    python = model.model_dump()
    document = model.model_dump(mode="json")
    columns = spec.table.__table__.columns  # type: ignore[attr-defined]
    for name in spec.settable:
        is_json = isinstance(columns[name].type, sa.JSON)
        setattr(row, name, document[name] if is_json else python[name])


def snapshot(spec: EntitySpec, row: SyncedColumns, state: dict[str, Any]) -> dict[str, Any]:
    """What a device pulls: the fields, the server-owned fields, and when and by whom."""
    shown = dict(state)
    for name in (*spec.server_fields, *SNAPSHOT_META):
        shown[name] = _json(getattr(row, name))
    return shown


def _json(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value


def load(
    session: Session, spec: EntitySpec, record_id: uuid.UUID, *, for_update: bool = False
) -> SyncedColumns | None:
    query = select(spec.table).where(col(spec.table.id) == record_id)
    if for_update:
        query = query.with_for_update()
    return session.exec(query).first()
