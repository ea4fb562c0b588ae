"""Real HTTP against a real ``fieldsync serve`` with two worker processes, on each backend.

A newcomer's first hour: migrate, make the first admin, serve, set up a sector and a
ranger, enroll a tablet, lose it. Revocation must hold in every server process, so
the refusals are checked until each worker has been seen answering.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PASSWORD, SECRET_KEY
from tests.databases import fresh_database
from tests.test_cli import base_environment, fieldsync_command

pytestmark = pytest.mark.slow

WORKERS = 2
READY_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
MAX_REFUSAL_ROUNDS = 200
COMMAND_TIMEOUT_SECONDS = 60


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    port: int
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def worker_pids(self) -> set[int]:
        """The server's child processes (uvicorn's workers)."""
        children = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid ...; comm may hold spaces, so split after the last ')'
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent == self.process.pid:
                children.add(int(entry.name))
        return children

    def worker_serving(self, client_port: int) -> int | None:
        """Which worker process holds the accepted end of the connection from ``client_port``."""
        inodes = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                lines = Path(table).read_text().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if local_port == self.port and remote_port == client_port:
                    inodes.add(f"socket:[{fields[9]}]")
        for pid in self.worker_pids():
            try:
                descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
            except OSError:
                continue
            for descriptor in descriptors:
                try:
                    if os.readlink(descriptor) in inodes:
                        return pid
                except OSError:
                    continue
        return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def run_fieldsync(env: dict[str, str], cwd: Path, *args: str, stdin: str | None = None) -> str:
    answer = subprocess.run(
        [fieldsync_command(), *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
    )
    assert answer.returncode == 0, f"fieldsync {' '.join(args)}: {answer.stderr}"
    return answer.stdout


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, a grace period, then SIGKILL to the server's own process group."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
    # Workers left behind by a killed parent share its process group (its id is its pid).
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


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


@pytest.fixture
def server(backend: str, tmp_path: Path) -> Iterator[Server]:
    """``fieldsync serve --workers 2`` on a fresh, migrated database with an admin ``boss``."""
    with fresh_database(backend, tmp_path) as url:
        env = {
            **base_environment(),
            "FIELDSYNC_DATABASE_URL": url,
            "FIELDSYNC_SECRET_KEY": SECRET_KEY,
            "FIELDSYNC_ARGON2_MEMORY_KIB": "64",
            "FIELDSYNC_ARGON2_TIME_COST": "1",
        }
        run_fieldsync(env, tmp_path, "db", "upgrade")
        run_fieldsync(
            env, tmp_path, "users", "create-admin", "boss", "--password-stdin", stdin=PASSWORD
        )
        port = free_port()
        log = tmp_path / "server.log"
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
                    str(WORKERS),
                ],
                cwd=tmp_path,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            running = Server(process, f"http://127.0.0.1:{port}", port, log)
            wait_until_ready(running)
            yield running
        finally:
            stop(process)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def created(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def assert_refused(answer: httpx.Response) -> None:
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"] in {"token_revoked", "device_revoked"}, answer.text


def test_a_newcomer_enrolls_a_tablet_and_a_revoked_tablet_is_refused_by_every_worker(
    server: Server,
) -> None:
    api = f"{server.base_url}/api/v1"
    with httpx.Client(base_url=api, timeout=10) as office:
        login = office.post("/auth/token", data={"username": "boss", "password": PASSWORD})
        assert login.status_code == 200, login.text
        office.headers.update(bearer(login.json()["access_token"]))

        sector = created(office.post("/sectors", json={"code": "AM-01", "name": "Alto Mayo 1"}))
        created(
            office.post(
                "/communities",
                json={"name": "Nuevo Edén", "sector_id": sector["id"], "kind": "settlement"},
            )
        )
        ranger = created(
            office.post(
                "/users",
                json={
                    "username": "rosa",
                    "password": PASSWORD,
                    "full_name": "Rosa Tapia",
                    "role": "ranger",
                    "sector_ids": [sector["id"]],
                },
            )
        )
        code = created(office.post("/devices", json={"label": "Tablet 7", "user_id": ranger["id"]}))

        with httpx.Client(base_url=api, timeout=10) as device:
            enrolled = device.post(
                "/devices/enroll", json={"enrollment_code": code["enrollment_code"]}
            )
            assert enrolled.status_code == 200, enrolled.text
            tablet = enrolled.json()
            assert tablet["device_id"] == code["device_id"]

            me = device.get("/auth/me", headers=bearer(tablet["access_token"]))
            assert me.status_code == 200, me.text
            assert me.json()["username"] == "rosa"

            # A live pair, rotated once, is what the thief holds when the tablet is lost.
            rotated = device.post("/auth/refresh", json={"refresh_token": tablet["refresh_token"]})
            assert rotated.status_code == 200, rotated.text
            stolen = rotated.json()

        revoked = office.post(f"/devices/{code['device_id']}/revoke")
        assert revoked.status_code == 200, revoked.text

    answered_by: set[int] = set()
    for _ in range(MAX_REFUSAL_ROUNDS):
        # A new connection each round, so that the workers take turns accepting.
        with httpx.Client(base_url=api, timeout=10) as thief:
            assert_refused(thief.get("/auth/me", headers=bearer(stolen["access_token"])))
            assert_refused(
                thief.post("/auth/refresh", json={"refresh_token": stolen["refresh_token"]})
            )
            refused = thief.get("/auth/me", headers=bearer(stolen["access_token"]))
            assert_refused(refused)
            client_port = refused.extensions["network_stream"].get_extra_info("client_addr")[1]
            worker = server.worker_serving(client_port)
        assert worker is not None, "no worker process holds the connection"
        answered_by.add(worker)
        if len(answered_by) == WORKERS:
            break
    assert len(answered_by) == WORKERS, f"only workers {answered_by} answered"
