"""What the service counts for Prometheus (``GET /metrics``, ``api/routes/metrics.py``).

- Requests, by method, route template (``api/route_template.py``) and status, and their
  duration: ``RequestMetrics``, a pure ASGI middleware (``BaseHTTPMiddleware`` would hold
  streamed exports in memory), outside the error middleware so that a 500 is counted.
- Sync's business: changes pushed by status, and the CPU pushes spent by phase
  (``record_push``; ``sync.engine.spent``), pull pages and records (``record_pull``),
  bytes of uploads taken (``record_upload``), called by the routes.
- SQLite's write turns (``sync.platform.writers``): how long writers waited for the one
  write lock and held it, and the holders' CPU while they held it (``record_write_turn``,
  told by the writers themselves).
- The fleet's backlog, read from the database at each scrape (``DatabaseGauges``), so it
  is right whatever the number of server processes on the database.

The metrics are made once per process, in a registry of their own (not the library's
global one), whatever the number of apps a test builds. With several workers
(``fieldsync serve --workers N``) ``PROMETHEUS_MULTIPROC_DIR`` is set before they start
(``api/cli.py``): prometheus_client then keeps each process's values in files there, and
a scrape, answered by any worker, sums every worker's files (its multiprocess mode).
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter as Tally
from collections.abc import Iterator

from fastapi import FastAPI
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from starlette.types import Message, Receive, Scope, Send

from api.middleware import HTTPMiddleware, wrap_outermost
from api.route_template import route_template
from schemas.sync import PushResponse
from sync.engine.backlog import count_backlog
from sync.engine.spent import PHASES, Spent
from sync.platform import writers
from sync.platform.database import transaction, unavailable

log = logging.getLogger("fieldsync")

# prometheus_client chose where values live when it was imported: in this process's
# memory, or in files of this folder shared by the workers.
MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR" in os.environ

REGISTRY = CollectorRegistry(auto_describe=True)
if not MULTIPROCESS:  # a worker's own CPU and memory mean nothing summed over workers
    ProcessCollector(registry=REGISTRY)

# A method a client made up is counted as "other": label values must stay few.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# From a health check (a millisecond) to a push of 1,000 changes or a chunk over 2G.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

REQUESTS = Counter(
    "fieldsync_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
DURATION = Histogram(
    "fieldsync_http_request_duration_seconds",
    "Time from a request's arrival to its answer's last byte, by method and route template.",
    ["method", "route"],
    buckets=DURATION_BUCKETS,
    registry=REGISTRY,
)
CHANGES_PUSHED = Counter(
    "fieldsync_changes_pushed",
    "Changes pushed by tablets, by the status they were answered "
    "(applied, merged, conflict, rejected, deferred); replayed ones included.",
    ["status"],
    registry=REGISTRY,
)
CHANGES_REPLAYED = Counter(
    "fieldsync_changes_replayed",
    "Changes pushed again (a batch retried) and answered as the first time.",
    registry=REGISTRY,
)
PULL_PAGES = Counter("fieldsync_pull_pages", "Pull pages served.", registry=REGISTRY)
PULL_RECORDS = Counter(
    "fieldsync_pull_records", "Records handed out in pull pages.", registry=REGISTRY
)
UPLOAD_BYTES = Counter(
    "fieldsync_upload_bytes",
    "Bytes of attachment uploads (tus PATCH) taken.",
    registry=REGISTRY,
)

# From a brief write (a millisecond) to a batch of 1,000 changes queued behind others.
WRITE_TURN_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
WRITE_TURN_WAITED = Histogram(
    "fieldsync_sqlite_write_wait_seconds",
    "Time a writer waited for its turn at SQLite's one write lock.",
    buckets=WRITE_TURN_BUCKETS,
    registry=REGISTRY,
)
WRITE_TURN_HELD = Histogram(
    "fieldsync_sqlite_write_held_seconds",
    "Time a writer held its turn at SQLite's write lock, until its commit began.",
    buckets=WRITE_TURN_BUCKETS,
    registry=REGISTRY,
)
WRITE_TURN_CPU = Counter(
    "fieldsync_sqlite_write_held_cpu_seconds",
    "CPU time the writers' threads spent while holding their turns (Python and SQLite).",
    registry=REGISTRY,
)


PUSH_CPU = Counter(
    "fieldsync_push_cpu_seconds",
    "CPU time pushes spent, by phase, each timed by its thread's own clock "
    "(sync.engine.spent: parse, reads, decisions, writes, publish, commit).",
    ["phase"],
    registry=REGISTRY,
)
for _phase in PHASES:  # every phase shown from the start, at zero
    PUSH_CPU.labels(phase=_phase)


def record_write_turn(turn: writers.Turn) -> None:
    """Count one SQLite write turn, once given back."""
    WRITE_TURN_WAITED.observe(turn.waited_s)
    WRITE_TURN_HELD.observe(turn.held_s)
    if turn.cpu_s is not None:
        WRITE_TURN_CPU.inc(turn.cpu_s)


writers.on_turn = record_write_turn


def record_push(response: PushResponse, spent: Spent) -> None:
    """Count a push's answers (each change under its status, and the replayed ones) and
    the CPU it spent in each phase."""
    for status, changes in Tally(result.status.value for result in response.results).items():
        CHANGES_PUSHED.labels(status=status).inc(changes)
    replayed = sum(1 for result in response.results if result.replayed)
    if replayed:
        CHANGES_REPLAYED.inc(replayed)
    for phase, seconds in spent.seconds.items():
        PUSH_CPU.labels(phase=phase).inc(seconds)


def record_pull(changes: int) -> None:
    """Count a pull page and the records it held."""
    PULL_PAGES.inc()
    PULL_RECORDS.inc(changes)


def record_upload(nbytes: int) -> None:
    """Count the bytes of an upload's chunk that was taken."""
    UPLOAD_BYTES.inc(nbytes)


