"""How long a push holds the sync clock row, seen from outside the server (PostgreSQL).

Every writing transaction ends by taking numbers from the one ``sync_clock`` row
(``UPDATE … RETURNING``) and keeps the row locked until it commits, so that change
order is commit order (``sync.engine.changelog``). While one transaction holds it,
every other writer that reaches that point waits: with several server processes the
clock is the one place where writers queue.

The server is not asked; PostgreSQL is. A thread samples ``pg_locks`` joined with
``pg_stat_activity`` every few milliseconds, over its own connection to another
database of the same server (so that its backend is never counted as the bench
database's). An ``UPDATE`` of ``sync_clock`` takes the table's ``RowExclusiveLock``
and keeps it to the end of the transaction, and nothing else the server does takes
that mode on that table; so a session holding it is either **the holder** (it has
the row) or **a waiter** (it is waiting for a ``transactionid`` or ``tuple`` lock:
the holder's commit). A sample records the holder, by process and transaction id,
with what it was doing (running SQL, flushing WAL, or ``idle in transaction``: the
server's Python at work with the row held), and how many waited.

From the samples (``summary``):

- **busy**: the share of samples in which someone held the clock, times the time
  sampled: the seconds the clock was held. Divided by the pushes (one transaction
  each), the **mean hold a push**: an estimate that needs no sample to catch a hold's
  start or end.
- **holds**: each holder's first and last sample; a hold of ``d`` seen from samples
  ``Δ`` apart spans about ``d - Δ``, so ``span + Δ`` is its length, to within ``Δ``.
  Holds shorter than ``Δ`` may be missed entirely: the busy figure is the steadier.

The sampling costs a little CPU of the two cores (its queries, about one a
``INTERVAL``); it is reported (``sampler_cpu_s``).
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
import sqlalchemy as sa

from bench.load import percentiles
from bench.memory import cpu_seconds

INTERVAL = 0.01  # between one sample's end and the next one's start

SAMPLE = """
SELECT a.pid, a.backend_xid::text, a.state, a.wait_event_type, a.wait_event
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'relation' AND l.database = %s AND l.relation = %s
  AND l.mode = 'RowExclusiveLock' AND l.granted
"""


@dataclass(frozen=True)
class Session:
    """A session seen with the clock table's ``RowExclusiveLock``."""

    pid: int
    xid: str | None
    state: str | None
    wait_event_type: str | None
    wait_event: str | None

    @property
    def waits_for_clock(self) -> bool:
        """Waiting for a row lock, that is for the holder's commit."""
        return self.wait_event_type == "Lock" and self.wait_event in ("transactionid", "tuple")

    @property
    def doing(self) -> str:
        """What the holder was doing: ``idle in transaction`` is the server between
        two statements (its Python), ``active`` a statement running, with what it
        waits for, if anything (``IO/WALSync``: the commit's flush)."""
        state = self.state or "?"
        if self.wait_event_type and state != "idle in transaction":
            return f"{state}, waiting {self.wait_event_type}/{self.wait_event}"
        return state


@dataclass
class Sample:
    at: float
    holders: list[Session]
    waiting: int


@dataclass
class ClockWatch:
    """Samples of who holds ``sync_clock`` (``watch``)."""

    samples: list[Sample] = field(default_factory=list)
    sampler_cpu_s: float | None = None
    problem: str | None = None


def sample_of(at: float, rows: Sequence[tuple[Any, ...]]) -> Sample:
    """One sample from the rows of ``SAMPLE``."""
    sessions = [Session(*row) for row in rows]
    holders = [session for session in sessions if not session.waits_for_clock]
    return Sample(at, holders, len(sessions) - len(holders))


def clock_table(database_url: str) -> tuple[int, int]:
    """The OIDs of the bench database and of its ``sync_clock`` table."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            database = connection.exec_driver_sql(
                "SELECT oid FROM pg_database WHERE datname = current_database()"
            ).scalar_one()
            table = connection.exec_driver_sql("SELECT 'sync_clock'::regclass::oid").scalar_one()
    finally:
        engine.dispose()
    return int(database), int(table)


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL (``postgresql+psycopg://…``) as psycopg takes it."""
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def watch(
    *, server_url: str, database_url: str, interval: float = INTERVAL
) -> Iterator[ClockWatch]:
    """Sample the clock's holders while the block runs: ``server_url`` is a database
    of the same server other than the bench's (the sampler's connection),
    ``database_url`` the bench's. A failure to sample is said, never raised."""
    made = ClockWatch()
    stop = threading.Event()
    try:
        database, table = clock_table(database_url)
        connection = psycopg.connect(libpq_url(server_url), autocommit=True)
    except (sa.exc.SQLAlchemyError, psycopg.Error) as error:
        made.problem = f"cannot watch the clock: {type(error).__name__}: {error}"
        yield made
        return
    backend = connection.info.backend_pid

    def sample() -> None:
        thread_cpu = time.thread_time()
        backend_cpu = cpu_seconds(backend)
        try:
            while not stop.is_set():
                at = time.perf_counter()
                rows = connection.execute(SAMPLE, (database, table)).fetchall()
                made.samples.append(sample_of(at, rows))
                stop.wait(interval)
        except psycopg.Error as error:
            made.problem = f"the clock sampler failed: {type(error).__name__}: {error}"
        finally:
            after = cpu_seconds(backend)
            spent = time.thread_time() - thread_cpu
            if backend_cpu is not None and after is not None:  # its backend is on this machine
                spent += after - backend_cpu
            made.sampler_cpu_s = round(spent, 3)

    thread = threading.Thread(target=sample, name="clock-sampler", daemon=True)
    thread.start()
    try:
        yield made
    finally:
        stop.set()
        thread.join(timeout=10)
        connection.close()


def summary(watched: ClockWatch, *, pushes: int, push_seconds: float) -> dict[str, Any]:
    """What the samples say about the clock: how much of the time it was held, the
    mean hold a push (busy time over pushes), each hold's length, what its holder was
    doing, and how many waited."""
    samples = watched.samples
    if len(samples) < 2:
        return {"samples": len(samples), "problem": watched.problem or "too few samples"}
    step = (samples[-1].at - samples[0].at) / (len(samples) - 1)
    held = [sample for sample in samples if sample.holders]
    busy = len(held) * step
    seen: dict[tuple[int, str | None], list[float]] = {}
    doing: Counter[str] = Counter()
    for sample in held:
        for holder in sample.holders:
            span = seen.setdefault((holder.pid, holder.xid), [sample.at, sample.at])
            span[1] = sample.at
            doing[holder.doing] += 1
    holds = sorted(last - first + step for first, last in seen.values())
    waiting = [sample.waiting for sample in samples]
    with_waiters = [sample.waiting for sample in held]
    return {
        "samples": len(samples),
        "interval_ms": round(step * 1000, 2),
        "sampler_cpu_s": watched.sampler_cpu_s,
        "busy_s": round(busy, 3),
        "held_share_of_push": round(busy / push_seconds, 3) if push_seconds else None,
        "pushes": pushes,
        "held_ms_per_push": round(busy * 1000 / pushes, 1) if pushes else None,
        "holds_seen": len(holds),
        "hold_ms": percentiles(holds),
        # Of the samples with a holder, what the holder was doing.
        "holder_doing": {
            name: round(count / sum(doing.values()), 3) for name, count in doing.most_common()
        },
        "waiting_mean": round(statistics.fmean(waiting), 2),
        "waiting_while_held_mean": round(statistics.fmean(with_waiters), 2) if held else 0.0,
        "waiting_max": max(waiting),
        "problem": watched.problem,
    }
