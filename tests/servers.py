"""Real ``fieldsync serve`` processes on a fresh database, for tests over real HTTP.

``deployment`` is a fixture: a fresh, migrated database (on the test's backend) with
an admin ``boss``; ``deployment.start(workers=N)`` starts a server process on a free
port and waits until it is ready; every server is stopped when the test ends.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import PASSWORD, SECRET_KEY
from tests.databases import fresh_database
from tests.test_cli import base_environment, fieldsync_command

READY_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
COMMAND_TIMEOUT_SECONDS = 60


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


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


@dataclass
class Deployment:
    """One fresh, migrated database with an admin ``boss``; server processes on it."""

    env: dict[str, str]
    folder: Path
    servers: list[Server] = field(default_factory=list)

    def run(self, *args: str, stdin: str | None = None) -> str:
        answer = subprocess.run(
            [fieldsync_command(), *args],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=self.folder,
            env=self.env,
            timeout=COMMAND_TIMEOUT_SECONDS,
            check=False,
        )
        assert answer.returncode == 0, f"fieldsync {' '.join(args)}: {answer.stderr}"
        return answer.stdout

    def start(self, workers: int = 1) -> Server:
        port = free_port()
        log = self.folder / f"server-{port}-{len(self.servers)}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [
                    fieldsync_command(),
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--workers",
                    str(workers),
                ],
                cwd=self.folder,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = Server(process, port, log)
        self.servers.append(server)
        wait_until_ready(server)
        return server


def wait_until_ready(server: Server) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    last = "no answer"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"the server exited with {server.process.returncode}:\n{server.output()}")
        try:
            answer = httpx.get(f"{server.base_url}/readyz", timeout=2)
            if answer.status_code == 200:
                return
            last = f"{answer.status_code} {answer.text}"
        except httpx.TransportError as error:
            last = repr(error)
        time.sleep(0.1)
    pytest.fail(
        f"the server was not ready in {READY_TIMEOUT_SECONDS} s ({last}):\n{server.output()}"
    )


@pytest.fixture(name="deployment")
def deployment_fixture(backend: str, tmp_path: Path) -> Iterator[Deployment]:
    """Import it into a test module to use ``deployment``."""
    with fresh_database(backend, tmp_path) as url:
        env = {
            **base_environment(),
            "FIELDSYNC_DATABASE_URL": url,
            "FIELDSYNC_SECRET_KEY": SECRET_KEY,
            "FIELDSYNC_ARGON2_MEMORY_KIB": "64",
            "FIELDSYNC_ARGON2_TIME_COST": "1",
        }
        made = Deployment(env, tmp_path)
        made.run("db", "upgrade")
        made.run("users", "create-admin", "boss", "--password-stdin", stdin=PASSWORD + "\n")
        try:
            yield made
        finally:
            for server in made.servers:
                server.stop()
