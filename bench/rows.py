"""A record as push stores it: its table row, its first version, its pull entry.

The seeder writes these straight into the database, and the floor inserts the table
rows alone; both must hold exactly what ``sync.engine.push`` would have made of the same
create, so this follows ``PushEngine._create``: the fields validated by the record's
fields model, the scope taken from the parent where the record hangs from one (a
track segment lies in its patrol's sector), the server-owned columns, and the pull
snapshot made by ``sync.engine.records.snapshot_from`` itself.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from functools import cache
from types import UnionType
from typing import (
    Annotated,
    Any,
    NotRequired,
    Union,
    cast,
    get_args,
    get_origin,
    get_type_hints,
)

import orjson
import sqlalchemy as sa
from psycopg.types.json import Jsonb
from pydantic import AwareDatetime, BaseModel, TypeAdapter
from pydantic_core import to_jsonable_python
from sqlalchemy.engine import Dialect
from typing_extensions import is_typeddict

from bench.generator import Record, Track
from schemas import RecordVersion, SyncEntry
from schemas.records import Moment
from schemas.types import UTCDateTime, sqlite_time
from sync.catalog import CATALOG
from sync.engine import records
from sync.engine.entities import EntitySpec, ScopeKind

_VERSION: sa.Table = RecordVersion.__table__  # type: ignore[attr-defined]
_ENTRY: sa.Table = SyncEntry.__table__  # type: ignore[attr-defined]


@dataclass
class Shaped:
    """One created record's rows; the pull entry still needs its ``change_seq``."""

    entity: str
    table: sa.Table
    row: dict[str, Any]
    version: dict[str, Any]
    entry: dict[str, Any]


def table_of(entity: str) -> sa.Table:
    return cast(sa.Table, CATALOG[entity].table.__table__)  # type: ignore[attr-defined]


def shape(
    record: Record,
    *,
    now: datetime,
    user_id: uuid.UUID,
    device_id: uuid.UUID,
    change_id: uuid.UUID | None = None,
) -> Shaped:
    """The rows push makes for a create of ``record`` by ``device_id`` at ``now``."""
    spec = CATALOG[record.entity]
    table = table_of(record.entity)
    model = spec.fields.model_validate(record.fields)
    state = model.model_dump(mode="json")
    if spec.scope_field in state:  # an observation shows the sector it lies in
        state[spec.scope_field] = str(record.scope)
    row: dict[str, Any] = dict.fromkeys(table.columns.keys())
    row.update(
        id=record.id,
        version=1,
        created_at=now,
        updated_at=now,
        recorded_at=record.recorded_at and record.recorded_at.astimezone(UTC),
        created_by=user_id,
        device_id=device_id,
    )
    row.update(records.columns(spec, model, state))
    row[spec.scope_field] = record.scope
    if record.entity == "track_segment":
        row["point_count"] = len(state["points"])
    snapshot = records.snapshot_from(spec, row, state)
    patrol_scope = spec.scope is ScopeKind.sector
    return Shaped(
        entity=record.entity,
        table=table,
        row=row,
        version={
            "entity": record.entity,
            "record_id": record.id,
            "version": 1,
            "op": "create",
            "fields": state,
            "changed": sorted(state),
            "user_id": user_id,
            "device_id": device_id,
            "change_id": change_id,
            "reason": None,
            "recorded_at": record.recorded_at,
            "created_at": now,
        },
        entry={
            "entity": record.entity,
            "record_id": record.id,
            "version": 1,
            "deleted": False,
            "sector_id": record.scope if patrol_scope else None,
            "community_id": None if patrol_scope else record.scope,
            "fields": snapshot,
            "updated_at": now,
        },
    )


# ---------------------------------------------------------------- values for the drivers


