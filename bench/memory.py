"""The server's resident memory, sampled from /proc while the benchmark runs.

``fieldsync serve --workers N`` is a supervisor and N worker processes; what the
machine pays is their sum. A thread reads ``/proc/PID/statm`` of every process in
the server's tree every ``INTERVAL`` seconds (the tree itself is re-read once a
second: workers do not come and go often) and keeps the peaks: of the sum, of each
process, and of each named phase of the run. A *window* measures what one request
adds: each process's peak during it against its size just before.

A *high-water mark* is the kernel's own peak instead (``VmHWM``, reset through
``/proc/PID/clear_refs``): exact, where a sample every 50 ms can miss a buffer that
lives for a few milliseconds.

*CPU* is read from ``/proc/PID/stat`` (user and system time) before and after a block
(``cpu_used``): of the server's tree, of the PostgreSQL processes serving the bench's
database (``postgres_processes``), or of the peer (``bench.peer``). A process that
starts in the block counts whole; one that ends in it is lost (its time can no longer
be read), so a figure is at most that much short.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

INTERVAL = 0.05
TREE_EVERY = 1.0
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")
MB = 1024 * 1024


def children(pid: int) -> list[int]:
    """The direct children of ``pid``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid …; comm may hold spaces, so split after the last ')'
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def tree(root: int) -> list[int]:
    """``root`` and all its descendants."""
    pids, queue = [], [root]
    while queue:
        pid = queue.pop()
        pids.append(pid)
        queue.extend(children(pid))
    return pids


def resident(pid: int) -> int | None:
    """Resident bytes of ``pid``; ``None`` once it is gone."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return None


def high_water(pid: int) -> int | None:
    """The most resident bytes ``pid`` has held since it started, or since its mark was
    last reset (``VmHWM``); ``None`` once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        return None
    return None


def reset_high_water(pid: int) -> bool:
    """Bring ``pid``'s high-water mark down to its size now (Linux 4.0 and later, on a
    process of the same user); whether it could."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def cpu_seconds(pid: int) -> float | None:
    """User and system CPU seconds ``pid`` has used; ``None`` once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime: fields 14, 15
    except (OSError, IndexError, ValueError):
        return None


def postgres_processes(database: str) -> tuple[list[int], list[int]]:
    """The PostgreSQL processes this machine shows: the backends serving ``database``
    (autovacuum on it included), and all the others (WAL writer, checkpointer,
    background writer, other databases' backends). Both empty where the server runs
    elsewhere (another host or container)."""
    backends: list[int] = []
    others: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
        except OSError:
            continue
        pid = int(entry.name)
        (backends if serves(command_line(pid), database) else others).append(pid)
    return backends, others


def serves(title: str, database: str) -> bool:
    """Whether a PostgreSQL process title (``postgres: 15/main: USER DB HOST(PORT)
    STATE``, ``postgres: autovacuum worker DB``) names ``database``."""
    words = title.split()
    return database in words[1:] and words[0].startswith("postgres")


@dataclass
class CpuUse:
    """The CPU seconds some processes used during a block (``cpu_used``)."""

    seconds: float = 0.0
    processes: int = 0

    def per(self, count: int) -> float | None:
        """Microseconds for each of ``count`` things done in the block."""
        return round(self.seconds * 1e6 / count, 1) if count and self.processes else None


@contextmanager
def cpu_used(processes: Callable[[], list[int]]) -> Iterator[CpuUse]:
    """The CPU the processes ``processes()`` names (asked before and after) use in the
    block; a process that started meanwhile counts whole."""
    before = {pid: used for pid in processes() if (used := cpu_seconds(pid)) is not None}
    made = CpuUse()
    yield made
    after = {pid: used for pid in processes() if (used := cpu_seconds(pid)) is not None}
    made.seconds = round(sum(used - before.get(pid, 0.0) for pid, used in after.items()), 3)
    made.processes = len(after)


def command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:120]


@dataclass
class Window:
    """What the server grew by during one request."""

    before: dict[int, int]
    peaks: dict[int, int] = field(default_factory=dict)
    tree_before: int = 0
    tree_peak: int = 0

    def report(self) -> dict[str, float]:
        growth = [self.peaks.get(pid, size) - size for pid, size in self.before.items()]
        return {
            "tree_before_mb": round(self.tree_before / MB, 1),
            "tree_peak_mb": round(self.tree_peak / MB, 1),
            "tree_growth_mb": round((self.tree_peak - self.tree_before) / MB, 1),
            "largest_process_growth_mb": round(max(growth, default=0) / MB, 1),
        }


