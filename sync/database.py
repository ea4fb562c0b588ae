"""Engines and sessions for the embedded SQLite default and for PostgreSQL.

SQLite is set on every pooled connection for durability and for several writers:
WAL (readers never block the writer), ``synchronous=FULL`` (a commit is on disk
before it is acknowledged), foreign keys on, and a busy timeout. pysqlite's own
transaction handling is turned off and we emit ``BEGIN`` ourselves, so that a
writing transaction can take the write lock up front (``BEGIN IMMEDIATE``)
instead of failing with ``SQLITE_BUSY`` when it upgrades from a read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

SQLITE_BUSY_TIMEOUT_MS = 30_000
WRITE = "fieldsync_write"


def json_text(value: Any) -> str:
    """A JSON column's value as text: orjson, several times faster than the standard
    library on the documents a push writes; the standard library for what orjson
    refuses (integers beyond 64 bits)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)


def create_db_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` with the settings this service relies on."""
    parsed = sa.make_url(url)
    # Read back with the standard library, which keeps integers of any size exact
    # (orjson would read those beyond 64 bits as floats).
    kwargs = {"json_serializer": json_text, **kwargs}
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(
            parsed,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            **kwargs,
        )
        _configure_sqlite(engine)
        return engine
    if parsed.get_backend_name() == "postgresql":
        # The change clock relies on READ COMMITTED (an UPDATE that waited on the clock
        # row reads its committed value); pin it whatever the server's default.
        return sa.create_engine(
            parsed, pool_pre_ping=True, isolation_level="READ COMMITTED", **kwargs
        )
    raise ValueError(
        f"unsupported database {parsed.get_backend_name()!r}: use sqlite or postgresql"
    )


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        writes = connection.get_execution_options().get(WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


def open_session(engine: Engine, *, write: bool) -> Session:
    """A session whose transaction, on SQLite, holds the write lock from its start if ``write``."""
    session = Session(engine, expire_on_commit=False)
    session.connection(execution_options={WRITE: write})
    return session


@contextmanager
def transaction(engine: Engine, *, write: bool = True) -> Iterator[Session]:
    """One unit of work: committed when the block ends, rolled back if it raises."""
    session = open_session(engine, write=write)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
