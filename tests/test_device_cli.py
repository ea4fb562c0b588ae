"""``fieldsync device``: a tablet in the shell, run as the installed command in its own
process against a real server, on each backend."""

from __future__ import annotations

import json
import stat
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.server import clean_environment, fieldsync_command
from tests.conftest import PASSWORD
from tests.servers import Deployment, Server, deployment_fixture  # noqa: F401 (a fixture)


@pytest.fixture(scope="module")
def backend() -> str:
    """`fieldsync device` is a client of the API: what it drives on the server, push
    and pull, is tested on both databases by tests/api and tests/engine; here SQLite,
    the embedded default, is enough."""
    return "sqlite"


COMMAND_TIMEOUT_SECONDS = 60


@dataclass
class Office:
    """What the office made on the server: a sector, a ranger, a code for a tablet."""

    server: Server
    sector_id: str
    ranger_id: str

    def enrollment_code(self, label: str = "Tablet 7") -> str:
        with httpx.Client(base_url=self.server.api) as http:
            made = http.post(
                "/devices",
                json={"label": label, "user_id": self.ranger_id},
                headers=_admin(http),
            )
        assert made.status_code == 201, made.text
        code: str = made.json()["enrollment_code"]
        return code


def _admin(http: httpx.Client) -> dict[str, str]:
    answer = http.post("/auth/token", data={"username": "boss", "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


@pytest.fixture
def office(deployment: Deployment) -> Office:
    server = deployment.start()
    with httpx.Client(base_url=server.api) as http:
        admin = _admin(http)
        sector = http.post(
            "/sectors",
            json={"code": "AM-01", "name": "Sector Río Mayo", "zone": "protection"},
            headers=admin,
        )
        assert sector.status_code == 201, sector.text
        ranger = http.post(
            "/users",
            json={
                "username": "jorge",
                "password": "a long passphrase",
                "full_name": "Jorge Tapia",
                "role": "ranger",
                "sector_ids": [sector.json()["id"]],
            },
            headers=admin,
        )
        assert ranger.status_code == 201, ranger.text
    return Office(server, sector.json()["id"], ranger.json()["id"])


def device(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``fieldsync device ARGS`` with ``home`` as the user's home folder."""
    return subprocess.run(
        [*fieldsync_command(), "device", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=home,
        env={**clean_environment(), "HOME": str(home)},
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
    )


def lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines()]


def status_lines(output: str) -> dict[str, str]:
    """``name  value`` lines (names of one or two words, values after two spaces)."""
    said = {}
    for line in output.splitlines():
        name, value = line.split("  ", 1)
        said[name] = value.strip()
    return said


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def patrol_fields(office: Office) -> dict[str, Any]:
    return {
        "sector_id": office.sector_id,
        "patrol_type": "ground",
        "objective": "Río Mayo",
        "started_at": "2026-11-02T07:00:00-05:00",
    }


def test_enroll_pull_push_and_status_work_from_the_shell_with_a_private_state_file(
    office: Office, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    code = office.enrollment_code()

    enrolled = device(home, "enroll", code, "--url", office.server.base_url)

    assert enrolled.returncode == 0, enrolled.stderr
    assert "enrolled device" in enrolled.stderr
    state = home / ".fieldsync" / "device.db"
    assert mode(state) == 0o600  # it holds the device's tokens
    assert mode(state.parent) == 0o700
    assert {mode(file) for file in state.parent.iterdir()} == {0o600}  # -wal and -shm too

    pulled = device(home, "pull")
    assert pulled.returncode == 0, pulled.stderr
    assert [(c["entity"], c["id"]) for c in lines(pulled.stdout)] == [("sector", office.sector_id)]
    assert device(home, "pull").stdout == ""  # the cursor was kept

    patrol = str(uuid.uuid4())
    edits = home / "patrol.json"
    edits.write_text(
        json.dumps(
            [
                {"op": "create", "entity": "patrol", "id": patrol, "fields": patrol_fields(office)},
                {"op": "update", "entity": "patrol", "id": patrol, "fields": {"comment": "sol"}},
            ]
        )
    )
    pushed = device(home, "push", str(edits))
    assert pushed.returncode == 0, pushed.stderr
    assert [(r["id"], r["op"], r["status"], r["version"]) for r in lines(pushed.stdout)] == [
        (patrol, "create", "applied", 1),
        (patrol, "update", "applied", 2),
    ]
    assert "2 applied" in pushed.stderr

    # One edit, from standard input.
    submit = {"op": "update", "entity": "patrol", "id": patrol, "fields": {"status": "submitted"}}
    submitted = device(home, "push", "-", stdin=json.dumps(submit))
    assert submitted.returncode == 0, submitted.stderr
    [result] = lines(submitted.stdout)
    assert (result["status"], result["version"]) == ("applied", 3)

    status = device(home, "status")
    assert status.returncode == 0, status.stderr
    said = status_lines(status.stdout)
    assert said["state"] == str(state)
    assert said["last seq"] == "3"
    assert said["outbox"].startswith("0 edits")
    assert said["cursor"] == "held"
    assert said["user"] == office.ranger_id
    assert said["server"] == f"{office.server.api}: reachable, signed in as jorge (ranger)"
    with httpx.Client(base_url=office.server.api) as http:
        devices = http.get("/devices", headers=_admin(http)).json()
    assert said["device"] in [d["id"] for d in devices]


def test_a_file_that_sets_what_the_device_assigns_or_edits_an_unknown_record_queues_nothing(
    office: Office, tmp_path: Path
) -> None:
    home = tmp_path
    state = ("--state", str(tmp_path / "tablet.db"))
    enrolled = device(home, "enroll", office.enrollment_code(), "--url", office.server.api, *state)
    assert enrolled.returncode == 0, enrolled.stderr
    create = {"entity": "patrol", "fields": patrol_fields(office)}  # op create, a new id

    numbered = device(home, "push", "-", *state, stdin=json.dumps([create, {**create, "seq": 2}]))
    assert numbered.returncode == 1
    assert "seq: the device assigns seq, change_id, base_version, recorded_at" in numbered.stderr
    unknown = {"op": "update", "entity": "patrol", "id": str(uuid.uuid4()), "fields": {}}
    unheld = device(home, "push", "-", *state, stdin=json.dumps([create, unknown]))
    assert unheld.returncode == 1
    assert "edit 2: no patrol" in unheld.stderr
    assert "fieldsync device pull" in unheld.stderr
    broken = device(home, "push", "-", *state, stdin="[{")
    assert broken.returncode == 1
    assert "not JSON" in broken.stderr
    for answer in (numbered, unheld, broken):
        assert "Traceback" not in answer.stderr

    assert status_lines(device(home, "status", *state).stdout)["outbox"].startswith("0 edits")
    [result] = lines(device(home, "push", "-", *state, stdin=json.dumps(create)).stdout)
    assert (result["op"], result["status"]) == ("create", "applied")


def test_edits_made_while_the_server_is_down_stay_queued_for_the_next_push(
    deployment: Deployment, office: Office, tmp_path: Path
) -> None:
    home = tmp_path
    enrolled = device(home, "enroll", office.enrollment_code(), "--url", office.server.base_url)
    assert enrolled.returncode == 0, enrolled.stderr
    office.server.stop()

    offline = device(
        home, "push", "-", stdin=json.dumps({"entity": "patrol", "fields": patrol_fields(office)})
    )
    assert offline.returncode == 1
    assert "did not answer" in offline.stderr
    assert "Traceback" not in offline.stderr
    status = device(home, "status")
    assert status.returncode == 1
    said = status_lines(status.stdout)
    assert said["outbox"].startswith("1 edits")
    assert said["server"].startswith(f"{office.server.api}: unreachable")

    moved = deployment.start()  # the server is back, at another address
    pushed = device(home, "push", "--url", moved.base_url)  # no file: the outbox
    assert pushed.returncode == 0, pushed.stderr
    assert [r["status"] for r in lines(pushed.stdout)] == ["applied"]
    assert status_lines(device(home, "status").stdout)["server"].startswith(moved.api)


def test_before_enrolling_or_with_a_spent_code_the_command_says_what_to_do(
    office: Office, tmp_path: Path
) -> None:
    home = tmp_path
    pulled = device(home, "pull")
    assert pulled.returncode == 1
    assert "not enrolled" in pulled.stderr
    assert "fieldsync device enroll CODE" in pulled.stderr
    code = office.enrollment_code()
    url = ("--url", office.server.base_url)
    assert device(home, "enroll", code, *url, "--state", str(tmp_path / "a.db")).returncode == 0

    again = device(home, "enroll", code, *url, "--state", str(tmp_path / "b.db"))

    assert again.returncode == 1
    assert "enrollment code was refused" in again.stderr
    assert "Traceback" not in again.stderr + pulled.stderr
    assert device(home, "status", "--state", str(tmp_path / "b.db")).returncode == 1
