"""Real HTTP against a real ``fieldsync serve`` with two worker processes, on each backend.

A newcomer's first hour: migrate, make the first admin, serve, set up a sector and a
ranger, enroll a tablet, lose it. Revocation must hold in every server process, so
the refusals are checked until each worker has been seen answering.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from bench.connections import held_by, open_connections, serving_processes
from tests.conftest import PASSWORD
from tests.servers import Deployment, Server, deployment_fixture  # noqa: F401 (a fixture)

pytestmark = pytest.mark.slow

WORKERS = 2
MAX_REFUSAL_ROUNDS = 200


def worker_serving(server: Server, client_port: int) -> int | None:
    """Which worker process holds the accepted end of the connection from ``client_port``."""
    workers = serving_processes(server.process.pid, server.port)
    held = held_by(workers, open_connections(server.port, remote_port=client_port))
    return next(iter(held), None)


@pytest.fixture
def server(deployment: Deployment) -> Server:
    """``fieldsync serve --workers 2`` on a fresh, migrated database with an admin ``boss``."""
    return deployment.start(workers=WORKERS)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def created(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def assert_refused(answer: httpx.Response) -> None:
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"] in {"token_revoked", "device_revoked"}, answer.text


def test_a_newcomer_enrolls_a_tablet_and_a_revoked_tablet_is_refused_by_every_worker(
    server: Server,
) -> None:
    api = f"{server.base_url}/api/v1"
    with httpx.Client(base_url=api, timeout=10) as office:
        login = office.post("/auth/token", data={"username": "boss", "password": PASSWORD})
        assert login.status_code == 200, login.text
        office.headers.update(bearer(login.json()["access_token"]))

        sector = created(office.post("/sectors", json={"code": "AM-01", "name": "Alto Mayo 1"}))
        created(
            office.post(
                "/communities",
                json={"name": "Nuevo Edén", "sector_id": sector["id"], "kind": "settlement"},
            )
        )
        ranger = created(
            office.post(
                "/users",
                json={
                    "username": "rosa",
                    "password": PASSWORD,
                    "full_name": "Rosa Tapia",
                    "role": "ranger",
                    "sector_ids": [sector["id"]],
                },
            )
        )
        code = created(office.post("/devices", json={"label": "Tablet 7", "user_id": ranger["id"]}))

        with httpx.Client(base_url=api, timeout=10) as device:
            enrolled = device.post(
                "/devices/enroll", json={"enrollment_code": code["enrollment_code"]}
            )
            assert enrolled.status_code == 200, enrolled.text
            tablet = enrolled.json()
            assert tablet["device_id"] == code["device_id"]

            me = device.get("/auth/me", headers=bearer(tablet["access_token"]))
            assert me.status_code == 200, me.text
            assert me.json()["username"] == "rosa"

            # A live pair, rotated once, is what the thief holds when the tablet is lost.
            rotated = device.post("/auth/refresh", json={"refresh_token": tablet["refresh_token"]})
            assert rotated.status_code == 200, rotated.text
            stolen = rotated.json()

        revoked = office.post(f"/devices/{code['device_id']}/revoke")
        assert revoked.status_code == 200, revoked.text

    answered_by: set[int] = set()
    for _ in range(MAX_REFUSAL_ROUNDS):
        # A new connection each round, so that the workers take turns accepting.
        with httpx.Client(base_url=api, timeout=10) as thief:
            assert_refused(thief.get("/auth/me", headers=bearer(stolen["access_token"])))
            assert_refused(
                thief.post("/auth/refresh", json={"refresh_token": stolen["refresh_token"]})
            )
            refused = thief.get("/auth/me", headers=bearer(stolen["access_token"]))
            assert_refused(refused)
            client_port = refused.extensions["network_stream"].get_extra_info("client_addr")[1]
            worker = worker_serving(server, client_port)
        assert worker is not None, "no worker process holds the connection"
        answered_by.add(worker)
        if len(answered_by) == WORKERS:
            break
    assert len(answered_by) == WORKERS, f"only workers {answered_by} answered"


def test_tablets_connecting_at_once_are_spread_over_the_workers(server: Server) -> None:
    """Tablets that connect in the same instant keep their connections for every
    request after, so each worker must take its share as they arrive (api/accept.py),
    not the first to wake take them all."""
    tablets = 2 * WORKERS
    ready = threading.Barrier(tablets)
    done = threading.Barrier(tablets + 1)
    ports: list[int] = []

    def tablet() -> None:
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            ready.wait()
            answer = client.get("/healthz")
            assert answer.status_code == 200, answer.text
            ports.append(answer.extensions["network_stream"].get_extra_info("client_addr")[1])
            done.wait()  # every connection still open while they are counted
            done.wait()

    threads = [threading.Thread(target=tablet) for _ in range(tablets)]
    for thread in threads:
        thread.start()
    done.wait(timeout=30)
    try:
        sockets = open_connections(server.port)
        held = held_by(serving_processes(server.process.pid, server.port), sockets)
    finally:
        done.wait(timeout=30)
        for thread in threads:
            thread.join()
    assert len(ports) == tablets
    assert sorted(held.values()) == [2] * WORKERS, f"connections by worker: {dict(held)}"
