"""``one_of``: ``IN`` a JSON array's values on SQLite, ``= ANY(array)`` on PostgreSQL,
one parameter however many the values, the same rows either way, for uuids, text and
numbers, none and many (more than SQLite's 999 parameters of old)."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from schemas import RecordVersion
from sync.platform.database import insert_rows, one_of
from tests.platform.test_insert_rows import _version

TABLE: sa.Table = RecordVersion.__table__  # type: ignore[attr-defined]


@pytest.mark.parametrize("asked", [0, 1, 3, 1500])
def test_one_of_finds_exactly_the_rows_asked_for(engine: Engine, asked: int) -> None:
    ids = [uuid.uuid4() for _ in range(6)]
    with engine.begin() as connection:
        insert_rows(connection, TABLE, [_version(record_id, 1) for record_id in ids])
    wanted = ids[:asked] + [uuid.uuid4() for _ in range(max(0, asked - len(ids)))]
    names = [str(n) for n in range(asked)]  # text, none of them a stored entity

    with engine.connect() as connection:
        found = connection.execute(
            sa.select(TABLE.c.record_id).where(one_of(connection, TABLE.c.record_id, wanted))
        ).scalars()
        by_text = connection.execute(
            sa.select(TABLE.c.record_id).where(one_of(connection, TABLE.c.entity, names))
        ).all()
        by_number = connection.execute(
            sa.select(TABLE.c.record_id).where(
                TABLE.c.record_id.in_(ids[:asked]), one_of(connection, TABLE.c.version, [1, 2])
            )
        ).scalars()
        query = sa.select(TABLE.c.record_id).where(one_of(connection, TABLE.c.record_id, wanted))
        compiled = query.compile(connection)

    assert set(found) == set(ids[:asked])
    assert by_text == []
    assert set(by_number) == set(ids[:asked])
    assert ("ANY" in str(compiled)) == (engine.dialect.name == "postgresql")
    assert len(compiled.params) == 1  # one parameter, however many the values