def sqlite_values(
    table: sa.Table, columns: list[str], rows: Iterable[dict[str, Any]], dialect: Dialect
) -> list[tuple[Any, ...]]:
    """Rows as the stdlib ``sqlite3`` takes them, stored exactly as SQLAlchemy stores
    them (its own bind processors: UUIDs as hex, UTC text, JSON text)."""
    processors: list[Callable[[Any], Any] | None] = [
        table.columns[name].type.bind_processor(dialect) for name in columns
    ]
    return [
        tuple(
            process(row[name]) if process is not None and row[name] is not None else row[name]
            for name, process in zip(columns, processors, strict=True)
        )
        for row in rows
    ]


def postgresql_values(
    table: sa.Table, columns: list[str], rows: Iterable[dict[str, Any]], *, for_copy: bool
) -> list[tuple[Any, ...]]:
    """Rows as psycopg takes them: enumerations as their text, JSON columns as JSON
    text for ``COPY`` (whose text format casts it; and text crosses processes) or
    wrapped as ``jsonb`` for ``executemany``."""
    is_json = [isinstance(table.columns[name].type, sa.JSON) for name in columns]
    return [
        tuple(
            _postgresql(row[name], json_column, for_copy)
            for name, json_column in zip(columns, is_json, strict=True)
        )
        for row in rows
    ]


def _postgresql(value: Any, json_column: bool, for_copy: bool) -> Any:
    if value is None:
        return None
    if json_column:
        return _compact(value) if for_copy else Jsonb(value, dumps=_compact)
    if isinstance(value, Enum):
        return value.value
    return value


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


# ---------------------------------------------------------------- the same rows, fast
#
# The seeder makes millions of records; ``shape`` (pydantic, SQLAlchemy's bind
# processors) would spend most of the seeding time on them. What follows makes the
# same rows from what the generator makes, already rendered for the driver: the state
# normalised by plain code that follows the fields models (field order, defaults, UTC
# times, floats), each JSON document serialised once with orjson (the server's own
# serialiser) and spliced whole into the version and the pull snapshot, and every
# value rendered as the database stores it. Tests hold it to the fields models and
# to push, byte for byte.

_REQUIRED = object()
_PLAIN, _MOMENT, _FLOAT, _MODEL, _MODELS = range(5)


@dataclass(frozen=True)
class _Form:
    """How a pydantic model normalises: its fields in order, each with its default (in
    JSON form, or ``_REQUIRED``), what it is, and the form of a nested model."""

    fields: tuple[tuple[str, Any, int, _Form | None], ...]


def _bare(annotation: Any) -> Any:
    """``annotation`` without ``Annotated`` and ``| None``."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _is_model(annotation: Any) -> bool:
    return (isinstance(annotation, type) and issubclass(annotation, BaseModel)) or is_typeddict(
        annotation
    )


@cache
def _form(model: Any) -> _Form:
    """The form of a pydantic model, or of a ``TypedDict`` (a track's points, whose
    keys not sent are null and whose keys are sorted: ``schemas.records._in_utc``)."""
    if is_typeddict(model):
        hints = get_type_hints(model, include_extras=True)
        return _Form(
            tuple(
                (
                    name,
                    _REQUIRED if name in model.__required_keys__ else None,
                    *_kind(_bare(_required(hint))),
                )
                for name, hint in sorted(hints.items())
            )
        )
    fields = []
    for name, info in model.model_fields.items():
        if info.is_required():
            default = _REQUIRED
        else:
            default = to_jsonable_python(info.get_default(call_default_factory=True))
        fields.append((name, default, *_kind(_bare(info.annotation))))
    return _Form(tuple(fields))


def _kind(bare: Any) -> tuple[int, _Form | None]:
    if bare is datetime or bare is AwareDatetime:
        return _MOMENT, None
    if bare is float:
        return _FLOAT, None
    if _is_model(bare):
        return _MODEL, _form(bare)
    if get_origin(bare) is list and _is_model(item := _bare(get_args(bare)[0])):
        return _MODELS, _form(item)
    return _PLAIN, None


def _required(hint: Any) -> Any:
    """A ``TypedDict`` key's type without ``NotRequired``."""
    return get_args(hint)[0] if get_origin(hint) is NotRequired else hint


