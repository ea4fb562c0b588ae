"""What a run prints: progress lines while it runs, then one table; and the JSON file.

The table puts the backends side by side with the targets (``TARGETS``), and says plainly
where a figure misses one; the JSON holds every figure, the machine it was made on
and the command's options, for the record in docs/performance.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from sync.engine.spent import PHASES

TARGETS = {
    "push_records_per_s": 10_000,
    "push_p95_ms": 400,
    "push_vs_peer": 1.0,  # our push rate over express-pouchdb's, same changes, same run
    "server_cpu_us_per_change": 60,
    "floor_share": 0.40,
    "initial_pull_records_per_s": 25_000,
    "peak_rss_mb": 250,
    "one_batch_growth_mb": 50,
    "scale_ratio": 0.80,
    "review_p95_ms": 200,
    "console_p95_ms": 300,
}


def say(message: str) -> None:
    """A progress line, at once (a run of minutes must not be silent)."""
    print(message, flush=True)  # noqa: T201 (the command's output)


def write_json(results: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str) + "\n")


def _number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _tenths(value: float | None) -> str:
    return _number(value, 1)


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def spread_text(value: list[int] | None) -> str:
    """Connections by server process (``bench.connections.watch``): ``2+2``."""
    return "+".join(map(str, value)) if value else "-"


def table(results: dict[str, Any]) -> str:
    """The run as a table: one column per backend, then the scale runs."""
    backends: dict[str, Any] = results["backends"]
    names = list(backends)
    config = results["config"]
    machine = results["machine"]
    lines = [
        "",
        f"fieldsync bench: {config['workers']} server workers, {config['devices']} devices, "
        f"batches of {config['batch']}  (git {machine['git_revision']}, "
        f"{machine['cores']} cores, Python {machine['python']})",
        "",
    ]
    width = 34

    def row(label: str, cells: list[str], target: str = "") -> None:
        lines.append(
            label.ljust(width) + "".join(cell.rjust(16) for cell in cells) + f"    {target}"
        )

    synced = any("push" in figures or "pull" in figures for figures in backends.values())
    if synced:
        sync_rows(backends, lines, row)
    else:
        lines.pop()  # the blank line under the heading stays single
    lines.append("")
    lines += workers_table(backends)
    lines += scale_tables(results)
    lines += review_table(backends)
    lines += attachments_table(backends)
    lines += console_table(backends)
    for name in names:
        for warning in backends[name].get("warnings", []):
            lines.append(f"!! {name}: {warning}")
    return "\n".join(lines)


def sync_rows(backends: dict[str, Any], lines: list[str], row: Any) -> None:
    """Push, floor, pull and memory: one row a figure, one column a backend."""
    names = list(backends)
    row("", names, "target")

    def each(path: str, render: Any) -> list[str]:
        cells = []
        for name in names:
            value: Any = backends[name]
            for key in path.split("."):
                value = value.get(key) if isinstance(value, dict) else None
            cells.append(render(value))
        return cells

    row("push, records/s", each("push.records_per_s", _number), "≥ 10,000")
    row("push batch p50, ms", each("push.latency_ms.p50", _number))
    row("push batch p95, ms", each("push.latency_ms.p95", _number), "≤ 400")
    row("push batch p99, ms", each("push.latency_ms.p99", _number))
    row("  connections by process", each("push.connections_by_process", spread_text))
    row("floor (plain INSERT), rows/s", each("floor.rows_per_s", _number))
    row("push / floor", each("push.floor_share", _share), "≥ 40%")
    peer_rows(each, row)
    row("initial pull, records/s", each("pull.records_per_s", _number), "≥ 25,000 (of 100k)")
    row("  records pulled", each("pull.records", _number))
    row("server peak RSS (tree), MB", each("memory.peak_tree_mb", _number), "≤ 250")
    row(
        "1,000-change batch adds, MB",
        each("one_batch.memory.largest_process_growth_mb", lambda v: _number(v, 1)),
        "≤ 50",
    )
    for status in ("applied", "merged", "conflict", "deferred", "rejected"):
        row(f"  {status}", each(f"push.statuses.{status}", _number))


def peer_rows(each: Any, row: Any) -> None:
    """The peer (express-pouchdb's ``_bulk_docs`` of the same changes) beside our push,
    and what each side's processes spent on a change."""
    row(
        "server CPU a pushed change, µs",
        each("push.cpu.server_us_per_change", _number),
        f"≤ {TARGETS['server_cpu_us_per_change']}",
    )
    for phase in (*PHASES, "rest"):
        row(f"  {phase}, µs", each(f"push.cpu_by_phase.{phase}", _number))
    row("  PostgreSQL's CPU a change, µs", each("push.cpu.postgres_us_per_change", _number))
    row("  SQLite's lock held a push, ms", each("push.write_turns.held_ms_per_push", _number))
    row("    the holder's CPU in it, ms", each("push.write_turns.cpu_ms_per_push", _number))
    row("    share of the push's time", each("push.write_turns.held_share_of_push", _share))
    row("peer (express-pouchdb), records/s", each("peer.records_per_s", _number))
    row("peer batch p50, ms", each("peer.latency_ms.p50", _number))
    row("peer batch p95, ms", each("peer.latency_ms.p95", _number))
    row("peer CPU a record, µs", each("peer.cpu.server_us_per_record", _number))
    row(
        "push / peer",
        each("push.vs_peer", lambda v: "-" if v is None else f"{v:.2f}"),
        f"≥ {TARGETS['push_vs_peer']:.1f}",
    )
    row(
        "load process CPU a record, µs",
        [
            f"{push} / {peer}"
            for push, peer in zip(
                each("push.cpu.client_us_per_change", _number),
                each("peer.cpu.client_us_per_record", _number),
                strict=True,
            )
        ],
        "push / peer",
    )


WORKERS_COLUMNS = (
    ("workers", 8),
    ("records/s", 11),
    ("vs first", 10),
    ("p50 ms", 8),
    ("p95 ms", 8),
    ("server µs", 11),
    ("PG µs", 8),
    ("clock ms", 10),
    ("held", 7),
    ("waiting", 9),
    ("connections", 13),
)


def workers_table(backends: dict[str, Any]) -> list[str]:
    """The workers phase: one row per ``--workers N``, its push rate and the rate as a
    share of the first row's, batch latency, CPU a change of the server and of
    PostgreSQL, the sync clock: held a push (ms), share of the push's time it was
    held, writers waiting for it meanwhile; and the tablets' connections by process."""
    lines: list[str] = []
    for name, figures in backends.items():
        phase = figures.get("workers")
        if not phase:
            continue
        if phase.get("skipped"):
            lines += [f"{name}: no workers run: {phase['skipped']}", ""]
            continue
        lines.append(
            f"{name}: fieldsync serve --workers N, a fresh database each, {phase['devices']} "
            f"devices x {phase['batches_per_device']} batches of {phase['batch']}; CPU a change "
            "(µs), the sync clock held a push (ms), its share of the time, writers waiting, "
            "connections by process"
        )
        lines.append("  " + "".join(label.rjust(width) for label, width in WORKERS_COLUMNS))
        for run in phase["runs"]:
            push = run["push"]
            cpu = push.get("cpu") or {}
            held = push.get("clock") or {}
            cells = [
                str(run["workers"]),
                _number(push["records_per_s"]),
                "-" if run.get("vs_first") is None else f"x{run['vs_first']:.2f}",
                _number(push["latency_ms"]["p50"]),
                _number(push["latency_ms"]["p95"]),
                _number(cpu.get("server_us_per_change")),
                _number(cpu.get("postgres_us_per_change")),
                _tenths(held.get("held_ms_per_push")),
                _share(held.get("held_share_of_push")),
                _tenths(held.get("waiting_while_held_mean")),
                spread_text(push.get("connections_by_process")),
            ]
            lines.append(
                "  "
                + "".join(
                    cell.rjust(width)
                    for cell, (_, width) in zip(cells, WORKERS_COLUMNS, strict=True)
                )
            )
        lines.append("")
    return lines


def scale_tables(results: dict[str, Any]) -> list[str]:
    """Each backend's scale runs: rates as records held grow."""
    lines: list[str] = []
    for name, figures in results["backends"].items():
        scales = figures.get("scales") or []
        if not scales:
            continue
        lines.append(
            f"{name}: cost as records held grow (rate, and as a share of the first scale's)"
        )
        lines.append(
            "  held".ljust(14)
            + "push r/s".rjust(18)
            + f"pull first {results['config']['scale_pull']:,}".rjust(24)
            + "full pull r/s".rjust(16)
            + "incremental r/s".rjust(22)
            + "health ms".rjust(18)
        )
        for scale in scales:
            push = f"{_number(scale['push']['records_per_s'])} ({_share(scale['push_vs_first'])})"
            pull = (
                f"{_number(scale['first_pull']['records_per_s'])} "
                f"({_share(scale['pull_vs_first'])})"
            )
            incremental = scale["incremental_pull"]
            lines.append(
                f"  {scale['records_held']:,}".ljust(14)
                + push.rjust(18)
                + pull.rjust(24)
                + _number((scale.get("full_pull") or {}).get("records_per_s")).rjust(16)
                + f"{_number(incremental['records_per_s'])} ({incremental['records']:,})".rjust(22)
                + _health(scale).rjust(18)
            )
        lines.append("")
    return lines


def _health(scale: dict[str, Any]) -> str:
    """The fleet health page's p50, and its time as a share of the first scale's."""
    health = scale.get("fleet_health")
    if not health:
        return "-"
    return f"{health['latency_ms']['p50']:,.1f} ({_share(scale.get('health_vs_first'))})"


def review_table(backends: dict[str, Any]) -> list[str]:
    """The review run: each endpoint's p50 / p95 / p99 on each backend, and the count."""
    reviews = {name: figures["review"] for name, figures in backends.items() if "review" in figures}
    if not reviews:
        return []
    names = list(reviews)
    first = reviews[names[0]]
    lines = [
        f"review: {first['patrols']:,} patrols, {first['track_points']:,} track points held; "
        "latency p50 / p95 / p99, ms (requests)",
        "".ljust(36) + "".join(name.rjust(24) for name in names) + "    target",
    ]
    for endpoint, report in first["endpoints"].items():
        cells = []
        for name in names:
            mine = reviews[name]["endpoints"].get(endpoint)
            if mine is None:
                cells.append("-")
                continue
            latency = mine["latency_ms"]
            cells.append(
                " / ".join(_number(latency[p]) for p in ("p50", "p95", "p99"))
                + f" ({mine['count']})"
            )
        lines.append(
            f"  {report['label']}".ljust(36)
            + "".join(cell.rjust(24) for cell in cells)
            + f"    p95 ≤ {TARGETS['review_p95_ms']}"
        )
    lines.append("")
    return lines


def attachments_table(backends: dict[str, Any]) -> list[str]:
    """The attachments run: at each photo size, fieldsync's rate against the floor's,
    per chunk latency and the server's peak memory; then the peaks' ratio."""
    runs = {
        name: figures["attachments"]
        for name, figures in backends.items()
        if "attachments" in figures
    }
    if not runs:
        return []
    names = list(runs)
    first = runs[names[0]]
    lines = [
        f"attachments: {first['tablets']} tablets at once, chunks of "
        f"{first['chunk_bytes'] // 1024} KiB; MB/s of 2^20 bytes, fieldsync over tus against "
        "plain PUTs to a sink",
        "".ljust(40) + "".join(name.rjust(26) for name in names),
    ]

    def row(label: str, paths: list[str], render: Any, sep: str = " / ") -> None:
        cells = []
        for name in names:
            values = [_path(runs[name], path) for path in paths]
            cells.append(sep.join(render(value) for value in values))
        lines.append(f"  {label}".ljust(40) + "".join(cell.rjust(26) for cell in cells))

    for index, run in enumerate(first["runs"]):
        size = run["photo_bytes"]
        label = f"{size / 1024 / 1024:g} MiB" if size >= 1024 * 1024 else f"{size // 1024} KiB"
        lines.append(f"  {label} photos, {run['photos_per_tablet'] * first['tablets']} in all")
        at = f"runs.{index}"
        row("  fieldsync, MB/s", [f"{at}.fieldsync.mb_per_s"], _tenths)
        tablets = range(first["tablets"])
        row(
            "    a tablet, MB/s",
            [f"{at}.fieldsync.per_tablet_mb_per_s.{t}" for t in tablets],
            _tenths,
        )
        row("  floor (plain PUT), MB/s", [f"{at}.floor.mb_per_s"], _tenths)
        row("  fieldsync / floor", [f"{at}.floor_share"], _share)
        row(
            "  chunk p50 / p95, ms",
            [f"{at}.fieldsync.chunk_ms.{p}" for p in ("p50", "p95")],
            _number,
        )
        row(
            "  a photo's last chunk p50 / p95, ms",
            [f"{at}.fieldsync.last_chunk_ms.{p}" for p in ("p50", "p95")],
            _number,
        )
        row(
            "  floor chunk p50 / p95, ms",
            [f"{at}.floor.chunk_ms.{p}" for p in ("p50", "p95")],
            _number,
        )
        row(
            "  server CPU ms a MiB, fieldsync / sink",
            [f"{at}.{way}.cpu_ms_per_mib" for way in ("fieldsync", "floor")],
            _number,
        )
        row(
            "  server peak RSS, largest / all, MB",
            [f"{at}.memory.{k}" for k in ("largest_process_peak_mb", "tree_peak_mb")],
            _number,
        )
        row("  held afterwards / missing", [f"{at}.held.held", f"{at}.held.missing"], _number)
    row(
        "peak RSS, largest size / smallest",
        ["memory_ratio.largest_process_peak_mb"],
        lambda v: "-" if v is None else f"x{v:.2f}",
    )
    row(
        "memory grows with the file size",
        ["memory_grows_with_file_size"],
        lambda v: {True: "YES", False: "no"}.get(v, "-"),
    )
    lines.append("")
    return lines


def console_table(backends: dict[str, Any]) -> list[str]:
    """The console run: each page's p50 / p95 / max and its first read on each backend,
    its size, and whether its p95 is within the target everywhere."""
    runs = {
        name: figures["console"]
        for name, figures in backends.items()
        if (figures.get("console") or {}).get("pages")
    }
    if not runs:
        return []
    names = list(runs)
    first = runs[names[0]]
    target = TARGETS["console_p95_ms"]
    lines = [
        f"console: the demo programme at scale {first['scale']:g}, pages read by a browser "
        f"signed in; p50 / p95 / max, ms ({first['requests']} reads), and the first read",
        "".ljust(34)
        + "".join(name.rjust(22) + "first".rjust(8) for name in names)
        + "kB".rjust(7)
        + "    target",
    ]
    for page, report in first["pages"].items():
        cells, missed = [], []
        for name in names:
            mine = runs[name]["pages"].get(page) or {}
            latency = mine.get("latency_ms") or {}
            cells.append(" / ".join(_number(latency.get(p)) for p in ("p50", "p95", "max")))
            cells.append(_number(mine.get("first_ms")) + ("*" if mine.get("caches") else ""))
            if not mine.get("p95_within_target"):
                missed.append(name)
        size = report.get("mean_bytes")
        verdict = "yes" if not missed else "NO: " + ", ".join(missed)
        lines.append(
            f"  {report['label']}".ljust(34)
            + "".join(cell.rjust(22 if index % 2 == 0 else 8) for index, cell in enumerate(cells))
            + ("-" if size is None else f"{size / 1000:.0f}").rjust(7)
            + f"    p95 ≤ {target}: {verdict}"
        )
    lines.append("  * kept by a server process until the sync clock moves: the first read makes it")
    lines.append("")
    return lines


def _path(value: Any, path: str) -> Any:
    """``a.b.0.c`` in nested dicts and lists; None where it is missing."""
    for key in path.split("."):
        if isinstance(value, dict):
            value = value.get(key)
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return None
    return value


def stdout_table(results: dict[str, Any]) -> None:
    sys.stdout.write(table(results) + "\n")
    sys.stdout.flush()
