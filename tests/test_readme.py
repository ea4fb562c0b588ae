"""The README's walk-throughs, run as written against a real server, on each backend.

A newcomer follows the README in order: the shell of "The first admin, and a first
device" (``fieldsync users create-admin``, then ``curl`` and ``jq``), the Python of
the next two sections (one program), then the shell of "Try sync from the shell".
This test does the same, in that order, with the README's own code blocks. It
changes only what a newcomer fills in themselves, each placeholder replaced where it
stands (a placeholder that is gone fails the test, so that it is updated with the
README):

- ``http://127.0.0.1:8000``, where ``make run`` serves: the test server's address;
- ``.venv/bin/fieldsync``: the ``fieldsync`` command installed beside this Python;
- ``'password=…'``: the password typed at ``create-admin`` (fed to it on standard
  input, as typed at its prompt, twice);
- the enrollment code ``7K2M-Q9XD-4HVT-C0RA`` in the Python: the one the ``curl``
  printed.

The shell's variables (``API``, ``AUTH``, ``RANGER``…) carry over from one shell block
to the next, as in one terminal. Without ``curl`` or ``jq`` on the machine the shell
blocks cannot run: the test fails under ``CI=true`` and elsewhere does what they do
through the API instead, then runs the Python alone.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.server import fieldsync_command
from tests.servers import Deployment, Server, deployment_fixture  # noqa: F401 (a fixture)


@pytest.fixture(scope="module")
def backend() -> str:
    """The README's walk-throughs are a client of the API: what they drive on the
    server is tested on both databases by tests/api; they run on SQLite, the
    embedded default they show."""
    return "sqlite"


README = Path(__file__).resolve().parent.parent / "README.md"
MAKE_RUN_URL = "http://127.0.0.1:8000"
CODE_PLACEHOLDER = "7K2M-Q9XD-4HVT-C0RA"
PASSWORD_PLACEHOLDER = "'password=…'"
ADMIN_PASSWORD = "una contraseña larga"
SHELL_TIMEOUT_SECONDS = 120
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
SHELL_STATE = ("API", "TOKEN", "AUTH", "SECTOR", "RANGER")


@dataclass(frozen=True)
class Block:
    section: str
    language: str
    code: str


def blocks() -> list[Block]:
    """The README's fenced code blocks, with the ``##`` section each stands in."""
    found = []
    for section in re.split(r"^(?=## )", README.read_text(encoding="utf-8"), flags=re.MULTILINE):
        title = section.splitlines()[0].removeprefix("## ").strip() if section else ""
        for match in FENCE.finditer(section):
            found.append(Block(title, match.group(1), match.group(2)))
    return found


def shell_of(section: str) -> str:
    code = [b.code for b in blocks() if b.section == section and b.language == "sh"]
    assert code, f"the README has no sh block under ## {section}"
    return "\n".join(code)


def python_program() -> str:
    code = [b.code for b in blocks() if b.language == "python"]
    assert len(code) >= 2, "the README's Python walk-through is gone"
    return "\n".join(code)


def filled(code: str, placeholder: str, value: str) -> str:
    assert placeholder in code, f"the README no longer shows {placeholder!r}: update this test"
    return code.replace(placeholder, value)


def documents(output: str) -> list[Any]:
    """The JSON documents ``curl`` printed, one after another (not a line each), and
    nothing of what else was said (``admin ana created``)."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while (at := output.find("{", at)) >= 0:
        document, at = decoder.raw_decode(output, at)
        found.append(document)
    return found


class Shell:
    """A terminal of the newcomer's: bash scripts, the variables kept between them."""

    def __init__(self, server: Server, deployment: Deployment, home: Path) -> None:
        self.server = server
        self.folder = home
        self.env = {**deployment.env, "HOME": str(home)}
        self.saved = home / "shell-variables.sh"

    def run(self, code: str, *, stdin: str | None = None) -> str:
        code = filled(code, MAKE_RUN_URL, self.server.base_url)
        if ".venv/bin/fieldsync" in code:
            code = code.replace(".venv/bin/fieldsync", shlex.join(fieldsync_command()))
        carried = f"source {shlex.quote(str(self.saved))}\n" if self.saved.exists() else ""
        keep = f"\ndeclare -p {' '.join(SHELL_STATE)} > {shlex.quote(str(self.saved))} 2>/dev/null"
        answer = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", carried + code + keep + " || true"],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=self.folder,
            env=self.env,
            timeout=SHELL_TIMEOUT_SECONDS,
            check=False,
            start_new_session=True,  # no terminal: create-admin reads its prompt's stdin
        )
        assert answer.returncode == 0, f"the README's shell failed:\n{answer.stderr}"
        return answer.stdout


