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


def test_ids_are_read_once_as_the_statement_s_parameter(engine: Engine) -> None:
    """On PostgreSQL the ids go as the text of their array, typed ``uuid[]`` by the
    statement. Sent as text and cast in the statement, the cast was not folded: a plan
    that scanned the table read the ids again for every row (``::cstring)::uuid[]`` in
    its filter), and PostgreSQL's CPU a pushed change grew fivefold."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite reads the ids by json_each, once")
    ids = [uuid.uuid4() for _ in range(20)]
    with engine.begin() as connection:
        insert_rows(connection, TABLE, [_version(record_id, 1) for record_id in ids])
        query = sa.select(TABLE.c.record_id).where(one_of(connection, TABLE.c.record_id, ids))
        compiled = query.compile(connection)
        connection.exec_driver_sql("SET LOCAL enable_indexscan = off")
        connection.exec_driver_sql("SET LOCAL enable_bitmapscan = off")
        plan = "\n".join(
            connection.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params).scalars()
        )
        found = connection.execute(query).scalars().all()

    assert "Seq Scan" in plan
    assert "::uuid[]" in plan
    assert "cstring" not in plan
    assert set(found) == set(ids)


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
    if engine.dialect.name == "postgresql":  # ids as the text of their array
        [sent] = compiled.params.values()
        assert sent == "{" + ",".join(i.hex for i in wanted) + "}"
