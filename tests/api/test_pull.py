"""Pull over HTTP: scope, paging, latest versions, scope changes, cursors, limits."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from api.app import create_app
from schemas.records import PatrolFields
from schemas.sync import CLOCK_ID
from sync.engine import cursor as cursors
from sync.engine import pull as pulling
from sync.platform.settings import Settings
from tests.asgi import TestClient
from tests.conftest import Caller, World, assert_problem, make_settings

RECORDED_AT = "2026-11-02T09:31:07-05:00"

Key = tuple[str, str]


# ---------------------------------------------------------------- helpers


class Tablet:
    """A device that numbers its changes and keeps its pull cursor."""

    def __init__(self, caller: Caller) -> None:
        self.caller = caller
        self.seq = 0
        self.cursor: str | None = None

    def change(
        self,
        entity: str,
        record_id: str,
        op: str,
        fields: dict[str, Any] | None = None,
        base_version: int | None = None,
    ) -> dict[str, Any]:
        self.seq += 1
        return {
            "change_id": str(uuid.uuid4()),
            "seq": self.seq,
            "entity": entity,
            "id": record_id,
            "op": op,
            "base_version": base_version,
            "schema_version": 1,
            "recorded_at": RECORDED_AT,
            "fields": fields or {},
        }

    def push(self, *changes: dict[str, Any]) -> list[dict[str, Any]]:
        answer = self.caller.post(
            "/sync/push",
            json={
                "protocol": 1,
                "device_id": self.caller.tokens["device_id"],
                "batch_id": str(uuid.uuid4()),
                "changes": list(changes),
            },
        )
        assert answer.status_code == 200, answer.text
        results: list[dict[str, Any]] = answer.json()["results"]
        assert all(r["status"] in ("applied", "merged") for r in results), results
        return results

    def page(self, cursor: str | None = None, **params: Any) -> dict[str, Any]:
        if cursor is not None:
            params["cursor"] = cursor
        answer = self.caller.get("/sync/pull", params=params)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def sync(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Pull every page from the kept cursor; the changes in the order they came."""
        came: list[dict[str, Any]] = []
        while True:
            params = {"limit": limit} if limit else {}
            body = self.page(self.cursor, **params)
            came.extend(body["changes"])
            self.cursor = body["cursor"]
            if not body["has_more"]:
                return came


def new_id() -> str:
    return str(uuid.uuid4())


def keys(changes: list[dict[str, Any]], op: str | None = None) -> set[Key]:
    return {(c["entity"], c["id"]) for c in changes if op is None or c["op"] == op}


def make_patrols(tablet: Tablet, sector_id: str, count: int) -> list[str]:
    ids = [new_id() for _ in range(count)]
    tablet.push(
        *(
            tablet.change("patrol", i, "create", {"sector_id": sector_id, "objective": i})
            for i in ids
        )
    )
    return ids


def person_fields(community_id: str) -> dict[str, Any]:
    return {"given_names": "Rosa", "paternal_surname": "Huamán", "community_id": community_id}


def category(world: World, key: str = "threat.logging.timber") -> dict[str, Any]:
    answer = world.admin.post(
        "/observation-categories",
        json={"key": key, "name_es": "Tala", "name_en": "Logging", "attributes": []},
    )
    assert answer.status_code == 201, answer.text
    made: dict[str, Any] = answer.json()
    return made


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def sector_a(world: World) -> dict[str, Any]:
    return world.sector("AM-01")


@pytest.fixture
def sector_b(world: World) -> dict[str, Any]:
    return world.sector("AM-02")


@pytest.fixture
def ranger(world: World, sector_a: dict[str, Any]) -> Caller:
    return world.user("ranger", sector_ids=[sector_a["id"]])


@pytest.fixture
def tablet(world: World, ranger: Caller) -> Tablet:
    return Tablet(world.device(ranger))


@pytest.fixture
def tablet_b(world: World, sector_b: dict[str, Any]) -> Tablet:
    """A ranger of sector B, on their tablet."""
    return Tablet(world.device(world.user("ranger", sector_ids=[sector_b["id"]])))


# ---------------------------------------------------------------- scope


