"""Schema version 2 of the data model: an observation's ``accuracy_m`` becomes
``gps: {accuracy_m, fix}`` (``schemas/versions.py``); and a device remembers when its
app was last refused as too old (``device.app_too_old_at``).

What is moved:

- ``observation.accuracy_m`` into the new JSON column ``gps`` (``{"accuracy_m": x,
  "fix": null}``: version 1 never said how a position was fixed; no accuracy is no
  ``gps``), and the column dropped;
- the pull entries of observations (``sync_entry.fields``), so that tablets pull the
  new shape, deleted ones too;
- the open conflicts of observations (``conflict.fields``), so that the office can
  still take the tablet's side, which now meets version 2's fields.

``record_version`` is left as it was written: it is the audit trail, and each version
says what the record was then. Changes kept in ``sync_change`` are what devices sent,
with the version they named, and are upcast whenever they are decided (a deferred one
waking up). Rows are moved in slices by key, so that neither database holds a whole
table's documents in memory; the same code runs on SQLite and PostgreSQL.

Downgrading moves ``gps.accuracy_m`` back (``fix`` is lost).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 18:00:00.000000
"""

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import schemas.types

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SLICE = 1000
ENTITY = "observation"
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

observation = sa.table(
    "observation",
    sa.column("id", sa.Uuid()),
    sa.column("accuracy_m", sa.Float()),
    sa.column("gps", JSON_DOCUMENT),
)
sync_entry = sa.table(
    "sync_entry",
    sa.column("entity", sa.String(32)),
    sa.column("record_id", sa.Uuid()),
    sa.column("fields", sa.JSON()),
)
conflict = sa.table(
    "conflict",
    sa.column("id", sa.Uuid()),
    sa.column("entity", sa.String(32)),
    sa.column("status", sa.String(16)),
    sa.column("fields", JSON_DOCUMENT),
)

Fields = dict[str, Any]


# ---------------------------------------------------------------- the shapes, as of this revision
# Written out here rather than imported from schemas.versions: a migration keeps doing
# what it did when it was written, whatever later code does.


def gps_of(accuracy: Any) -> Any:
    return None if accuracy is None else {"accuracy_m": accuracy, "fix": None}


def accuracy_of(gps: Any) -> Any:
    return gps.get("accuracy_m") if isinstance(gps, Mapping) else None


def state_up(fields: Fields) -> Fields | None:
    """A version 1 state in version 2; ``None`` when it is in version 2 already."""
    if "gps" in fields:
        return None
    moved = {name: value for name, value in fields.items() if name != "accuracy_m"}
    moved["gps"] = gps_of(fields.get("accuracy_m"))
    return moved


def state_down(fields: Fields) -> Fields | None:
    if "gps" not in fields:
        return None
    moved = {name: value for name, value in fields.items() if name != "gps"}
    moved["accuracy_m"] = accuracy_of(fields["gps"])
    return moved


def sides_up(fields: Fields) -> Fields | None:
    """A conflict's fields (``{name: {server, device}}``, or a whole create under
    ``__create__``) in version 2."""
    moved = dict(fields)
    if "accuracy_m" in moved:
        side = moved.pop("accuracy_m") or {}
        moved["gps"] = {"server": gps_of(side.get("server")), "device": gps_of(side.get("device"))}
    made = moved.get("__create__")
    if isinstance(made, Mapping) and isinstance(made.get("device"), Mapping):
        device = state_up(dict(made["device"])) if "accuracy_m" in made["device"] else None
        if device is not None:
            moved["__create__"] = {**made, "device": device}
    return None if moved == fields else moved


def sides_down(fields: Fields) -> Fields | None:
    moved = dict(fields)
    if "gps" in moved:
        side = moved.pop("gps") or {}
        moved["accuracy_m"] = {
            "server": accuracy_of(side.get("server")),
            "device": accuracy_of(side.get("device")),
        }
    made = moved.get("__create__")
    if isinstance(made, Mapping) and isinstance(made.get("device"), Mapping):
        device = state_down(dict(made["device"]))
        if device is not None:
            moved["__create__"] = {**made, "device": device}
    return None if moved == fields else moved


