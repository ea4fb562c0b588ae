"""Bodies are capped before any route, authentication included, reads them; a body that
stalls is a 408 (api/limits.py). Real servers and real sockets: tests/test_server_limits.py."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from api.app import create_app
from api.limits import RequestLimits
from tests.asgi import TestClient
from tests.conftest import World, assert_problem, make_settings

MiB = 1024 * 1024
TOKEN_ROUTES = ["/auth/refresh", "/devices/enroll", "/auth/token"]
CONTENT_TYPES = {
    "/auth/refresh": "application/json",
    "/devices/enroll": "application/json",
    "/auth/token": "application/x-www-form-urlencoded",
}


def chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    for _ in range(total // size):
        yield b"0" * size


@pytest.mark.parametrize("path", TOKEN_ROUTES)
def test_a_5_mib_body_to_a_token_route_is_a_413_without_a_token(
    client: TestClient, path: str
) -> None:
    answer = client.post(
        path, content=b"0" * (5 * MiB), headers={"Content-Type": CONTENT_TYPES[path]}
    )

    assert_problem(answer, 413, "payload_too_large")
    assert "access_token" not in answer.text
    assert answer.headers["connection"] == "close"


@pytest.mark.parametrize("path", TOKEN_ROUTES)
def test_a_5_mib_chunked_body_without_a_content_length_is_a_413(
    client: TestClient, path: str
) -> None:
    answer = client.post(
        path, content=chunks(5 * MiB), headers={"Content-Type": CONTENT_TYPES[path]}
    )

    assert "content-length" not in answer.request.headers
    assert_problem(answer, 413, "payload_too_large")


def test_a_body_under_the_cap_reaches_the_route(client: TestClient) -> None:
    padded = json.dumps({"refresh_token": "not-a-token"}) + " " * (MiB // 2)

    answer = client.post(
        "/auth/refresh", content=padded, headers={"Content-Type": "application/json"}
    )

    assert_problem(answer, 401, "invalid_refresh_token")


def test_push_still_accepts_a_2_mib_body(world: World) -> None:
    sector = world.sector()
    device = world.device(world.user("ranger", sector_ids=[sector["id"]]))
    batch = {
        "protocol": 1,
        "device_id": device.tokens["device_id"],
        "batch_id": str(uuid.uuid4()),
        "changes": [
            {
                "change_id": str(uuid.uuid4()),
                "seq": 1,
                "entity": "patrol",
                "id": str(uuid.uuid4()),
                "op": "create",
                "base_version": None,
                "schema_version": 1,
                "recorded_at": "2026-11-02T09:31:07-05:00",
                "fields": {"sector_id": sector["id"], "objective": "Río Mayo"},
            }
        ],
    }
    # JSON's own whitespace: a body of 2 MiB that push reads as one small change.
    body = json.dumps(batch).encode() + b" " * (2 * MiB)

    answer = device.post("/sync/push", content=body, headers={"Content-Type": "application/json"})

    assert answer.status_code == 200, answer.text
    assert answer.json()["results"][0]["status"] == "applied"


def test_the_cap_is_its_setting(world: World, database_url: str) -> None:
    small = make_settings(database_url, max_request_bytes=4096)
    with TestClient(create_app(small, world.engine), base_url="http://testserver/api/v1") as c:
        json_body = {"Content-Type": "application/json"}
        over = c.post("/auth/refresh", content=b" " * 5000, headers=json_body)
        under = c.post(
            "/auth/refresh", content=b" " * 4000 + b'{"refresh_token": "x"}', headers=json_body
        )

    assert_problem(over, 413, "payload_too_large")
    assert under.status_code == 401, under.text


# The middleware alone, over ASGI, to watch what it reads and when.

SETTINGS = make_settings("sqlite://", max_request_bytes=1024, body_timeout_seconds=0.2)


class Recorder:
    """An app that reads the whole body and answers 200; what it read, and whether it ran."""

    def __init__(self) -> None:
        self.called = False
        self.read = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.called = True
        while True:
            message = await receive()
            self.read += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"read"})


def scope(headers: list[tuple[bytes, bytes]], path: str = "/api/v1/auth/refresh") -> Scope:
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "root_path": "",
        "query_string": b"",
        "headers": headers,
    }


def run(app: Any, request: Scope, messages: Sequence[Message], *, then_wait: float = 0) -> Any:
    """Run ``RequestLimits(app)`` over ``messages``, then a disconnect ``then_wait`` seconds
    later; what it sent, and how many messages the app pulled."""
    sent: list[Message] = []
    pulled = 0

    async def receive() -> Message:
        nonlocal pulled
        if pulled < len(messages):
            pulled += 1
            return messages[pulled - 1]
        await asyncio.sleep(then_wait)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(asyncio.wait_for(RequestLimits(app, settings=SETTINGS)(request, receive, send), 10))
    return sent, pulled


def test_a_declared_length_over_the_cap_is_refused_before_the_app_runs() -> None:
    app = Recorder()

    sent, pulled = run(app, scope([(b"content-length", b"2048")]), [])

    assert not app.called
    assert pulled == 0
    assert sent[0]["status"] == 413
    assert (b"connection", b"close") in sent[0]["headers"]


def test_a_chunked_body_stops_being_read_once_past_the_cap() -> None:
    app = Recorder()
    parts = [{"type": "http.request", "body": b"x" * 400, "more_body": True}] * 10

    sent, pulled = run(app, scope([]), parts)

    assert pulled == 3  # 1200 bytes: the third part passed the cap, no fourth was asked for
    assert [m.get("status") for m in sent if m["type"] == "http.response.start"] == [413]
    assert json.loads(sent[-1]["body"])["code"] == "payload_too_large"


def test_a_body_that_stalls_is_a_408_that_closes_the_connection() -> None:
    app = Recorder()
    parts = [{"type": "http.request", "body": b"x" * 10, "more_body": True}]

    sent, _ = run(app, scope([(b"content-length", b"1000")]), parts, then_wait=60)

    assert sent[0]["status"] == 408
    assert (b"connection", b"close") in sent[0]["headers"]
    assert json.loads(sent[-1]["body"])["code"] == "request_timeout"


def test_push_is_held_to_its_own_larger_limit() -> None:
    app = Recorder()
    parts = [{"type": "http.request", "body": b"x" * 4096}]

    sent, _ = run(app, scope([(b"content-length", b"4096")], path="/api/v1/sync/push"), parts)

    assert app.read == 4096
    assert sent[0]["status"] == 200


def test_once_the_body_is_whole_waiting_for_a_disconnect_is_not_timed() -> None:
    waited: list[Message] = []

    async def streams_until_disconnect(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        waited.append(await receive())  # past the 0.2 s pause; a disconnect, not a 408
        await send({"type": "http.response.body", "body": b""})

    parts = [{"type": "http.request", "body": b"{}"}]
    sent, _ = run(streams_until_disconnect, scope([]), parts, then_wait=0.5)

    assert waited == [{"type": "http.disconnect"}]
    assert sent[0]["status"] == 200