def test_a_fresh_device_pulls_everything_in_its_scope_and_nothing_out_of_it(
    world: World,
    sector_a: dict[str, Any],
    sector_b: dict[str, Any],
    tablet: Tablet,
    tablet_b: Tablet,
) -> None:
    community_a = world.community(sector_a["id"])
    community_b = world.community(sector_b["id"])
    kind = category(world)
    [patrol_a] = make_patrols(tablet, sector_a["id"], 1)
    [patrol_b] = make_patrols(tablet_b, sector_b["id"], 1)

    came = tablet.sync()

    assert keys(came) == {
        ("sector", sector_a["id"]),
        ("community", community_a["id"]),
        ("observation_category", kind["id"]),
        ("patrol", patrol_a),
    }
    assert len(came) == 4
    assert all(c["op"] == "upsert" for c in came)
    assert ("patrol", patrol_b) not in keys(came)
    assert ("community", community_b["id"]) not in keys(came)


def test_a_patrol_of_another_sector_never_comes_also_when_it_changes(
    sector_b: dict[str, Any], tablet: Tablet, tablet_b: Tablet
) -> None:
    tablet.sync()
    [patrol_b] = make_patrols(tablet_b, sector_b["id"], 1)
    tablet_b.push(tablet_b.change("patrol", patrol_b, "update", {"comment": "x"}, 1))
    tablet_b.push(tablet_b.change("patrol", patrol_b, "delete", base_version=2))

    assert tablet.sync() == []


def test_an_extension_worker_pulls_the_people_records_of_their_communities_only(
    world: World, sector_a: dict[str, Any], tablet: Tablet
) -> None:
    mine, theirs = world.community(sector_a["id"]), world.community(sector_a["id"])
    worker = Tablet(world.device(world.user("extension_worker", community_ids=[mine["id"]])))
    colleague = Tablet(world.device(world.user("extension_worker", community_ids=[theirs["id"]])))
    my_person, their_person = new_id(), new_id()
    worker.push(worker.change("person", my_person, "create", person_fields(mine["id"])))
    colleague.push(colleague.change("person", their_person, "create", person_fields(theirs["id"])))
    [patrol] = make_patrols(tablet, sector_a["id"], 1)

    came = worker.sync()

    assert keys(came) == {
        ("sector", sector_a["id"]),
        ("community", mine["id"]),
        ("person", my_person),
    }
    assert ("person", their_person) not in keys(came)
    assert ("patrol", patrol) not in keys(came)


# ---------------------------------------------------------------- paging and order


def test_pages_of_two_bring_every_record_once_oldest_change_first(
    sector_a: dict[str, Any], tablet: Tablet
) -> None:
    first = make_patrols(tablet, sector_a["id"], 4)
    second = make_patrols(tablet, sector_a["id"], 2)
    expected = [("sector", sector_a["id"]), *(("patrol", i) for i in first + second)]

    pages: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        body = tablet.page(cursor, limit=2)
        pages.append(body)
        cursor = body["cursor"]
        if not body["has_more"]:
            break

    came = [(c["entity"], c["id"]) for p in pages for c in p["changes"]]
    assert came == expected  # none missing, none twice, in the order they changed
    assert all(len(p["changes"]) == 2 for p in pages if p["has_more"])
    assert len(pages) <= len(expected) // 2 + 1
    assert tablet.page(cursor)["changes"] == []


def test_an_odd_number_of_records_ends_on_a_short_last_page_without_more(
    sector_a: dict[str, Any], tablet: Tablet
) -> None:
    make_patrols(tablet, sector_a["id"], 4)  # with the sector: five records

    sizes, more = [], []
    cursor: str | None = None
    for _ in range(5):
        body = tablet.page(cursor, limit=2)
        sizes.append(len(body["changes"]))
        more.append(body["has_more"])
        cursor = body["cursor"]
        if not body["has_more"]:
            break

    assert (sizes, more) == ([2, 2, 1], [True, True, False])


def test_a_later_change_moves_a_record_after_the_others(
    sector_a: dict[str, Any], tablet: Tablet
) -> None:
    one, two = make_patrols(tablet, sector_a["id"], 2)
    tablet.push(tablet.change("patrol", one, "update", {"comment": "later"}, 1))

    came = [c["id"] for c in tablet.sync() if c["entity"] == "patrol"]

    assert came == [two, one]


