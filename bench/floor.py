"""The floor: what the database itself does with the same rows, without fieldsync.

The records the tablets pushed in the timed phase, shaped as their tables hold them
(``bench.rows``), are inserted into scratch copies of those tables (same columns,
keys, indexes and foreign keys, named ``floor_*``) with a plain batched
``INSERT … ON CONFLICT DO NOTHING``: each device's batch in one transaction, K
connections at once, straight through the driver — psycopg's ``executemany`` on
PostgreSQL, the stdlib ``sqlite3`` on SQLite with the server's own durability
(WAL, ``synchronous=FULL``). Nothing is validated, versioned, logged for pull or
answered: no sync service can beat it, so our push rate is shown as a share of it.
Only creates make rows; the timed push's updates have no counterpart here.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections import defaultdict
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.sql.elements import quoted_name
from sqlmodel import SQLModel

from bench.generator import Record
from bench.rows import postgresql_values, shape, sqlite_values, table_of
from schemas.types import utcnow
from sync.catalog import CATALOG
from sync.platform.database import SQLITE_BUSY_TIMEOUT_MS, create_db_engine

PREFIX = "floor_"


def scratch_tables() -> tuple[sa.MetaData, dict[str, sa.Table]]:
    """Copies of the record tables under new names, with their keys and indexes."""
    metadata = sa.MetaData()
    # What the copies' foreign keys point at (sectors, communities, users), as they are.
    wanted = [
        key.target_fullname.split(".")[0] for e in CATALOG for key in table_of(e).foreign_keys
    ]
    while wanted:
        name = wanted.pop()
        if name not in metadata.tables:
            table = SQLModel.metadata.tables[name]
            table.to_metadata(metadata)
            wanted.extend(key.target_fullname.split(".")[0] for key in table.foreign_keys)
    copies = {}
    for entity in CATALOG:
        original = table_of(entity)
        copy = original.to_metadata(metadata, name=PREFIX + original.name)
        for index in copy.indexes:
            index.name = quoted_name(PREFIX + str(index.name), None)
        for constraint in copy.constraints:
            if constraint.name is not None:
                constraint.name = PREFIX + str(constraint.name)
        copies[entity] = copy
    return metadata, copies


def measure(
    database_url: str,
    per_device: list[list[list[Record]]],
    *,
    user_id: str,
    device_id: str,
) -> dict[str, Any]:
    """Insert every device's batches, K connections at once; the rows per second."""
    engine = create_db_engine(database_url)
    metadata, copies = scratch_tables()
    tables = list(copies.values())
    metadata.drop_all(engine, tables=tables)
    metadata.create_all(engine, tables=tables)
    postgresql = engine.dialect.name == "postgresql"
    now = utcnow()
    batches = [
        [
            _statements(copies, batch, now, uuid.UUID(user_id), uuid.UUID(device_id), postgresql)
            for batch in device
        ]
        for device in per_device
    ]
    rows = sum(len(batch) for device in per_device for batch in device)
    try:
        seconds = _timed(engine.url, batches, postgresql)
    finally:
        metadata.drop_all(engine, tables=tables)
        engine.dispose()
    return {
        "driver": "psycopg executemany" if postgresql else "sqlite3 executemany",
        "connections": len(per_device),
        "batches": sum(len(device) for device in per_device),
        "rows": rows,
        "seconds": round(seconds, 3),
        "rows_per_s": round(rows / seconds, 1) if seconds else None,
    }


Statement = tuple[str, list[tuple[Any, ...]]]


def _statements(
    copies: dict[str, sa.Table],
    batch: list[Record],
    now: Any,
    user_id: uuid.UUID,
    device_id: uuid.UUID,
    postgresql: bool,
) -> list[Statement]:
    """One batch as one INSERT per table, its values ready for the driver."""
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in batch:
        rows[record.entity].append(shape(record, now=now, user_id=user_id, device_id=device_id).row)
    statements = []
    for entity, values in rows.items():
        table = copies[entity]
        columns = list(table.columns.keys())
        names = ", ".join(f'"{name}"' for name in columns)
        mark = "%s" if postgresql else "?"
        sql = (
            f'INSERT INTO "{table.name}" ({names}) VALUES ({", ".join(mark for _ in columns)}) '  # noqa: S608
            "ON CONFLICT DO NOTHING"
        )
        if postgresql:
            statements.append((sql, postgresql_values(table, columns, values, for_copy=False)))
        else:
            statements.append((sql, sqlite_values(table, columns, values, sqlite.dialect())))
    return statements


def _timed(url: sa.URL, batches: list[list[list[Statement]]], postgresql: bool) -> float:
    connect = _postgresql(url) if postgresql else _sqlite(url)
    connections = [connect() for _ in batches]
    barrier = threading.Barrier(len(batches))
    clock: dict[str, float] = {}
    errors: list[BaseException] = []

    def device(index: int) -> None:
        connection = connections[index]
        barrier.wait()
        clock.setdefault("start", time.perf_counter())
        try:
            for batch in batches[index]:
                if postgresql:
                    with connection.transaction(), connection.cursor() as cursor:
                        for sql, values in batch:
                            cursor.executemany(sql, values)
                else:
                    connection.execute("BEGIN IMMEDIATE")
                    for sql, values in batch:
                        connection.executemany(sql, values)
                    connection.execute("COMMIT")
        except BaseException as error:  # reported by the caller
            errors.append(error)

    threads = [threading.Thread(target=device, args=(i,)) for i in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - clock["start"]
    for connection in connections:
        connection.close()
    if errors:
        raise errors[0]
    return seconds


def _postgresql(url: sa.URL) -> Any:
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)

    def connect() -> psycopg.Connection[Any]:
        return psycopg.connect(conninfo, autocommit=True)

    return connect


def _sqlite(url: sa.URL) -> Any:
    path = url.database or ""

    def connect() -> sqlite3.Connection:
        connection = sqlite3.connect(
            path,
            timeout=SQLITE_BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute("PRAGMA foreign_keys=ON")
        return connection

    return connect
