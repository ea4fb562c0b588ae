"""Log lines as JSON with the request's id (api/logs.py): the id answered in
``X-Request-ID`` (the caller's when sane), one access line per request naming its
route, and the id on every record written while the request runs, an unexpected
error's traceback included."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api import logs
from tests.asgi import TestClient
from tests.conftest import World
from tests.servers import Deployment, deployment_fixture

deployment = deployment_fixture


@pytest.fixture
def lines(caplog: pytest.LogCaptureFixture) -> Iterator[io.StringIO]:
    """What the ``fieldsync`` loggers write, as ``fieldsync serve`` formats it."""
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    handler.setFormatter(logs.json_formatter())
    handler.addFilter(logs.RequestIdFilter())
    caplog.set_level(logging.INFO, logger="fieldsync")
    logger = logging.getLogger("fieldsync")
    logger.addHandler(handler)
    yield written
    logger.removeHandler(handler)


def records(written: io.StringIO, logger: str) -> list[dict[str, Any]]:
    parsed = [json.loads(line) for line in written.getvalue().splitlines()]
    return [record for record in parsed if record["logger"] == logger]


@pytest.fixture
def root(own_app_client: TestClient) -> TestClient:
    return own_app_client


def test_a_request_id_is_answered_the_callers_when_sane(root: TestClient) -> None:
    given = "tablet-07.push_42"

    echoed = root.get("/healthz", headers={"X-Request-ID": given})
    made = root.get("/healthz")

    assert echoed.headers["X-Request-ID"] == given
    assert len(made.headers["X-Request-ID"]) == 32
    assert set(made.headers["X-Request-ID"]) <= set("0123456789abcdef")


@pytest.mark.parametrize(
    "given", ["a" * 65, "with space", "semi;colon", "back\\slash", "ñandú", ""]
)
def test_a_request_id_that_is_not_sane_is_replaced(root: TestClient, given: str) -> None:
    answer = root.get("/healthz", headers={"X-Request-ID": given.encode()})

    answered = answer.headers["X-Request-ID"]
    assert answered != given
    assert len(answered) == 32


def test_each_request_writes_one_json_access_line_with_its_route_and_id(
    world: World, lines: io.StringIO
) -> None:
    admin = world.admin
    patrol_id = str(uuid.uuid4())
    secret = f"cursor-{uuid.uuid4().hex}"

    answer = admin.get(f"/patrols/{patrol_id}", params={"cursor": secret})

    [line] = [
        line for line in records(lines, "fieldsync.access") if line["path"].endswith(patrol_id)
    ]
    assert line["request_id"] == answer.headers["X-Request-ID"]
    assert line["method"] == "GET"
    assert line["route"] == "/api/v1/patrols/{patrol_id}"
    assert line["path"] == f"/api/v1/patrols/{patrol_id}"
    assert line["status"] == answer.status_code == 404
    assert line["duration_ms"] >= 0
    assert line["client"] == "testclient"
    assert (line["level"], line["time"][:2]) == ("INFO", "20")
    written = lines.getvalue()
    assert secret not in written
    assert admin.tokens["access_token"] not in written


def test_records_written_in_a_route_and_an_unexpected_error_carry_the_request_id(
    root: TestClient, lines: io.StringIO
) -> None:
    app: FastAPI = root.app  # type: ignore[assignment]

    @app.get("/said")
    def said() -> None:  # run in a worker thread, as the sync routes are
        logging.getLogger("fieldsync").info("a word from the route")

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("the tablet's batch broke something")

    spoken = root.get("/said")
    failed = root.get("/boom")

    assert failed.status_code == 500
    [word] = [r for r in records(lines, "fieldsync") if r["message"] == "a word from the route"]
    assert word["request_id"] == spoken.headers["X-Request-ID"]
    [error] = [r for r in records(lines, "fieldsync") if "unhandled error" in r["message"]]
    assert error["request_id"] == failed.headers["X-Request-ID"]
    assert error["level"] == "ERROR"
    assert "Traceback" in error["exc_info"]
    assert "RuntimeError: the tablet's batch broke something" in error["exc_info"]
    [access] = [r for r in records(lines, "fieldsync.access") if r["path"] == "/boom"]
    assert (access["status"], access["request_id"]) == (500, failed.headers["X-Request-ID"])


def test_text_lines_name_the_request_id_or_a_dash() -> None:
    formatter = logs.text_formatter()
    record = logging.LogRecord("fieldsync", logging.INFO, __file__, 1, "hello", None, None)
    token = logs.request_id.set("abc123")
    try:
        logs.RequestIdFilter().filter(record)
    finally:
        logs.request_id.reset(token)
    outside = logging.LogRecord("fieldsync", logging.INFO, __file__, 1, "bye", None, None)
    logs.RequestIdFilter().filter(outside)

    assert formatter.format(record).endswith("INFO fieldsync [abc123] hello")
    assert formatter.format(outside).endswith("INFO fieldsync [-] bye")


@pytest.mark.slow
def test_fieldsync_serve_writes_json_lines_only_and_one_access_line_per_request(
    deployment: Deployment,
) -> None:
    server = deployment.start()
    answers = [
        httpx.get(f"{server.base_url}/healthz", headers={"X-Request-ID": "probe-1"}, timeout=30),
        httpx.get(f"{server.api}/auth/me", timeout=30),
    ]
    server.stop()

    written = [json.loads(line) for line in server.log.read_text().splitlines()]
    assert {"uvicorn.error", "fieldsync.access"} <= {line["logger"] for line in written}
    assert "uvicorn.access" not in {line["logger"] for line in written}
    for line in written:
        assert {"time", "level", "logger", "message", "request_id"} <= line.keys(), line
    answered = {
        line["request_id"]: line for line in written if line["logger"] == "fieldsync.access"
    }
    for answer in answers:
        line = answered[answer.headers["X-Request-ID"]]
        assert (line["path"], line["status"]) == (answer.url.path, answer.status_code)
    assert answered["probe-1"]["route"] == "/healthz"
