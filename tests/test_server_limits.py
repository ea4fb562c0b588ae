"""Real servers: bodies over the cap, slow headers and stalled bodies never hold a worker."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.memory import tree
from tests.servers import Deployment, Server, module_deployment_fixture  # noqa: F401 (a fixture)

pytestmark = pytest.mark.slow

MiB = 1024 * 1024
# Low limits, so that the tests wait a second or two, not the defaults' minute.
HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0
# How long past a limit a refusal may take to arrive (a loaded machine, the loop's tick).
GRACE = 4.0


@pytest.fixture(scope="module")
def server(module_deployment: Deployment) -> Server:
    """One server for the module: no test here leaves anything behind but closed
    connections, and each start costs seconds."""
    module_deployment.env["FIELDSYNC_HEADER_TIMEOUT_SECONDS"] = str(HEADER_TIMEOUT)
    module_deployment.env["FIELDSYNC_BODY_TIMEOUT_SECONDS"] = str(BODY_TIMEOUT)
    # Two workers: the protocol and the limits hold in the processes uvicorn spawns.
    return module_deployment.start(workers=2)


def resident_bytes(server: Server) -> int:
    """VmRSS of the server's processes (the supervisor and its workers), summed."""
    total = 0
    for pid in tree(server.pid):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def zeros(total: int, chunk: int = MiB) -> Iterator[bytes]:
    block = b"0" * chunk
    for _ in range(total // chunk):
        yield block


def read_until_closed(connection: socket.socket, deadline: float) -> bytes:
    """Everything the server sends until it closes the connection; fails at ``deadline``."""
    received = b""
    while time.monotonic() < deadline:
        connection.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            part = connection.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            return received
        if not part:
            return received
        received += part
    pytest.fail(f"the server held the connection past the limit; it sent {received!r}")


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_200_mib_body_to_refresh_is_a_413_and_the_server_does_not_grow(
    server: Server, declared: bool
) -> None:
    before = resident_bytes(server)
    size = 200 * MiB
    headers = {"Content-Type": "application/json"}
    if declared:
        headers["Content-Length"] = str(size)
    with httpx.Client(timeout=30) as client:
        answer = client.post(f"{server.api}/auth/refresh", content=zeros(size), headers=headers)
    after = resident_bytes(server)
    assert answer.status_code == 413, answer.text
    assert answer.json()["code"] == "payload_too_large"
    assert after - before < 100 * MiB, (before, after)


def connect(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=GRACE)


def test_half_a_request_line_is_answered_408_and_closed_within_the_header_limit(
    server: Server,
) -> None:
    with connect(server) as connection:
        connection.sendall(b"GET /heal")
        sent = time.monotonic()
        answer = read_until_closed(connection, sent + HEADER_TIMEOUT + GRACE)
        waited = time.monotonic() - sent

    assert waited >= HEADER_TIMEOUT * 0.9
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"request_timeout" in answer


def test_a_kept_alive_connection_that_starts_a_second_request_and_stalls_is_closed(
    server: Server,
) -> None:
    with connect(server) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        first = b""
        while not first.endswith(b"}"):  # the whole of the first answer, ended by its JSON
            part = connection.recv(65536)
            assert part, first
            first += part
        assert first.startswith(b"HTTP/1.1 200 "), first
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHo")
        sent = time.monotonic()
        answer = read_until_closed(connection, sent + HEADER_TIMEOUT + GRACE)

    assert answer.startswith(b"HTTP/1.1 408 "), answer


def test_headers_without_end_are_a_431_and_closed(server: Server) -> None:
    with connect(server) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        try:
            for number in range(2000):  # 2000 lines of 64 bytes: twice the cap
                connection.sendall(b"X-Filler-%04d: %s\r\n" % (number, b"f" * 48))
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed on us once past the cap, as it should be
        answer = read_until_closed(connection, time.monotonic() + GRACE)

    assert answer.startswith(b"HTTP/1.1 431 "), answer
    assert b"headers_too_large" in answer


def test_a_body_that_stalls_after_10_of_1000_bytes_is_a_408_and_the_connection_closes(
    server: Server,
) -> None:
    with connect(server) as connection:
        connection.sendall(
            b"POST /api/v1/auth/refresh HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
            b'{"refresh_'
        )
        sent = time.monotonic()
        answer = read_until_closed(connection, sent + BODY_TIMEOUT + GRACE)
        waited = time.monotonic() - sent

    assert waited >= BODY_TIMEOUT * 0.9
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), answer
    assert b"application/problem+json" in head
    assert b'"code":"request_timeout"' in body
