"""What was changed in a version edited behind the service's back.

The chain holds hashes, not values: it proves that a version changed, not how. But
a version is not alone. The version after it keeps every field it did not change
(``changed`` names the ones it did); the version before holds every field this one
did not change; the pull entry of a record holds its last version's state. A field
of the edited version that disagrees with one of those, where the history says they
must agree, is a field that was changed. What an edit made consistently everywhere,
or to a column other than the fields, this cannot tell: it says so.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from schemas.audit import PSEUDONYMISED
from schemas.sync import RecordVersion, SyncEntry
from sync.platform import chain

SHOWN = 60  # characters of a value shown


def what_changed(connection: Connection, version: dict[str, Any]) -> str:
    """The fields of ``version`` (a ``record_version`` row) its history says were
    changed, each with what it reads and what it should; or that it cannot tell."""
    entity, record_id, number = version["entity"], version["record_id"], version["version"]
    fields: dict[str, Any] = version["fields"] or {}
    found: dict[str, tuple[str, Any]] = {}  # field -> (where it reads otherwise, what)

    def compare(other: dict[str, Any], unchanged_but: set[str], where: str) -> None:
        for name in sorted((set(fields) | set(other)) - unchanged_but):
            if fields.get(name) != other.get(name):
                found.setdefault(name, (where, other.get(name)))

    if not fields:
        return "which column, its history does not tell"
    neighbours = _versions(connection, entity, record_id, (number - 1, number + 1))
    after, before = neighbours.get(number + 1), neighbours.get(number - 1)
    if after is not None and after["fields"]:
        compare(after["fields"], set(after["changed"] or ()),
                f"version {number + 1}, which did not change it, reads")  # fmt: skip
    elif after is None:
        entry = _entry(connection, entity, record_id)
        if entry is not None and entry.version == number and entry.fields:
            shared = {name: entry.fields.get(name) for name in fields}
            compare(shared, set(), "the record as tablets pull it reads")
    if before is not None and before["fields"]:
        compare(before["fields"], set(version["changed"] or ()),
                f"version {number - 1}, which it did not change, reads")  # fmt: skip
    if not found:
        return "which column, its history does not tell"
    hidden = PSEUDONYMISED.get(entity, frozenset())
    parts = [
        f"{name} (personal data, not shown)"
        if name in hidden
        else f"{name} reads {_shown(fields.get(name))}; {where} {_shown(other)}"
        for name, (where, other) in sorted(found.items())
    ]
    return "changed: " + "; ".join(parts)


def _versions(
    connection: Connection, entity: str, record_id: uuid.UUID, numbers: tuple[int, ...]
) -> dict[int, dict[str, Any]]:
    table = chain.table_of(RecordVersion)
    query = sa.select(table.c.version, table.c.fields, table.c.changed).where(
        table.c.entity == entity,
        table.c.record_id == record_id,
        table.c.version.in_(numbers),
    )
    return {row.version: dict(row._mapping) for row in connection.execute(query)}


def _entry(connection: Connection, entity: str, record_id: uuid.UUID) -> Any:
    table = chain.table_of(SyncEntry)
    query = sa.select(table.c.version, table.c.fields).where(
        table.c.entity == entity, table.c.record_id == record_id
    )
    return connection.execute(query).first()


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"
