"""The CPU a push spends, phase by phase.

Each phase is timed by its own thread's CPU clock (``time.thread_time``): what other
threads and processes do meanwhile is not counted, nor any wait (for the database, for
SQLite's writer, for the GIL). The server counts the phases in ``/metrics``
(``fieldsync_push_cpu_seconds_total``, by phase, ``api.metrics``), and the benchmark
prints them a change, so that every run says where the server's CPU went
(docs/performance.md).

- ``parse``: the body read as JSON, its track points, the batch validated and each
  change prepared (``sync.engine.prepare``), before the transaction;
- ``reads``: what the batch reads up front (kept changes, owed files, its records);
- ``decisions``: each change decided in memory, and its answer;
- ``writes``: the records, kept changes and conflicts written, and the device's row;
- ``publish``: the versions (with their audit chain hashes), the pull entries and the
  clock (``sync.engine.changelog``), and the check of crossed deferrals;
- ``commit``: the transaction's commit, the chain's seal with it.
"""

from __future__ import annotations

import time

PHASES = ("parse", "reads", "decisions", "writes", "publish", "commit")


class Spent:
    """A push's CPU seconds by phase, timed as laps of its thread's clock: ``start``,
    then ``lap(phase)`` at the end of each phase counts the time since the last one."""

    __slots__ = ("_at", "seconds")

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self._at = time.thread_time()

    def start(self) -> None:
        self._at = time.thread_time()

    def lap(self, phase: str) -> None:
        now = time.thread_time()
        self.seconds[phase] += now - self._at
        self._at = now