@pytest.fixture(params=["merged-parts", "one-filtered-walk"])
def parts_read(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A scope's parts read merged (as usual), or by the one filtered walk of the change
    numbers that scopes of very many sectors or communities get."""
    if request.param == "one-filtered-walk":
        monkeypatch.setattr(pulling, "MAX_PARTS", 1)
    name: str = request.param
    return name


@pytest.mark.parametrize("limit", [1, 2, 3, None])
def test_a_ranger_of_two_sectors_gets_both_in_change_order_across_page_boundaries(
    world: World,
    sector_a: dict[str, Any],
    sector_b: dict[str, Any],
    tablet_b: Tablet,
    parts_read: str,
    limit: int | None,
) -> None:
    both = Tablet(world.device(world.user("ranger", sector_ids=[sector_a["id"], sector_b["id"]])))
    expected: list[Key] = [("sector", sector_a["id"]), ("sector", sector_b["id"])]
    for round_ in range(3):
        in_a, in_b = new_id(), new_id()
        # One batch across both sectors: consecutive change numbers, split by pages.
        both.push(
            both.change("patrol", in_a, "create", {"sector_id": sector_a["id"]}),
            both.change("patrol", in_b, "create", {"sector_id": sector_b["id"]}),
        )
        expected += [("patrol", in_a), ("patrol", in_b)]
        expected.append(("observation_category", category(world, f"threat.k{round_}")["id"]))
        [theirs] = make_patrols(tablet_b, sector_b["id"], 1)
        expected.append(("patrol", theirs))

    came = [(c["entity"], c["id"]) for c in both.sync(limit=limit)]

    assert came == expected  # every record once, oldest change first, whatever the part


def test_an_extension_worker_of_two_communities_gets_both_in_change_order(
    world: World, sector_a: dict[str, Any], sector_b: dict[str, Any], parts_read: str
) -> None:
    one, two = world.community(sector_a["id"]), world.community(sector_b["id"])
    other = world.community(sector_a["id"])
    worker = Tablet(
        world.device(world.user("extension_worker", community_ids=[one["id"], two["id"]]))
    )
    colleague = Tablet(world.device(world.user("extension_worker", community_ids=[other["id"]])))
    expected: list[Key] = []
    for _ in range(3):
        people = [new_id(), new_id()]
        worker.push(
            *(
                worker.change("person", person, "create", person_fields(community["id"]))
                for person, community in zip(people, (two, one), strict=True)
            )
        )
        expected += [("person", person) for person in people]
        colleague.push(colleague.change("person", new_id(), "create", person_fields(other["id"])))

    came = [(c["entity"], c["id"]) for c in worker.sync(limit=2)]

    reference = {("sector", sector_a["id"]), ("sector", sector_b["id"])}
    reference |= {("community", one["id"]), ("community", two["id"])}
    assert set(came[:4]) == reference  # made first, so pulled first
    assert came[4:] == expected


def test_a_page_stops_short_of_the_limit_once_it_holds_its_bytes(
    monkeypatch: pytest.MonkeyPatch, sector_a: dict[str, Any], tablet: Tablet
) -> None:
    first = make_patrols(tablet, sector_a["id"], 3)
    monkeypatch.setattr(pulling, "PAGE_BYTES", 1)  # every change is over it

    pages = []
    while True:
        body = tablet.page(tablet.cursor, limit=100)
        pages.append([(c["entity"], c["id"]) for c in body["changes"]])
        tablet.cursor = body["cursor"]
        if not body["has_more"]:
            break

    assert pages[:4] == [[("sector", sector_a["id"])], *([("patrol", i)] for i in first)]
    assert pages[4:] == [[]]  # the last full page could not know it was the last


# ---------------------------------------------------------------- latest version, deletes


def test_a_record_changed_several_times_since_the_cursor_comes_once_at_its_latest_version(
    sector_a: dict[str, Any], tablet: Tablet
) -> None:
    [patrol] = make_patrols(tablet, sector_a["id"], 1)
    tablet.sync()

    for version, comment in enumerate(["uno", "dos", "tres"], start=1):
        tablet.push(tablet.change("patrol", patrol, "update", {"comment": comment}, version))
    came = tablet.sync()

    assert [(c["id"], c["version"], c["op"]) for c in came] == [(patrol, 4, "upsert")]
    fields = came[0]["fields"]
    assert (fields["comment"], fields["sector_id"]) == ("tres", sector_a["id"])
    whole = {*PatrolFields.model_fields, "reviewed_by", "reviewed_at", "review_comment"}
    assert whole | {"created_at", "created_by", "device_id", "recorded_at"} == set(fields)
    assert fields["device_id"] == tablet.caller.tokens["device_id"]


def test_a_deleted_record_comes_as_a_delete(sector_a: dict[str, Any], tablet: Tablet) -> None:
    [patrol] = make_patrols(tablet, sector_a["id"], 1)
    tablet.sync()

    tablet.push(tablet.change("patrol", patrol, "delete", base_version=1))
    came = tablet.sync()

    assert [(c["id"], c["op"], c["version"], c["fields"]) for c in came] == [
        (patrol, "delete", 2, {})
    ]


def test_a_record_made_and_deleted_since_the_cursor_comes_as_a_delete(
    sector_a: dict[str, Any], tablet: Tablet
) -> None:
    tablet.sync()
    [patrol] = make_patrols(tablet, sector_a["id"], 1)
    tablet.push(tablet.change("patrol", patrol, "delete", base_version=1))

    assert [(c["id"], c["op"]) for c in tablet.sync()] == [(patrol, "delete")]


def test_a_pull_with_nothing_new_keeps_a_cursor_that_still_works(
    sector_a: dict[str, Any], tablet: Tablet
) -> None:
    tablet.sync()
    assert tablet.sync() == []

    [patrol] = make_patrols(tablet, sector_a["id"], 1)

    assert keys(tablet.sync()) == {("patrol", patrol)}


def test_a_pull_reports_the_devices_last_seq(sector_a: dict[str, Any], tablet: Tablet) -> None:
    assert tablet.page()["last_seq"] is None

    make_patrols(tablet, sector_a["id"], 3)

    assert tablet.page()["last_seq"] == 3


# ---------------------------------------------------------------- scope changes


@pytest.fixture
def two_sectors(
    world: World,
    sector_a: dict[str, Any],
    sector_b: dict[str, Any],
    tablet: Tablet,
    tablet_b: Tablet,
) -> dict[str, Any]:
    """Records in A (the ranger's sector) and in B (another ranger's), one of B's deleted."""
    community_a = world.community(sector_a["id"])
    community_b = world.community(sector_b["id"])
    in_a = make_patrols(tablet, sector_a["id"], 2)
    in_b = make_patrols(tablet_b, sector_b["id"], 3)
    tablet_b.push(tablet_b.change("patrol", in_b[2], "delete", base_version=1))
    return {
        "a": {("sector", sector_a["id"]), ("community", community_a["id"])}
        | {("patrol", i) for i in in_a},
        "b": {("sector", sector_b["id"]), ("community", community_b["id"])}
        | {("patrol", i) for i in in_b[:2]},
        "deleted_in_b": ("patrol", in_b[2]),
        "patrols_a": in_a,
        "patrols_b": in_b[:2],
    }


def _move(world: World, who: Caller, sector_ids: list[str]) -> None:
    answer = world.admin.patch(f"/users/{who.user_id}", json={"sector_ids": sector_ids})
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("limit", [None, 1], ids=["one-pull", "pages-of-one"])
def test_a_ranger_moved_to_another_sector_gets_deletes_for_the_old_and_the_new_records(
    world: World,
    ranger: Caller,
    sector_b: dict[str, Any],
    tablet: Tablet,
    two_sectors: dict[str, Any],
    limit: int | None,
) -> None:
    assert keys(tablet.sync()) == two_sectors["a"]

    _move(world, ranger, [sector_b["id"]])
    came = tablet.sync(limit=limit)

    # B's deleted patrol may come as a delete (the device never had it), never as an upsert.
    assert keys(came, "delete") - {two_sectors["deleted_in_b"]} == two_sectors["a"]
    assert keys(came, "upsert") == two_sectors["b"]
    assert len(came) - len(two_sectors["a"]) - len(two_sectors["b"]) in (0, 1)
    assert tablet.sync() == []


def test_after_a_move_changes_in_the_new_sector_come_and_the_old_sectors_never_again(
    world: World,
    ranger: Caller,
    sector_a: dict[str, Any],
    sector_b: dict[str, Any],
    tablet: Tablet,
    tablet_b: Tablet,
    two_sectors: dict[str, Any],
) -> None:
    tablet.sync()
    _move(world, ranger, [sector_b["id"]])
    tablet.sync()
    stayed = Tablet(world.device(world.user("ranger", sector_ids=[sector_a["id"]])))

    [new_in_b] = make_patrols(tablet_b, sector_b["id"], 1)
    tablet_b.push(
        tablet_b.change("patrol", two_sectors["patrols_b"][0], "update", {"comment": "b"}, 1)
    )
    stayed.push(stayed.change("patrol", two_sectors["patrols_a"][0], "update", {"comment": "a"}, 1))
    make_patrols(stayed, sector_a["id"], 1)
    came = tablet.sync()

    assert keys(came) == {("patrol", new_in_b), ("patrol", two_sectors["patrols_b"][0])}
    assert all(c["op"] == "upsert" for c in came)


def test_a_ranger_given_a_second_sector_gets_its_records_and_keeps_the_first(
    world: World,
    ranger: Caller,
    sector_a: dict[str, Any],
    sector_b: dict[str, Any],
    tablet: Tablet,
    two_sectors: dict[str, Any],
) -> None:
    tablet.sync()

    _move(world, ranger, [sector_a["id"], sector_b["id"]])
    came = tablet.sync()

    assert keys(came, "delete") <= {two_sectors["deleted_in_b"]}
    assert keys(came, "upsert") == two_sectors["b"]


def _hold(held: set[Key], changes: list[dict[str, Any]]) -> set[Key]:
    """What a device holds after applying ``changes``."""
    for item in changes:
        key = (item["entity"], item["id"])
        if item["op"] == "delete":
            held.discard(key)
        else:
            held.add(key)
    return held


def _pull_pages(tablet: Tablet, pages: int) -> list[dict[str, Any]]:
    came: list[dict[str, Any]] = []
    for _ in range(pages):
        body = tablet.page(tablet.cursor, limit=1)
        tablet.cursor = body["cursor"]
        came.extend(body["changes"])
    return came


def test_a_scope_changed_twice_during_a_paged_catch_up_leaves_nothing_of_the_middle_scope(
    world: World,
    ranger: Caller,
    sector_b: dict[str, Any],
    tablet: Tablet,
    two_sectors: dict[str, Any],
) -> None:
    sector_c = world.sector("AM-03")
    held = _hold(set(), tablet.sync())
    _move(world, ranger, [sector_b["id"]])
    _hold(held, _pull_pages(tablet, len(two_sectors["a"]) + 2))  # evictions, then part of B
    assert held & two_sectors["b"], "the backfill of B had begun"

    _move(world, ranger, [sector_c["id"]])
    _hold(held, tablet.sync(limit=1))

    assert held == {("sector", sector_c["id"])}


@pytest.mark.parametrize("cut", [2, 5], ids=["during-the-evictions", "during-the-backfill"])
def test_a_move_undone_during_a_paged_catch_up_gives_back_the_records_of_the_first_sector(
    world: World,
    ranger: Caller,
    sector_a: dict[str, Any],
    sector_b: dict[str, Any],
    tablet: Tablet,
    two_sectors: dict[str, Any],
    cut: int,
) -> None:
    held = _hold(set(), tablet.sync())
    _move(world, ranger, [sector_b["id"]])
    _hold(held, _pull_pages(tablet, cut))

    _move(world, ranger, [sector_a["id"]])
    _hold(held, tablet.sync(limit=1))

    assert held == two_sectors["a"]


def test_a_ranger_made_an_extension_worker_trades_the_patrols_for_the_people(
    world: World,
    ranger: Caller,
    sector_a: dict[str, Any],
    tablet: Tablet,
    two_sectors: dict[str, Any],
) -> None:
    community = next(key[1] for key in two_sectors["a"] if key[0] == "community")
    worker = Tablet(world.device(world.user("extension_worker", community_ids=[community])))
    person = new_id()
    worker.push(worker.change("person", person, "create", person_fields(community)))
    held = _hold(set(), tablet.sync())

    answer = world.admin.patch(
        f"/users/{ranger.user_id}",
        json={"role": "extension_worker", "sector_ids": [], "community_ids": [community]},
    )
    assert answer.status_code == 200, answer.text
    _hold(held, tablet.sync())

    assert held == {("sector", sector_a["id"]), ("community", community), ("person", person)}


def test_a_ranger_made_an_extension_worker_then_moved_again_gets_each_delete_once(
    world: World,
    ranger: Caller,
    sector_a: dict[str, Any],
    sector_b: dict[str, Any],
    tablet: Tablet,
    two_sectors: dict[str, Any],
) -> None:
    community = next(key[1] for key in two_sectors["a"] if key[0] == "community")
    worker = Tablet(world.device(world.user("extension_worker", community_ids=[community])))
    worker.push(worker.change("person", new_id(), "create", person_fields(community)))
    held = _hold(set(), tablet.sync())
    answer = world.admin.patch(
        f"/users/{ranger.user_id}",
        json={"role": "extension_worker", "sector_ids": [], "community_ids": [community]},
    )
    assert answer.status_code == 200, answer.text
    _hold(held, _pull_pages(tablet, 1))  # a catch-up cut short

    # Now the records of both scopes may be held, and the community's own row lies in
    # both the sector's part and the community's: it is evicted once.
    answer = world.admin.patch(
        f"/users/{ranger.user_id}",
        json={"role": "ranger", "sector_ids": [sector_b["id"]], "community_ids": []},
    )
    assert answer.status_code == 200, answer.text
    came = tablet.sync(limit=3)
    _hold(held, came)

    assert held == two_sectors["b"]
    deletes = [(c["entity"], c["id"]) for c in came if c["op"] == "delete"]
    assert len(deletes) == len(set(deletes))
    assert ("community", community) in deletes


# ---------------------------------------------------------------- cursors


def test_a_tampered_cursor_is_refused_as_invalid(sector_a: dict[str, Any], tablet: Tablet) -> None:
    cursor = tablet.page()["cursor"]
    middle = len(cursor) // 2
    flipped = cursor[:middle] + ("A" if cursor[middle] != "A" else "B") + cursor[middle + 1 :]

    assert_problem(
        tablet.caller.get("/sync/pull", params={"cursor": flipped}), 400, "invalid_cursor"
    )


@pytest.mark.parametrize("cursor", ["", "not-a-cursor", "%%%", "A" * 4000])
def test_a_cursor_this_server_never_made_is_refused_as_invalid(tablet: Tablet, cursor: str) -> None:
    answer = tablet.caller.get("/sync/pull", params={"cursor": cursor})

    assert_problem(answer, 400, "invalid_cursor")


def test_a_cursor_from_another_history_of_the_database_must_be_reset(
    engine: Engine, tablet: Tablet
) -> None:
    cursor = tablet.page()["cursor"]
    with engine.begin() as connection:
        epoch = uuid.uuid4()
        connection.execute(
            sa.text("UPDATE sync_clock SET epoch = :epoch WHERE id = :id"),
            {"epoch": epoch if engine.dialect.name == "postgresql" else epoch.hex, "id": CLOCK_ID},
        )

    answer = tablet.caller.get("/sync/pull", params={"cursor": cursor})

    assert_problem(answer, 410, "cursor_reset")
    assert tablet.page()["cursor"]  # from no cursor, the device starts again


def test_a_cursor_beyond_the_clock_must_be_reset(settings: Settings, tablet: Tablet) -> None:
    key = settings.signing_key()
    real = cursors.decode(tablet.page()["cursor"], key)
    ahead = cursors.encode(replace(real, seq=real.seq + 1_000_000), key)

    answer = tablet.caller.get("/sync/pull", params={"cursor": ahead})

    assert_problem(answer, 410, "cursor_reset")


# ---------------------------------------------------------------- limits, encoding, callers


@pytest.fixture
def capped(engine: Engine, database_url: str) -> Iterator[World]:
    """A server that hands out 2 changes by default and at most 3."""
    settings = make_settings(database_url, pull_default_limit=2, pull_max_limit=3)
    with TestClient(create_app(settings, engine), base_url="http://testserver/api/v1") as client:
        yield World(client, engine, settings)


def test_the_limit_defaults_and_is_capped(capped: World) -> None:
    sector = capped.sector("AM-01")
    tablet = Tablet(capped.device(capped.user("ranger", sector_ids=[sector["id"]])))
    make_patrols(tablet, sector["id"], 5)

    default = tablet.page()
    asked_too_many = tablet.page(limit=1000)

    assert (len(default["changes"]), default["has_more"]) == (2, True)
    assert (len(asked_too_many["changes"]), asked_too_many["has_more"]) == (3, True)
    assert len(tablet.sync(limit=1000)) == 6


@pytest.mark.parametrize("limit", ["0", "-1", "many"])
def test_a_limit_below_one_is_unprocessable(tablet: Tablet, limit: str) -> None:
    answer = tablet.caller.get("/sync/pull", params={"limit": limit})

    assert_problem(answer, 422, "validation_failed")


def test_a_large_answer_is_gzipped_for_a_client_that_accepts_it(
    sector_a: dict[str, Any], tablet: Tablet
) -> None:
    make_patrols(tablet, sector_a["id"], 10)

    zipped = tablet.caller.get("/sync/pull", headers={"Accept-Encoding": "gzip"})
    plain = tablet.caller.get("/sync/pull", headers={"Accept-Encoding": "identity"})

    assert zipped.headers["content-encoding"] == "gzip"
    assert "content-encoding" not in plain.headers
    assert len(zipped.json()["changes"]) == len(plain.json()["changes"]) == 11


def test_the_answer_is_json_that_keeps_accents_quotes_and_control_characters(
    sector_a: dict[str, Any], tablet: Tablet
) -> None:
    awkward = 'Río "Añasco" \\ Ñuñoa\n\tcaña</script>\u2028 🐆 \u00e9\u0301 {"x": [1]}'
    patrol = new_id()
    tablet.push(
        tablet.change(
            "patrol",
            patrol,
            "create",
            {"sector_id": sector_a["id"], "objective": awkward, "comment": "ñ" * 1500},
        )
    )

    answer = tablet.caller.get("/sync/pull")

    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    body = json.loads(answer.content.decode("utf-8"))  # strict: UTF-8, standard JSON
    [pulled] = [c for c in body["changes"] if c["id"] == patrol]
    assert pulled["fields"]["objective"] == awkward
    assert pulled["fields"]["comment"] == "ñ" * 1500
    assert set(pulled) == {"entity", "id", "version", "op", "fields", "updated_at"}
    assert pulled["updated_at"].endswith("Z")
    assert set(body) == {"changes", "cursor", "has_more", "last_seq"}


def test_a_number_json_cannot_hold_comes_as_null(
    engine: Engine, sector_a: dict[str, Any], tablet: Tablet
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's JSON types refuse NaN; only SQLite's text can hold one")
    [patrol] = make_patrols(tablet, sector_a["id"], 1)
    # What Python's JSON writer made of a NaN or an infinity, as older servers stored it.
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE sync_entry SET fields = :fields WHERE entity = 'patrol'"),
            {"fields": '{"rest_minutes": NaN, "objective": "NaN", "deep": [Infinity, -Infinity]}'},
        )

    answer = tablet.caller.get("/sync/pull")

    body = json.loads(answer.content, parse_constant=_refuse)
    [pulled] = [c for c in body["changes"] if c["id"] == patrol]
    assert pulled["fields"] == {"rest_minutes": None, "objective": "NaN", "deep": [None, None]}


def _refuse(constant: str) -> None:
    raise AssertionError(f"{constant} is not JSON")


def test_the_openapi_document_describes_the_pull_answer(client: TestClient) -> None:
    document = client.get("/openapi.json").json()

    answer = document["paths"]["/api/v1/sync/pull"]["get"]["responses"]["200"]
    schema = answer["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/PullResponse"}
    pulled = document["components"]["schemas"]["PullResponse"]["properties"]
    assert {"changes", "cursor", "has_more", "last_seq"} <= set(pulled)


def test_a_user_token_without_a_device_cannot_pull(ranger: Caller) -> None:
    assert_problem(ranger.get("/sync/pull"), 403, "device_required")


def test_pulling_needs_a_token(client: TestClient) -> None:
    answer: httpx.Response = client.get("/sync/pull")

    assert_problem(answer, 401)