_MOMENT_ADAPTER: TypeAdapter[datetime] = TypeAdapter(Moment)


def _moment(value: Any) -> Any:
    """A time in the form the server keeps it: UTC, ``2026-03-05T10:01:02Z``."""
    if type(value) is str and len(value) == 20 and value[19] == "Z" and value[10] == "T":
        return value
    return _MOMENT_ADAPTER.dump_python(_MOMENT_ADAPTER.validate_python(value), mode="json")


def _normalised(form: _Form, given: dict[str, Any]) -> dict[str, Any]:
    state: dict[str, Any] = {}
    known = 0
    for name, default, kind, nested in form.fields:
        if name in given:
            known += 1
            value = given[name]
            if value is not None and kind:
                if kind == _MOMENT:
                    value = _moment(value)
                elif kind == _FLOAT:
                    if type(value) is int:
                        value = float(value)
                elif kind == _MODEL:
                    value = _normalised(cast(_Form, nested), value)
                elif kind == _MODELS and type(value) is not Track:  # Track: as stored
                    value = [_normalised(cast(_Form, nested), item) for item in value]
        elif default is _REQUIRED:
            raise ValueError(f"{name} is required")
        else:
            value = default.copy() if isinstance(default, list | dict) else default
        state[name] = value
    if known != len(given):
        raise ValueError(f"unknown fields: {sorted(set(given) - {f[0] for f in form.fields})}")
    return state


def stored_state(record: Record) -> dict[str, Any]:
    """``record``'s state as push stores it, without pydantic: what
    ``fields.model_validate(...).model_dump(mode="json")`` makes of the fields the
    generator makes, with the record's scope where its fields show one. The models'
    own validators are not run: the generator's records are valid (``spot_check``)."""
    spec = CATALOG[record.entity]
    state = _normalised(_form(spec.fields), record.fields)
    if spec.scope_field in state:  # an observation shows the sector it lies in
        state[spec.scope_field] = str(record.scope)
    return state


