"""No token, password or enrollment code in any line a real server logs, on each backend.

A full session runs against a real server process — logins (one failed), a refresh,
an enrollment (and a wrong code), a push, a pull, a forged token — once against
``fieldsync serve`` as deployed (INFO, JSON lines, the app's access log) and once
against the same app with every logger of every library at DEBUG (SQLAlchemy's
statements and parameters among them). Then the log is searched for every secret the session used.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from urllib.parse import quote, quote_plus

import httpx
import pytest

from bench.server import Server, ServerFailed, free_port, wait_until_ready
from sync.accounts import security
from tests.conftest import PASSWORD
from tests.servers import Deployment, deployment_fixture  # noqa: F401 (a fixture)

pytestmark = pytest.mark.slow

RANGER_PASSWORD = "quebrada honda 2026"
WRONG_PASSWORD = "not-the-password-7391"

EVERY_LOGGER_AT_DEBUG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "out": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "stream": "ext://sys.stdout",
        }
    },
    "root": {"level": "DEBUG", "handlers": ["out"]},
    # Libraries that set a level of their own unless one is set first (SQLAlchemy: WARN).
    "loggers": {
        name: {"level": "DEBUG"}
        for name in ("sqlalchemy", "alembic", "uvicorn", "python_multipart", "multipart")
    },
}


@dataclass
class Session:
    """What a session sent and was given that must never be written down."""

    secrets: set[str] = field(default_factory=set)

    def keep(self, *values: str) -> None:
        self.secrets.update(values)

    def tokens(self, answer: httpx.Response) -> dict[str, str]:
        assert answer.status_code == 200, answer.text
        pair: dict[str, str] = answer.json()
        self.keep(pair["access_token"], pair["refresh_token"])
        return pair


def _bearer(pair: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {pair['access_token']}"}


def _start_at_debug(deployment: Deployment) -> Server:
    """The app under plain uvicorn, with a logging configuration that lets everything
    through; stopped with the deployment's servers."""
    config = deployment.folder / "logging.json"
    config.write_text(json.dumps(EVERY_LOGGER_AT_DEBUG))
    port = free_port()
    log = deployment.folder / "server-debug.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "api.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-proxy-headers",
                "--log-level",
                "debug",
                "--log-config",
                str(config),
            ],
            cwd=deployment.folder,
            env=deployment.env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(process, port, log)
    deployment.servers.append(server)
    try:
        wait_until_ready(server)
    except ServerFailed as failure:
        pytest.fail(str(failure))
    return server


def _full_session(api: str) -> Session:
    session = Session()
    session.keep(PASSWORD, RANGER_PASSWORD, WRONG_PASSWORD)
    with httpx.Client(base_url=api, timeout=30) as http:
        admin = session.tokens(
            http.post("/auth/token", data={"username": "boss", "password": PASSWORD})
        )
        sector = http.post(
            "/sectors", json={"code": "AM-01", "name": "Río Mayo"}, headers=_bearer(admin)
        )
        assert sector.status_code == 201, sector.text
        ranger = http.post(
            "/users",
            json={
                "username": "jorge",
                "password": RANGER_PASSWORD,
                "full_name": "Jorge Tapia",
                "role": "ranger",
                "sector_ids": [sector.json()["id"]],
            },
            headers=_bearer(admin),
        )
        assert ranger.status_code == 201, ranger.text
        person = session.tokens(
            http.post("/auth/token", data={"username": "jorge", "password": RANGER_PASSWORD})
        )
        assert http.get("/auth/me", headers=_bearer(person)).status_code == 200

        made = http.post(
            "/devices",
            json={"label": "Tablet 7", "user_id": ranger.json()["id"]},
            headers=_bearer(admin),
        )
        assert made.status_code == 201, made.text
        code = made.json()["enrollment_code"]
        session.keep(code, code.replace("-", ""))
        tablet = session.tokens(http.post("/devices/enroll", json={"enrollment_code": code}))

        change = {
            "change_id": str(uuid.uuid4()),
            "seq": 1,
            "entity": "patrol",
            "id": str(uuid.uuid4()),
            "op": "create",
            "base_version": None,
            "schema_version": 1,
            "recorded_at": "2026-11-02T07:00:00-05:00",
            "fields": {
                "sector_id": sector.json()["id"],
                "patrol_type": "ground",
                "objective": "Río Mayo",
                "started_at": "2026-11-02T07:00:00-05:00",
            },
        }
        pushed = http.post(
            "/sync/push",
            json={
                "protocol": 1,
                "device_id": made.json()["device_id"],
                "batch_id": str(uuid.uuid4()),
                "changes": [change],
            },
            headers=_bearer(tablet),
        )
        assert pushed.status_code == 200, pushed.text
        assert pushed.json()["results"][0]["status"] == "applied", pushed.text
        pulled = http.get("/sync/pull", params={"limit": 10}, headers=_bearer(tablet))
        assert pulled.status_code == 200, pulled.text
        cursor = pulled.json()["cursor"]
        again = http.get("/sync/pull", params={"cursor": cursor}, headers=_bearer(tablet))
        assert again.status_code == 200, again.text

        renewed = session.tokens(
            http.post("/auth/refresh", json={"refresh_token": tablet["refresh_token"]})
        )
        assert http.get("/auth/me", headers=_bearer(renewed)).status_code == 200
        session.tokens(http.post("/auth/refresh", json={"refresh_token": admin["refresh_token"]}))

        failed = http.post("/auth/token", data={"username": "jorge", "password": WRONG_PASSWORD})
        assert failed.status_code == 401, failed.text
        forged = security.new_refresh_secret()
        session.keep(forged)
        assert (
            http.get("/auth/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
        )
        wrong_code = security.new_enrollment_code()
        session.keep(wrong_code, wrong_code.replace("-", ""))
        refused = http.post("/devices/enroll", json={"enrollment_code": wrong_code})
        assert refused.status_code == 401, refused.text
    return session


def _spellings(secret: str) -> set[str]:
    """The secret as it is, and as it would look in a URL or a form body."""
    return {secret, quote(secret, safe=""), quote_plus(secret)}


@pytest.mark.parametrize("logging", ["as-deployed", "every-logger-at-debug"])
def test_no_log_line_holds_a_token_a_password_or_an_enrollment_code(
    deployment: Deployment, logging: str
) -> None:
    server = deployment.start() if logging == "as-deployed" else _start_at_debug(deployment)

    session = _full_session(server.api)
    server.stop()

    log = server.log.read_text(errors="replace")
    # The log is the right one, and it is full: every request is in the access log
    # (the app's own, api/logs.py, which names no query string: a cursor is not there).
    for request in (
        "POST /api/v1/auth/token 200",
        "POST /api/v1/auth/token 401",
        "POST /api/v1/auth/refresh 200",
        "POST /api/v1/devices/enroll 200",
        "POST /api/v1/devices/enroll 401",
        "POST /api/v1/sync/push 200",
        "GET /api/v1/sync/pull 200",
        "GET /api/v1/auth/me 401",
    ):
        assert request in log, f"{request} not in the log:\n{log[-3000:]}"
    if logging == "every-logger-at-debug":
        assert " DEBUG sqlalchemy.engine" in log, log[-3000:]
    found = {
        secret
        for secret in session.secrets
        if any(spelling in log for spelling in _spellings(secret))
    }
    assert not found, f"{len(found)} secrets in the log: {sorted(found)}"
