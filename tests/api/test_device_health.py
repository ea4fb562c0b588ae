"""``GET /devices/health``: every device a caller manages, with its user, when it was
last heard from and pushed, and the deferred and rejected changes held for it."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlmodel import Session, col, update

from schemas import Device
from schemas.types import utcnow
from tests.conftest import World, assert_problem
from tests.sync_support import Tablet


def _device_id(tablet: Tablet) -> str:
    return str(tablet.device.tokens["device_id"])


def test_health_is_a_page_of_devices_not_a_device_id(world: World) -> None:
    sector = world.sector("AM-01")
    ranger = world.user("ranger", username="ana-quispe", sector_ids=[sector["id"]])
    tablet = Tablet(world.device(ranger, label="Tablet 07"))
    patrol_id = str(uuid.uuid4())
    assert tablet.send("patrol", patrol_id, "create", {"sector_id": sector["id"]})["status"] == (
        "applied"
    )
    rejected = tablet.send("patrol", str(uuid.uuid4()), "create", {"sector_id": "nowhere"})
    assert rejected["status"] == "rejected", rejected
    tablet.defer_one()

    answer = world.user("coordinator").get("/devices/health")

    assert answer.status_code == 200, answer.text
    page = answer.json()
    assert (page["total"], page["limit"], page["offset"]) == (1, 50, 0)
    [health] = page["items"]
    assert health["device_id"] == _device_id(tablet)
    assert (health["label"], health["status"]) == ("Tablet 07", "active")
    assert health["user"] == {
        "user_id": str(ranger.user_id),
        "username": "ana-quispe",
        "full_name": "Ana-Quispe",
        "role": "ranger",
    }
    assert health["last_seen_at"] is not None
    assert health["last_push_at"] is not None
    assert health["last_seq"] == 3
    assert (health["deferred_changes"], health["rejected_changes"]) == (1, 1)


def test_silent_days_lists_only_the_devices_not_heard_from(world: World) -> None:
    sector = world.sector("AM-01")
    quiet = Tablet(world.device(world.user("ranger", sector_ids=[sector["id"]])))
    Tablet(world.device(world.user("ranger", sector_ids=[sector["id"]])))
    with Session(world.engine) as session:
        session.exec(
            update(Device)
            .where(col(Device.id) == uuid.UUID(_device_id(quiet)))
            .values(last_seen_at=utcnow() - timedelta(days=10))
        )
        session.commit()
    admin = world.admin

    silent = admin.get("/devices/health", params={"silent_days": 7}).json()

    assert [d["device_id"] for d in silent["items"]] == [_device_id(quiet)]
    every = admin.get("/devices/health").json()["items"]
    assert len(every) == 2
    assert every[0]["device_id"] == _device_id(quiet)  # silent longest first
    assert_problem(admin.get("/devices/health", params={"silent_days": 0}), 422)
    assert_problem(admin.get("/devices/health", params={"silnt_days": 3}), 422)


def test_a_lead_sees_the_devices_of_their_sectors_rangers_and_rangers_none(
    world: World,
) -> None:
    sector, other = world.sector("AM-01"), world.sector("AM-02")
    mine = world.user("ranger", sector_ids=[sector["id"]])
    theirs = world.user("ranger", sector_ids=[other["id"]])
    own = Tablet(world.device(mine))
    Tablet(world.device(theirs))
    lead = world.user("ranger_lead", sector_ids=[sector["id"]])

    seen: dict[str, Any] = lead.get("/devices/health").json()

    assert [d["device_id"] for d in seen["items"]] == [_device_id(own)]
    assert_problem(mine.get("/devices/health"), 403)


def test_health_counts_the_files_a_device_still_owes_until_they_arrive(world: World) -> None:
    from tests.api.test_record_attachments import photo, ref, upload

    sector = world.sector("AM-01")
    tablet = Tablet(world.device(world.user("ranger", sector_ids=[sector["id"]])))
    stump, truck = photo(), photo()
    tablet.send(
        "patrol",
        str(uuid.uuid4()),
        "create",
        {"sector_id": sector["id"], "attachments": [ref(stump), ref(truck)]},
    )
    coordinator = world.user("coordinator")

    def owed() -> int:
        [health] = coordinator.get("/devices/health").json()["items"]
        return int(health["attachments_owed"])

    assert owed() == 2
    upload(tablet.device, stump)
    assert owed() == 1