def first_device_by_shell(shell: Shell) -> str:
    """The admin, the sector, the community, the ranger and a code for his tablet,
    made by the README's shell; the code it printed."""
    code = shell_of("The first admin, and a first device")
    code = filled(code, PASSWORD_PLACEHOLDER, shlex.quote(f"password={ADMIN_PASSWORD}"))
    printed = documents(shell.run(code, stdin=f"{ADMIN_PASSWORD}\n{ADMIN_PASSWORD}\n"))
    assert printed[-1].keys() >= {"device_id", "enrollment_code", "expires_at"}, printed
    enrollment_code: str = printed[-1]["enrollment_code"]
    return enrollment_code


def first_device_by_api(deployment: Deployment, server: Server) -> str:
    """What the README's shell makes, made through the API (no curl or jq here)."""
    deployment.run("users", "create-admin", "ana", "--password-stdin", stdin=ADMIN_PASSWORD + "\n")
    with httpx.Client(base_url=server.api) as http:
        token = http.post("/auth/token", data={"username": "ana", "password": ADMIN_PASSWORD})
        auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
        sector = http.post(
            "/sectors", json={"code": "AM-01", "name": "Sector Río Mayo"}, headers=auth
        ).json()
        ranger = http.post(
            "/users",
            json={
                "username": "jorge",
                "password": "a long passphrase",
                "full_name": "Jorge Tapia",
                "role": "ranger",
                "sector_ids": [sector["id"]],
            },
            headers=auth,
        ).json()
        made = http.post(
            "/devices", json={"label": "Tablet 7", "user_id": ranger["id"]}, headers=auth
        )
        assert made.status_code == 201, made.text
    code: str = made.json()["enrollment_code"]
    return code


def run_python(server: Server, enrollment_code: str) -> dict[str, Any]:
    """The README's Python, as one program; its variables once it ran to the end."""
    program = filled(python_program(), MAKE_RUN_URL, server.base_url)
    program = filled(program, CODE_PLACEHOLDER, enrollment_code)
    variables: dict[str, Any] = {"__name__": "__readme__"}
    exec(compile(program, f"{README}: the Python walk-through", "exec"), variables)  # noqa: S102
    return variables


def test_the_readme_walk_throughs_run_as_written(deployment: Deployment, tmp_path: Path) -> None:
    server = deployment.start()
    home = tmp_path / "home"
    home.mkdir()
    shell = Shell(server, deployment, home)
    has_tools = all(shutil.which(tool) for tool in ("curl", "jq", "bash"))
    if not has_tools and os.environ.get("CI") == "true":
        pytest.fail("the README's shell needs curl and jq on the PATH (apt-get install curl jq)")

    code = first_device_by_shell(shell) if has_tools else first_device_by_api(deployment, server)
    ran = run_python(server, code)

    assert ran["me"]["username"] == "jorge"
    assert ran["tokens"]["access_token"] != ran["enrolled"]["access_token"]  # rotated
    assert ran["device_id"] == ran["enrolled"]["device_id"]
    assert [(r["status"], r["version"]) for r in ran["answer"]["results"]] == [
        ("applied", 1),
        ("applied", 2),
    ]
    assert ran["answer"]["last_seq"] == 2
    [patrol] = ran["page"]["changes"]
    assert (patrol["entity"], patrol["id"], patrol["version"]) == ("patrol", ran["patrol_id"], 2)
    assert patrol["fields"]["status"] == "submitted"
    assert patrol["fields"]["device_id"] == ran["device_id"]
    uuid.UUID(ran["sector_id"])

    if not has_tools:
        return
    printed = shell.run(shell_of("Try sync from the shell"))

    *pulled, pushed = documents(printed)
    assert {"entity": "sector", "id": ran["sector_id"], "version": 1} in pulled
    assert {"entity": "patrol", "id": ran["patrol_id"], "version": 2} in pulled  # Tablet 7's
    assert (pushed["entity"], pushed["op"], pushed["status"]) == ("patrol", "create", "applied")
    assert re.search(r"^server .*: reachable, signed in as jorge \(ranger\)$", printed, re.M)
    assert re.search(r"^outbox +0 edits", printed, re.M)
    assert (home / ".fieldsync" / "device.db").exists()
