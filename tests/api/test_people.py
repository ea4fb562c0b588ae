"""The families' registry: search that ignores accents and case, scope,
version history, duplicates, merges that every reference follows, and personal data
shown only to roles that need it."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from tests.conftest import Caller, World, all_at_once, assert_problem
from tests.people_support import Recorder
from tests.sync_support import Tablet, pull_all

DNI = "44556677"
PHONE = "987654321"
HOME = {"lat": -5.712345, "lon": -77.398765}


@pytest.fixture
def families(world: World) -> dict[str, Any]:
    sector = world.sector("AM-01")["id"]
    c1 = world.community(sector, "Nueva Alianza")["id"]
    c2 = world.community(sector, "Shampuyacu")["id"]
    worker = world.user("extension_worker", community_ids=[c1])
    colleague = world.user("extension_worker", community_ids=[c1])
    far_worker = world.user("extension_worker", community_ids=[c2])
    tablet, second, far = (Recorder(world.device(w)) for w in (worker, colleague, far_worker))
    jose = tablet.person(
        c1, "José", "Núñez", "male", maternal_surname="Tafur", birth_year=1980,
        doc_type="dni", doc_number=DNI, phone=PHONE,
    )  # fmt: skip
    maria = tablet.person(c1, "María", "Núñez", "female", birth_year=1982)
    home = tablet.record(
        "household",
        {
            "code": "NA-014",
            "community_id": c1,
            "head_person_id": jose,
            "location": HOME,
            "members": [{"person_id": jose, "relation": "jefe"}, {"person_id": maria}],
        },
    )
    agreement = tablet.record(
        "agreement",
        {"household_id": home, "community_id": c1, "signatory_person_id": jose,
         "status": "active", "valid_from": "2026-01-01", "valid_until": "2026-12-31"},
    )  # fmt: skip
    session = tablet.session(c1, "coffee_production", "2026-03-02T09:00:00-05:00")
    other_session = tablet.session(c1, "coffee_production", "2026-04-02T09:00:00-05:00")
    tablet.attend(session, jose)
    far_person = far.person(c2, "Zoila", "Dekentai", "female", birth_year=1990)
    assert {r["status"] for r in tablet.sync() + far.sync()} == {"applied"}
    # The colleague's tablet registers José again, without accents, and takes him to
    # both sessions.
    double = second.person(
        c1, "JOSE", "NUNEZ", "male", maternal_surname="tafur", birth_year=1980,
        doc_type="dni", doc_number=DNI,
    )  # fmt: skip
    second.attend(session, double)
    second.attend(other_session, double)
    assert {r["status"] for r in second.sync()} == {"applied"}
    return {
        "communities": (c1, c2),
        "jose": jose,
        "maria": maria,
        "double": double,
        "home": home,
        "agreement": agreement,
        "sessions": (session, other_session),
        "far_person": far_person,
        "worker": worker,
        "tablet": tablet,
        "second": second,
        "far_worker": far_worker,
        "far": far,
        "coordinator": world.user("coordinator"),
        "sector": sector,
    }


def names(answer: Any) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [f"{p['given_names']} {p['paternal_surname']}" for p in answer.json()["items"]]


# ---------------------------------------------------------------- lists and search


def test_search_ignores_accents_and_case_and_wants_every_word(families: dict[str, Any]) -> None:
    coordinator: Caller = families["coordinator"]
    assert sorted(names(coordinator.get("/people", params={"q": "jose nunez"}))) == [
        "JOSE NUNEZ",
        "José Núñez",
    ]
    assert len(names(coordinator.get("/people", params={"q": "NÚÑEZ"}))) == 3
    assert names(coordinator.get("/people", params={"q": "maria nunez"})) == ["María Núñez"]
    assert names(coordinator.get("/people", params={"q": "maria jose"})) == []
    assert len(names(coordinator.get("/people", params={"q": "tafur"}))) == 2
    assert names(coordinator.get("/people", params={"q": "100%_"})) == []


def test_people_are_scoped_by_community(families: dict[str, Any], world: World) -> None:
    far: Caller = families["far_worker"]
    assert names(far.get("/people")) == ["Zoila Dekentai"]
    assert_problem(far.get(f"/people/{families['jose']}"), 404, "not_found")
    assert_problem(far.get(f"/households/{families['home']}"), 404, "not_found")
    assert far.get("/households").json()["total"] == 0
    worker: Caller = families["worker"]
    assert worker.get("/people").json()["total"] == 3
    c1, c2 = families["communities"]
    assert families["coordinator"].get("/people", params={"community_id": c2}).json()["total"] == 1
    for path in ("/people", "/households"):
        for fmt in ("json", "csv"):
            answer = far.get(path, params={"community_id": c1, "format": fmt})
            assert_problem(answer, 404, "not_found")
    for role in ("ranger", "ranger_lead"):
        caller = world.user(role, sector_ids=[families["sector"]])
        for path in ("/people", "/households", "/people/duplicates", f"/people/{families['jose']}"):
            assert_problem(caller.get(path), 403, "forbidden")


def test_households_search_by_head_or_code(families: dict[str, Any]) -> None:
    coordinator: Caller = families["coordinator"]
    for q in ("nunez jose", "na-014"):
        page = coordinator.get("/households", params={"q": q}).json()
        assert [h["id"] for h in page["items"]] == [families["home"]], q
    [home] = coordinator.get("/households").json()["items"]
    assert home["head_name"] == "José Núñez"
    assert [m["name"] for m in home["members"]] == ["José Núñez", "María Núñez"]
    assert home["location"] == HOME


def test_a_detail_has_its_version_history(families: dict[str, Any]) -> None:
    tablet: Recorder = families["tablet"]
    updated = tablet.update("person", families["maria"], 1, phone="912345678", birth_year=1983)
    assert updated["status"] == "applied", updated
    coordinator: Caller = families["coordinator"]
    detail = coordinator.get(f"/people/{families['maria']}").json()
    created, changed = detail["history"]
    assert (created["version"], created["op"], changed["version"], changed["op"]) == (
        1,
        "create",
        2,
        "update",
    )
    assert changed["user_id"] == str(families["worker"].user_id)
    assert changed["user_name"] == families["worker"].username.title()
    assert changed["device_id"] == tablet.device.tokens["device_id"]
    assert changed["device_label"] == "Tablet"
    assert changed["changes"] == {
        "birth_year": {"before": 1982, "after": 1983},
        "phone": {"before": None, "after": "912345678"},
    }
    hidden = coordinator.get(f"/people/{families['maria']}", params={"pii": "false"}).json()
    assert hidden["history"][1]["changes"]["phone"] == {"before": None, "after": "***"}
    assert hidden["person"]["phone"] is None
    household = coordinator.get(f"/households/{families['home']}").json()
    assert [a["id"] for a in household["agreements"]] == [families["agreement"]]
    assert household["history"][0]["changes"]["code"] == {"before": None, "after": "NA-014"}


# ---------------------------------------------------------------- personal data


def test_personal_data_only_when_asked_and_every_list_carrying_it_is_logged(
    families: dict[str, Any], world: World
) -> None:
    coordinator: Caller = families["coordinator"]

    def jose(answer: Any) -> dict[str, Any]:
        found: dict[str, Any] = next(
            p for p in answer.json()["items"] if p["id"] == families["jose"]
        )
        return found

    shown = jose(coordinator.get("/people", params={"q": "tafur", "pii": "true"}))
    assert (shown["doc_number"], shown["phone"], shown["personal_data"]) == (DNI, PHONE, True)
    hidden = jose(coordinator.get("/people", params={"q": "tafur", "pii": "false"}))
    assert (hidden["doc_number"], hidden["phone"], hidden["personal_data"]) == (None, None, False)
    csv_text = coordinator.get("/people", params={"format": "csv"}).content.decode("utf-8-sig")
    assert DNI in csv_text
    assert DNI not in coordinator.get(
        "/people", params={"format": "csv", "pii": "false"}
    ).content.decode("utf-8-sig")
    house = coordinator.get("/households", params={"pii": "false"}).json()["items"][0]
    assert house["location"] is None

    log = world.admin.get("/personal-data-log").json()
    assert log["total"] == 2  # the JSON list and the CSV with personal data, not the others
    newest, oldest = log["items"]
    assert (newest["format"], oldest["format"]) == ("csv", "json")
    assert oldest["user_id"] == str(coordinator.user_id)
    assert oldest["path"] == "/api/v1/people"
    assert oldest["filters"] == {"q": "tafur"}
    assert_problem(coordinator.get("/personal-data-log"), 403, "forbidden")


def test_no_route_hands_personal_data_to_rangers_or_their_leads(
    families: dict[str, Any], world: World
) -> None:
    """Every GET route, called by a ranger, a ranger lead and a ranger's tablet with
    every id filled in: no document number, phone or home location in any answer."""
    ids = {
        "person_id": families["jose"],
        "household_id": families["home"],
        "agreement_id": families["agreement"],
        "session_id": families["sessions"][0],
    }
    sector = families["sector"]
    ranger = world.user("ranger", sector_ids=[sector])
    callers = [ranger, world.user("ranger_lead", sector_ids=[sector]), world.device(ranger)]
    secrets = (DNI, PHONE, str(HOME["lat"]), str(HOME["lon"]))
    openapi = world.client.get("/openapi.json").json()
    routes = [path for path, operations in openapi["paths"].items() if "get" in operations]
    assert len(routes) > 20
    for route in routes:
        path = route.removeprefix("/api/v1")
        for name in re.findall(r"{(\w+)}", path):
            path = path.replace(f"{{{name}}}", ids.get(name, str(uuid.uuid4())))
        for caller in callers:
            for params in ({}, {"format": "csv"}):
                answer = caller.get(path, params=params)
                for secret in secrets:
                    assert secret not in answer.text, (path, caller.role, params)
    pulled, _ = pull_all(world.device(ranger))
    assert not any(secret in str(pulled) for secret in secrets)


# ---------------------------------------------------------------- duplicates


def test_duplicates_are_found_by_document_or_by_name(families: dict[str, Any]) -> None:
    tablet: Recorder = families["tablet"]
    c1, c2 = families["communities"]
    # Same folded name and birth year, another community: not a likely pair.
    far: Recorder = families["far"]
    far.person(c2, "María", "Nuñez", "female", birth_year=1982)
    assert {r["status"] for r in far.sync()} == {"applied"}
    # Same name and community, another birth year: not either.
    tablet.person(c1, "Maria", "NUÑEZ", "female", birth_year=1960)
    # Same name, birth year and community: a pair.
    twin = tablet.person(c1, "maría", "núñez", "female", birth_year=1982)
    synced = tablet.sync()
    assert {r["status"] for r in synced} == {"applied"}, synced
    page = families["coordinator"].get("/people/duplicates").json()
    pairs = {
        frozenset((pair["a"]["id"], pair["b"]["id"])): pair["reasons"] for pair in page["items"]
    }
    assert pairs == {
        frozenset((families["jose"], families["double"])): [
            "same_document",
            "same_name_birth_year_community",
        ],
        frozenset((families["maria"], twin)): ["same_name_birth_year_community"],
    }
    assert page["total"] == 2
    assert families["far_worker"].get("/people/duplicates").json()["total"] == 0


# ---------------------------------------------------------------- merging


def test_a_merge_moves_every_reference_and_tablets_pull_it(
    families: dict[str, Any], world: World
) -> None:
    coordinator: Caller = families["coordinator"]
    jose, double = families["jose"], families["double"]
    session, other_session = families["sessions"]
    second: Recorder = families["second"]
    # The colleague's record is also head of a household and signed an agreement.
    c1 = families["communities"][0]
    home2 = second.record(
        "household",
        {"community_id": c1, "head_person_id": double, "members": [{"person_id": double}]},
    )
    deal = second.record(
        "agreement",
        {"household_id": home2, "community_id": c1, "signatory_person_id": double},
    )
    assert {r["status"] for r in second.sync()} == {"applied"}
    _, cursor = pull_all(second.device)

    answer = coordinator.post("/people/merge", json={"keep_id": jose, "merge_id": double})
    assert answer.status_code == 200, answer.text
    merge = answer.json()
    assert merge["moved"] == {
        "attendance": 1,  # other_session: moved to José
        "attendance_folded": 1,  # session: José was recorded there already
        "households": 1,
        "agreements": 1,
        "people": 0,
        "filled": [],
    }
    detail = coordinator.get(f"/people/{double}").json()
    assert detail["person"]["merged_into"] == jose
    assert coordinator.get(f"/people/{jose}").json()["merged_from"] == [double]
    history = coordinator.get("/attendance", params={"person_id": jose}).json()
    assert {row["session"]["id"] for row in history["items"]} == {session, other_session}
    assert history["total"] == 2
    assert coordinator.get(f"/households/{home2}").json()["household"]["head_person_id"] == jose
    assert names(coordinator.get("/people", params={"q": "jose"})) == ["José Núñez"]
    assert names(coordinator.get("/people", params={"q": "jose", "status": "merged"})) == [
        "JOSE NUNEZ"
    ]
    assert coordinator.get("/people/duplicates").json()["total"] == 0

    pulled, _ = pull_all(second.device, cursor)
    by_id = {change["id"]: change for change in pulled}
    assert by_id[double]["fields"]["merged_into"] == jose
    assert by_id[home2]["fields"]["head_person_id"] == jose
    assert by_id[home2]["fields"]["members"] == [{"person_id": jose, "relation": None}]
    assert by_id[deal]["fields"]["signatory_person_id"] == jose
    ops = sorted(change["op"] for change in pulled if change["entity"] == "attendance")
    assert ops == ["delete", "upsert"]


def test_a_tablet_that_edits_the_merged_person_later_edits_the_kept_one(
    families: dict[str, Any],
) -> None:
    coordinator: Caller = families["coordinator"]
    jose, double = families["jose"], families["double"]
    merged = coordinator.post("/people/merge", json={"keep_id": jose, "merge_id": double})
    assert merged.status_code == 200, merged.text
    second: Recorder = families["second"]
    result = second.update("person", double, 1, phone="999000111")
    assert result["status"] == "applied", result
    assert result["merged_into"] == jose
    assert coordinator.get(f"/people/{jose}").json()["person"]["phone"] == "999000111"
    assert coordinator.get(f"/people/{double}").json()["person"]["phone"] is None
    # An attendance recorded offline for the merged record lands on the kept one.
    c1 = families["communities"][0]
    third = second.session(c1, "coffee_production", "2026-05-02T09:00:00-05:00")
    second.attend(third, double)
    assert {r["status"] for r in second.sync()} == {"applied"}
    page = coordinator.get("/attendance", params={"session_id": third}).json()
    assert [row["person"]["id"] for row in page["items"]] == [jose]


def test_a_merge_fills_the_kept_persons_blanks(families: dict[str, Any]) -> None:
    coordinator: Caller = families["coordinator"]
    answer = coordinator.post(
        "/people/merge", json={"keep_id": families["double"], "merge_id": families["jose"]}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["moved"]["filled"] == ["phone"]
    kept = coordinator.get(f"/people/{families['double']}").json()
    assert kept["person"]["phone"] == PHONE
    assert kept["history"][-1]["reason"] == "merge"


@pytest.mark.parametrize(
    ("who", "status", "code"),
    [
        ("self", 409, "same_person"),
        ("unknown", 404, "not_found"),
        ("merged", 409, "already_merged"),
    ],
)
def test_bad_merges_change_nothing(
    families: dict[str, Any], who: str, status: int, code: str
) -> None:
    coordinator: Caller = families["coordinator"]
    jose, double = families["jose"], families["double"]
    if who == "merged":
        first = coordinator.post("/people/merge", json={"keep_id": jose, "merge_id": double})
        assert first.status_code == 200
    body = {
        "self": {"keep_id": jose, "merge_id": jose},
        "unknown": {"keep_id": jose, "merge_id": str(uuid.uuid4())},
        "merged": {"keep_id": families["maria"], "merge_id": double},
    }[who]
    before = coordinator.get("/attendance", params={"format": "csv"}).content
    assert_problem(coordinator.post("/people/merge", json=body), status, code)
    assert coordinator.get("/attendance", params={"format": "csv"}).content == before


def test_only_the_office_merges_and_only_people_in_reach(
    families: dict[str, Any], world: World
) -> None:
    body = {"keep_id": families["jose"], "merge_id": families["double"]}
    assert_problem(families["worker"].post("/people/merge", json=body), 403, "forbidden")
    assert_problem(families["coordinator"].post("/people/merge", json={**body, "extra": 1}), 422)


def test_two_merges_of_one_pair_at_once_make_one(families: dict[str, Any], world: World) -> None:
    coordinator: Caller = families["coordinator"]
    body = {"keep_id": families["jose"], "merge_id": families["double"]}
    answers = all_at_once(
        world.client,
        lambda client: client.post("/people/merge", json=body, headers=coordinator.headers),
        times=4,
    )
    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409]
    history = coordinator.get("/attendance", params={"person_id": families["jose"]}).json()
    assert history["total"] == 2


def test_a_resolution_moves_a_person_to_another_community(world: World) -> None:
    """A coordinator sees every community: a custom resolution may move a person."""
    sector = world.sector()
    here = world.community(sector["id"], "Aguas Verdes")
    there = world.community(sector["id"], "Nuevo Edén")
    workers = [
        Tablet(world.device(world.user("extension_worker", community_ids=[here["id"]])))
        for _ in range(2)
    ]
    person_id = str(uuid.uuid4())
    fields = {"given_names": "Rosa", "paternal_surname": "Huamán", "community_id": here["id"]}
    assert workers[0].send("person", person_id, "create", fields)["status"] == "applied"
    workers[0].send("person", person_id, "update", {"phone": "911111111"}, base_version=1)
    clash = workers[1].send("person", person_id, "update", {"phone": "922222222"}, base_version=1)
    assert clash["status"] == "conflict", clash
    coordinator = world.user("coordinator")

    answer = coordinator.post(
        f"/conflicts/{clash['conflict_id']}/resolve",
        json={"resolution": "custom", "fields": {"community_id": there["id"]}},
    )

    assert answer.status_code == 200, answer.text
    person = coordinator.get(f"/people/{person_id}").json()["person"]
    assert person["community_id"] == there["id"]