# ---------------------------------------------------------------- moving rows


def upgrade() -> None:
    # Plain ADD COLUMN, which SQLite does in place (a batch would copy the table).
    op.add_column("observation", sa.Column("gps", JSON_DOCUMENT, nullable=True))
    op.add_column("device", sa.Column("app_too_old_at", schemas.types.UTCDateTime(), nullable=True))
    _move_rows(observation.c.accuracy_m, lambda accuracy: {"gps": gps_of(accuracy)})
    op.drop_column("observation", "accuracy_m")
    _rewrite_entries(state_up)
    _rewrite_conflicts(sides_up)


def downgrade() -> None:
    op.add_column("observation", sa.Column("accuracy_m", sa.Float(), nullable=True))
    _move_rows(observation.c.gps, lambda gps: {"accuracy_m": accuracy_of(gps)})
    op.drop_column("observation", "gps")
    _rewrite_entries(state_down)
    _rewrite_conflicts(sides_down)
    op.drop_column("device", "app_too_old_at")


def _move_rows(source: sa.ColumnClause[Any], values: Callable[[Any], Fields]) -> None:
    """Each observation whose ``source`` is set gets ``values(source)``."""
    key = observation.c.id
    for rows in _slices(
        lambda after: (
            sa.select(key, source)
            .where(source.is_not(None), key > after if after is not None else sa.true())
            .order_by(key)
            .limit(SLICE)
        )
    ):
        _update(observation, key, [(row[0], values(row[1])) for row in rows])


def _rewrite_entries(rewrite: Callable[[Fields], Fields | None]) -> None:
    key = sync_entry.c.record_id
    for rows in _slices(
        lambda after: (
            sa.select(key, sync_entry.c.fields)
            .where(sync_entry.c.entity == ENTITY, key > after if after is not None else sa.true())
            .order_by(key)
            .limit(SLICE)
        )
    ):
        changed = [(row[0], rewrite(row[1])) for row in rows if isinstance(row[1], dict)]
        _update(
            sync_entry,
            key,
            [(k, {"fields": fields}) for k, fields in changed if fields is not None],
            sync_entry.c.entity == ENTITY,
        )


def _rewrite_conflicts(rewrite: Callable[[Fields], Fields | None]) -> None:
    key = conflict.c.id
    for rows in _slices(
        lambda after: (
            sa.select(key, conflict.c.fields)
            .where(
                conflict.c.entity == ENTITY,
                conflict.c.status == "open",
                key > after if after is not None else sa.true(),
            )
            .order_by(key)
            .limit(SLICE)
        )
    ):
        changed = [(row[0], rewrite(row[1])) for row in rows if isinstance(row[1], dict)]
        _update(conflict, key, [(k, {"fields": fields}) for k, fields in changed if fields])


def _slices(query: Callable[[Any], sa.Select[Any]]) -> Iterator[list[Any]]:
    """The rows of ``query(after)``, a slice at a time, each after the last key read."""
    connection = op.get_bind()
    after = None
    while True:
        rows = list(connection.execute(query(after)))
        if not rows:
            return
        yield rows
        after = rows[-1][0]


def _update(
    table: sa.TableClause,
    key: sa.ColumnClause[Any],
    rows: list[tuple[Any, Fields]],
    *where: sa.ColumnElement[bool],
) -> None:
    if not rows:
        return
    names = sorted(rows[0][1])
    statement = (
        sa.update(table)
        .where(key == sa.bindparam("_key"), *where)
        .values({name: sa.bindparam(f"_{name}", type_=table.c[name].type) for name in names})
    )
    op.get_bind().execute(
        statement, [{"_key": k, **{f"_{n}": values[n] for n in names}} for k, values in rows]
    )
