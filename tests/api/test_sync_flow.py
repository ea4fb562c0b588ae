"""The main path of sync over HTTP: a ranger's tablet pushes a patrol and pulls it back."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from sqlalchemy.engine import Engine

from tests.conftest import World
from tests.sync_support import change, push


def test_a_ranger_pushes_a_patrol_and_pulls_it_back_with_the_sector(world: World) -> None:
    sector = world.sector("AM-01")
    ranger = world.user("ranger", sector_ids=[sector["id"]])
    tablet = world.device(ranger)
    patrol_id = str(uuid.uuid4())

    answer = push(
        tablet,
        change(
            "patrol", patrol_id, "create", 1, {"sector_id": sector["id"], "objective": "Río Mayo"}
        ),
    )

    assert answer["results"][0]["status"] == "applied", answer
    assert answer["results"][0]["version"] == 1
    assert answer["last_seq"] == 1

    pulled = tablet.get("/sync/pull").json()
    kinds = {(c["entity"], c["id"]): c for c in pulled["changes"]}
    assert ("sector", sector["id"]) in kinds
    assert kinds[("patrol", patrol_id)]["fields"]["objective"] == "Río Mayo"
    assert kinds[("patrol", patrol_id)]["op"] == "upsert"
    assert pulled["has_more"] is False

    again = tablet.get("/sync/pull", params={"cursor": pulled["cursor"]}).json()
    assert again["changes"] == []

    update = change("patrol", patrol_id, "update", 2, {"comment": "lluvia"}, base_version=1)
    assert push(tablet, update)["results"][0]["status"] == "applied"
    later = tablet.get("/sync/pull", params={"cursor": pulled["cursor"]}).json()
    assert [(c["id"], c["version"]) for c in later["changes"]] == [(patrol_id, 2)]


def test_a_push_body_is_read_before_the_database_is_touched(world: World, engine: Engine) -> None:
    """A tablet trickling its batch over 2G must not hold a connection (on SQLite, the
    write lock) while it uploads: the body is read before the transaction opens."""
    sector = world.sector()
    tablet = world.device(world.user("ranger", sector_ids=[sector["id"]]))
    body = json.dumps(
        {
            "protocol": 1,
            "device_id": tablet.tokens["device_id"],
            "changes": [
                change("patrol", str(uuid.uuid4()), "create", 1, {"sector_id": sector["id"]})
            ],
        }
    ).encode()
    chunks = [body[:40], body[40:80], body[80:]]
    held_while_uploading: list[int] = []
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        held_while_uploading.append(engine.pool.checkedout())  # type: ignore[attr-defined]
        if chunks:
            chunk = chunks.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/sync/push",
        "raw_path": b"/api/v1/sync/push",
        "root_path": "",
        "query_string": b"",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 5000),
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {tablet.tokens['access_token']}".encode()),
        ],
    }
    asyncio.run(world.client.app(scope, receive, send))  # type: ignore[arg-type]

    assert sent[0]["status"] == 200, sent
    assert held_while_uploading[:3] == [0, 0, 0]


def test_admins_see_what_deferred_changes_wait_for_until_it_arrives(world: World) -> None:
    sector = world.sector()
    community = world.community(sector["id"])
    worker = world.user("extension_worker", community_ids=[community["id"]])
    tablet = world.device(worker)
    session_id, person_id, attendance_id = (str(uuid.uuid4()) for _ in range(3))
    fields = {"session_id": session_id, "person_id": person_id}

    answer = push(tablet, change("attendance", attendance_id, "create", 1, fields))

    assert answer["results"][0]["status"] == "deferred"
    waiting = world.admin.get("/sync/deferred").json()["items"]
    assert [(w["record_id"], w["waiting_for_entity"], w["waiting_for_id"]) for w in waiting] == [
        (attendance_id, "training_session", session_id)
    ]
    assert worker.get("/sync/deferred").status_code == 403

    session = {
        "program": "coffee_production",
        "community_id": community["id"],
        "starts_at": "2026-11-02T09:00:00-05:00",
    }
    person = {
        "given_names": "Rosa",
        "paternal_surname": "Tapullima",
        "community_id": community["id"],
    }
    push(
        tablet,
        change("training_session", session_id, "create", 2, session),
        change("person", person_id, "create", 3, person),
    )
    assert world.admin.get("/sync/deferred").json() == {
        "items": [],
        "total": 0,
        "limit": 100,
        "offset": 0,
    }
    pulled = {c["id"]: c for c in tablet.get("/sync/pull").json()["changes"]}
    assert pulled[attendance_id]["op"] == "upsert"
    assert pulled[attendance_id]["fields"]["community_id"] == community["id"]


def test_a_change_with_a_nul_or_an_overlong_name_is_rejected_alone(world: World) -> None:
    """One bad change never blocks the rest of its batch, even one the database could
    not store as sent."""
    sector = world.sector()
    tablet = world.device(world.user("ranger", sector_ids=[sector["id"]]))
    good_id = str(uuid.uuid4())
    nul = change(
        "patrol", str(uuid.uuid4()), "create", 1, {"sector_id": sector["id"], "objective": "a\x00b"}
    )
    long_entity = change("p" * 500, str(uuid.uuid4()), "create", 2, {})
    long_op = change("patrol", str(uuid.uuid4()), "x" * 40, 3, {})
    good = change("patrol", good_id, "create", 4, {"sector_id": sector["id"]})

    answer = push(tablet, nul, long_entity, long_op, good)

    assert [(r["status"], (r.get("errors") or [{}])[0].get("code")) for r in answer["results"]] == [
        ("rejected", "nul_character"),
        ("rejected", "unknown_entity"),
        ("rejected", "unknown_op"),
        ("applied", None),
    ]
    listed = world.admin.get("/sync/rejected").json()["items"]
    assert {r["change_id"] for r in listed} == {
        nul["change_id"],
        long_entity["change_id"],
        long_op["change_id"],
    }
    again = push(tablet, nul)
    assert again["results"][0]["replayed"] is True
    assert again["results"][0]["errors"][0]["code"] == "nul_character"
