"""How big a request body may be, and how long its sender may pause: checked before any
route, authentication included, reads it.

- **Size.** A body over its route's cap (``body_limit``) is a ``413 payload_too_large``:
  before a byte of it is read when its ``Content-Length`` says so, and as soon as it
  passes the cap when it comes chunked. The cap is ``FIELDSYNC_MAX_REQUEST_BYTES``
  (1 MiB) everywhere but push, which keeps ``FIELDSYNC_MAX_BODY_BYTES`` (``api/body.py``
  also holds push to it after gunzip).
- **Time.** A client that stops sending its body for ``FIELDSYNC_BODY_TIMEOUT_SECONDS``
  gets a ``408 request_timeout``.

Either way the answer says ``Connection: close``: the rest of the body is never read,
so the connection cannot carry another request. Whatever the route made of the body it
did not get whole (a 400, an error) is dropped for that answer.

Slow or endless request *headers* are stopped before the app sees them, in the HTTP
protocol the server runs (``api/protocol.py``).

Pure ASGI, not ``BaseHTTPMiddleware``, which would hold streamed answers in memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio
from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import problem_response
from api.headers import route_path
from sync.platform.settings import Settings

PUSH_PATH = "/api/v1/sync/push"
# Resumable (tus) uploads of attachments carry chunks far over 1 MiB: a chunk may be as
# large as the largest attachment (it is spooled to disk past 1 MiB, never held whole).
UPLOADS_PATH = "/api/v1/attachments/uploads/"


def body_limit(method: str, path: str, settings: Settings) -> int:
    """The most bytes the body of ``method path`` may carry on the wire."""
    if method == "POST" and path == PUSH_PATH:
        return settings.max_body_bytes
    if method == "PATCH" and path.startswith(UPLOADS_PATH):
        return settings.max_attachment_bytes
    return settings.max_request_bytes


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    title: str
    detail: str

    async def answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            Request(scope),
            status=self.status,
            code=self.code,
            title=self.title,
            detail=self.detail,
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


def too_large(limit: int) -> Refusal:
    return Refusal(
        413,
        "payload_too_large",
        "Payload too large",
        f"the body is over {limit} bytes, the most this route takes; the rest was not read",
    )


def too_slow(seconds: float) -> Refusal:
    return Refusal(
        408,
        "request_timeout",
        "Request timeout",
        f"no part of the body arrived for {seconds:g} s; send it again",
    )


class BodyRefused(Exception):
    """Raised into the route that asked for more of a refused body."""


class RequestLimits:
    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope["method"], route_path(scope), self.settings)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await too_large(limit).answer(scope, receive, send)
            return
        body = _GuardedBody(receive, limit=limit, pause=self.settings.body_timeout_seconds)
        started = False

        async def send_unless_refused(message: Message) -> None:
            nonlocal started
            if body.refusal is not None:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, body.receive, send_unless_refused)
        except Exception:
            if body.refusal is None:
                raise
        if body.refusal is not None and not started:
            await body.refusal.answer(scope, receive, send)


class _GuardedBody:
    """The request's ``receive``, refusing the body once it passes ``limit`` bytes or
    pauses for ``pause`` seconds. Once the body is whole, ``receive`` is the server's
    own again: waiting there for a disconnect is a streamed answer's business."""

    def __init__(self, receive: Receive, *, limit: int, pause: float) -> None:
        self._receive = receive
        self.limit = limit
        self.pause = pause
        self.received = 0
        self.whole = False
        self.refusal: Refusal | None = None

    async def receive(self) -> Message:
        if self.refusal is not None:
            raise BodyRefused(self.refusal.code)
        if self.whole:
            return await self._receive()
        try:
            with anyio.fail_after(self.pause):
                message = await self._receive()
        except TimeoutError:
            self.refusal = too_slow(self.pause)
            raise BodyRefused(self.refusal.code) from None
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                self.refusal = too_large(self.limit)
                raise BodyRefused(self.refusal.code)
            self.whole = not message.get("more_body", False)
        return message


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None
