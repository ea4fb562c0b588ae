"""How far a tablet's pulls are behind its scope, right while other tablets push; and
the pulls' bookkeeping, which never makes a pull wait: on both databases."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select, update

from schemas import Device
from schemas.types import utcnow
from sync.platform.database import is_postgresql, open_session
from tests.asgi import TestClient
from tests.conftest import Caller, World, all_at_once
from tests.sync_support import Tablet, pull_all


def health_of(caller: Caller, tablet: Tablet) -> dict[str, Any]:
    answer = caller.get("/devices/health", params={"limit": 500})
    assert answer.status_code == 200, answer.text
    mine = tablet.device.tokens["device_id"]
    [item] = [item for item in answer.json()["items"] if item["device_id"] == mine]
    return dict(item)


def own_client(caller: Caller) -> Caller:
    """The caller on a client of its own, for another thread."""
    client = TestClient(caller.client.app, base_url=str(caller.client.base_url))
    return Caller(
        client, caller.user_id, caller.username, caller.password, caller.role, caller.tokens
    )


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def device_row(world: World, tablet: Tablet) -> Device:
    with Session(world.engine) as session:
        found = session.get(Device, uuid.UUID(tablet.device.tokens["device_id"]))
        assert found is not None
        return found


def test_the_lag_is_right_while_other_tablets_push(world: World) -> None:
    here, there, quiet = world.sector("AM-01"), world.sector("AM-02"), world.sector("AM-03")
    watcher = Tablet(world.device(world.user("ranger", sector_ids=[here["id"]])))
    bystander = Tablet(world.device(world.user("ranger", sector_ids=[quiet["id"]])))
    pushers = [
        (Tablet(world.device(world.user("ranger", sector_ids=[sector["id"]]))), sector)
        for sector in (here, here, there)
    ]
    _, cursor = pull_all(watcher.device)
    pull_all(bystander.device)
    office = own_client(world.user("coordinator"))
    before = health_of(office, watcher)
    assert before["behind_since"] is None
    assert before["lag_seconds"] is None
    assert before["pulled_seq"] == before["newest_seq"] is not None

    done = threading.Event()

    def push_patrols(pusher: tuple[Tablet, dict[str, Any]]) -> None:
        tablet, sector = pusher
        tablet.device = own_client(tablet.device)
        for _ in range(6):
            result = tablet.send("patrol", str(uuid.uuid4()), "create", {"sector_id": sector["id"]})
            assert result["status"] == "applied", result

    seen: list[dict[str, Any]] = []
    with ThreadPoolExecutor(max_workers=len(pushers)) as pool:
        pushing = [pool.submit(push_patrols, pusher) for pusher in pushers]

        def watch() -> None:
            while not done.is_set():
                seen.append(health_of(office, watcher))

        watching = threading.Thread(target=watch)
        watching.start()
        for future in pushing:
            future.result(timeout=120)
        done.set()
        watching.join(timeout=60)
    assert not watching.is_alive()

    # While they pushed: the newest change in its scope only ever moved on, and once
    # something was waiting for it, the oldest waiting change stayed the same.
    newest = [item["newest_seq"] for item in seen]
    assert newest == sorted(newest)
    waiting = {item["behind_since"] for item in seen if item["behind_since"] is not None}
    assert len(waiting) <= 1
    after = health_of(office, watcher)
    assert after["pulled_seq"] == before["pulled_seq"]
    assert after["newest_seq"] > before["newest_seq"]
    assert after["lag_seconds"] >= 0
    calm = health_of(office, bystander)
    assert (calm["behind_since"], calm["pulled_seq"]) == (None, calm["newest_seq"])

    # What its next pull brings agrees: the oldest change waiting, all twelve patrols
    # of its sector, none of the other sector's.
    changes, _ = pull_all(watcher.device, cursor)
    assert len(changes) == 12
    assert moment(after["behind_since"]) == moment(changes[0]["updated_at"])
    caught_up = health_of(office, watcher)
    assert caught_up["behind_since"] is None
    assert caught_up["lag_seconds"] is None
    assert caught_up["pulled_seq"] == caught_up["newest_seq"] == after["newest_seq"]


def test_an_extension_worker_is_behind_only_for_their_communities(world: World) -> None:
    sector = world.sector("AM-01")
    mine, theirs = world.community(sector["id"]), world.community(sector["id"])
    worker = Tablet(world.device(world.user("extension_worker", community_ids=[mine["id"]])))
    other = Tablet(world.device(world.user("extension_worker", community_ids=[theirs["id"]])))
    pull_all(worker.device)
    office = world.user("coordinator")

    result = other.send(
        "person",
        str(uuid.uuid4()),
        "create",
        {
            "community_id": theirs["id"],
            "given_names": "Rosa",
            "paternal_surname": "Tapullima",
            "sex": "female",
        },
    )
    assert result["status"] == "applied", result

    assert health_of(office, worker)["behind_since"] is None
    never = health_of(office, other)
    assert (never["last_pull_at"], never["pulled_seq"]) == (None, None)
    assert never["behind_since"] is not None  # it never pulled: everything waits for it


def test_a_pull_is_noted_once_a_minute_and_when_it_catches_up(world: World) -> None:
    sector = world.sector("AM-01")
    tablet = Tablet(world.device(world.user("ranger", sector_ids=[sector["id"]])))
    for _ in range(3):
        tablet.send("patrol", str(uuid.uuid4()), "create", {"sector_id": sector["id"]})
    device = tablet.device

    first = device.get("/sync/pull", params={"limit": 1}).json()
    noted = device_row(world, tablet)
    assert noted.last_pull_at is not None
    assert noted.pulled_seq is not None
    second = device.get("/sync/pull", params={"limit": 1, "cursor": first["cursor"]}).json()
    assert second["has_more"]
    unchanged = device_row(world, tablet)
    assert (unchanged.last_pull_at, unchanged.pulled_seq) == (noted.last_pull_at, noted.pulled_seq)

    changes, cursor = pull_all(device, second["cursor"])
    assert changes
    caught_up = device_row(world, tablet)
    assert caught_up.pulled_seq is not None
    assert caught_up.pulled_seq > noted.pulled_seq
    # Polling with nothing new writes nothing within the minute, then once.
    assert device.get("/sync/pull", params={"cursor": cursor}).json()["changes"] == []
    assert device_row(world, tablet).last_pull_at == caught_up.last_pull_at
    with Session(world.engine) as session:
        earlier = utcnow() - timedelta(minutes=2)
        session.exec(
            update(Device).where(col(Device.id) == caught_up.id).values(last_pull_at=earlier)
        )
        session.commit()
    device.get("/sync/pull", params={"cursor": cursor})
    again = device_row(world, tablet)
    assert again.last_pull_at is not None
    assert again.last_pull_at > earlier
    assert again.last_seen_at == again.last_pull_at  # a pull is the device's contact


def test_a_pull_is_never_held_up_by_its_bookkeeping(world: World) -> None:
    """Another transaction holds what the note would write — SQLite's one write lock, or
    on PostgreSQL this device's row, as a long push of the same tablet does — until the
    pull has answered. A pull that waited for it would not answer before the deadline
    (the lock is held until then, and SQLite's busy timeout is longer)."""
    sector = world.sector("AM-01")
    tablet = Tablet(world.device(world.user("ranger", sector_ids=[sector["id"]])))
    tablet.send("patrol", str(uuid.uuid4()), "create", {"sector_id": sector["id"]})
    device = own_client(tablet.device)
    holder = open_session(world.engine, write=True)
    try:
        if is_postgresql(holder):
            holder.exec(
                select(Device).where(Device.user_id == tablet.device.user_id).with_for_update()
            )
        answers: list[Any] = []
        pulling = threading.Thread(target=lambda: answers.append(device.get("/sync/pull")))
        pulling.start()
        pulling.join(timeout=20)
        assert not pulling.is_alive(), "the pull waited for the lock its bookkeeping wanted"
        [answer] = answers
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["changes"]) >= 1
    finally:
        holder.rollback()
        holder.close()
    assert device_row(world, tablet).last_pull_at is None  # skipped, not waited for

    device.get("/sync/pull")

    assert device_row(world, tablet).last_pull_at is not None  # the next pull notes it


def test_tablets_pulling_at_once_are_all_answered_and_noted(world: World) -> None:
    sector = world.sector("AM-01")
    tablets = [
        Tablet(world.device(world.user("ranger", sector_ids=[sector["id"]]))) for _ in range(6)
    ]
    tablets[0].send("patrol", str(uuid.uuid4()), "create", {"sector_id": sector["id"]})
    queue = list(tablets)

    def pull(client: TestClient) -> Any:
        tablet = queue.pop()
        return client.get("/sync/pull", headers=tablet.device.headers)

    answers = all_at_once(world.client, pull, times=len(tablets))

    assert [answer.status_code for answer in answers] == [200] * len(tablets)
    # A note a busy moment skipped is written by the device's next pull.
    for tablet in tablets:
        if device_row(world, tablet).last_pull_at is None:
            assert tablet.device.get("/sync/pull").status_code == 200
        assert device_row(world, tablet).last_pull_at is not None