def spot_check(record: Record, state: dict[str, Any]) -> None:
    """Raise unless ``state`` is what the record's fields model makes of its fields."""
    spec = CATALOG[record.entity]
    fields = {k: v.points() if type(v) is Track else v for k, v in record.fields.items()}
    expected = spec.fields.model_validate(fields).model_dump(mode="json")
    if spec.scope_field in expected:
        expected[spec.scope_field] = str(record.scope)
    made = {k: v.points() if type(v) is Track else v for k, v in state.items()}
    if orjson.dumps(made) != orjson.dumps(expected):  # the same, in the same order
        raise AssertionError(f"the seeder's {record.entity} differs from push's: {made}")


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: str) -> str:
    """A text value in ``COPY … FROM STDIN`` text format."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_COPY_ESCAPES)
    return value


def _sqlite_moment(value: str) -> str:
    if len(value) == 20 and value[19] == "Z":
        return f"{value[:10]} {value[11:19]}.000000"
    return sqlite_time(datetime.fromisoformat(value))


Render = Callable[[Any], Any]


def _renderer(column: sa.Column[Any], postgresql: bool) -> Render:
    """How a column's value in JSON form (UUIDs, times as text, enumerations by value)
    is handed to the driver; ``None`` is never given."""
    kind = column.type
    if isinstance(kind, sa.Enum):
        names = {member.value: member.name for member in kind.enum_class or ()}
        return names.__getitem__
    if isinstance(kind, sa.Uuid):
        return _same if postgresql else _uuid_hex
    if isinstance(kind, UTCDateTime):
        return _same if postgresql else _sqlite_moment
    if isinstance(kind, sa.Boolean):
        return _copy_bool if postgresql else int
    if isinstance(kind, sa.Integer | sa.Float):
        return str if postgresql else _same
    if isinstance(kind, sa.Date):
        return _same
    if isinstance(kind, sa.String):  # and Text
        return _copy_text if postgresql else _same
    raise TypeError(f"no renderer for {column.table}.{column.name} ({kind!r})")


def _same(value: Any) -> Any:
    return value


def _uuid_hex(value: str) -> str:
    return value.replace("-", "")


def _copy_bool(value: bool) -> str:
    return "t" if value else "f"


def _copy_line(values: list[Any]) -> bytes:
    return ("\t".join(values) + "\n").encode()


class Renderer:
    """Rows of records created by one device at one moment, as the driver takes them:
    tuples for sqlite3's ``executemany`` (as SQLAlchemy stores each type there: UUIDs
    as hex, times as naive UTC text), or lines of ``COPY`` text for PostgreSQL. The
    pull entries' rows leave ``change_seq`` out (it is numbered when written): it is
    the last column of ``entry_columns`` for SQLite, the first for PostgreSQL."""

    def __init__(
        self, dialect: str, *, now: datetime, user_id: uuid.UUID, device_id: uuid.UUID
    ) -> None:
        self.postgresql = postgresql = dialect == "postgresql"
        self.now = now
        self.user_id = user_id
        self.device_id = device_id
        self.null: Any = "\\N" if postgresql else None
        # Integers as the driver takes them, and times: PostgreSQL reads ISO 8601.
        self.number: Render = str if postgresql else _same
        self.time: Render = datetime.isoformat if postgresql else sqlite_time
        self.line: Callable[[list[Any]], Any] = _copy_line if postgresql else tuple
        self.now_stored = self.time(now)
        self._tables: dict[str, _Table] = {}
        self.version_columns = list(_VERSION.columns.keys())
        self._version = _Template(
            self.version_columns,
            version=self.number(1),
            op="create",
            user_id=user_id.hex,
            device_id=device_id.hex,
            reason=self.null,
            created_at=self.now_stored,
            # Seeded history is not sealed into the audit chain (docs/audit.md).
            chain_tx=self.null,
            chain_hash=self.null,
        )
        entry_columns = list(_ENTRY.columns.keys())
        entry_columns.remove("change_seq")
        self.entry_columns = (
            ["change_seq", *entry_columns] if postgresql else [*entry_columns, "change_seq"]
        )
        self._entry = _Template(
            entry_columns,
            version=self.number(1),
            deleted="f" if postgresql else 0,
            updated_at=self.now_stored,
        )

    def columns(self, entity: str) -> list[str]:
        return self.table(entity).columns

    def table(self, entity: str) -> _Table:
        made = self._tables.get(entity)
        if made is None:
            made = self._tables[entity] = _Table(self, CATALOG[entity])
        return made

    def json(self, text: str) -> str:
        """A JSON column's value, from orjson's text: the server's engine writes
        JSON with orjson too, so the stored text is the same, byte for byte."""
        if self.postgresql and "\\" in text:  # orjson writes no tab nor newline
            return text.replace("\\", "\\\\")
        return text

    def render(self, record: Record, change_id: uuid.UUID, state: dict[str, Any]) -> Rendered:
        """The rows of ``record`` (``state``: its ``stored_state``)."""
        table = self.table(record.entity)
        spec = table.spec
        null = self.null
        record_id = record.id.hex
        scope = record.scope.hex
        # Push keeps the device's clock in UTC (the offset it was sent with is lost).
        recorded = record.recorded_at and record.recorded_at.astimezone(UTC)
        recorded_at = null if recorded is None else self.time(recorded)
        row = table.template.copy()
        row[table.id] = record_id
        row[table.recorded_at] = recorded_at
        for position, name, render in table.fields:
            value = state[name]
            row[position] = null if value is None else render(value)
        row[table.scope] = scope
        if spec.derived is not None:  # a person's folded name, as push derives it
            for name, value in spec.derived(state).items():
                position, render = table.derived[name]
                row[position] = null if value is None else render(value)
        # Each JSON document serialised once, and spliced whole into the version and
        # the pull snapshot. None is stored as JSON null, as SQLAlchemy's JSON does.
        documents: dict[str, orjson.Fragment] = {}
        for position, name in table.documents:
            value = state[name]
            text = value.json if type(value) is Track else orjson.dumps(value).decode()
            documents[name] = orjson.Fragment(text)
            row[position] = self.json(text)
        # The snapshot is made by the server's own function, from the row's values.
        shown = table.shown.copy()
        shown["recorded_at"] = recorded
        if table.shows_scope:
            shown[spec.scope_field] = str(record.scope)
        if table.point_count is not None:
            count = len(state["points"])
            row[table.point_count] = self.number(count)
            shown["point_count"] = count
        fields = {**state, **documents}
        snapshot = records.snapshot_from(spec, shown, fields)
        version = self._version.filled(
            entity=record.entity,
            record_id=record_id,
            fields=self.json(orjson.dumps(fields).decode()),
            changed=table.changed,
            change_id=change_id.hex,
            recorded_at=recorded_at,
        )
        patrol_scope = spec.scope is ScopeKind.sector
        entry = self._entry.filled(
            entity=record.entity,
            record_id=record_id,
            sector_id=scope if patrol_scope else null,
            community_id=null if patrol_scope else scope,
            fields=self.json(orjson.dumps(snapshot).decode()),
        )
        line = self.line
        return Rendered(record.entity, line(row), line(version), line(entry))


@dataclass
class Rendered:
    """A record's rows, as ``Renderer.line`` makes them (tuples, or lines of COPY)."""

    entity: str
    row: Any
    version: Any
    entry: Any  # without change_seq


