"""The attachments run: tablets uploading photos at once, against the floor of the same
bytes sent to a server that only keeps them, and the server's memory as files grow.

On a deployment of its own (``bench.run``), with ``--devices`` tablets, for each of
``--attachment-sizes`` in turn (``--attachment-photos`` each tablet at that size):

1. each tablet gets its photos, distinct, made and hashed before any clock starts;
2. **floor**: all tablets send them at once, in ``--attachment-chunk`` chunks, as plain
   ``PUT`` bodies to the sink (``bench.sink``: streamed to a file, fsynced, nothing else);
3. **fieldsync**: the same bytes, the same chunks, the same tablets at once, over tus
   (``bench.uploads``), every server process's high-water mark reset just before;
4. every photo is asked for by its tablet (``HEAD /attachments/{sha256}``): all must be
   held, whole, or the run fails.

Both ways, the CPU time the server's processes (or the sink's) spent is read from
/proc: a figure that other work on the machine disturbs less than the wall time.

One untimed photo per tablet, both ways, warms the server and the sink up first. The
disks' pending writes are flushed (``os.sync``) before each timed part, so that one
part does not pay for the other's writes. A server that streams holds about as much
at the largest size as at the smallest: if its largest process peaks higher by at
least half a file (and 8 MB), the run says so as a finding.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.memory import tree
from bench.report import say
from bench.server import Server
from bench.sink import start_sink

if TYPE_CHECKING:
    from bench.run import Config, Deployment

KIB = 1024
MB = 1024 * 1024
SERVER_MAX_BYTES = 25 * MB  # the server's default FIELDSYNC_MAX_ATTACHMENT_BYTES
TICKS = os.sysconf("SC_CLK_TCK")
FINDING_MIN_MB = 8.0  # growth below this is the allocator's noise, not a file held


def parse_size(text: str) -> int:
    """``256K``, ``2M``, ``20M`` or plain bytes; K and M are 1024 and 1024²."""
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    scale = {"K": KIB, "M": MB}.get(text[-1:], 1)
    number = text[:-1] if scale != 1 else text
    return round(float(number) * scale)


def size_name(size: int) -> str:
    if size % MB == 0:
        return f"{size // MB} MiB"
    if size % KIB == 0:
        return f"{size // KIB} KiB"
    return f"{size} B"


def server_env(config: Config) -> dict[str, str]:
    """What the server needs for the largest photo (and chunk): a large enough cap."""
    largest = max([SERVER_MAX_BYTES, config.attachment_chunk, *config.attachment_sizes])
    return {"FIELDSYNC_MAX_ATTACHMENT_BYTES": str(largest)}


def phase(made: Deployment, config: Config, figures: dict[str, Any]) -> dict[str, Any]:
    chunk = config.attachment_chunk
    tablets = len(made.fleet.tablets)
    sink = start_sink(made.folder / "sink", workers=config.workers)
    runs: list[dict[str, Any]] = []
    try:
        say(f"  [attachments] sink pid {sink.pid} on port {sink.port}; warming up")
        made.load.call(
            "photos", size=config.attachment_sizes[0], count=1, seed=f"{config.seed}:warm-up"
        )
        with made.memory.during("attachments warm-up"):
            warm = made.load.call("upload", chunk=chunk, label="warm-up")
        _failed(figures, warm)
        _failed(
            figures,
            made.load.call("upload", chunk=chunk, label="warm-up floor", sink=sink.base_url),
        )
        for size, count in zip(config.attachment_sizes, config.attachment_photos, strict=True):
            runs.append(_run(made, config, figures, sink, size, count, tablets))
    finally:
        sink.stop()
    result: dict[str, Any] = {"tablets": tablets, "chunk_bytes": chunk, "runs": runs}
    result.update(_memory_finding(figures, runs))
    return result


def _run(
    made: Deployment,
    config: Config,
    figures: dict[str, Any],
    sink_server: Server,
    size: int,
    count: int,
    tablets: int,
) -> dict[str, Any]:
    name = size_name(size)
    chunk = config.attachment_chunk
    sink, sink_pid = sink_server.base_url, sink_server.pid
    say(
        f"  attachments: {tablets} tablets x {count} photos of {name} at once, "
        f"chunks of {size_name(chunk)}"
    )
    made.load.call("photos", size=size, count=count, seed=f"{config.seed}:photos:{size}")
    os.sync()
    with _cpu(sink_pid) as used:
        floor = made.load.call("upload", chunk=chunk, label=f"floor {name}", sink=sink)
    _failed(figures, _with_cpu(floor, used))
    os.sync()
    with (
        made.memory.during(f"attachments {name}"),
        made.memory.window() as window,
        made.memory.high_water() as mark,
        _cpu(made.server.pid) as used,
    ):
        report = made.load.call("upload", chunk=chunk, label=f"fieldsync {name}")
    _failed(figures, _with_cpu(report, used))
    held = made.load.call("held")
    memory = {**mark.report(), "sampled": window.report()}
    share = (
        round(report["mb_per_s"] / floor["mb_per_s"], 3)
        if report["mb_per_s"] and floor["mb_per_s"]
        else None
    )
    if held["missing"]:
        problem = (
            f"attachments, {name}: {held['missing']} of {report['photos']} photos are not "
            f"held after their upload: {held['examples'][:2]}"
        )
        figures["errors"] += 1
        figures["warnings"].append(problem)
        say(f"  !! {problem}")
    say(
        f"    fieldsync {_rate(report)}, floor {_rate(floor)}: "
        f"{'-' if share is None else f'{share:.0%}'} of the floor"
    )
    say(
        f"    per chunk p50 / p95: fieldsync {_ms(report)} (a photo's last: "
        f"{_ms(report, 'last_chunk_ms')}), floor {_ms(floor)}; "
        f"{held['held']} of {report['photos']} held"
    )
    say(
        f"    server CPU: fieldsync {report['cpu_ms_per_mib']} ms a MiB, "
        f"the sink {floor['cpu_ms_per_mib']} ms"
    )
    say(
        f"    server peak RSS: largest process {memory['largest_process_peak_mb']} MB "
        f"(+{memory['largest_process_growth_mb']} MB), all processes {memory['tree_peak_mb']} MB"
    )
    return {
        "photo_bytes": size,
        "photos_per_tablet": count,
        "fieldsync": report,
        "floor": floor,
        "floor_share": share,
        "held": held,
        "memory": memory,
    }


@contextmanager
def _cpu(root: int) -> Iterator[list[float]]:
    """The CPU seconds (user and system) a server's processes spend in the block."""
    used: list[float] = []
    before = _cpu_seconds(root)
    yield used
    used.append(_cpu_seconds(root) - before)


