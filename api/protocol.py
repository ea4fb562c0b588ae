"""The HTTP protocol ``fieldsync serve`` runs: uvicorn's httptools protocol with a
deadline and a size cap on each request's line and headers.

What uvicorn 0.54 itself offers does not stop a slow client: ``timeout_keep_alive``
runs only *between* requests, after an answer; ``limit_concurrency`` refuses new work
once too many connections are open, which slow clients would reach first;
``h11_max_incomplete_event_size`` caps headers on the h11 protocol only, and the server
runs httptools, which has no cap. So a client that connects and sends half a request
line, or headers without end, held its connection (and the memory of what it sent)
for as long as it liked.

Here, from the first byte a connection could send (and from the first byte of each
later request on it) the request line and headers must be complete within
``FIELDSYNC_HEADER_TIMEOUT_SECONDS`` and ``MAX_HEADER_BYTES``; otherwise the client gets
a ``408 request_timeout`` or ``431 headers_too_large`` and the connection is closed.
The body's own limits are the app's (``api/limits.py``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from api.headers import API_POLICY, SECURITY_HEADERS
from api.limits import Refusal
from schemas.problem import Problem
from sync.platform.settings import get_settings

# Eight times what a tablet or a browser sends; nginx's default allows 32 KiB.
MAX_HEADER_BYTES = 64 * 1024


class BoundedHeadersProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Read here, in the worker process: uvicorn starts workers with the class only.
        self.header_timeout = get_settings().header_timeout_seconds
        self.header_deadline: asyncio.TimerHandle | None = None
        self.header_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._headers_done()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.header_deadline is None:
            return
        self.header_bytes += len(data)
        if self.header_bytes > MAX_HEADER_BYTES:
            self._refuse(
                Refusal(
                    431,
                    "headers_too_large",
                    "Request header fields too large",
                    f"the request line and headers are over {MAX_HEADER_BYTES} bytes",
                )
            )

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.header_deadline is None:  # a later request on a kept-alive connection
            self._await_headers()

    def on_headers_complete(self) -> None:
        self._headers_done()
        super().on_headers_complete()

    def _await_headers(self) -> None:
        self.header_bytes = 0
        self.header_deadline = self.loop.call_later(self.header_timeout, self._headers_late)

    def _headers_done(self) -> None:
        if self.header_deadline is not None:
            self.header_deadline.cancel()
            self.header_deadline = None

    def _headers_late(self) -> None:
        self.header_deadline = None
        self._refuse(
            Refusal(
                408,
                "request_timeout",
                "Request timeout",
                f"the request line and headers did not arrive in {self.header_timeout:g} s",
            )
        )

    def _refuse(self, refusal: Refusal) -> None:
        self._headers_done()
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # The answer to the request before this one is still being made: it goes
            # out whole, and the connection closes after it.
            self.cycle.keep_alive = False
            return
        body = (
            Problem(
                type=f"urn:fieldsync:problem:{refusal.code}",
                title=refusal.title,
                status=refusal.status,
                detail=refusal.detail,
                code=refusal.code,
            )
            .model_dump_json(exclude_none=True)
            .encode()
        )
        head = [
            ("content-type", "application/problem+json"),
            ("content-length", str(len(body))),
            ("connection", "close"),
            *((name.lower(), value) for name, value in SECURITY_HEADERS.items()),
            ("content-security-policy", API_POLICY),
        ]
        lines = b"".join(f"{name}: {value}\r\n".encode() for name, value in head)
        self.transport.write(STATUS_LINE[refusal.status] + lines + b"\r\n" + body)
        self.transport.close()
