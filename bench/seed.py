"""Millions of records straight into the database, as if tablets had pushed them.

Pushing a million records over HTTP to measure how sync behaves with a million held
would take longer than the benchmark itself, so the scale runs fill the database
directly: PostgreSQL by ``COPY``, SQLite by ``executemany``, in transactions of
``CHUNK`` records. What lands is what push would have made (``bench.rows``): each
record's row in its table, its first version in ``record_version``, and its pull
entry in ``sync_entry`` with a change number taken from the clock the way
``sync.engine.changelog`` takes them (``UPDATE sync_clock SET seq = seq + n``, last, under
the clock row's lock until commit). ``sync_change`` rows are not made: no device
will send these changes again.

It is quick (over ten thousand records a second on two cores, where making them as
push would, with pydantic, managed two thousand) because little is done in Python
and nothing twice: records are made (patrols keep to their sector's trail,
``generator.TrailWalker``, so that a track's text is the trail's with its own
times) and rendered as the driver takes them (``rows.Renderer``: no pydantic, each
JSON document serialised once), chunk by chunk, by processes that write in turn
while the others make the next chunks (``seed``).

For the review benchmark, ``seed_patrols`` writes a history of patrols alone, the
same way: so many patrols holding so many track points in all, walked by given
rangers of each sector (``Patrols``), and says what it made of each
(``SeededPatrol``), so that the API's answers can be checked against it.
"""

from __future__ import annotations

import gc
import itertools
import multiprocessing
import os
import random
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bench.generator import EPOCH, CommunityPlace, Record, TrailWalker, reviewed_patrol_story
from bench.rows import Renderer, spot_check, stored_state, table_of
from bench.workload import SectorPlace, stories
from schemas import RecordVersion, SyncEntry
from schemas.sync import CLOCK_ID
from schemas.types import utcnow
from sync.catalog import CATALOG
from sync.platform.database import create_db_engine

CHUNK = 5_000
PATROL_CHUNK = 1_000  # patrols: about 5,000 records, 100,000 track points
FEW_CHUNKS = 4  # made in this process: not worth starting others (a second or two)
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
            .where(ENTRY_TABLE.c.entity.in_(list(CATALOG)))
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

    ``processes`` other processes (by default one a core; none for a few chunks)
    each make a chunk and write it over a connection of their own, in turn: on
    SQLite each chunk's transaction once the chunk before is committed; on
    PostgreSQL each chunk's rows and versions at once, its change numbers and pull
    entries once the chunk before has its numbers (``Turn``). So while one writes,
    the other makes the next chunk, and on PostgreSQL two server processes parse and
    index at once. ``engine`` must be the benchmark's own scratch database (see
    ``_connect``)."""
    plan = Plan(history, seed, engine.dialect.name, utcnow())
    sizes = [min(CHUNK, count - start) for start in range(0, count, CHUNK)]
    seconds, _ = _seed(engine, plan, sizes, processes=processes, progress=progress)
    return seconds


def seed_patrols(
    engine: Engine,
    history: History,
    patrols: Patrols,
    *,
    seed: str,
    processes: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[float, list[SeededPatrol]]:
    """A history of ``patrols.count`` patrols and nothing else, with
    ``patrols.points`` track points in all (``Patrols``), written as ``seed``
    writes records; the seconds it took, and what was made, patrol by patrol, for
    the benchmark to check the API's answers against. ``progress`` counts patrols."""
    plan = Plan(history, seed, engine.dialect.name, utcnow(), patrols)
    step = patrols.chunk
    sizes = [min(step, patrols.count - start) for start in range(0, patrols.count, step)]
    return _seed(engine, plan, sizes, processes=processes, progress=progress)


def _seed(
    engine: Engine,
    plan: Plan,
    sizes: list[int],
    *,
    processes: int | None,
    progress: Callable[[int], None] | None,
) -> tuple[float, list[SeededPatrol]]:
    if processes is None:
        processes = 0 if len(sizes) <= FEW_CHUNKS else os.cpu_count() or 2
    started = time.perf_counter()
    done = 0
    seeded: list[SeededPatrol] = []
    if processes == 0:
        connection = _connect(engine, bulk=True)
        try:
            with _without_gc():
                for index, size in enumerate(sizes):
                    prepared = prepare(plan, index, size)
                    write(connection, prepared)
                    done += size
                    seeded += prepared.patrols
                    if progress is not None:
                        progress(done)
        finally:
            connection.close()
        return time.perf_counter() - started, seeded
    context = multiprocessing.get_context("spawn")
    turn = Turn(context)
    url = engine.url.render_as_string(hide_password=False)
    with ProcessPoolExecutor(
        processes, mp_context=context, initializer=_take_part, initargs=(url, turn)
    ) as pool:
        # Every chunk is asked for at once: the pool hands them out in order, one to
        # each process that is free, so memory holds a chunk a process.
        made = [pool.submit(_make_and_write, plan, index, size) for index, size in enumerate(sizes)]
        try:
            for future, size in zip(made, sizes, strict=True):
                seeded += future.result()
                done += size
                if progress is not None:
                    progress(done)
        except BaseException:
            turn.fail()
            pool.shutdown(cancel_futures=True)
            raise
    return time.perf_counter() - started, seeded