class _Template:
    """A row of a table with the values every row has, to be filled in."""

    def __init__(self, columns: list[str], **values: Any) -> None:
        self.columns = columns
        self.values = [values.get(name) for name in columns]
        self.positions = {name: position for position, name in enumerate(columns)}

    def filled(self, **values: Any) -> list[Any]:
        made = self.values.copy()
        positions = self.positions
        for name, value in values.items():
            made[positions[name]] = value
        return made


class _Table:
    """A record table as ``Renderer`` fills it: the columns every create sets alike,
    rendered once; the fields, each with its renderer; the JSON documents; what the
    snapshot shows besides the fields."""

    def __init__(self, renderer: Renderer, spec: EntitySpec) -> None:
        self.spec = spec
        table = table_of(spec.name)
        postgresql = renderer.postgresql
        self.columns: list[str] = list(table.columns.keys())
        position = {name: index for index, name in enumerate(self.columns)}.__getitem__
        # Push makes every column None but those it sets (``PushEngine._create``).
        self.template = _Template(
            self.columns,
            version=renderer.number(1),
            created_at=renderer.now_stored,
            updated_at=renderer.now_stored,
            created_by=renderer.user_id.hex,
            device_id=renderer.device_id.hex,
        ).values
        self.template = [renderer.null if v is None else v for v in self.template]
        self.id, self.recorded_at = position("id"), position("recorded_at")
        self.scope = position(spec.scope_field)
        self.point_count = position("point_count") if spec.name == "track_segment" else None
        self.documents = [(position(name), name) for name in sorted(spec.documents)]
        self.derived = {
            name: (position(name), _renderer(table.columns[name], postgresql))
            for name in spec.derived_columns
        }
        self.fields = [
            (position(name), name, _renderer(table.columns[name], postgresql))
            for name in spec.fields.model_fields
            if name not in spec.documents
        ]
        self.changed = renderer.json(orjson.dumps(sorted(spec.fields.model_fields)).decode())
        # The snapshot's server-owned values, in JSON form as ``records.snapshot_from``
        # writes them (it leaves text as it is), and who made the record and when.
        self.shown: dict[str, Any] = dict.fromkeys((*spec.server_fields, *records.SNAPSHOT_META))
        probe = records.snapshot_from(
            spec,
            {
                **self.shown,
                "created_at": renderer.now,
                "created_by": renderer.user_id,
                "device_id": renderer.device_id,
            },
            {},
        )
        self.shown.update({name: probe[name] for name in self.shown})
        self.shows_scope = spec.scope_field in spec.server_fields