def _cpu_seconds(root: int) -> float:
    total = 0
    for pid in tree(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        total += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15
    return total / TICKS


def _with_cpu(report: dict[str, Any], used: list[float]) -> dict[str, Any]:
    report["server_cpu_s"] = round(used[0], 2)
    mib = report["bytes"] / MB
    report["cpu_ms_per_mib"] = round(used[0] * 1000 / mib, 1) if mib else None
    return report


def _failed(figures: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
    """A request that failed makes the run fail, and says so."""
    if report["failed"]:
        problem = f"attachments, {report['label']}: {report['failed']} photos failed: " + (
            "; ".join(report["failures"][:2])
        )
        figures["errors"] += 1
        figures["warnings"].append(problem)
        say(f"  !! {problem}")
    return report


def _rate(report: dict[str, Any]) -> str:
    tablets = " / ".join(f"{rate or 0:.1f}" for rate in report["per_tablet_mb_per_s"])
    return f"{report['mb_per_s'] or 0:.1f} MB/s ({tablets} a tablet)"


def _ms(report: dict[str, Any], key: str = "chunk_ms") -> str:
    return f"{report[key]['p50']} / {report[key]['p95']} ms"


def _memory_finding(figures: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The server's peaks at the largest photos against the smallest: their ratio, and
    a finding if it grew with the file."""
    if len(runs) < 2:
        return {"memory_ratio": None, "memory_grows_with_file_size": None}
    small, large = runs[0], runs[-1]
    first, last = small["memory"], large["memory"]
    ratio = {
        key: round(last[key] / first[key], 3) if first[key] else None
        for key in ("largest_process_peak_mb", "tree_peak_mb")
    }
    extra = last["largest_process_peak_mb"] - first["largest_process_peak_mb"]
    limit = max(FINDING_MIN_MB, large["photo_bytes"] / MB / 2)
    grows = extra >= limit
    say(
        f"  attachments: the largest server process peaked at {last['largest_process_peak_mb']} "
        f"MB with {size_name(large['photo_bytes'])} photos, "
        f"{first['largest_process_peak_mb']} MB with {size_name(small['photo_bytes'])}: "
        f"x{ratio['largest_process_peak_mb']}"
    )
    if grows:
        problem = (
            f"finding: the server's memory grows with the file size: its largest process "
            f"peaked {extra:.1f} MB higher with {size_name(large['photo_bytes'])} photos than "
            f"with {size_name(small['photo_bytes'])} (x{ratio['largest_process_peak_mb']})"
        )
        figures["warnings"].append(problem)
        say(f"  !! {problem}")
    return {"memory_ratio": ratio, "memory_grows_with_file_size": grows}
