"""``insert_rows``: what COPY writes on PostgreSQL (in its binary format), and SQLite's
driver by its own ``executemany``, is what SQLAlchemy's INSERT writes, read back and
stored value by stored value (on SQLite with each value's storage class), for every type
of column the push writes; and a unique key it breaks is raised as SQLAlchemy raises it
(the push retries a lost race by that)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from schemas import AttachmentLink, Observation, RecordVersion, SyncChange, SyncEntry
from sync.catalog import CATALOG
from sync.platform.database import COPY_FROM, _copy_types, insert_rows
from tests.conftest import World

TABLE: sa.Table = RecordVersion.__table__  # type: ignore[attr-defined]
MOMENT = datetime(2026, 12, 6, 15, 30, tzinfo=UTC)


def _version(record_id: uuid.UUID, number: int, **values: Any) -> dict[str, Any]:
    return {
        "entity": "patrol",
        "record_id": record_id,
        "version": number,
        "op": "update",
        "fields": {"objective": "Río Mayo «alto»", "points": [{"t": "x", "lat": -5.8}]},
        "changed": ["objective"],
        "user_id": None,
        "device_id": uuid.uuid4(),
        "change_id": uuid.uuid4(),
        "reason": None,
        "recorded_at": MOMENT - timedelta(hours=5),
        "created_at": MOMENT,
        **values,
    }


def _read(engine: Engine, record_id: uuid.UUID) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(TABLE).where(TABLE.c.record_id == record_id).order_by(TABLE.c.version)
        )
        return [dict(row._mapping) for row in rows]


@pytest.mark.parametrize("count", [3, COPY_FROM, 3 * COPY_FROM])
def test_rows_inserted_read_back_as_an_insert_writes_them(engine: Engine, count: int) -> None:
    by_copy, by_insert = uuid.uuid4(), uuid.uuid4()
    rows = [_version(by_copy, n, fields={} if n == 2 else None) for n in range(1, count + 1)]
    with engine.begin() as connection:
        insert_rows(connection, TABLE, rows)
        connection.execute(sa.insert(TABLE), [{**r, "record_id": by_insert} for r in rows])

    copied, inserted = _read(engine, by_copy), _read(engine, by_insert)

    assert len(copied) == count
    assert [{**r, "record_id": None} for r in copied] == [
        {**r, "record_id": None} for r in inserted
    ]


def _as_stored(engine: Engine, column: sa.Column[Any]) -> sa.ColumnElement[Any]:
    """``column`` as the database holds it, as text; on SQLite, which stores any value in
    any column, with its storage class (``integer:1`` is not ``text:1``)."""
    text = sa.cast(column, sa.Text)
    if engine.dialect.name == "sqlite":
        return sa.func.typeof(column).concat(":").concat(sa.func.coalesce(text, ""))
    return text


def _stored(engine: Engine, record_id: uuid.UUID) -> list[tuple[Any, ...]]:
    """The rows of ``record_id`` as the database holds them, every column as text."""
    shown = [_as_stored(engine, c) for c in TABLE.columns if c.name != "record_id"]
    query = sa.select(*shown).where(TABLE.c.record_id == record_id).order_by(TABLE.c.version)
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(query)]


@pytest.mark.parametrize("count", [3, 3 * COPY_FROM])
def test_rows_are_stored_as_an_insert_stores_them(engine: Engine, count: int) -> None:
    ours, theirs = uuid.uuid4(), uuid.uuid4()
    rows = [_version(ours, n, reason="fusión" if n == 2 else None) for n in range(1, count + 1)]
    with engine.begin() as connection:
        insert_rows(connection, TABLE, rows)
        connection.execute(sa.insert(TABLE), [{**r, "record_id": theirs} for r in rows])

    assert _stored(engine, ours) == _stored(engine, theirs)
    assert len(_stored(engine, ours)) == count


def test_a_time_shared_by_rows_or_equal_in_another_zone_is_stored_as_an_insert_stores_it(
    engine: Engine,
) -> None:
    """Each time object is converted once for all the rows that hold it: the same
    object, equal times in other zones and times of their own are stored alike."""
    lima = timezone(timedelta(hours=-5))
    later = MOMENT + timedelta(microseconds=1)
    times = [MOMENT, MOMENT.astimezone(lima), later, later.astimezone(lima), MOMENT + timedelta(0)]
    ours, theirs = uuid.uuid4(), uuid.uuid4()
    rows = [
        _version(ours, n, created_at=times[n % 5], recorded_at=times[(n + n // 5) % 5])
        for n in range(1, 3 * COPY_FROM + 1)
    ]
    with engine.begin() as connection:
        insert_rows(connection, TABLE, rows)
        connection.execute(sa.insert(TABLE), [{**r, "record_id": theirs} for r in rows])

    assert _stored(engine, ours) == _stored(engine, theirs)
    assert [row["created_at"] for row in _read(engine, ours)] == [r["created_at"] for r in rows]


def test_a_naive_time_is_refused_after_an_aware_one_was_converted(engine: Engine) -> None:
    rows = [_version(uuid.uuid4(), n) for n in range(1, 3 * COPY_FROM + 1)]
    rows[-1]["created_at"] = MOMENT.replace(tzinfo=None)

    refused = (ValueError, sa.exc.StatementError)  # by the driver, or by SQLAlchemy
    with pytest.raises(refused, match="naive"), engine.begin() as connection:
        insert_rows(connection, TABLE, rows)


def test_a_broken_unique_key_is_an_integrity_error_and_nothing_stays(engine: Engine) -> None:
    record_id = uuid.uuid4()
    rows = [_version(record_id, n) for n in range(1, COPY_FROM + 1)]
    with engine.begin() as connection:
        insert_rows(connection, TABLE, rows[:1])

    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        insert_rows(connection, TABLE, rows)

    assert len(_read(engine, record_id)) == 1


def _stored_rows(
    engine: Engine, table: sa.Table, key: str, ids: list[uuid.UUID], *, but: str | None = None
) -> list[Any]:
    """``table``'s rows of ``ids`` (in that order), every column as stored text but
    ``key`` and ``but``."""
    shown = [_as_stored(engine, c) for c in table.columns if c.name not in (key, but)]
    with engine.connect() as connection:
        rows = {
            row[0]: tuple(row[1:])
            for row in connection.execute(
                sa.select(table.c[key], *shown).where(table.c[key].in_(ids))
            )
        }
    return [rows[i] for i in ids]


def _entry(number: int) -> dict[str, Any]:
    return {
        "entity": "observation",
        "record_id": uuid.uuid4(),
        "change_seq": -(2**40 + number),  # a bigint
        "version": number,
        "deleted": number % 2 == 0,
        "sector_id": uuid.uuid4() if number % 3 else None,
        "community_id": None,
        "fields": {} if number % 2 == 0 else {"notes": "Motosierra al norte", "lat": -5.81},
        "updated_at": MOMENT + timedelta(microseconds=number),
    }


def _observation(number: int, sector_id: uuid.UUID) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "version": number,
        "created_at": MOMENT,
        "updated_at": MOMENT,
        "recorded_at": None if number % 2 else MOMENT - timedelta(days=number),
        "created_by": None,
        "device_id": uuid.uuid4(),
        "deleted_at": None,
        "patrol_id": uuid.uuid4(),
        "sector_id": sector_id,
        "category_key": "threat.logging",
        "observed_at": MOMENT - timedelta(hours=number),
        "lat": -5.8123456789 + number / 1e7,  # a double, to its last digit
        "lon": -77 if number == 1 else -77.3,  # an integer in a float column
        "attributes": {"trees": number, "species": ["cedro", "tornillo"]},
        "notes": None if number % 2 else "Ñandú «cerca» del río",
        "action_taken": "observed",
        "attachments": [],
        "gps": None,
    }


@pytest.mark.parametrize("count", [3, 3 * COPY_FROM])
def test_pull_entries_are_stored_as_an_insert_stores_them(engine: Engine, count: int) -> None:
    table: sa.Table = SyncEntry.__table__  # type: ignore[attr-defined]
    ours = [_entry(n) for n in range(1, count + 1)]
    theirs = [
        {**r, "record_id": uuid.uuid4(), "change_seq": r["change_seq"] - 10_000} for r in ours
    ]
    with engine.begin() as connection:
        insert_rows(connection, table, ours)
        connection.execute(sa.insert(table), theirs)

    def stored(rows: list[dict[str, Any]]) -> list[Any]:  # change_seq differs on purpose
        ids = [r["record_id"] for r in rows]
        return _stored_rows(engine, table, "record_id", ids, but="change_seq")

    assert stored(ours) == stored(theirs)


@pytest.mark.parametrize("count", [3, 3 * COPY_FROM])
def test_records_are_stored_as_an_insert_stores_them(
    engine: Engine, world: World, count: int
) -> None:
    table: sa.Table = Observation.__table__  # type: ignore[attr-defined]
    sector_id = uuid.UUID(world.sector()["id"])
    ours = [_observation(n, sector_id) for n in range(1, count + 1)]
    theirs = [{**r, "id": uuid.uuid4()} for r in ours]
    with engine.begin() as connection:
        insert_rows(connection, table, ours)
        connection.execute(sa.insert(table), theirs)

    assert _stored_rows(engine, table, "id", [r["id"] for r in ours]) == _stored_rows(
        engine, table, "id", [r["id"] for r in theirs]
    )


@pytest.fixture
def copying(engine: Engine) -> Engine:
    """The engine, where ``insert_rows`` writes by ``COPY``: PostgreSQL's."""
    if engine.dialect.name != "postgresql":
        pytest.skip("COPY is PostgreSQL's; SQLite takes the rows by its driver's INSERT")
    return engine


