"""Which of the server's processes holds each open connection, read from /proc.

A tablet keeps one connection for all its requests, so how the tablets' connections
spread over ``fieldsync serve --workers N`` decides how many processes work for them
(``api/accept.py``). The benchmark prints that spread beside each push
(``watch``); the tests ask which process answered a request (``held_by``).
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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


@contextmanager
def watch(server_pid: int, port: int) -> Iterator[list[int]]:
    """Sample the spread of the server's connections over its processes while the block
    runs: the list given fills with the sample that saw the most connections, one count
    a process, largest first (an idle process as 0)."""
    spread: list[int] = []
    stop = threading.Event()
    processes = serving_processes(server_pid, port)  # the workers are up before a push

    def sample() -> None:
        while True:
            held = held_by(processes, open_connections(port))
            if sum(held.values()) > sum(spread):
                spread[:] = sorted((held[pid] for pid in processes), reverse=True)
            if stop.wait(EVERY_SECONDS):
                return

    sampler = threading.Thread(target=sample, name="connection-watch", daemon=True)
    sampler.start()
    try:
        yield spread
    finally:
        stop.set()
        sampler.join()
