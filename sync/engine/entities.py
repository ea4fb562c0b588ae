"""What the engine knows of a record type: only what a field domain tells it.

A spec says which table holds the record, which model validates its fields, which
kind of scope it lives in (a sector, a community), which records it hangs from (a
change that names a parent the server has not received yet is deferred until it
arrives), what it names of the reference data, what makes two of them duplicates,
who may push it, and its ``Policy``: the few rules that are the domain's own. The
engine is handed a ``Catalog`` of specs and never names a record type itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from schemas import Community, Sector
from schemas.enums import Role
from schemas.records import Fields, SyncedColumns

if TYPE_CHECKING:
    from sync.engine.workspace import Record, Workspace


class ScopeKind(StrEnum):
    """Where a record lives, and so which tablets hold it: rangers' sectors or
    extension workers' communities."""

    sector = "sector"
    community = "community"

    @property
    def field(self) -> str:
        return f"{self.value}_id"


# Each kind of scope with the column that carries it, made once: iterating an enum and
# reading a property of each member is a microsecond a change.
_SCOPE_FIELDS = tuple((kind, kind.field) for kind in ScopeKind)


@dataclass(frozen=True)
class Parent:
    """A record this one hangs from, named by ``field``; ``scope`` when the child takes
    its scope from it (a track segment lies in its patrol's sector); ``locks`` when a
    locked parent locks the child too (an observation of an approved patrol)."""

    field: str
    entity: str
    scope: bool = False
    locks: bool = False


@dataclass(frozen=True)
class Reference:
    """A field naming reference data, which must exist: ``column`` of ``table`` holds
    the value; a change naming what is not there is rejected with ``code``. ``reads``
    are the columns a policy's check reads of it (a category's attributes)."""

    field: str
    table: type[Any]
    column: str = "id"
    code: str = "unknown_reference"
    message: str = "no such record"
    reads: tuple[str, ...] = ()


@dataclass(frozen=True)
class Duplicate:
    """Two live records with the same ``key`` fields are one: a second one created is
    kept, deleted and ``merged_into`` the first; an update that would make one is
    rejected on ``field`` with ``code``. The database holds a unique index on them."""

    key: tuple[str, ...]
    field: str
    code: str
    message: str


class Policy:
    """A record type's own rules. The defaults are those of a record with none; a
    domain overrides what it needs. Each check raises ``sync.engine.rules.Rejected``."""

    def check_incoming(self, incoming: Mapping[str, Any]) -> None:
        """What no writer may set in these fields (a review's status)."""

    def check_transition(self, current: Mapping[str, Any], incoming: Mapping[str, Any]) -> None:
        """What a write outside the domain's own workflow may not change (an approved
        patrol's status, which only a review changes)."""

    def check(self, ws: Workspace, state: Mapping[str, Any]) -> None:
        """The record's whole state against what it names (an observation's attributes
        against its category)."""

    def locks(self, values: Mapping[str, Any]) -> bool:
        """Whether the record, as stored, takes no silent edits (an approved patrol)."""
        return False

    def follow(self, ws: Workspace, state: dict[str, Any], names: Iterable[str]) -> bool:
        """Point the references among ``names`` at where they lead now (an attendance of
        a merged person names the kept person); whether ``state`` changed."""
        return False

    def redirect(self, ws: Workspace, row: Record) -> Record | None:
        """The record an update of ``row`` lands on instead (a merged person's edit
        lands on the person kept), locked; None when it lands on ``row``."""
        return None


@dataclass(frozen=True)
class EntitySpec:
    name: str
    table: type[SyncedColumns]
    fields: type[Fields]
    scope: ScopeKind
    pushed_by: frozenset[Role]
    parents: tuple[Parent, ...] = ()
    references: tuple[Reference, ...] = ()
    duplicate: Duplicate | None = None
    append_only: bool = False
    policy: Policy = field(default_factory=Policy)
    # Server-owned columns shown to devices besides the fields (review, merges, scope).
    server_fields: tuple[str, ...] = ()
    # Columns the server derives from the fields in JSON form on every write (a
    # person's folded name, a segment's point count), named in ``derived_columns``.
    derived: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None
    derived_columns: tuple[str, ...] = ()

    @cached_property
    def scope_field(self) -> str:
        return self.scope.field

    @cached_property
    def settable(self) -> frozenset[str]:
        return frozenset(self.fields.model_fields)

    @cached_property
    def columns(self) -> tuple[str, ...]:
        """Every column of the record's table."""
        return tuple(self.table.__table__.columns.keys())  # type: ignore[attr-defined]

    @cached_property
    def documents(self) -> frozenset[str]:
        """The settable fields stored as JSON documents (members, points, consent)."""
        table = self.table.__table__  # type: ignore[attr-defined]
        return frozenset(n for n in self.settable if isinstance(table.c[n].type, sa.JSON))

    @cached_property
    def checked_references(self) -> tuple[Reference, ...]:
        """What the record names of the reference data: its own scope key when a writer
        sets it (a patrol's sector), then ``references``."""
        scope: tuple[Reference, ...] = ()
        if self.scope_field in self.settable:
            table = Sector if self.scope is ScopeKind.sector else Community
            scope = (Reference(self.scope_field, table, message=f"no such {self.scope}"),)
        return scope + self.references

    def scope_keys(self, value: uuid.UUID | None) -> dict[str, uuid.UUID | None]:
        """A scope key as the columns that carry it (pull entries, conflicts)."""
        return {field: value if kind is self.scope else None for kind, field in _SCOPE_FIELDS}


class Catalog(Mapping[str, EntitySpec]):
    """The record types devices push, by name; and the names of the reference data
    they pull but never push (made by admins)."""

    def __init__(self, specs: Iterable[EntitySpec], *, read_only: Iterable[str] = ()) -> None:
        self._specs = {spec.name: spec for spec in specs}
        self.read_only = frozenset(read_only)

    def __getitem__(self, name: str) -> EntitySpec:
        return self._specs[name]

    def children_of(self, name: str) -> list[tuple[EntitySpec, Parent]]:
        """The record types that take their scope from a ``name`` record, with the
        field that names it (a track segment's ``patrol_id``)."""
        return [
            (spec, parent)
            for spec in self._specs.values()
            for parent in spec.parents
            if parent.scope and parent.entity == name
        ]

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other
