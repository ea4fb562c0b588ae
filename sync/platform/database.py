"""Engines and sessions for the embedded SQLite default and for PostgreSQL.

SQLite is set on every pooled connection for durability and for several writers:
WAL (readers never block the writer), ``synchronous=FULL`` (a commit is on disk
before it is acknowledged), foreign keys on, and a busy timeout. pysqlite's own
transaction handling is turned off and we emit ``BEGIN`` ourselves, so that a
writing transaction can take the write lock up front (``BEGIN IMMEDIATE``)
instead of failing with ``SQLITE_BUSY`` when it upgrades from a read; the server's
writers queue for that lock, first come first served (``sync.platform.writers``).

Everything else that differs between the two is asked of the helpers at the end of
this module (``is_postgresql``, ``upsert``, ``one_of``, ``json_array_contains``,
``transaction_lock``), so that no other module reads the dialect's name or imports
from ``sqlalchemy.dialects``.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import orjson
import psycopg
import psycopg.postgres
import sqlalchemy as sa
from psycopg.errors import NumericValueOutOfRange
from psycopg.types.json import set_json_dumps
from psycopg.types.uuid import UUIDBinaryDumper
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, SQLModel

# Its hooks seal, as every transaction commits, the audit chain's block of what it wrote.
import sync.platform.chain
from schemas.track import PointsJSON
from sync.platform import spliced, writers

SQLITE_BUSY_TIMEOUT_MS = 30_000
WRITE = "fieldsync_write"


def json_text(value: Any) -> str:
    """A JSON column's value as text: orjson, several times faster than the standard
    library on the documents a push writes; the standard library for what orjson
    refuses (integers beyond 64 bits). A value written once for several documents
    (``sync.platform.spliced``) is spliced in as its text, and a push's points come
    with theirs (``schemas.track.PointsJSON``)."""
    if type(value) is PointsJSON:
        return value.json_text.decode()
    try:
        return orjson.dumps(value, default=spliced.orjson_default).decode()
    except TypeError:
        return json.dumps(value, default=spliced.stdlib_default)


def create_db_engine(
    url: str, *, sqlite_busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS, **kwargs: Any
) -> Engine:
    """An engine for ``url`` with the settings this service relies on."""
    parsed = sa.make_url(url)
    # Read back with the standard library, which keeps integers of any size exact
    # (orjson would read those beyond 64 bits as floats).
    kwargs = {"json_serializer": json_text, **kwargs}
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(
            parsed,
            connect_args={
                "check_same_thread": False,
                "timeout": sqlite_busy_timeout_ms / 1000,
                **writers.connect_args(parsed.database),
            },
            **kwargs,
        )
        _configure_sqlite(engine, sqlite_busy_timeout_ms, parsed.database)
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


def _configure_sqlite(engine: Engine, busy_timeout_ms: int, database: str | None) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        if isinstance(dbapi_connection, writers.QueuedConnection) and database:
            dbapi_connection.turns = writers.turns_of(database)
            # Its writers copy the log after their turn (``QueuedConnection.checkpoint``).
            dbapi_connection.execute("PRAGMA wal_autocheckpoint=0").close()
            dbapi_connection.execute(f"PRAGMA journal_size_limit={writers.LOG_LIMIT}").close()
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()
        # The audit chain's block hash, which PostgreSQL computes with its own sha256.
        dbapi_connection.create_function(
            "fieldsync_sha256", 1, sync.platform.chain.sha256_hex, deterministic=True
        )

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get(WRITE, False):
            _begin_writing(connection)
        else:
            connection.exec_driver_sql("BEGIN")


def _begin_writing(connection: Connection) -> None:
    """``BEGIN IMMEDIATE``, once it is this connection's turn among the server's writers
    (``sync.platform.writers``), waited for as long as the connection's busy timeout."""
    raw: Any = connection.connection.dbapi_connection
    if not isinstance(raw, writers.QueuedConnection):  # a database in memory
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        return
    patience_ms = raw.execute("PRAGMA busy_timeout").fetchone()[0]
    try:
        raw.take_turn(patience_ms / 1000)
    except writers.TurnNotTaken:
        raise sa.exc.OperationalError(
            "BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked")
        ) from None
    try:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    except BaseException:
        raw.give_turn_back()
        raise


