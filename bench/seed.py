"""Millions of records straight into the database, as if tablets had pushed them.

Pushing a million records over HTTP to measure how sync behaves with a million held
would take longer than the benchmark itself, so the scale runs fill the database
directly: PostgreSQL by ``COPY``, SQLite by ``executemany``, in transactions of
``CHUNK`` records. What lands is what push would have made (``bench.rows``): each
record's row in its table, its first version in ``record_version``, and its pull
entry in ``sync_entry`` with a change number taken from the clock the way
``sync.changelog`` takes them (``UPDATE sync_clock SET seq = seq + n``, last, under
the clock row's lock until commit). ``sync_change`` rows are not made: no device
will send these changes again.

It is quick (tens of thousands of records a second on two cores) because nothing
is done twice: records are made (patrols keep to their sector's trail,
``generator.TrailWalker``, so that a track's text is the trail's with its own
times) and rendered as the driver takes them (``rows.Renderer``: no pydantic, each
JSON document serialised once), chunk by chunk, while earlier chunks are written;
see ``seed`` for who does what on each database.
"""

from __future__ import annotations

import gc
import io
import itertools
import multiprocessing
import os
import pickle
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bench.generator import CommunityPlace, Record, TrailWalker
from bench.rows import Renderer, spot_check, stored_state, table_of
from bench.workload import SectorPlace, stories
from schemas import RecordVersion, SyncEntry
from schemas.types import utcnow
from sync.changelog import CLOCK_ID
from sync.entities import ENTITIES

CHUNK = 5_000
FEW_CHUNKS = 4  # made in this process: not worth starting another (a second or two)
PG_WRITERS = 2  # PostgreSQL connections writing at once
SQLITE_CHUNKS = 4  # chunks in one SQLite transaction
# One seeded record in this many is also validated by its fields model, and must come
# out of it as the seeder stored it: what the tests check on a sample, checked live.
SPOT_CHECK = 1_000
VERSION_TABLE: sa.Table = RecordVersion.__table__  # type: ignore[attr-defined]
ENTRY_TABLE: sa.Table = SyncEntry.__table__  # type: ignore[attr-defined]


@dataclass
class History:
    """Where seeded records lie and who made them: the places of a fleet, and the
    office's import device (a real enrolled device, so every id points somewhere)."""

    sectors: list[SectorPlace]
    communities: list[CommunityPlace]
    categories: list[dict[str, Any]]
    user_id: uuid.UUID
    device_id: uuid.UUID


def records_held(engine: Engine) -> int:
    """Field records in the database (pull entries of record types, deleted or not)."""
    with engine.connect() as connection:
        held = connection.execute(
            sa.select(sa.func.count())
            .select_from(ENTRY_TABLE)
            .where(ENTRY_TABLE.c.entity.in_(list(ENTITIES)))
        ).scalar_one()
    return int(held)


