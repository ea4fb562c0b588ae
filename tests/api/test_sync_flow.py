"""The main path of sync over HTTP: a ranger's tablet pushes a patrol and pulls it back."""

from __future__ import annotations

import uuid
from typing import Any

from tests.conftest import Caller, World


def change(
    entity: str, record_id: str, op: str, seq: int, fields: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    return {
        "change_id": str(uuid.uuid4()),
        "seq": seq,
        "entity": entity,
        "id": record_id,
        "op": op,
        "base_version": extra.pop("base_version", None),
        "schema_version": 1,
        "recorded_at": "2026-11-02T09:31:07-05:00",
        "fields": fields,
    }


def push(device: Caller, *changes: dict[str, Any]) -> Any:
    answer = device.post(
        "/sync/push",
        json={
            "protocol": 1,
            "device_id": device.tokens["device_id"],
            "batch_id": str(uuid.uuid4()),
            "changes": list(changes),
        },
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


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
