"""Field records in storage: a record's state as a dict, its typed row, its pull snapshot.

A record's *state* is its device-settable fields in JSON form (UUIDs and times as
strings, times in UTC): what versions store, what merges compare, what conflicts
hold. The typed row is written from it; the pull snapshot adds the server-owned
fields devices are shown.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session, col, select

from schemas.records import Fields, SyncedColumns
from sync.engine.entities import EntitySpec
from sync.platform.errors import FieldProblem
from sync.platform.spliced import Spliced

SNAPSHOT_META = ("created_at", "created_by", "device_id", "recorded_at")


class InvalidFields(Exception):
    """A record's fields do not validate; ``problems`` say which and why."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems


def validate(spec: EntitySpec, state: dict[str, Any]) -> dict[str, Any]:
    """The state, validated whole and normalised (JSON form, UTC)."""
    return json_form(validated(spec, state))


def json_form(model: Fields) -> dict[str, Any]:
    """``model.model_dump(mode="json")``, with the fields validated straight into their
    JSON form (``Fields.JSON_FORM``: a track's points) taken as they are rather than
    walked again by pydantic's serialiser, which cost a microsecond a point."""
    ready = model.JSON_FORM
    if not ready:
        return model.model_dump(mode="json")
    state = model.model_dump(mode="json", exclude=set(ready))
    for name in ready:
        state[name] = getattr(model, name)
    return state


def validated(spec: EntitySpec, state: Mapping[str, Any]) -> Fields:
    """The state as its validated fields model."""
    try:
        return spec.fields.model_validate(state)
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


def written(spec: EntitySpec, state: dict[str, Any]) -> dict[str, Any]:
    """``state`` as a version and a pull entry write it: each field validated straight
    to its JSON form (``Fields.JSON_FORM``: a track's points) written as JSON once, and
    spliced into both documents and the version's hash (``sync.platform.spliced``),
    where each dumped a segment's hundred points again."""
    ready = spec.fields.JSON_FORM & state.keys()
    if not ready:
        return state
    return {**state, **{name: Spliced(state[name]) for name in ready}}


def state_of(spec: EntitySpec, row: SyncedColumns) -> dict[str, Any]:
    return state_from(spec, {name: getattr(row, name) for name in spec.settable})


def state_from(spec: EntitySpec, values: Mapping[str, Any]) -> dict[str, Any]:
    """The state of a record from its column values."""
    settable = {name: values[name] for name in spec.settable}
    return json_form(spec.fields.model_validate(settable))


def columns(spec: EntitySpec, model: Fields, state: dict[str, Any]) -> dict[str, Any]:
    """The typed column values of a validated record: documents (members, points) as
    their JSON form ``state``, the rest as Python values (UUIDs, times, enums), and
    the columns the server derives from them (``EntitySpec.derived``)."""
    documents = spec.documents
    values = {
        name: state[name] if name in documents else getattr(model, name) for name in spec.settable
    }
    if spec.derived is not None:
        values.update(spec.derived(state))
    return values


def write_state(spec: EntitySpec, row: SyncedColumns, state: dict[str, Any]) -> None:
    """Set the row's typed columns from a (validated) state."""
    model = spec.fields.model_validate(state)
    for name, value in columns(spec, model, json_form(model)).items():
        setattr(row, name, value)


def snapshot(spec: EntitySpec, row: SyncedColumns, state: dict[str, Any]) -> dict[str, Any]:
    """What a device pulls: the fields, the server-owned fields, and when and by whom."""
    return snapshot_from(
        spec, {name: getattr(row, name) for name in (*spec.server_fields, *SNAPSHOT_META)}, state
    )


def snapshot_from(
    spec: EntitySpec, values: Mapping[str, Any], state: dict[str, Any]
) -> dict[str, Any]:
    """``snapshot`` of a record given as its column values."""
    shown = dict(state)
    for name in (*spec.server_fields, *SNAPSHOT_META):
        shown[name] = _json(values[name])
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