def seed(
    engine: Engine,
    history: History,
    count: int,
    *,
    seed: str,
    processes: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> float:
    """Insert ``count`` records of ``history``'s places; the seconds it took.

    Chunks are made and rendered (``prepare``) while others are written (``Writer``):
    on SQLite in ``processes`` other processes (by default one core fewer than the
    machine has), while this one writes; on PostgreSQL, whose server processes do
    the larger half of the work (parsing, compressing, indexing), in this process,
    while its threads write over ``PG_WRITERS`` connections at once. ``engine``
    must be the benchmark's own scratch database (see ``_connection``)."""
    plan = Plan(history, seed, engine.dialect.name, utcnow())
    sizes = [min(CHUNK, count - start) for start in range(0, count, CHUNK)]
    if processes is None:
        here = engine.dialect.name == "postgresql" or len(sizes) <= FEW_CHUNKS
        processes = 0 if here else max(1, (os.cpu_count() or 2) - 1)
    started = time.perf_counter()
    done = 0
    with ExitStack() as stack:
        stack.enter_context(_without_gc())
        writer = stack.enter_context(Writer(engine, count=len(sizes)))
        # A window of chunks being written (and one being made, or a few in other
        # processes), so that memory stays flat however many records are asked for.
        writing: deque[Future[int]] = deque()
        for prepared in _made(plan, sizes, processes, stack):
            if len(writing) == writer.connections:
                done += writing.popleft().result()
                if progress is not None:
                    progress(done)
            writing.append(writer.write(prepared))
        while writing:
            done += writing.popleft().result()
            if progress is not None:
                progress(done)
    return time.perf_counter() - started


def _made(plan: Plan, sizes: list[int], processes: int, stack: ExitStack) -> Iterator[Prepared]:
    """The chunks, in order: made here, or in ``processes`` processes."""
    if processes == 0:
        for index, size in enumerate(sizes):
            yield prepare(plan, index, size)
        return
    context = multiprocessing.get_context("spawn")
    pool = stack.enter_context(ProcessPoolExecutor(processes, mp_context=context))
    making: deque[Future[bytes]] = deque()
    chunks = iter(enumerate(sizes))
    for index, size in itertools.islice(chunks, processes + 1):
        making.append(pool.submit(prepare_pickled, plan, index, size))
    while making:
        made = making.popleft().result()
        for index, size in itertools.islice(chunks, 1):
            making.append(pool.submit(prepare_pickled, plan, index, size))
        yield pickle.loads(made)  # noqa: S301 (made by prepare_pickled)


class Writer:
    """Writes prepared chunks in order, each on the next of its connections (each on
    a thread of its own: the drivers wait for the database without holding the GIL).
    A chunk takes its change numbers once the chunk before has taken its own, so
    they follow the chunks' order; the clock row's lock then keeps each chunk's
    entries and its numbers in one transaction, as push does, while the other
    connection writes the next chunk's rows."""

    def __init__(self, engine: Engine, *, count: int, bulk: bool = True) -> None:
        self.engine = engine
        self.postgresql = engine.dialect.name == "postgresql"
        self.connections = min(count, PG_WRITERS) if self.postgresql else 1
        self.per_transaction = 1 if self.postgresql else SQLITE_CHUNKS
        self.bulk = bulk
        self.remaining = count
        self._stack = ExitStack()
        self._open: list[Any] = []
        self._threads: list[ThreadPoolExecutor] = []
        self._numbered = threading.Event()
        self._numbered.set()
        self._written = 0
        self._failed = False

    def __enter__(self) -> Writer:
        for _ in range(self.connections):
            self._open.append(self._stack.enter_context(_connection(self.engine, bulk=self.bulk)))
            self._threads.append(self._stack.enter_context(ThreadPoolExecutor(1)))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def write(self, prepared: Prepared) -> Future[int]:
        """Write ``prepared`` (soon); the future answers how many records it held."""
        turn = self._written % self.connections
        first = self._written % self.per_transaction == 0
        self._written += 1
        self.remaining -= 1
        last = self._written % self.per_transaction == 0 or self.remaining == 0
        after, numbered = self._numbered, threading.Event()
        self._numbered = numbered
        return self._threads[turn].submit(
            self._write, self._open[turn], prepared, first, last, after, numbered
        )

    def _write(
        self,
        connection: Any,
        prepared: Prepared,
        begin: bool,
        commit: bool,
        after: threading.Event,
        numbered: threading.Event,
    ) -> int:
        def turn() -> None:
            after.wait()
            if self._failed:  # a chunk before failed: this one must not be committed
                raise RuntimeError("an earlier chunk could not be written")

        try:
            if self._failed:
                raise RuntimeError("an earlier chunk could not be written")
            return write(
                connection, prepared, begin=begin, commit=commit, turn=turn, taken=numbered.set
            )
        except BaseException:
            self._failed = True
            raise
        finally:
            numbered.set()  # whatever happened, the next chunk must not wait for ever


@dataclass(frozen=True)
class Plan:
    history: History
    seed: str
    dialect: str
    now: datetime


@dataclass
class Table:
    """One table's rows of a chunk, as the driver takes them: tuples for SQLite;
    for PostgreSQL, ``COPY`` text, or its lines for the pull entries, whose
    ``change_seq`` comes when they are written."""

    name: str
    columns: list[str]
    rows: list[Any] = field(default_factory=list)
    copy: bytes = b""


@dataclass
class Prepared:
    """One chunk, ready for the driver: the rows of each table, and the pull entries
    with their ``change_seq`` still to be numbered (the last column)."""

    count: int
    postgresql: bool
    tables: list[Table]
    entries: Table


def prepare_pickled(plan: Plan, index: int, size: int) -> bytes:
    """``prepare``, pickled without pickle's memo: the millions of small values of a
    chunk for SQLite load five times faster so (the memo is only needed for objects
    met twice, and a chunk's values are plain)."""
    made = io.BytesIO()
    pickler = pickle.Pickler(made, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.fast = True  # no memo
    with _without_gc():
        pickler.dump(prepare(plan, index, size))
    return made.getvalue()


@contextmanager
def _without_gc() -> Iterator[None]:
    """The cycle collector paused: making a chunk allocates millions of objects, none
    of them in a cycle, and each allocation burst would start a collection that walks
    them all (a tenth of the time). Reference counting frees them as usual."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def prepare(plan: Plan, index: int, size: int) -> Prepared:
    """Chunk ``index``: its records made from its own seed, so chunks are independent
    (an attendance names people of its own chunk) and the same in any process."""
    rng = random.Random(f"bench-seed:{plan.seed}:{index}")
    history = plan.history
    communities = [CommunityPlace(c.id, c.box) for c in history.communities]
    source = stories(
        rng,
        sectors=history.sectors,
        communities=communities,
        categories=history.categories,
        user_id=history.user_id,
        walker=TrailWalker,
    )
    made = itertools.islice(source, size)
    return _prepared(plan, made, lambda: uuid.UUID(int=rng.getrandbits(128), version=4), index)


def insert(
    engine: Engine,
    made: list[Record],
    *,
    user_id: uuid.UUID,
    device_id: uuid.UUID,
    now: datetime | None = None,
) -> None:
    """``made`` as if ``device_id`` had pushed each as a create, in one transaction,
    rendered as the seeder renders them (on any database: no bulk settings)."""
    plan = Plan(
        History([], [], [], user_id=user_id, device_id=device_id),
        "insert",
        engine.dialect.name,
        now or utcnow(),
    )
    prepared = _prepared(plan, iter(made), uuid.uuid4, 0, check_every=1)
    with Writer(engine, count=1, bulk=False) as writer:
        writer.write(prepared).result()


def _prepared(
    plan: Plan,
    made: Iterator[Record],
    change_id: Callable[[], uuid.UUID],
    index: int,
    *,
    check_every: int = SPOT_CHECK,
) -> Prepared:
    renderer = Renderer(
        plan.dialect,
        now=plan.now,
        user_id=plan.history.user_id,
        device_id=plan.history.device_id,
    )
    postgresql = renderer.postgresql
    rows: dict[str, list[Any]] = {}
    versions: list[Any] = []
    entries: list[Any] = []
    count = 0
    for offset, record in enumerate(made):
        state = stored_state(record)
        if (index * CHUNK + offset) % check_every == 0:
            spot_check(record, state)
        rendered = renderer.render(record, change_id(), state)
        mine = rows.get(rendered.entity)
        if mine is None:
            mine = rows[rendered.entity] = []
        mine.append(rendered.row)
        versions.append(rendered.version)
        entries.append(rendered.entry)
        count += 1
    tables = [
        Table(table_of(entity).name, renderer.columns(entity), values)
        for entity, values in rows.items()
    ]
    tables.append(Table(VERSION_TABLE.name, renderer.version_columns, versions))
    entry_table = Table(ENTRY_TABLE.name, renderer.entry_columns, entries)
    if postgresql:  # lines of COPY text, joined here where the cores are
        for table in tables:
            table.copy = b"".join(table.rows)
            table.rows = []
    return Prepared(count, postgresql, tables, entry_table)


@contextmanager
def _connection(engine: Engine, *, bulk: bool) -> Iterator[Any]:
    """A driver connection of its own (never returned to the pool). ``bulk`` is for
    the benchmark's scratch database alone, which nothing else needs to survive a
    crash of: SQLite writes without waiting for the disk (``synchronous=OFF``) and
    with a large page cache, PostgreSQL commits without waiting for its WAL flush.
    These are settings of this connection only; the database keeps its journal mode
    (WAL) and the server its own settings."""
    raw = engine.raw_connection()
    connection: Any = raw.driver_connection
    raw.detach()
    try:
        if bulk and engine.dialect.name == "postgresql":
            connection.execute("SET synchronous_commit TO off")
            connection.commit()
        elif bulk:
            connection.execute("PRAGMA synchronous=OFF")
            connection.execute("PRAGMA cache_size=-262144")  # 256 MiB
        yield connection
    finally:
        raw.close()


CLOCK_UPDATE = "UPDATE sync_clock SET seq = seq + {n} WHERE id = {clock} RETURNING seq"


def write(
    connection: Any,
    prepared: Prepared,
    *,
    begin: bool = True,
    commit: bool = True,
    turn: Callable[[], None] | None = None,
    taken: Callable[[], None] | None = None,
) -> int:
    """One chunk: rows, versions, then numbers from the clock (``turn`` waits for
    this chunk's turn to take them, ``taken`` says they are taken) and the pull
    entries. On SQLite a transaction may hold several chunks: ``begin`` starts it,
    ``commit`` ends it (PostgreSQL's driver begins one by itself). The records
    written."""
    postgresql = prepared.postgresql
    try:
        if postgresql:
            cursor = connection.cursor()
        else:
            if begin:
                connection.execute("BEGIN IMMEDIATE")
            cursor = connection
        for table in prepared.tables:
            _insert(cursor, table, table.copy or table.rows, postgresql=postgresql)
        if turn is not None:
            turn()
        clock = CLOCK_UPDATE.format(n=prepared.count, clock=CLOCK_ID)
        top = int(cursor.execute(clock).fetchone()[0])
        if taken is not None:
            taken()
        first = top - prepared.count + 1
        entries = prepared.entries
        numbered_rows: bytes | list[tuple[Any, ...]]
        if postgresql:  # change_seq is the first column of the COPY
            numbers = [b"%d\t" % seq for seq in range(first, top + 1)]
            pairs = zip(numbers, entries.rows, strict=True)
            numbered_rows = b"".join(itertools.chain.from_iterable(pairs))
        else:
            numbered_rows = [(*row, first + offset) for offset, row in enumerate(entries.rows)]
        _insert(cursor, entries, numbered_rows, postgresql=postgresql)
        if commit:
            connection.commit() if postgresql else connection.execute("COMMIT")
    except BaseException:
        if postgresql:
            connection.rollback()
        elif connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    return prepared.count


def _insert(
    cursor: Any, table: Table, data: bytes | list[tuple[Any, ...]], *, postgresql: bool
) -> None:
    names = ", ".join(f'"{name}"' for name in table.columns)
    if postgresql:
        with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
            copy.write(data)
        return
    marks = ", ".join("?" for _ in table.columns)
    cursor.executemany(f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})', data)  # noqa: S608
