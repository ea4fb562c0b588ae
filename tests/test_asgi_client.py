"""The tests' client (``tests.asgi``) answers as Starlette's own does, in one trip."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient as StarletteTestClient

from tests.asgi import TestClient


class Broken(Exception):
    pass


def app() -> FastAPI:
    made = FastAPI()

    @made.post("/api/echo")
    async def echo(request: Request) -> dict[str, object]:
        return {
            "body": (await request.body()).decode(),
            "path": request.url.path,
            "query": request.url.query,
            "host": request.headers["host"],
            "client": request.client.host if request.client else None,
        }

    @made.get("/api/parts")
    def parts() -> StreamingResponse:
        def lines() -> Iterator[bytes]:
            yield from (b"one,", b"two,", b"three")

        return StreamingResponse(lines(), media_type="text/csv")

    @made.get("/api/broken")
    def broken() -> None:
        raise Broken("in the app")

    return made


@pytest.mark.parametrize(
    "client_class", [StarletteTestClient, TestClient], ids=["starlette", "one-trip"]
)
def test_a_request_is_answered_as_starlettes_client_answers_it(
    client_class: type[StarletteTestClient],
) -> None:
    with client_class(app(), base_url="http://testserver/api") as client:
        answer = client.post("/echo?a=1&b=%C3%B1", content=b"\xc3\xb1and\xc3\xba")
        assert answer.status_code == 200
        assert answer.json() == {
            "body": "ñandú",
            "path": "/api/echo",
            "query": "a=1&b=%C3%B1",
            "host": "testserver",
            "client": "testclient",
        }
        with client.stream("GET", "/parts") as streamed:
            assert list(streamed.iter_raw()) == [b"one,", b"two,", b"three"]
            assert streamed.headers["content-type"].startswith("text/csv")
        assert client.head("/parts").content == b""
        with pytest.raises(Broken):
            client.get("/broken")
    with client_class(app(), raise_server_exceptions=False) as client:
        assert client.get("/api/broken").status_code == 500
