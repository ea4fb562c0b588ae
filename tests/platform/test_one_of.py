"""``one_of``: ``IN`` on SQLite, ``= ANY(array)`` on PostgreSQL, the same rows either
way, for uuids and text, none and many (more than SQLite's 999 parameters of old)."""

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
        sql = str(sa.select(TABLE.c.record_id).where(one_of(connection, TABLE.c.version, [1, 2])))

    assert set(found) == set(ids[:asked])
    assert by_text == []
    assert ("ANY" in sql) == (engine.dialect.name == "postgresql")