# SQLSTATEs that say the database cannot be reached now, not that it refused what was
# asked: a connection lost or refused (class 08), the server shutting down (57P01-03),
# too many connections (53300).
UNAVAILABLE_STATES = frozenset({"57P01", "57P02", "57P03", "53300"})


def unavailable(error: BaseException) -> bool:
    """Whether ``error`` means the database does not answer: a lost connection, a
    server going down, SQLite's lock still held when the busy timeout ran out. Such a
    request is answered ``503`` with ``Retry-After``, and never retried on its session,
    which is dead (push's retries are for races, not for this)."""
    if not isinstance(error, sa.exc.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    state = getattr(error.orig, "sqlstate", None)
    if state is not None:
        return bool(state.startswith("08") or state in UNAVAILABLE_STATES)
    if not isinstance(error, sa.exc.OperationalError):
        return False
    if type(error.orig).__module__.startswith("psycopg"):
        return True  # no SQLSTATE: the connection failed or closed before an answer
    return "database is locked" in str(error.orig)


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


class Busy(Exception):
    """Another transaction held, longer than a ``brief_write`` would wait, a lock it needed."""


# PostgreSQL's lock_not_available, which lock_timeout raises.
LOCK_NOT_AVAILABLE = "55P03"


@contextmanager
def brief_write(engine: Engine, *, patience_ms: int) -> Iterator[Connection]:
    """A short writing transaction that waits at most ``patience_ms`` for the locks it
    needs — SQLite's write lock (``BEGIN IMMEDIATE`` under a busy timeout that short),
    a PostgreSQL row (``lock_timeout``) — and raises ``Busy`` past that. For
    bookkeeping that a later request can do as well (a device's last pull), never for
    what a caller was promised. Committed when the block ends, rolled back if it raises."""
    with engine.connect() as connection:
        raw: Any = connection.connection.dbapi_connection
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:  # on the driver's connection: no transaction is begun for it
            waits = raw.execute("PRAGMA busy_timeout").fetchone()[0]
            raw.execute(f"PRAGMA busy_timeout = {int(patience_ms)}")
        try:
            with connection.execution_options(**{WRITE: True}).begin():
                if not sqlite:
                    connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{int(patience_ms)}ms'")
                yield connection
        except sa.exc.OperationalError as error:
            state = getattr(error.orig, "sqlstate", None)
            if state == LOCK_NOT_AVAILABLE or "database is locked" in str(error.orig):
                raise Busy(str(error.orig)) from error
            raise
        finally:
            if sqlite:
                raw.execute(f"PRAGMA busy_timeout = {int(waits)}")


# ---------------------------------------------------------------- what differs by dialect

Bind = Session | Connection


def _dialect_name(bind: Bind) -> str:
    return bind.dialect.name if isinstance(bind, Connection) else bind.get_bind().dialect.name


def is_postgresql(bind: Bind) -> bool:
    """Whether ``bind`` (a session or a connection) talks to PostgreSQL."""
    return _dialect_name(bind) == "postgresql"


def is_sqlite(bind: Bind) -> bool:
    """Whether ``bind`` (a session or a connection) talks to SQLite."""
    return _dialect_name(bind) == "sqlite"


def upsert(
    bind: Bind, table: type[SQLModel] | sa.Table, *, key: Iterable[str], update: Iterable[str]
) -> sa.Insert:
    """An ``INSERT`` into ``table`` that, where a row with the same ``key`` columns is
    there already, sets that row's ``update`` columns to the inserted values instead
    (``ON CONFLICT … DO UPDATE``, which SQLAlchemy builds per dialect)."""
    statement: postgresql.Insert | sqlite.Insert
    statement = postgresql.insert(table) if is_postgresql(bind) else sqlite.insert(table)
    return statement.on_conflict_do_update(
        index_elements=list(key), set_={name: statement.excluded[name] for name in update}
    )


# From this many rows, PostgreSQL takes them by COPY: one stream the server parses row
# by row, where an INSERT's executemany is a statement bound and executed per row; and
# SQLite by its driver's own executemany.
COPY_FROM = 50


def insert_rows(connection: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (each a dict of every value the insert sets, the same keys in
    each) into ``table``: when they are many, by ``COPY`` on PostgreSQL and by the
    driver's ``executemany`` on SQLite, else by SQLAlchemy's ``INSERT`` run for each.
    The database's errors are raised as SQLAlchemy raises them either way (an
    ``IntegrityError`` for a unique key).

    ``COPY`` takes the rows in its binary format where psycopg knows every column's
    type: PostgreSQL then reads ids, times and numbers as they are stored instead of
    parsing their text, and psycopg writes them without making it (together about
    5 µs a row of 14 columns less, 2 of them PostgreSQL's)."""
    names = list(rows[0]) if rows else []
    columns = [table.c[name] for name in names]
    unset = (
        [c for c in table.columns if c.key not in rows[0] and c.default is not None] if rows else []
    )
    if len(rows) < COPY_FROM or unset:
        if rows:
            connection.execute(sa.insert(table), rows)
        return
    if connection.dialect.name == "sqlite":
        _insert_by_driver(connection, table, names, rows)
        return
    convert = [
        _for_one_insert(column, _bound_value(column, connection.dialect)) for column in columns
    ]
    types = _copy_types(table, tuple(names))
    if types:
        convert = [
            _in_range(to, _INTEGER_BITS[oid]) if oid in _INTEGER_BITS else to
            for to, oid in zip(convert, types, strict=True)
        ]
    statement = (
        f'COPY "{table.name}" ({", ".join(f"{chr(34)}{n}{chr(34)}" for n in names)}) FROM STDIN'
        + (" (FORMAT BINARY)" if types else "")
    )
    driver = connection.connection.driver_connection
    assert driver is not None
    try:
        with driver.cursor() as cursor:
            if types:
                set_json_dumps(_as_is, context=cursor)  # JSON comes as its text already
                cursor.adapters.register_dumper(uuid.UUID, _UUIDBinaryDumper)
            with cursor.copy(statement) as copy:
                if types:
                    copy.set_types(types)
                for row in rows:
                    copy.write_row([to(row[name]) for to, name in zip(convert, names, strict=True)])
    except psycopg.Error as error:
        raise sa.exc.DBAPIError.instance(statement, None, error, psycopg.Error) from error


class _UUIDBinaryDumper(UUIDBinaryDumper):
    """A UUID in ``COPY``'s binary format, from a ``uuid.UUID`` or its text, as the
    text format and an ``INSERT`` take either."""

    def dump(self, obj: Any) -> bytes:
        value = obj if type(obj) is uuid.UUID else uuid.UUID(str(obj))
        return value.int.to_bytes(16, "big")


# The integer types by their bits. In COPY's binary format psycopg's dumpers wrap an
# integer too large for its column around (2**31 is written as -2**31) where the text
# format has PostgreSQL refuse it: ``_in_range`` refuses it first.
_INTEGER_BITS = {
    psycopg.postgres.types[name].oid: bits
    for name, bits in (("int2", 16), ("int4", 32), ("int8", 64))
}


def _in_range(convert: Any, bits: int) -> Any:
    """``convert``, refusing an integer its column cannot hold as PostgreSQL would."""
    top = 2 ** (bits - 1)

    def checked(value: Any) -> Any:
        value = convert(value)
        if value is not None and not -top <= value < top:
            raise NumericValueOutOfRange(f"{value} is out of range for a {bits}-bit integer")
        return value

    return checked


# Type names as SQLAlchemy writes them that psycopg knows by another: ``FLOAT`` without
# a precision is PostgreSQL's double precision.
_TYPE_NAMES = {"float": "float8"}


_POSTGRESQL: sa.Dialect = postgresql.dialect()  # type: ignore[no-untyped-call]


@functools.cache
def _copy_types(table: sa.Table, names: tuple[str, ...]) -> list[int] | None:
    """The PostgreSQL types of ``table``'s columns ``names``, for a binary ``COPY``;
    ``None`` if one is a type psycopg does not know by name (then ``COPY`` in text)."""
    found = []
    for name in names:
        written = table.c[name].type.compile(dialect=_POSTGRESQL).lower().split("(")[0].strip()
        info = psycopg.postgres.types.get(_TYPE_NAMES.get(written, written))
        if info is None:
            return None
        found.append(info.oid)
    return found


def _insert_by_driver(
    connection: Connection,
    table: sa.Table,
    names: list[str],
    rows: list[dict[str, Any]],
) -> None:
    """SQLite: ``rows`` by the driver's own ``executemany``, each value made as
    SQLAlchemy's ``INSERT`` makes it (``_bound_value``), without its handling of every
    row's parameters: a fifth of the time 500 kept changes took, under the write lock."""
    statement, order, made = _sqlite_insert(table, tuple(names))
    convert = [_for_one_insert(table.c[name], to) for name, to in zip(order, made, strict=True)]
    values = [
        tuple([to(row[name]) for to, name in zip(convert, order, strict=True)]) for row in rows
    ]
    driver: Any = connection.connection.driver_connection
    try:
        driver.executemany(statement, values)
    except sqlite3.Error as error:
        raise sa.exc.DBAPIError.instance(statement, None, error, sqlite3.Error) from error


@functools.cache
def _sqlite_insert(
    table: sa.Table, names: tuple[str, ...]
) -> tuple[str, tuple[str, ...], tuple[Any, ...]]:
    """``INSERT INTO table (…) VALUES (?, …)`` of the columns ``names`` as SQLAlchemy
    writes it for SQLite, the names in the order of its parameters, and what makes each
    value (``_bound_value``)."""
    compiled = sa.insert(table).compile(dialect=_SQLITE, column_keys=list(names))
    order = tuple(compiled.positiontup or ())
    if set(order) != set(names):  # a column with a default left out (see insert_rows)
        raise ValueError(f"{table.name}: the insert sets {order}, not {names}")
    return str(compiled), order, tuple(_bound_value(table.c[name], _SQLITE) for name in order)


_SQLITE: sa.Dialect = sqlite.dialect()


def _bound_value(column: sa.Column[Any], dialect: sa.Dialect) -> Any:
    """What turns a column's Python value into what the driver takes: JSON as its text
    (as the engine writes it), the rest by the column type's own bind processing."""
    if isinstance(column.type, sa.JSON):
        # None is JSON's null, as SQLAlchemy writes it, unless the column says SQL NULL.
        if column.type.none_as_null:
            return lambda value: None if value is None else json_text(value)
        return json_text
    process = column.type.bind_processor(dialect)
    return process if process is not None else _as_is


def _as_is(value: Any) -> Any:
    return value


def _for_one_insert(column: sa.Column[Any], convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """What makes ``column``'s values for one insert's rows: ``convert``, and for a
    column of times, each time object converted once (``_once_a_value``)."""
    return _once_a_value(convert) if _holds_times(column) else convert


def _holds_times(column: sa.Column[Any]) -> bool:
    stored = column.type
    if isinstance(stored, sa.TypeDecorator):
        stored = stored.impl_instance
    return isinstance(stored, sa.DateTime)


def _once_a_value(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``convert``, made once for each time object of one insert's rows: a push's rows
    share one (its ``now``: when every record, version, entry and kept change was
    made), and a time's conversion (1.8 µs) was a fifth of a row's making, under
    SQLite's write lock. Known by identity, so that two equal times in other zones are
    each converted, and kept with its object, so that its identity is not reused."""
    if convert is _as_is:
        return convert
    made: dict[int, tuple[datetime, Any]] = {}

    def once(value: Any) -> Any:
        if type(value) is not datetime:
            return convert(value)
        held = made.get(id(value))
        if held is not None and held[0] is value:
            return held[1]
        converted = convert(value)
        made[id(value)] = (value, converted)
        return converted

    return once


def one_of(
    bind: Bind, column: sa.ColumnElement[Any], values: Iterable[Any]
) -> sa.ColumnElement[bool]:
    """``column IN values``, with one parameter however many the values, so that the
    statement is compiled once and the database parses one short query, where an ``IN``
    of a batch's 500 ids was 500 parameters rendered, sent and planned for every batch.
    On PostgreSQL ``column = ANY(array)`` (2.7 ms against 1.4 ms a lookup); on SQLite
    ``column IN (SELECT value FROM json_each(?))``, the values as the column stores them,
    in a JSON array (3.0 ms against 2.2 ms, 500 ids in a table of 50,000).

    Ids on PostgreSQL are sent as the text of their array (``{hex,…}``), which
    PostgreSQL reads as ``uuid[]``: psycopg writes a list of ``uuid.UUID`` value by
    value in Python (0.9 ms for 500 ids, against 0.13 ms for the text), and a push
    looks up about a dozen such lists."""
    if is_postgresql(bind):
        asked = list(values)
        array_type = postgresql.ARRAY(column.type)
        if isinstance(column.type, sa.Uuid) and all(type(v) is uuid.UUID for v in asked):
            text = "{" + ",".join([value.hex for value in asked]) + "}"
            return column == sa.any_(sa.bindparam(None, text, type_=_IdsAsText()))
        return column == sa.any_(sa.bindparam(None, asked, type_=array_type))
    store = column.type.bind_processor(_SQLITE) or _as_is
    stored = json_text([store(value) for value in values])
    listed: sa.Select[Any] = sa.select(sa.column("value")).select_from(sa.func.json_each(stored))
    return column.in_(listed.scalar_subquery())


class _IdsAsText(sa.TypeDecorator[str]):
    """Ids as the text of a PostgreSQL array, sent as they are, the parameter typed
    ``uuid[]`` by the statement (``$1::UUID[]``): PostgreSQL reads the text once, as the
    parameter's value. Sent as text and cast in the statement instead
    (``CAST($1::VARCHAR AS UUID[])``), the cast was not folded, and a plan that scanned
    the table read the 500 ids again for every row: PostgreSQL's CPU a pushed change went
    from 86 to about 400 µs."""

    impl = postgresql.ARRAY(sa.Uuid())
    cache_ok = True

    def bind_processor(self, dialect: sa.Dialect) -> None:
        return None


def insert_new(bind: Bind, table: type[SQLModel] | sa.Table, *, key: Iterable[str]) -> sa.Insert:
    """An ``INSERT`` into ``table`` that leaves alone a row with the same ``key``
    columns (``ON CONFLICT … DO NOTHING``)."""
    statement: postgresql.Insert | sqlite.Insert
    statement = postgresql.insert(table) if is_postgresql(bind) else sqlite.insert(table)
    return statement.on_conflict_do_nothing(index_elements=list(key))


def json_array_contains(
    bind: Bind, column: Any, *, key: str, values: Iterable[str]
) -> sa.ColumnElement[bool]:
    """Whether the JSON list of objects in ``column`` holds one whose ``key`` is any
    of ``values``: JSONB containment (``@>``) on PostgreSQL, one per value; on SQLite,
    ``EXISTS`` over the list walked with ``json_each``."""
    values = list(values)
    if is_postgresql(bind):
        document = sa.type_coerce(column, JSONB)
        return sa.or_(sa.false(), *(document.contains([{key: value}]) for value in values))
    element = sa.func.json_each(column).table_valued("value").alias("member")
    return sa.exists(
        sa.select(1)
        .select_from(element)
        .where(sa.func.json_extract(element.c.value, f"$.{key}").in_(values))
    )


def _lock_number(key: str | int) -> sa.ColumnElement[int]:
    """The 64-bit number of the lock ``key``: a text key hashed by PostgreSQL."""
    if isinstance(key, int):
        return sa.literal(key, sa.BigInteger)
    return sa.func.hashtextextended(key, 0)


def transaction_lock(bind: Bind, key: str | int) -> None:
    """Wait for the lock ``key`` and hold it until the transaction ends: a
    transaction-scoped advisory lock on PostgreSQL. Nothing on SQLite, where one
    writer at a time holds the whole database (``BEGIN IMMEDIATE``)."""
    if is_postgresql(bind):
        bind.execute(sa.select(sa.func.pg_advisory_xact_lock(_lock_number(key))))


def try_transaction_lock(bind: Bind, key: str | int) -> bool:
    """As ``transaction_lock``, without waiting: whether the lock was free (it is held
    now if so). Always true on SQLite, whose writer holds the whole database."""
    if not is_postgresql(bind):
        return True
    taken = bind.execute(sa.select(sa.func.pg_try_advisory_xact_lock(_lock_number(key))))
    return bool(taken.scalar_one())
