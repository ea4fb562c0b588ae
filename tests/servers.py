"""Real ``fieldsync serve`` processes on a fresh database, for tests over real HTTP.

``deployment`` is a fixture: a fresh, migrated database (on the test's backend) with
an admin ``boss``; ``deployment.start(workers=N)`` starts a server process on a free
port and waits until it is ready; every server is stopped when the test ends. How a
server is started is shared with the benchmark (``bench.server``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bench.server import Server, ServerFailed, clean_environment, run_command, start_server
from tests.conftest import PASSWORD, SECRET_KEY
from tests.databases import fresh_database

__all__ = ["Deployment", "Server", "deployment_fixture", "module_deployment_fixture"]


@dataclass
class Deployment:
    """One fresh, migrated database with an admin ``boss``; server processes on it."""

    env: dict[str, str]
    folder: Path
    servers: list[Server] = field(default_factory=list)

    def run(self, *args: str, stdin: str | None = None) -> str:
        answer = run_command(*args, env=self.env, folder=self.folder, stdin=stdin)
        assert answer.returncode == 0, f"fieldsync {' '.join(args)}: {answer.stderr}"
        return answer.stdout

    def start(self, workers: int = 1) -> Server:
        try:
            server = start_server(
                env=self.env,
                folder=self.folder,
                workers=workers,
                log_name=f"server-{len(self.servers)}.log",
            )
        except ServerFailed as failure:
            pytest.fail(str(failure))
        self.servers.append(server)
        return server


@contextmanager
def _deployed(backend: str, folder: Path) -> Iterator[Deployment]:
    with fresh_database(backend, folder) as url:
        env = {
            **clean_environment(),
            "FIELDSYNC_DATABASE_URL": url,
            "FIELDSYNC_SECRET_KEY": SECRET_KEY,
            "FIELDSYNC_ARGON2_MEMORY_KIB": "64",
            "FIELDSYNC_ARGON2_TIME_COST": "1",
        }
        made = Deployment(env, folder)
        made.run("db", "upgrade")
        made.run("users", "create-admin", "boss", "--password-stdin", stdin=PASSWORD + "\n")
        try:
            yield made
        finally:
            for server in made.servers:
                server.stop()


@pytest.fixture(name="deployment")
def deployment_fixture(backend: str, tmp_path: Path) -> Iterator[Deployment]:
    """Import it into a test module to use ``deployment``."""
    with _deployed(backend, tmp_path) as made:
        yield made


@pytest.fixture(name="module_deployment", scope="module")
def module_deployment_fixture(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """One deployment for a module's tests, for those that change nothing a later test
    could see (limits, headers): a server start is seconds, a test a fraction of one."""
    with _deployed(backend, tmp_path_factory.mktemp("deployment")) as made:
        yield made
