"""Where the server's CPU went in the timed push, phase by phase, from its own metrics.

The server counts the CPU each push spends in each phase, timed by the working
thread's own clock (``sync.engine.spent``, ``fieldsync_push_cpu_seconds_total``),
summed over its processes. Read before and after the timed push and divided by the
changes pushed, it says how many of the server's microseconds a change (read from
``/proc``) went to parsing, reads, decisions, writes, publishing and the commit; what
is left ("the rest") is the request around them: HTTP, gunzip, the answer, the event
loop, and the collector.
"""

from __future__ import annotations

from typing import Any

from bench import turns
from sync.engine.spent import PHASES

NAME = "fieldsync_push_cpu_seconds_total"

Reading = dict[str, float]


def read(base_url: str) -> Reading:
    """Each phase's CPU seconds, summed over the server's processes."""
    found = dict.fromkeys(PHASES, 0.0)
    for sample in turns.samples(base_url):
        if sample.name == NAME and sample.labels.get("phase") in found:
            found[sample.labels["phase"]] += sample.value
    return found


def summary(
    before: Reading, after: Reading, *, changes: int, server_us: float | None
) -> dict[str, float | None]:
    """µs a change of each phase, and ``rest``: the server's CPU a change (``server_us``,
    from ``/proc``) less the phases."""
    if not changes:
        return {}
    spent = {phase: round(1e6 * (after[phase] - before[phase]) / changes, 1) for phase in PHASES}
    rest = None if server_us is None else round(server_us - sum(spent.values()), 1)
    return {**spent, "rest": rest}


def line(summary: dict[str, Any]) -> str:
    if not summary:
        return "the server's CPU by phase: no changes pushed"
    parts = [
        f"{phase} {'-' if summary[phase] is None else f'{summary[phase]:.0f}'}"
        for phase in (*PHASES, "rest")
    ]
    return "the server's CPU a change by phase, µs: " + ", ".join(parts)
