"""The ``fieldsync`` command, run as the installed console script in its own process,
on a fresh database of each backend."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from api.app import create_app
from sync.platform import migrate
from sync.platform.database import create_db_engine
from tests.asgi import TestClient
from tests.conftest import PASSWORD, SECRET_KEY, make_settings
from tests.databases import fresh_database

FIELDSYNC = shutil.which("fieldsync", path=str(Path(sys.executable).parent)) or shutil.which(
    "fieldsync"
)
COMMAND_TIMEOUT_SECONDS = 60


def fieldsync_command() -> str:
    assert FIELDSYNC, "the fieldsync console script is not installed (pip install -e .)"
    return FIELDSYNC


def base_environment() -> dict[str, str]:
    """The test's own environment without any ``FIELDSYNC_*`` setting of the machine."""
    return {k: v for k, v in os.environ.items() if not k.startswith("FIELDSYNC_")}


@dataclass
class Fieldsync:
    """Runs ``fieldsync`` on one fresh database, in a scratch working folder."""

    database_url: str
    folder: Path
    env: dict[str, str]

    def run(
        self, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [fieldsync_command(), *args],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=self.folder,
            env=self.env if env is None else env,
            timeout=COMMAND_TIMEOUT_SECONDS,
            check=False,
        )

    def migrate(self) -> None:
        """Migrate in this process: quicker, where the command is not what is tested."""
        engine = create_db_engine(self.database_url)
        try:
            migrate.upgrade(engine)
        finally:
            engine.dispose()

    def create_admin(self, username: str, password: str) -> subprocess.CompletedProcess[str]:
        return self.run(
            "users", "create-admin", username, "--password-stdin", stdin=password + "\n"
        )


@pytest.fixture
def fieldsync(backend: str, tmp_path: Path) -> Iterator[Fieldsync]:
    with fresh_database(backend, tmp_path) as url:
        env = {
            **base_environment(),
            "FIELDSYNC_DATABASE_URL": url,
            "FIELDSYNC_SECRET_KEY": SECRET_KEY,
            "FIELDSYNC_ARGON2_MEMORY_KIB": "64",
            "FIELDSYNC_ARGON2_TIME_COST": "1",
        }
        yield Fieldsync(url, tmp_path, env)


def test_help_lists_the_commands(tmp_path: Path) -> None:
    answer = subprocess.run(
        [fieldsync_command(), "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=base_environment(),
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
    )
    assert answer.returncode == 0, answer.stderr
    for command in ("serve", "db", "users", "demo", "device"):
        assert command in answer.stdout


def test_db_upgrade_migrates_to_head_and_db_current_prints_it(fieldsync: Fieldsync) -> None:
    head = migrate.head_revision()
    assert head is not None

    before = fieldsync.run("db", "current")
    assert before.returncode == 0, before.stderr
    assert before.stdout.split()[0] == "None"

    upgrade = fieldsync.run("db", "upgrade")
    assert upgrade.returncode == 0, upgrade.stderr
    assert head in upgrade.stdout

    current = fieldsync.run("db", "current")
    assert current.returncode == 0, current.stderr
    assert current.stdout.split()[0] == head
    assert not (fieldsync.folder / "fieldsync.db").exists()  # the URL given was used


def test_db_downgrade_to_base_then_upgrade_again(fieldsync: Fieldsync) -> None:
    fieldsync.migrate()
    downgrade = fieldsync.run("db", "downgrade", "base")
    assert downgrade.returncode == 0, downgrade.stderr
    assert downgrade.stdout.split() == ["database", "at", "None"]
    upgrade = fieldsync.run("db", "upgrade")
    assert upgrade.returncode == 0, upgrade.stderr
    assert upgrade.stdout.split() == ["database", "at", str(migrate.head_revision())]


def test_create_admin_with_password_on_stdin_makes_an_admin_who_can_log_in(
    fieldsync: Fieldsync,
) -> None:
    fieldsync.migrate()

    made = fieldsync.create_admin("boss", PASSWORD)
    assert made.returncode == 0, made.stderr
    assert "boss" in made.stdout

    app = create_app(make_settings(fieldsync.database_url))
    with TestClient(app, base_url="http://testserver/api/v1") as client:
        answer = client.post("/auth/token", data={"username": "boss", "password": PASSWORD})
        assert answer.status_code == 200, answer.text
        me = client.get(
            "/auth/me", headers={"Authorization": f"Bearer {answer.json()['access_token']}"}
        )
        assert me.status_code == 200, me.text
        assert me.json()["role"] == "admin"
        wrong = client.post("/auth/token", data={"username": "boss", "password": PASSWORD + "x"})
        assert wrong.status_code == 401


def test_create_admin_refuses_a_too_short_password(fieldsync: Fieldsync) -> None:
    fieldsync.migrate()
    answer = fieldsync.create_admin("boss", "short")
    assert answer.returncode == 1
    assert "password" in answer.stderr
    assert "Traceback" not in answer.stderr
    assert answer.stdout == ""


def test_create_admin_twice_with_the_same_username_says_it_is_taken(
    fieldsync: Fieldsync,
) -> None:
    fieldsync.migrate()
    assert fieldsync.create_admin("boss", PASSWORD).returncode == 0

    again = fieldsync.create_admin("boss", PASSWORD + " again")
    assert again.returncode == 1
    assert "taken" in again.stderr
    assert "Traceback" not in again.stderr


def test_create_admin_on_an_unmigrated_database_says_to_run_db_upgrade(
    fieldsync: Fieldsync,
) -> None:
    answer = fieldsync.create_admin("boss", PASSWORD)
    assert answer.returncode == 1
    assert "fieldsync db upgrade" in answer.stderr
    assert "Traceback" not in answer.stderr


def test_serve_in_production_without_a_secret_key_exits_2_naming_the_variable(
    fieldsync: Fieldsync,
) -> None:
    env = {k: v for k, v in fieldsync.env.items() if k not in {"FIELDSYNC_SECRET_KEY"}}
    assert "FIELDSYNC_ENV" not in env  # production, the default
    started = time.monotonic()
    answer = fieldsync.run("serve", "--host", "127.0.0.1", "--port", "1", env=env)
    assert answer.returncode == 2
    assert "FIELDSYNC_SECRET_KEY" in answer.stderr
    assert "Traceback" not in answer.stderr
    assert time.monotonic() - started < 15
    assert not (fieldsync.folder / ".fieldsync").exists()