class Turn:
    """Which chunk's turn it is, across processes: chunks take their change numbers
    in their order (so a seed's numbering is the same run to run), each once the
    chunk before has taken its own; ``fail`` stops every chunk still to come."""

    def __init__(self, context: Any) -> None:
        self._condition = context.Condition()
        self._next = context.Value("q", 0, lock=False)
        self._failed = context.Value("b", False, lock=False)

    def wait(self, index: int) -> None:
        with self._condition:
            while self._next.value != index and not self._failed.value:
                self._condition.wait(1.0)
            if self._failed.value:
                raise RuntimeError("an earlier chunk could not be written")

    def done(self, index: int) -> None:
        with self._condition:
            self._next.value = index + 1
            self._condition.notify_all()

    def fail(self) -> None:
        with self._condition:
            self._failed.value = True
            self._condition.notify_all()


# A process taking part in a seed: its connection, and the turn it shares.
_part: tuple[Any, Turn] | None = None


def _take_part(url: str, turn: Turn) -> None:
    global _part
    _part = (_connect(create_db_engine(url), bulk=True), turn)


def _make_and_write(plan: Plan, index: int, size: int) -> list[SeededPatrol]:
    """Chunk ``index``, made and written in its turn (in a process taking part); the
    patrols it made (``seed_patrols``)."""
    assert _part is not None, "not a seeding process"
    connection, turn = _part
    try:
        with _without_gc():
            prepared = prepare(plan, index, size)
            write(
                connection,
                prepared,
                turn=lambda: turn.wait(index),
                taken=lambda: turn.done(index),
            )
            return prepared.patrols
    except BaseException:
        turn.fail()
        raise


@dataclass(frozen=True)
class Patrols:
    """A history of patrols alone, for the review benchmark: ``count`` patrols with
    ``points`` track points in all (each patrol its share, give or take 60 %), one
    sector after the other, over ``days`` from ``generator.EPOCH``, each walked by
    two rangers of its sector's ``crews`` (user ids, in ``History.sectors``' order),
    in turn. Most are approved by the time the newest are made: the patrols to be
    approved or returned are seeded ``submitted`` (``SeededPatrol.status`` says what
    their review is to make of them)."""

    count: int
    points: int
    crews: tuple[tuple[uuid.UUID, ...], ...]
    days: int = 730
    chunk: int = PATROL_CHUNK


@dataclass(frozen=True)
class SeededPatrol:
    """What the seeder made of one patrol: what the API must answer about it."""

    id: uuid.UUID
    sector_id: uuid.UUID
    status: str  # once reviewed: approved and returned ones are seeded submitted
    leader_id: uuid.UUID
    member_ids: tuple[uuid.UUID, ...]
    started_at: datetime  # UTC
    points: int
    segments: int
    observations: int
    categories: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    history: History
    seed: str
    dialect: str
    now: datetime
    patrols: Patrols | None = None


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
    patrols: list[SeededPatrol] = field(default_factory=list)


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
    if plan.patrols is not None:
        records, patrols = patrol_chunk(plan.history, plan.patrols, plan.seed, index, size)
        prepared = _prepared(
            plan, iter(records), _change_ids(random.Random(f"ids:{plan.seed}:{index}")), index
        )
        prepared.patrols = patrols
        return prepared
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
    return _prepared(plan, made, _change_ids(rng), index)


def _change_ids(rng: random.Random) -> Callable[[], uuid.UUID]:
    return lambda: uuid.UUID(int=rng.getrandbits(128), version=4)


# How the statuses of a review history fall: the oldest patrols were reviewed long
# ago; of the newest fifth, half wait in the queue (a tenth of all patrols).
RECENT_SHARE = 0.2
RECENT_STATUSES = {"submitted": 50, "approved": 40, "draft": 5, "returned": 5}
OLD_STATUSES = {"approved": 96, "cancelled": 2, "returned": 2}
REVIEWED = frozenset({"approved", "returned"})