@pytest.mark.parametrize(
    ("column", "value"),
    [("version", 2**31), ("version", -(2**31) - 1), ("change_seq", 2**63), ("change_seq", 2**70)],
)
def test_an_integer_its_column_cannot_hold_is_a_data_error_never_wrapped_around(
    copying: Engine, column: str, value: int
) -> None:
    table: sa.Table = SyncEntry.__table__  # type: ignore[attr-defined]
    rows = [_entry(n) for n in range(1, COPY_FROM + 1)]
    rows[-1][column] = value

    with pytest.raises(sa.exc.DataError), copying.begin() as connection:
        insert_rows(connection, table, rows)

    with copying.connect() as connection:
        ids = [r["record_id"] for r in rows]
        assert connection.execute(sa.select(table).where(table.c.record_id.in_(ids))).all() == []


def test_ids_given_as_text_are_stored_as_the_same_ids(copying: Engine) -> None:
    table: sa.Table = SyncEntry.__table__  # type: ignore[attr-defined]
    rows = [_entry(n) for n in range(1, COPY_FROM + 1)]
    given = [{**r, "sector_id": str(uuid.uuid4())} for r in rows]
    with copying.begin() as connection:
        insert_rows(connection, table, given)

    ids = [r["record_id"] for r in rows]
    stored = _stored_rows(copying, table, "record_id", ids, but="change_seq")
    assert [row[3] for row in stored] == [r["sector_id"] for r in given]


def test_every_table_a_push_writes_by_copy_is_written_in_the_binary_format() -> None:
    """A column of a type psycopg does not know by name would send its whole table back
    to the text format: still right, but slower, and silently so."""
    models: list[type[SQLModel]] = [spec.table for spec in CATALOG.values()]
    models += [RecordVersion, SyncEntry, SyncChange, AttachmentLink]
    for model in models:
        table: sa.Table = model.__table__  # type: ignore[attr-defined]
        assert _copy_types(table, tuple(c.key for c in table.columns)) is not None, table.name