class RequestMetrics(HTTPMiddleware):
    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        # What the error middleware answers when the app raises before answering.
        status = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            method = scope["method"] if scope["method"] in METHODS else "other"
            route = route_template(scope)
            REQUESTS.labels(method=method, route=route, status=str(status)).inc()
            DURATION.labels(method=method, route=route).observe(time.perf_counter() - started)


def install(app: FastAPI) -> None:
    """``RequestMetrics`` around the whole app, errors included (as ``api.headers``)."""
    wrap_outermost(app, RequestMetrics)


class DatabaseGauges:
    """The fleet's backlog, counted in one short read transaction per scrape."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        try:
            with transaction(self.engine, write=False) as session:
                backlog = count_backlog(session)
        except DBAPIError as error:
            if not unavailable(error):
                raise
            # The requests' figures are still worth a scrape: the 503s are in them.
            log.warning("the database does not answer; /metrics leaves out its gauges")
            return
        yield GaugeMetricFamily(
            "fieldsync_deferred_changes",
            "Changes waiting for a record they refer to.",
            value=backlog.deferred_changes,
        )
        yield GaugeMetricFamily(
            "fieldsync_open_conflicts",
            "Conflicts waiting for a person to resolve them.",
            value=backlog.open_conflicts,
        )
        yield GaugeMetricFamily(
            "fieldsync_attachments_owed",
            "Files named by a pushed change that the server does not hold yet, per device.",
            value=backlog.attachments_owed,
        )


class _Scrape:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        if MULTIPROCESS:
            # prometheus_client's multiprocess module has no type hints.
            every_worker = MultiProcessCollector(None)  # type: ignore[no-untyped-call]
            yield from every_worker.collect()  # type: ignore[no-untyped-call]
        else:
            yield from REGISTRY.collect()
        yield from DatabaseGauges(self.engine).collect()


def exposition(engine: Engine) -> bytes:
    """Every metric in Prometheus's text format: this process's, or every worker's."""
    return generate_latest(_Scrape(engine))