def patrol_chunk(
    history: History, patrols: Patrols, seed: str, index: int, size: int
) -> tuple[list[Record], list[SeededPatrol]]:
    """Patrols ``index * patrols.chunk`` on, ``size`` of them, whole: their records,
    and what each is. The chunk's points are its exact share of ``patrols.points``
    (so the history holds them all), cut among its patrols at random."""
    rng = random.Random(f"bench-patrols:{seed}:{index}")
    first = index * patrols.chunk
    share = patrols.points * (first + size) // patrols.count
    share -= patrols.points * first // patrols.count
    weights = list(itertools.accumulate(rng.uniform(0.4, 1.6) for _ in range(size)))
    bounds = [0, *(int(share * w / weights[-1]) for w in weights[:-1]), share]
    sectors = history.sectors
    made: list[Record] = []
    seeded: list[SeededPatrol] = []
    for offset, (low, high) in enumerate(itertools.pairwise(bounds)):
        number = first + offset
        place = number % len(sectors)
        sector, crew = sectors[place], patrols.crews[place]
        turn = number // len(sectors)
        team = [crew[2 * turn % len(crew)], crew[(2 * turn + 1) % len(crew)]]
        if team[0] == team[1]:
            team.pop()
        day = EPOCH + timedelta(days=number * patrols.days // patrols.count)
        statuses = RECENT_STATUSES if number >= patrols.count * (1 - RECENT_SHARE) else OLD_STATUSES
        status = rng.choices(list(statuses), weights=list(statuses.values()))[0]
        records = reviewed_patrol_story(
            rng,
            sector.id,
            sector.box,
            day,
            team,
            history.categories,
            points=high - low,
            status="submitted" if status in REVIEWED else status,
        )
        made += records
        head = records[0]
        observed = [r.fields["category_key"] for r in records if r.entity == "observation"]
        seeded.append(
            SeededPatrol(
                id=head.id,
                sector_id=sector.id,
                status=status,
                leader_id=team[0],
                member_ids=tuple(team),
                started_at=datetime.fromisoformat(head.fields["started_at"]).astimezone(UTC),
                points=high - low,
                segments=sum(r.entity == "track_segment" for r in records),
                observations=len(observed),
                categories=tuple(observed),
            )
        )
    return made, seeded


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
    connection = _connect(engine, bulk=False)
    try:
        write(connection, prepared)
    finally:
        connection.close()


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
    if postgresql:  # lines of COPY text
        for table in tables:
            table.copy = b"".join(table.rows)
            table.rows = []
    return Prepared(count, postgresql, tables, entry_table)


def _connect(engine: Engine, *, bulk: bool) -> Any:
    """A driver connection of its own (never one of the pool's). ``bulk`` is for
    the benchmark's scratch database alone, which nothing else needs to survive a
    crash of: SQLite writes without waiting for the disk (``synchronous=OFF``) and
    with a large page cache, PostgreSQL commits without waiting for its WAL flush.
    These are settings of this connection only; the database keeps its journal mode
    (WAL, which the running server relies on) and the server its own settings."""
    raw = engine.raw_connection()
    connection: Any = raw.driver_connection
    raw.detach()
    if bulk and engine.dialect.name == "postgresql":
        connection.execute("SET synchronous_commit TO off")
        connection.commit()
    elif bulk:
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute("PRAGMA cache_size=-1048576")  # 1 GiB
    return connection


CLOCK_UPDATE = "UPDATE sync_clock SET seq = seq + {n} WHERE id = {clock} RETURNING seq"


def write(
    connection: Any,
    prepared: Prepared,
    *,
    turn: Callable[[], None] | None = None,
    taken: Callable[[], None] | None = None,
) -> int:
    """One chunk in one transaction: rows, versions, then numbers from the clock and
    the pull entries. ``turn`` waits for the chunk's turn, ``taken`` ends it: on
    PostgreSQL, around taking the numbers (the clock row's lock then orders the
    commits); on SQLite, around the whole transaction (one writer at a time). The
    records written."""
    postgresql = prepared.postgresql
    try:
        if postgresql:
            cursor = connection.cursor()
        else:
            if turn is not None:
                turn()
            connection.execute("BEGIN IMMEDIATE")
            cursor = connection
        for table in prepared.tables:
            _insert(cursor, table, table.copy or table.rows, postgresql=postgresql)
        if postgresql and turn is not None:
            turn()
        clock = CLOCK_UPDATE.format(n=prepared.count, clock=CLOCK_ID)
        top = int(cursor.execute(clock).fetchone()[0])
        if postgresql and taken is not None:
            taken()
        first = top - prepared.count + 1
        entries = prepared.entries
        numbered: bytes | list[tuple[Any, ...]]
        if postgresql:  # change_seq is the first column of the COPY
            numbers = [b"%d\t" % seq for seq in range(first, top + 1)]
            pairs = zip(numbers, entries.rows, strict=True)
            numbered = b"".join(itertools.chain.from_iterable(pairs))
        else:
            numbered = [(*row, first + offset) for offset, row in enumerate(entries.rows)]
        _insert(cursor, entries, numbered, postgresql=postgresql)
        if postgresql:
            connection.commit()
        else:
            connection.execute("COMMIT")
            if taken is not None:
                taken()
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
