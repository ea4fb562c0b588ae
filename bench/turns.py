"""How long SQLite's one writer is held a push, read from the server's own metrics.

SQLite lets one transaction write at a time, and the server's writers take that lock in
turn (``sync.platform.writers``). Every turn given back is counted in ``/metrics``: the
time it was waited for, the time it was held (until its commit began) and the CPU the
holding thread spent meanwhile (``api.metrics``), summed over all the server's
processes. Read before and after the timed push, the difference says how much of the
push's time the lock was held, and how much of a turn is the holder's own work (Python
and SQLite's) rather than waiting: with the lock held nearly all the time, the work done
under it is what bounds the rate, and more processes or cores would not raise it.

The server is given a metrics token for the run (``SERVER_ENV``), with which ``samples``
reads its metrics (``bench.spent`` too); PostgreSQL takes no turns, and its
``summary`` says so.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

TOKEN = secrets.token_urlsafe(24)
SERVER_ENV = {"FIELDSYNC_METRICS_TOKEN": TOKEN}
NAMES = {
    "turns": "fieldsync_sqlite_write_held_seconds_count",
    "held_s": "fieldsync_sqlite_write_held_seconds_sum",
    "waited_s": "fieldsync_sqlite_write_wait_seconds_sum",
    "cpu_s": "fieldsync_sqlite_write_held_cpu_seconds_total",
}


@dataclass(frozen=True)
class Reading:
    """The turns' figures summed over the server's processes at one moment."""

    turns: float
    held_s: float
    waited_s: float
    cpu_s: float


def samples(base_url: str) -> Iterator[Sample]:
    """Every sample of the server's ``/metrics``, read with the run's token."""
    answer = httpx.get(
        f"{base_url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    )
    answer.raise_for_status()
    for family in text_string_to_metric_families(answer.text):
        yield from family.samples


def read(base_url: str) -> Reading:
    found = dict.fromkeys(NAMES.values(), 0.0)
    for sample in samples(base_url):
        if sample.name in found:
            found[sample.name] += sample.value
    return Reading(**{key: found[name] for key, name in NAMES.items()})


def summary(before: Reading, after: Reading, *, seconds: float, pushes: int) -> dict[str, Any]:
    """The turns taken between two readings, over a timed push of ``pushes`` batches
    that lasted ``seconds``."""
    turns = round(after.turns - before.turns)
    if turns <= 0:
        return {"turns": 0, "problem": "no write turns: the database is not SQLite"}
    held = after.held_s - before.held_s
    cpu = after.cpu_s - before.cpu_s
    return {
        "turns": turns,
        "pushes": pushes,
        "held_s": round(held, 3),
        "held_ms_per_push": round(1000 * held / pushes, 1) if pushes else None,
        "held_share_of_push": round(held / seconds, 3) if seconds else None,
        "cpu_share_of_held": round(cpu / held, 3) if held else None,
        "cpu_ms_per_push": round(1000 * cpu / pushes, 1) if pushes else None,
        "waited_ms_per_turn": round(1000 * (after.waited_s - before.waited_s) / turns, 1),
    }


def line(summary: dict[str, Any]) -> str:
    if not summary.get("turns"):
        return f"SQLite's write lock: {summary.get('problem')}"
    return (
        f"SQLite's write lock held {summary['held_ms_per_push']} ms a push "
        f"({summary['cpu_ms_per_push']} ms of it the holder's CPU), "
        f"{summary['held_share_of_push']:.0%} of the push's time; "
        f"a turn waited {summary['waited_ms_per_turn']} ms ({summary['turns']} turns)"
    )
