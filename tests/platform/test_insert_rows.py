"""``insert_rows``: what COPY writes on PostgreSQL is what an INSERT writes, read back
and stored value by stored value; and a unique key it breaks is raised as SQLAlchemy
raises it (the push retries a lost race by that)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from schemas import RecordVersion
from sync.platform.database import COPY_FROM, insert_rows

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


def _stored(engine: Engine, record_id: uuid.UUID) -> list[tuple[Any, ...]]:
    """The rows of ``record_id`` as the database holds them, every column as text."""
    shown = [sa.cast(c, sa.Text) for c in TABLE.columns if c.name != "record_id"]
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


def test_a_broken_unique_key_is_an_integrity_error_and_nothing_stays(engine: Engine) -> None:
    record_id = uuid.uuid4()
    rows = [_version(record_id, n) for n in range(1, COPY_FROM + 1)]
    with engine.begin() as connection:
        insert_rows(connection, TABLE, rows[:1])

    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        insert_rows(connection, TABLE, rows)

    assert len(_read(engine, record_id)) == 1