@dataclass
class HighWater:
    """Each process's size when the mark was reset, and its high-water mark after."""

    before: dict[int, int]
    peaks: dict[int, int] = field(default_factory=dict)
    exact: bool = True  # every mark was reset; else a peak may be older than the block

    def report(self) -> dict[str, float | bool]:
        growth = [self.peaks.get(pid, size) - size for pid, size in self.before.items()]
        return {
            "exact": self.exact,
            "tree_before_mb": round(sum(self.before.values()) / MB, 1),
            "tree_peak_mb": round(sum(self.peaks.values()) / MB, 1),
            "largest_process_peak_mb": round(max(self.peaks.values(), default=0) / MB, 1),
            "largest_process_growth_mb": round(max(growth, default=0) / MB, 1),
        }


class MemorySampler:
    """Peaks of the resident memory of a process tree, overall and per phase."""

    def __init__(self, root: int, interval: float = INTERVAL) -> None:
        self.root = root
        self.interval = interval
        self.peak_tree = 0
        self.peak_by_pid: dict[int, int] = {}
        self.phase_peaks: dict[str, int] = {}
        self.phase = "between phases"
        self.samples = 0
        self._windows: list[Window] = []
        self._pids: list[int] = [root]
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)

    def start(self) -> MemorySampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    @contextmanager
    def during(self, phase: str) -> Iterator[None]:
        """Attribute the samples taken in the block to ``phase``."""
        previous, self.phase = self.phase, phase
        try:
            yield
        finally:
            self.phase = previous

    @contextmanager
    def window(self) -> Iterator[Window]:
        """Each process's size now, and its peak while the block runs."""
        sizes = self._sample()
        made = Window(before=sizes, tree_before=sum(sizes.values()))
        with self._lock:
            self._windows.append(made)
        try:
            yield made
        finally:
            self._sample()
            with self._lock:
                self._windows.remove(made)

    @contextmanager
    def high_water(self) -> Iterator[HighWater]:
        """Every server process's high-water mark, reset now and read at the end of the
        block: the most each held during it. The tree sum adds peaks that may come at
        different moments, so it is at most that much."""
        pids = tree(self.root)
        reset = [reset_high_water(pid) for pid in pids]  # every one, even after a failure
        made = HighWater(
            before={pid: size for pid in pids if (size := resident(pid)) is not None},
            exact=all(reset),
        )
        yield made
        for pid in pids:
            peak = high_water(pid)
            if peak is not None:
                made.peaks[pid] = peak

    def _run(self) -> None:
        refreshed = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now - refreshed >= TREE_EVERY:
                self._pids = tree(self.root)
                refreshed = now
            self._sample()
            self._stop.wait(self.interval)

    def _sample(self) -> dict[int, int]:
        sizes = {pid: size for pid in self._pids if (size := resident(pid)) is not None}
        total = sum(sizes.values())
        with self._lock:
            self.samples += 1
            self.peak_tree = max(self.peak_tree, total)
            self.phase_peaks[self.phase] = max(self.phase_peaks.get(self.phase, 0), total)
            for pid, size in sizes.items():
                self.peak_by_pid[pid] = max(self.peak_by_pid.get(pid, 0), size)
            for window in self._windows:
                window.tree_peak = max(window.tree_peak, total)
                for pid, size in sizes.items():
                    window.peaks[pid] = max(window.peaks.get(pid, 0), size)
        return sizes

    def report(self) -> dict[str, object]:
        with self._lock:
            return {
                "interval_s": self.interval,
                "samples": self.samples,
                "peak_tree_mb": round(self.peak_tree / MB, 1),
                "peak_by_process": [
                    {
                        "pid": pid,
                        "role": _role(pid, self.root),
                        "command": command_line(pid),
                        "peak_mb": round(size / MB, 1),
                    }
                    for pid, size in sorted(self.peak_by_pid.items())
                ],
                "peak_by_phase_mb": {
                    phase: round(size / MB, 1) for phase, size in self.phase_peaks.items()
                },
            }


def _role(pid: int, root: int) -> str:
    if pid == root:
        return "supervisor"
    if "resource_tracker" in command_line(pid):
        return "multiprocessing resource tracker"
    return "worker"
