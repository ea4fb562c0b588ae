"""The tests' HTTP client for the app in process: Starlette's ``TestClient``, each
request handed to the app in one trip to the client's event loop thread.

Starlette's own transport makes about eight trips per request (an event, a stream, a
cancel scope, the app's task, each part of the body...), each a wake-up of the loop's
thread: about 3 ms a request on a 2-core machine, for a few thousand tests a tenth of
the suite. Here the app runs whole in one call, with what it sends gathered and given
back as the response: the same scope, the body in one message, a disconnect only once
the response is complete, the body's parts as the app sent them. The app's exception
is raised in the test (``raise_server_exceptions``), or, when it is not, a response
not started is a 500, as Starlette's client does.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import anyio
import httpx
from fastapi.testclient import TestClient as StarletteTestClient
from starlette.types import Message

__all__ = ["TestClient"]

DEFAULT_PORTS = {"http": 80, "https": 443}


class TestClient(StarletteTestClient):
    """``fastapi.testclient.TestClient``, a request a trip (the module says why)."""

    __test__ = False  # not a test class, for pytest

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        client: Any = self  # httpx's own attribute, which mypy cannot type here
        client._transport = _OneTrip(client._transport)


class _Parts(httpx.SyncByteStream):
    def __init__(self, parts: list[bytes]) -> None:
        self.parts = parts

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.parts)


class _OneTrip(httpx.BaseTransport):
    """Starlette's transport (``starlette.testclient._TestClientTransport``, whose
    settings it reads), each HTTP request run in one call on its portal."""

    def __init__(self, starlette: Any) -> None:
        self.starlette = starlette

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in DEFAULT_PORTS:  # a websocket: Starlette's own way
            response: httpx.Response = self.starlette.handle_request(request)
            return response
        own = self.starlette
        headers = [] if "host" in request.headers else [(b"host", url.netloc)]
        headers += [(k.lower().encode(), v.encode()) for k, v in request.headers.multi_items()]
        scope = {
            "type": "http",
            "http_version": "1.1",
            "method": request.method,
            "path": unquote(url.path),
            "raw_path": url.raw_path.split(b"?", 1)[0],
            "root_path": own.root_path,
            "scheme": url.scheme,
            "query_string": url.query,
            "headers": headers,
            "client": own.client,
            "server": [url.raw_host.decode("ascii"), url.port or DEFAULT_PORTS[url.scheme]],
            "extensions": {"http.response.debug": {}},
            "state": own.app_state.copy(),
        }
        body = request.read()
        start: Message = {}
        parts: list[bytes] = []

        async def exchange() -> BaseException | None:
            complete = anyio.Event()
            received = False

            async def receive() -> Message:
                nonlocal received
                if received:
                    await complete.wait()
                    return {"type": "http.disconnect"}
                received = True
                return {"type": "http.request", "body": body}

            async def send(message: Message) -> None:
                if message["type"] == "http.response.start":
                    start.update(message)
                elif message["type"] == "http.response.body":
                    if chunk := bytes(message.get("body", b"")):
                        parts.append(chunk)
                    if not message.get("more_body", False):
                        complete.set()

            try:
                await own.app(scope, receive, send)
            except BaseException as error:
                return error
            finally:
                complete.set()
            return None

        with own.portal_factory() as portal:
            error = portal.call(exchange)
        if error is not None and own.raise_server_exceptions:
            raise error
        if not start:
            return httpx.Response(500, request=request)
        return httpx.Response(
            status_code=start["status"],
            headers=[(k.decode(), v.decode()) for k, v in start.get("headers", [])],
            stream=_Parts([] if request.method == "HEAD" else parts),
            request=request,
        )
