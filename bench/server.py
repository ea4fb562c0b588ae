"""A real ``fieldsync serve`` process on a free loopback port, and the commands around it.

The benchmark and the real-server tests (``tests/servers.py``) start servers the same
way: the installed ``fieldsync`` command in its own process group (so that stopping
it stops its workers too), its output in a log file, ready once ``/readyz`` says so
and every worker has started.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

READY_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
COMMAND_TIMEOUT_SECONDS = 120


class ServerFailed(RuntimeError):
    """The server exited, or did not become ready in time; the message holds its log."""


def fieldsync_command() -> list[str]:
    """The installed console script beside this Python, as ``make install`` puts it;
    ``python -m api.cli`` where it is missing (an uninstalled checkout)."""
    script = shutil.which("fieldsync", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "api.cli"]


def clean_environment() -> dict[str, str]:
    """This process's environment without any ``FIELDSYNC_*`` setting of the machine,
    so that a server gets exactly the settings it is given."""
    return {k: v for k, v in os.environ.items() if not k.startswith("FIELDSYNC_")}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def run_command(
    *args: str, env: dict[str, str], folder: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``fieldsync ARGS`` in ``folder``; the caller checks the return code."""
    return subprocess.run(  # noqa: S603 (our own command, no shell)
        [*fieldsync_command(), *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=folder,
        env=env,
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
    )


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return f"{self.base_url}/api/v1"

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]

    def kill(self) -> None:
        """SIGKILL to the whole process group (the server and any workers)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=STOP_TIMEOUT_SECONDS)

    def stop(self) -> None:
        """SIGTERM, a grace period, then SIGKILL to the server's process group."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        self.kill()

    def tracebacks(self) -> list[str]:
        text = self.log.read_text(errors="replace")
        return [part[:2000] for part in text.split("Traceback")[1:]]


def start_server(
    *, env: dict[str, str], folder: Path, workers: int = 1, log_name: str | None = None
) -> Server:
    """``fieldsync serve --workers N`` on a free port of 127.0.0.1, in its own process
    group, ready; its output goes to ``folder/log_name``."""
    port = free_port()
    log = folder / (log_name or f"server-{port}.log")
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 (our own command, no shell)
            [
                *fieldsync_command(),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            cwd=folder,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(process, port, log)
    try:
        wait_until_ready(server)
        wait_for_workers(server, workers)
    except ServerFailed:
        server.stop()
        raise
    return server


def wait_until_ready(server: Server, timeout: float = READY_TIMEOUT_SECONDS) -> None:
    """Until ``/readyz`` answers 200; ``ServerFailed`` if the server exits or time runs out."""
    wait_until_answering(server, "/readyz", timeout=timeout, failed=ServerFailed, name="server")


# What uvicorn logs as each worker has started, just before it takes connections.
STARTED = "Application startup complete."


def wait_for_workers(server: Server, workers: int, timeout: float = READY_TIMEOUT_SECONDS) -> None:
    """Until every one of ``workers`` has started. ``/readyz`` is answered by the first
    worker up; on a busy machine another may still be importing, and until it accepts,
    the first takes every connection (a test or a run of the bench that needs them all
    would see one)."""
    deadline = time.monotonic() + timeout
    while server.log.read_text(errors="replace").count(STARTED) < workers:
        if server.process.poll() is not None or time.monotonic() > deadline:
            raise ServerFailed(f"not all {workers} workers started:\n{server.output()}")
        time.sleep(0.1)


def wait_until_answering(
    server: Server, path: str, *, timeout: float, failed: type[Exception], name: str
) -> None:
    """Until ``path`` of ``server`` answers 200; ``failed`` if the process exits or
    time runs out (``name`` says which process, with what it printed)."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise failed(f"the {name} exited with {server.process.returncode}:\n{server.output()}")
        try:
            answer = httpx.get(f"{server.base_url}{path}", timeout=2)
            if answer.status_code == 200:
                return
            last = f"{answer.status_code} {answer.text[:200]}"
        except httpx.TransportError as error:
            last = repr(error)
        time.sleep(0.1)
    raise failed(f"the {name} did not answer in {timeout} s ({last}):\n{server.output()}")
