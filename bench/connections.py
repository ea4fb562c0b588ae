"""Which of the server's processes holds each open connection, read from /proc.

A tablet keeps one connection for all its requests, so how the tablets' connections
spread over ``fieldsync serve --workers N`` decides how many processes work for them
(``api/accept.py``). The benchmark prints that spread beside each push
(``ConnectionWatch``); the tests ask which process answered a request (``held_by``).
Reading the table and a few processes' descriptors takes well under a millisecond.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from pathlib import Path
from types import TracebackType

from bench.memory import children

ESTABLISHED = "01"
LISTENING = "0A"
EVERY_SECONDS = 0.05


def open_connections(port: int, *, remote_port: int | None = None) -> set[str]:
    """The sockets (as ``/proc/PID/fd`` links name them) of the connections accepted on
    ``port`` and still established, or only the one from ``remote_port``."""
    return _sockets(port, ESTABLISHED, remote_port)


def serving_processes(server_pid: int, port: int) -> list[int]:
    """The processes of ``fieldsync serve`` that accept connections on ``port``: its
    workers (not the other children, such as multiprocessing's resource tracker), or the
    server itself when it has none."""
    listening = _sockets(port, LISTENING, None)
    workers = [pid for pid in children(server_pid) if held_by([pid], listening)]
    return workers or [server_pid]


def held_by(processes: list[int], sockets: set[str]) -> Counter[int]:
    """How many of ``sockets`` each of ``processes`` holds."""
    held: Counter[int] = Counter()
    for pid in processes:
        try:
            descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for descriptor in descriptors:
            try:
                if os.readlink(descriptor) in sockets:
                    held[pid] += 1
            except OSError:
                continue
    return held


def _sockets(port: int, state: str, remote_port: int | None) -> set[str]:
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local = int(fields[1].rsplit(":", 1)[1], 16)
            remote = int(fields[2].rsplit(":", 1)[1], 16)
            if local != port or fields[3] != state:
                continue
            if remote_port is None or remote == remote_port:
                found.add(f"socket:[{fields[9]}]")
    return found


class ConnectionWatch:
    """Samples the spread of the server's connections over its processes while a block
    runs; ``spread`` is the sample with the most connections, largest share first (an
    idle process as 0)."""

    def __init__(self, server_pid: int, port: int) -> None:
        self.server_pid, self.port = server_pid, port
        self.spread: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="connection-watch", daemon=True)

    def __enter__(self) -> ConnectionWatch:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(EVERY_SECONDS):
            processes = serving_processes(self.server_pid, self.port)
            held = held_by(processes, open_connections(self.port))
            if sum(held.values()) > sum(self.spread):
                self.spread = sorted((held[pid] for pid in processes), reverse=True)
