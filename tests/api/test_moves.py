"""Records that change scope: a patrol moved to another sector, a session to another
community, a community to another sector. The tablets of the old scope hear the
record leave (``op: "delete"``, for what moved with it too), those of the new scope
receive it, and a tablet holding both keeps it without a delete.

Each tablet here keeps what its pulls told it, as a real one does, and is checked
against what the server holds in its scope.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from schemas import Patrol, RecordVersion, SyncEntry, SyncExit
from sync.engine.changelog import MOVED_WITH_PARENT
from tests.api.test_fleet_lag import health_of
from tests.api.test_push import patrol_fields, segment_fields, session_fields
from tests.conftest import Caller, World, assert_problem
from tests.sync_support import Tablet, push
from tests.sync_support import change as wire_change

Key = tuple[str, str]


class Holder:
    """A tablet and what it holds, as its pulls told it."""

    def __init__(self, world: World, user: Caller) -> None:
        self.tablet = Tablet(world.device(user))
        self.cursor: str | None = None
        self.held: dict[Key, dict[str, Any]] = {}

    def send(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self.tablet.send(*args, **kwargs)

    def pull(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Pull to the end, page by page; the changes received."""
        received: list[dict[str, Any]] = []
        for _ in range(1000):
            params: dict[str, Any] = {"limit": limit} if limit else {}
            if self.cursor:
                params["cursor"] = self.cursor
            answer = self.tablet.device.get("/sync/pull", params=params)
            assert answer.status_code == 200, answer.text
            page = answer.json()
            self.cursor = page["cursor"]
            for change in page["changes"]:
                key = (change["entity"], change["id"])
                if change["op"] == "delete":
                    self.held.pop(key, None)
                else:
                    self.held[key] = change
            received += page["changes"]
            if not page["has_more"]:
                return received
        raise AssertionError("the pull did not end")

    def holds(self, entity: str) -> dict[str, Any]:
        return {record_id: c["fields"] for (e, record_id), c in self.held.items() if e == entity}


def ops(changes: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {(c["entity"], c["id"], c["op"]) for c in changes}


@pytest.fixture
def category(world: World) -> str:
    answer = world.admin.post(
        "/observation-categories",
        json={"key": "threat.logging", "name_es": "Tala", "name_en": "Logging"},
    )
    assert answer.status_code == 201, answer.text
    return "threat.logging"


def _patrol_with_track(holder: Holder, sector_id: str, category: str) -> dict[str, str]:
    ids = {"patrol": str(uuid.uuid4()), "segment": str(uuid.uuid4())}
    ids["observation"] = str(uuid.uuid4())
    assert holder.send("patrol", ids["patrol"], "create", patrol_fields(sector_id))["status"] == (
        "applied"
    )
    made = holder.send("track_segment", ids["segment"], "create", segment_fields(ids["patrol"]))
    assert made["status"] == "applied", made
    observation = {
        "patrol_id": ids["patrol"],
        "category_key": category,
        "observed_at": "2026-11-02T10:00:00-05:00",
        "lat": -5.9,
        "lon": -77.3,
    }
    made = holder.send("observation", ids["observation"], "create", observation)
    assert made["status"] == "applied", made
    return ids


def _held_patrol(
    world: World, category: str
) -> tuple[dict[str, Any], dict[str, Any], Holder, Holder, dict[str, str]]:
    """Sectors A and B; a patrol with its track in A, held by a ranger of A and by the
    office."""
    a, b = world.sector("AM-A"), world.sector("AM-B")
    here = Holder(world, world.user("ranger", sector_ids=[a["id"]]))
    office = Holder(world, world.user("coordinator"))
    ids = _patrol_with_track(here, a["id"], category)
    here.pull()
    office.pull()
    return a, b, here, office, ids


@pytest.mark.parametrize("mover", ["ranger of both sectors", "coordinator"])
def test_a_patrol_moved_to_another_sector_leaves_the_old_sectors_tablets_with_its_track(
    world: World, engine: Engine, category: str, mover: str
) -> None:
    a, b = world.sector("AM-A"), world.sector("AM-B")
    here = Holder(world, world.user("ranger", sector_ids=[a["id"]]))
    there = Holder(world, world.user("ranger", sector_ids=[b["id"]]))
    both = Holder(world, world.user("ranger", sector_ids=[a["id"], b["id"]]))
    office = Holder(world, world.user("coordinator"))
    ids = _patrol_with_track(here, a["id"], category)
    for holder in (here, there, both, office):
        holder.pull()
    moving = both if mover == "ranger of both sectors" else office

    moved = moving.send("patrol", ids["patrol"], "update", {"sector_id": b["id"]}, base_version=1)

    assert (moved["status"], moved["version"]) == ("applied", 2), moved
    records = {("patrol", ids["patrol"]), ("track_segment", ids["segment"])}
    records.add(("observation", ids["observation"]))
    assert ops(here.pull()) == {(e, i, "delete") for e, i in records}
    assert not here.held.keys() & records
    assert ops(there.pull()) == {(e, i, "upsert") for e, i in records}
    assert there.holds("observation")[ids["observation"]]["sector_id"] == b["id"]
    assert there.holds("patrol")[ids["patrol"]]["sector_id"] == b["id"]
    # The tablet that holds both sectors, and the office, are not told to delete it.
    assert ops(both.pull()) == {(e, i, "upsert") for e, i in records}
    assert ops(office.pull()) == {(e, i, "upsert") for e, i in records}
    # A new tablet of the old sector pulls nothing of it, not even its exit.
    fresh = Holder(world, world.user("ranger", sector_ids=[a["id"]]))
    assert not {(e, i) for e, i, _ in ops(fresh.pull())} & records
    with Session(engine) as session:
        reasons = session.exec(
            select(RecordVersion.entity, RecordVersion.version, RecordVersion.reason).where(
                col(RecordVersion.record_id).in_([uuid.UUID(i) for i in ids.values()]),
                RecordVersion.version == 2,
            )
        ).all()
    assert sorted(reasons) == [
        ("observation", 2, MOVED_WITH_PARENT),
        ("patrol", 2, None),
        ("track_segment", 2, MOVED_WITH_PARENT),
    ]


def test_a_ranger_cannot_move_a_patrol_to_a_sector_they_do_not_hold(
    world: World, category: str
) -> None:
    a, b = world.sector("AM-A"), world.sector("AM-B")
    here = Holder(world, world.user("ranger", sector_ids=[a["id"]]))
    ids = _patrol_with_track(here, a["id"], category)
    here.pull()

    moved = here.send("patrol", ids["patrol"], "update", {"sector_id": b["id"]}, base_version=1)

    assert moved["status"] == "rejected"
    assert moved["errors"][0]["code"] == "out_of_scope"
    assert here.pull() == []


def test_an_observation_put_under_another_sectors_patrol_moves_alone_and_follows_its_patrol(
    world: World, category: str
) -> None:
    a, b = world.sector("AM-A"), world.sector("AM-B")
    here = Holder(world, world.user("ranger", sector_ids=[a["id"]]))
    there = Holder(world, world.user("ranger", sector_ids=[b["id"]]))
    both = Holder(world, world.user("ranger", sector_ids=[a["id"], b["id"]]))
    ids = _patrol_with_track(here, a["id"], category)
    other = str(uuid.uuid4())
    assert there.send("patrol", other, "create", patrol_fields(b["id"]))["status"] == "applied"
    here.pull()
    there.pull()

    moved = both.send(
        "observation", ids["observation"], "update", {"patrol_id": other}, base_version=1
    )
    astray = both.send(
        "observation", ids["observation"], "update", {"sector_id": a["id"]}, base_version=2
    )
    segment = both.send(
        "track_segment", ids["segment"], "update", {"patrol_id": other}, base_version=1
    )

    assert moved["status"] == "applied", moved["errors"]
    assert ops(here.pull()) == {("observation", ids["observation"], "delete")}
    assert ops(there.pull()) == {("observation", ids["observation"], "upsert")}
    assert there.holds("observation")[ids["observation"]]["sector_id"] == b["id"]
    assert astray["status"] == "rejected"
    assert astray["errors"][0]["code"] == "scope_follows_parent"
    # A track is only ever appended to: it moves with its patrol, never alone.
    assert segment["errors"][0]["code"] == "append_only"


def test_a_session_moved_to_another_community_takes_its_attendance_along(
    world: World,
) -> None:
    sector = world.sector()
    x, y = world.community(sector["id"]), world.community(sector["id"])
    here = Holder(world, world.user("extension_worker", community_ids=[x["id"]]))
    there = Holder(world, world.user("extension_worker", community_ids=[y["id"]]))
    office = Holder(world, world.user("coordinator"))
    session_id, person_id, attendance_id = (str(uuid.uuid4()) for _ in range(3))
    person = {"given_names": "Rosa", "paternal_surname": "Huamán", "community_id": x["id"]}
    assert here.send("person", person_id, "create", person)["status"] == "applied"
    assert here.send("training_session", session_id, "create", session_fields(x["id"]))[
        "status"
    ] == ("applied")
    attendance = {"session_id": session_id, "person_id": person_id, "role": "participant"}
    assert here.send("attendance", attendance_id, "create", attendance)["status"] == "applied"
    here.pull()
    there.pull()

    moved = office.send(
        "training_session", session_id, "update", {"community_id": y["id"]}, base_version=1
    )

    assert moved["status"] == "applied", moved
    assert ops(here.pull()) == {
        ("training_session", session_id, "delete"),
        ("attendance", attendance_id, "delete"),
    }
    assert person_id in here.holds("person")  # the person lives where they lived
    assert ops(there.pull()) == {
        ("training_session", session_id, "upsert"),
        ("attendance", attendance_id, "upsert"),
    }
    assert there.holds("attendance")[attendance_id]["community_id"] == y["id"]


def test_a_community_moved_by_an_admin_to_another_sector(world: World) -> None:
    a, b = world.sector("AM-A"), world.sector("AM-B")
    community = world.community(a["id"])
    here = Holder(world, world.user("ranger", sector_ids=[a["id"]]))
    there = Holder(world, world.user("ranger", sector_ids=[b["id"]]))
    worker = Holder(world, world.user("extension_worker", community_ids=[community["id"]]))
    person_id = str(uuid.uuid4())
    person = {"given_names": "Rosa", "paternal_surname": "Huamán"}
    made = worker.send("person", person_id, "create", {**person, "community_id": community["id"]})
    assert made["status"] == "applied", made
    for holder in (here, there, worker):
        holder.pull()
    assert set(worker.holds("sector")) == {a["id"]}

    answer = world.admin.patch(f"/communities/{community['id']}", json={"sector_id": b["id"]})

    assert answer.status_code == 200, answer.text
    assert ops(here.pull()) == {("community", community["id"], "delete")}
    assert ops(there.pull()) == {("community", community["id"], "upsert")}
    # Its extension worker now sees the new sector, not the old; its people are not
    # sent again.
    assert ops(worker.pull()) == {
        ("sector", a["id"], "delete"),
        ("sector", b["id"], "upsert"),
        ("community", community["id"], "upsert"),
    }
    assert set(worker.holds("sector")) == {b["id"]}
    assert person_id in worker.holds("person")


def test_a_tablet_whose_scope_changes_after_a_move_still_hears_the_record_leave(
    world: World, category: str
) -> None:
    a, b, d = world.sector("AM-A"), world.sector("AM-B"), world.sector("AM-D")
    ranger = world.user("ranger", sector_ids=[a["id"]])
    here = Holder(world, ranger)
    office = Holder(world, world.user("coordinator"))
    ids = _patrol_with_track(here, a["id"], category)
    staying = str(uuid.uuid4())
    assert here.send("patrol", staying, "create", patrol_fields(d["id"]))["status"] == "rejected"
    here.pull()
    office.pull()
    assert office.send("patrol", ids["patrol"], "update", {"sector_id": b["id"]}, base_version=1)[
        "status"
    ] == ("applied")
    # The ranger moves to sector D (and A's other records go with the old scope).
    changed = world.admin.patch(f"/users/{ranger.user_id}", json={"sector_ids": [d["id"]]})
    assert changed.status_code == 200, changed.text

    here.pull(limit=1)

    assert not {key for key in here.held if key[0] != "observation_category"} - {
        ("sector", d["id"])
    }


def test_a_record_moved_away_and_back_is_held_at_its_last_version(
    world: World, category: str
) -> None:
    a, b, here, office, ids = _held_patrol(world, category)

    office.send("patrol", ids["patrol"], "update", {"sector_id": b["id"]}, base_version=1)
    back = office.send("patrol", ids["patrol"], "update", {"sector_id": a["id"]}, base_version=2)

    assert back["version"] == 3
    here.pull(limit=1)
    assert here.holds("patrol")[ids["patrol"]]["sector_id"] == a["id"]
    assert here.held[("patrol", ids["patrol"])]["version"] == 3
    assert ("observation", ids["observation"]) in here.held


def test_a_resolution_moves_a_patrol_only_where_the_resolver_may_see(
    world: World, engine: Engine
) -> None:
    a, b = world.sector("AM-A"), world.sector("AM-B")
    one = Holder(world, world.user("ranger", sector_ids=[a["id"]]))
    two = Holder(world, world.user("ranger", sector_ids=[a["id"]]))
    lead = world.user("ranger_lead", sector_ids=[a["id"]])
    coordinator = world.user("coordinator")
    patrol_id = str(uuid.uuid4())
    one.send("patrol", patrol_id, "create", patrol_fields(a["id"]))
    one.send("patrol", patrol_id, "update", {"objective": "A"}, base_version=1)
    clash = two.send("patrol", patrol_id, "update", {"objective": "B"}, base_version=1)
    url = f"/conflicts/{clash['conflict_id']}/resolve"
    body = {"resolution": "custom", "fields": {"sector_id": b["id"]}}
    one.pull()

    refused = assert_problem(lead.post(url, json=body), 422, "validation_failed")
    resolved = coordinator.post(url, json=body)

    assert [e["code"] for e in refused["errors"]] == ["out_of_scope"]
    assert resolved.status_code == 200, resolved.text
    assert ops(one.pull()) == {("patrol", patrol_id, "delete")}
    with Session(engine) as session:
        exits = session.exec(select(SyncExit).where(SyncExit.record_id == uuid.UUID(patrol_id)))
        assert [(e.sector_id, e.version) for e in exits] == [(uuid.UUID(a["id"]), 3)]


def test_a_conflict_follows_its_record_to_the_new_sector(world: World) -> None:
    a, b = world.sector("AM-A"), world.sector("AM-B")
    one = Holder(world, world.user("ranger", sector_ids=[a["id"]]))
    two = Holder(world, world.user("ranger", sector_ids=[a["id"]]))
    office = Holder(world, world.user("coordinator"))
    old_lead = world.user("ranger_lead", sector_ids=[a["id"]])
    new_lead = world.user("ranger_lead", sector_ids=[b["id"]])
    patrol_id = str(uuid.uuid4())
    one.send("patrol", patrol_id, "create", patrol_fields(a["id"]))
    one.send("patrol", patrol_id, "update", {"objective": "A"}, base_version=1)
    clash = two.send("patrol", patrol_id, "update", {"objective": "B"}, base_version=1)
    conflict = f"/conflicts/{clash['conflict_id']}"
    assert old_lead.get(conflict).status_code == 200

    moved = office.send("patrol", patrol_id, "update", {"sector_id": b["id"]}, base_version=2)

    assert moved["status"] == "applied", moved
    assert new_lead.get(conflict).status_code == 200
    assert old_lead.get(conflict).status_code == 404
    settled = new_lead.post(f"{conflict}/resolve", json={"resolution": "keep_server"})
    assert settled.status_code == 200, settled.text


def test_the_office_moves_a_patrol_through_the_api(world: World, category: str) -> None:
    a, b = world.sector("AM-A"), world.sector("AM-B")
    here = Holder(world, world.user("ranger", sector_ids=[a["id"]]))
    there = Holder(world, world.user("ranger", sector_ids=[b["id"]]))
    ids = _patrol_with_track(here, a["id"], category)
    here.pull()
    there.pull()
    url = f"/patrols/{ids['patrol']}/move"
    to_b = {"sector_id": b["id"]}
    lead_of_a = world.user("ranger_lead", sector_ids=[a["id"]])
    lead_of_b = world.user("ranger_lead", sector_ids=[b["id"]])

    assert_problem(here.tablet.device.post(url, json=to_b), 403)
    refused = assert_problem(lead_of_a.post(url, json=to_b), 422, "validation_failed")
    assert [(e["field"], e["code"]) for e in refused["errors"]] == [("sector_id", "out_of_scope")]
    assert_problem(lead_of_b.post(url, json=to_b), 404)
    nowhere = {"sector_id": str(uuid.uuid4())}
    unknown = assert_problem(world.admin.post(url, json=nowhere), 422, "validation_failed")
    assert [e["code"] for e in unknown["errors"]] == ["unknown_reference"]
    stays = world.admin.post(url, json={"sector_id": a["id"]})
    assert (stays.status_code, stays.json()["version"]) == (200, 1)
    coordinator = world.user("coordinator")
    moved = coordinator.post(url, json=to_b)

    assert moved.status_code == 200, moved.text
    assert moved.json() == {"id": ids["patrol"], "version": 2, "sector_id": b["id"]}
    records = {("patrol", ids["patrol"]), ("track_segment", ids["segment"])}
    records.add(("observation", ids["observation"]))
    assert ops(here.pull()) == {(e, i, "delete") for e, i in records}
    assert ops(there.pull()) == {(e, i, "upsert") for e, i in records}
    assert lead_of_b.get(f"/patrols/{ids['patrol']}").status_code == 200
    assert lead_of_a.get(f"/patrols/{ids['patrol']}").status_code == 404
    there.send("patrol", ids["patrol"], "delete", base_version=2)
    assert_problem(coordinator.post(url, json={"sector_id": a["id"]}), 404)


def test_the_office_moves_a_session_through_the_api(world: World) -> None:
    sector = world.sector()
    x, y = world.community(sector["id"]), world.community(sector["id"])
    here = Holder(world, world.user("extension_worker", community_ids=[x["id"]]))
    there = Holder(world, world.user("extension_worker", community_ids=[y["id"]]))
    session_id, person_id, attendance_id = (str(uuid.uuid4()) for _ in range(3))
    person = {"given_names": "Rosa", "paternal_surname": "Huamán", "community_id": x["id"]}
    here.send("person", person_id, "create", person)
    here.send("training_session", session_id, "create", session_fields(x["id"]))
    attendance = {"session_id": session_id, "person_id": person_id, "role": "participant"}
    here.send("attendance", attendance_id, "create", attendance)
    here.pull()
    there.pull()
    url = f"/training-sessions/{session_id}/move"

    assert_problem(here.tablet.device.post(url, json={"community_id": y["id"]}), 403)
    lead = world.user("ranger_lead", sector_ids=[sector["id"]])
    assert_problem(lead.post(url, json={"community_id": y["id"]}), 403)
    unknown = world.admin.post(url, json={"community_id": str(uuid.uuid4())})
    assert [e["code"] for e in assert_problem(unknown, 422)["errors"]] == ["unknown_reference"]
    moved = world.user("coordinator").post(url, json={"community_id": y["id"]})

    assert moved.status_code == 200, moved.text
    assert moved.json() == {"id": session_id, "version": 2, "community_id": y["id"]}
    assert ops(here.pull()) == {
        ("training_session", session_id, "delete"),
        ("attendance", attendance_id, "delete"),
    }
    assert ops(there.pull()) == {
        ("training_session", session_id, "upsert"),
        ("attendance", attendance_id, "upsert"),
    }


def test_a_patrol_moved_in_the_batch_that_made_its_observation_takes_it_along(
    world: World, engine: Engine, category: str
) -> None:
    a, b = world.sector("AM-A"), world.sector("AM-B")
    both = Holder(world, world.user("ranger", sector_ids=[a["id"], b["id"]]))
    there = Holder(world, world.user("ranger", sector_ids=[b["id"]]))
    patrol_id, observation_id = str(uuid.uuid4()), str(uuid.uuid4())
    observation = {
        "patrol_id": patrol_id,
        "category_key": category,
        "observed_at": "2026-11-02T10:00:00-05:00",
        "lat": -5.9,
        "lon": -77.3,
    }
    answer = push(
        both.tablet.device,
        wire_change("patrol", patrol_id, "create", 1, patrol_fields(a["id"])),
        wire_change("observation", observation_id, "create", 2, observation),
        wire_change("patrol", patrol_id, "update", 3, {"sector_id": b["id"]}, base_version=1),
    )

    assert [r["status"] for r in answer["results"]] == ["applied"] * 3
    there.pull()
    held = {
        key: c["fields"]["sector_id"]
        for key, c in there.held.items()
        if key[0] in ("patrol", "observation")
    }
    assert held == {("patrol", patrol_id): b["id"], ("observation", observation_id): b["id"]}
    with Session(engine) as session:
        exits = session.exec(
            select(SyncExit).where(
                col(SyncExit.record_id).in_([uuid.UUID(patrol_id), uuid.UUID(observation_id)])
            )
        ).all()
    assert exits == []  # made and moved before any tablet could hold it in A


def _a_move_and_a_create(
    world: World, category: str
) -> tuple[dict[str, Any], dict[str, Any], Holder, Holder, str, str]:
    """Sectors A and B; a ranger of A holding a patrol with its track, about to be moved
    to B by a ranger of both, who will also make a new patrol in A (its id)."""
    a, b = world.sector("AM-A"), world.sector("AM-B")
    here = Holder(world, world.user("ranger", sector_ids=[a["id"]]))
    both = Holder(world, world.user("ranger", sector_ids=[a["id"], b["id"]]))
    moving = _patrol_with_track(here, a["id"], category)["patrol"]
    here.pull()
    return a, b, here, both, moving, str(uuid.uuid4())


def test_a_move_after_a_create_in_one_batch_numbers_every_entry_and_exit_apart(
    world: World, engine: Engine, category: str
) -> None:
    """The exit of a record that moves takes a number of its own, just before its
    entry's, whatever the batch made before it: a number shared with another entry
    could be skipped by a pull whose page ended between the two."""
    a, b, here, both, moving, made = _a_move_and_a_create(world, category)
    with Session(engine) as session:
        before = max(session.exec(select(SyncEntry.change_seq)).all())

    answer = push(
        both.tablet.device,
        wire_change("patrol", made, "create", 1, patrol_fields(a["id"])),
        wire_change("patrol", moving, "update", 2, {"sector_id": b["id"]}, base_version=1),
    )

    assert [r["status"] for r in answer["results"]] == ["applied"] * 2
    with Session(engine) as session:
        entries = session.exec(
            select(SyncEntry.change_seq, SyncEntry.record_id).where(SyncEntry.change_seq > before)
        ).all()
        exits = session.exec(
            select(SyncExit.change_seq, SyncExit.record_id).where(SyncExit.change_seq > before)
        ).all()
    numbers = sorted(seq for seq, _ in [*entries, *exits])
    # The new patrol, the moved one, its track and observation; the exits of these three.
    assert numbers == list(range(before + 1, before + 8))
    exit_of = {record_id: seq for seq, record_id in exits}
    entry_of = {record_id: seq for seq, record_id in entries}
    assert {record_id: entry_of[record_id] - 1 for record_id in exit_of} == exit_of
    # Pulled one change a page, the old sector's tablet still hears the patrol leave.
    here.pull(limit=1)
    assert ("patrol", moving) not in here.held
    assert ("patrol", made) in here.held


def test_a_pull_never_ends_a_page_between_an_exit_and_an_entry_of_one_number(
    world: World, engine: Engine, category: str
) -> None:
    """Databases written before 3165e67 may hold an exit numbered as an entry: a page
    of one change takes both, so that neither is passed by."""
    a, b, here, both, moving, made = _a_move_and_a_create(world, category)
    assert both.send("patrol", made, "create", patrol_fields(a["id"]))["status"] == "applied"
    moved = both.send("patrol", moving, "update", {"sector_id": b["id"]}, base_version=1)
    assert moved["status"] == "applied"
    with Session(engine) as session:  # numbered as the old publish numbered it
        shared = session.exec(
            select(SyncEntry.change_seq).where(SyncEntry.record_id == uuid.UUID(made))
        ).one()
        exit_row = session.exec(
            select(SyncExit).where(SyncExit.record_id == uuid.UUID(moving))
        ).one()
        exit_row.change_seq = shared
        session.add(exit_row)
        session.commit()

    pulled = here.pull(limit=1)

    assert ("patrol", moving) not in here.held
    assert ("patrol", made) in here.held
    assert len(pulled) == len({(c["entity"], c["id"], c["op"]) for c in pulled})


# ---------------------------------------------------------------- a property of moves

PATROLS = 3
moves = st.lists(
    st.one_of(
        st.tuples(st.just("move"), st.integers(0, PATROLS - 1), st.integers(0, 2)),
        st.tuples(st.just("edit"), st.integers(0, PATROLS - 1), st.just(0)),
        st.tuples(st.just("delete"), st.integers(0, PATROLS - 1), st.just(0)),
        st.tuples(st.just("pull"), st.integers(0, 3), st.integers(1, 3)),
    ),
    max_size=14,
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=moves)
def test_whatever_moves_and_pulls_interleave_each_tablet_holds_its_scope(
    world: World, engine: Engine, steps: list[tuple[str, int, int]]
) -> None:
    """Tablets of one sector, of another, of two of them, and the office pull in small
    pages between moves, edits and deletes of a few patrols: once each has pulled to
    the end, it holds exactly the live patrols of its scope, at their versions."""
    cast = _cast(world)
    sectors, office = cast["sectors"], cast["office"]
    patrols = [str(uuid.uuid4()) for _ in range(PATROLS)]
    versions = dict.fromkeys(patrols, 1)
    for number, patrol_id in enumerate(patrols):
        made = office.send("patrol", patrol_id, "create", patrol_fields(sectors[number % 3]))
        assert made["status"] == "applied", made
    for step, which, value in steps:
        if step == "pull":
            cast["holders"][which].pull(limit=value)
            continue
        patrol_id = patrols[which]
        fields = {"sector_id": sectors[value]} if step == "move" else {"comment": step}
        op = "delete" if step == "delete" else "update"
        done = office.send(
            "patrol",
            patrol_id,
            op,
            None if op == "delete" else fields,
            base_version=versions[patrol_id],
        )
        if done["status"] in ("applied", "merged"):
            versions[patrol_id] = done["version"]
    with Session(engine) as session:
        live = session.exec(
            select(Patrol.id, Patrol.version, Patrol.sector_id).where(
                col(Patrol.deleted_at).is_(None)
            )
        ).all()
    for holder, scope in zip(cast["holders"], cast["scopes"], strict=True):
        holder.pull(limit=2)
        held = {
            record_id: c["version"] for (e, record_id), c in holder.held.items() if e == "patrol"
        }
        expected = {
            str(record_id): version
            for record_id, version, sector_id in live
            if scope is None or str(sector_id) in scope
        }
        assert held == expected


_CASTS: dict[int, dict[str, Any]] = {}


def _cast(world: World) -> dict[str, Any]:
    """The sectors and tablets of the property, made once per test (hypothesis runs
    its examples in one test's world; the tablets go on from where they were)."""
    key = id(world)
    if key not in _CASTS:
        _CASTS.clear()
        sectors = [world.sector()["id"] for _ in range(3)]
        scopes: list[set[str] | None] = [{sectors[0]}, {sectors[1]}, {sectors[0], sectors[2]}]
        holders = [
            Holder(world, world.user("ranger", sector_ids=sorted(scope)))
            for scope in scopes
            if scope is not None
        ]
        office = Holder(world, world.user("coordinator"))
        _CASTS[key] = {
            "sectors": sectors,
            "holders": [*holders, office],
            "scopes": [*scopes, None],
            "office": office,
        }
    return _CASTS[key]


def test_a_tablet_of_the_old_scope_shows_behind_until_it_hears_the_record_leave(
    world: World, category: str
) -> None:
    _, b, here, office, ids = _held_patrol(world, category)
    assert health_of(world.admin, here.tablet)["behind_since"] is None

    office.send("patrol", ids["patrol"], "update", {"sector_id": b["id"]}, base_version=1)

    behind = health_of(world.admin, here.tablet)
    assert behind["behind_since"] is not None
    assert behind["newest_seq"] > behind["pulled_seq"]
    here.pull()
    caught_up = health_of(world.admin, here.tablet)
    assert caught_up["behind_since"] is None
    assert caught_up["pulled_seq"] == caught_up["newest_seq"] == behind["newest_seq"]
