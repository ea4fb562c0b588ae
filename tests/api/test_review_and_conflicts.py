"""Ranger-lead review, the lock it implies, and conflicts resolved into new versions."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.conftest import Caller, World, assert_problem
from tests.sync_support import Tablet, pull_all


@pytest.fixture
def patrol_world(world: World) -> dict[str, Any]:
    sector = world.sector("AM-01")
    other = world.sector("AM-02")
    ranger = world.user("ranger", sector_ids=[sector["id"]])
    lead = world.user("ranger_lead", sector_ids=[sector["id"]])
    outsider = world.user("ranger_lead", sector_ids=[other["id"]])
    coordinator = world.user("coordinator")
    tablet = Tablet(world.device(ranger))
    second = Tablet(world.device(world.user("ranger", sector_ids=[sector["id"]])))
    return {
        "sector": sector,
        "ranger": ranger,
        "lead": lead,
        "outsider": outsider,
        "coordinator": coordinator,
        "tablet": tablet,
        "second": second,
    }


def _submitted_patrol(tablet: Tablet, sector_id: str) -> str:
    patrol_id = str(uuid.uuid4())
    made = tablet.send("patrol", patrol_id, "create", {"sector_id": sector_id, "objective": "x"})
    assert made["status"] == "applied", made
    sent = tablet.send("patrol", patrol_id, "update", {"status": "submitted"}, base_version=1)
    assert sent["status"] == "applied", sent
    return patrol_id


def _logging_category(world: World) -> None:
    answer = world.admin.post(
        "/observation-categories",
        json={"key": "threat.logging", "name_es": "Tala", "name_en": "Logging"},
    )
    assert answer.status_code == 201, answer.text


def _observation_of(patrol_id: str) -> dict[str, Any]:
    return {
        "patrol_id": patrol_id,
        "category_key": "threat.logging",
        "observed_at": "2026-11-02T10:00:00-05:00",
        "lat": -5.9,
        "lon": -77.3,
    }


def test_a_lead_approves_a_submitted_patrol_and_devices_pull_the_new_version(
    patrol_world: dict[str, Any],
) -> None:
    tablet: Tablet = patrol_world["tablet"]
    lead: Caller = patrol_world["lead"]
    patrol_id = _submitted_patrol(tablet, patrol_world["sector"]["id"])

    answer = lead.post(
        f"/patrols/{patrol_id}/review", json={"decision": "approve", "comment": "ok"}
    )

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "approved"
    assert answer.json()["version"] == 3
    pulled, _ = pull_all(tablet.device)
    patrol = next(c for c in pulled if c["id"] == patrol_id)
    assert patrol["version"] == 3
    assert patrol["fields"]["status"] == "approved"
    assert patrol["fields"]["reviewed_by"] == str(lead.user_id)
    assert patrol["fields"]["review_comment"] == "ok"


def test_returning_a_patrol_needs_a_comment(patrol_world: dict[str, Any]) -> None:
    patrol_id = _submitted_patrol(patrol_world["tablet"], patrol_world["sector"]["id"])
    lead: Caller = patrol_world["lead"]
    assert_problem(lead.post(f"/patrols/{patrol_id}/review", json={"decision": "return"}), 422)
    answer = lead.post(
        f"/patrols/{patrol_id}/review", json={"decision": "return", "comment": "falta track"}
    )
    assert answer.json()["status"] == "returned"


def test_only_leads_of_the_sector_and_admins_review(
    patrol_world: dict[str, Any], world: World
) -> None:
    patrol_id = _submitted_patrol(patrol_world["tablet"], patrol_world["sector"]["id"])
    body = {"decision": "approve"}
    assert_problem(patrol_world["ranger"].post(f"/patrols/{patrol_id}/review", json=body), 403)
    assert_problem(patrol_world["coordinator"].post(f"/patrols/{patrol_id}/review", json=body), 403)
    assert_problem(patrol_world["outsider"].post(f"/patrols/{patrol_id}/review", json=body), 404)
    assert world.admin.post(f"/patrols/{patrol_id}/review", json=body).status_code == 200


def test_an_approved_patrol_is_not_reviewed_again_nor_a_draft(patrol_world: dict[str, Any]) -> None:
    tablet: Tablet = patrol_world["tablet"]
    lead: Caller = patrol_world["lead"]
    patrol_id = _submitted_patrol(tablet, patrol_world["sector"]["id"])
    lead.post(f"/patrols/{patrol_id}/review", json={"decision": "approve"})
    again = lead.post(f"/patrols/{patrol_id}/review", json={"decision": "return", "comment": "x"})
    assert_problem(again, 409, "already_approved")

    draft = str(uuid.uuid4())
    tablet.send("patrol", draft, "create", {"sector_id": patrol_world["sector"]["id"]})
    assert_problem(
        lead.post(f"/patrols/{draft}/review", json={"decision": "approve"}), 409, "not_submitted"
    )


def test_a_device_edit_of_an_approved_patrol_is_a_conflict_and_changes_nothing(
    patrol_world: dict[str, Any],
) -> None:
    tablet: Tablet = patrol_world["tablet"]
    lead: Caller = patrol_world["lead"]
    patrol_id = _submitted_patrol(tablet, patrol_world["sector"]["id"])
    lead.post(f"/patrols/{patrol_id}/review", json={"decision": "approve"})

    result = tablet.send("patrol", patrol_id, "update", {"objective": "changed"}, base_version=2)

    assert result["status"] == "conflict", result
    conflict = lead.get(f"/conflicts/{result['conflict_id']}").json()
    assert conflict["kind"] == "locked"
    assert conflict["fields"] == {"objective": {"server": "x", "device": "changed"}}
    assert conflict["device_id"] == tablet.device.tokens["device_id"]
    pulled, _ = pull_all(tablet.device)
    assert next(c for c in pulled if c["id"] == patrol_id)["fields"]["objective"] == "x"


def test_an_observation_added_to_an_approved_patrol_waits_for_the_lead(
    patrol_world: dict[str, Any], world: World
) -> None:
    _logging_category(world)
    tablet: Tablet = patrol_world["tablet"]
    lead: Caller = patrol_world["lead"]
    patrol_id = _submitted_patrol(tablet, patrol_world["sector"]["id"])
    lead.post(f"/patrols/{patrol_id}/review", json={"decision": "approve"})
    observation_id = str(uuid.uuid4())
    fields = _observation_of(patrol_id)

    result = tablet.send("observation", observation_id, "create", fields)
    assert result["status"] == "conflict", result
    assert observation_id not in [c["id"] for c in pull_all(tablet.device)[0]]

    resolved = lead.post(
        f"/conflicts/{result['conflict_id']}/resolve", json={"resolution": "take_device"}
    )
    assert resolved.status_code == 200, resolved.text
    pulled = {c["id"]: c for c in pull_all(tablet.device)[0]}
    assert pulled[observation_id]["op"] == "upsert"
    assert pulled[observation_id]["fields"]["sector_id"] == patrol_world["sector"]["id"]


@pytest.mark.parametrize(
    ("resolution", "custom", "expected"),
    [
        ("keep_server", {}, "from A"),
        ("take_device", {}, "from B"),
        ("custom", {"objective": "both"}, "both"),
    ],
)
def test_a_resolution_is_a_new_version_that_devices_pull(
    patrol_world: dict[str, Any], resolution: str, custom: dict[str, Any], expected: str
) -> None:
    a: Tablet = patrol_world["tablet"]
    b: Tablet = patrol_world["second"]
    patrol_id = str(uuid.uuid4())
    a.send("patrol", patrol_id, "create", {"sector_id": patrol_world["sector"]["id"]})
    assert (
        a.send("patrol", patrol_id, "update", {"objective": "from A"}, base_version=1)["status"]
        == "applied"
    )
    clash = b.send(
        "patrol", patrol_id, "update", {"objective": "from B", "comment": "c"}, base_version=1
    )
    assert clash["status"] == "conflict", clash
    assert clash["version"] == 3  # B's comment applied, the objective kept

    coordinator: Caller = patrol_world["coordinator"]
    listed = coordinator.get("/conflicts", params={"status": "open", "entity": "patrol"}).json()
    assert [c["id"] for c in listed["items"]] == [clash["conflict_id"]]
    body = {"resolution": resolution, "fields": custom}
    answer = coordinator.post(f"/conflicts/{clash['conflict_id']}/resolve", json=body)

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "resolved"
    assert answer.json()["resolved_version"] == 4
    for tablet in (a, b):
        patrol = next(c for c in pull_all(tablet.device)[0] if c["id"] == patrol_id)
        assert (patrol["version"], patrol["fields"]["objective"]) == (4, expected)
        assert patrol["fields"]["comment"] == "c"
    assert_problem(
        coordinator.post(f"/conflicts/{clash['conflict_id']}/resolve", json=body),
        409,
        "already_resolved",
    )
    assert coordinator.get("/conflicts").json()["items"] == []


def test_conflicts_are_for_coordinators_and_the_leads_of_the_sector(
    patrol_world: dict[str, Any],
) -> None:
    a: Tablet = patrol_world["tablet"]
    b: Tablet = patrol_world["second"]
    patrol_id = str(uuid.uuid4())
    a.send("patrol", patrol_id, "create", {"sector_id": patrol_world["sector"]["id"]})
    a.send("patrol", patrol_id, "update", {"objective": "A"}, base_version=1)
    clash = b.send("patrol", patrol_id, "update", {"objective": "B"}, base_version=1)

    assert_problem(patrol_world["ranger"].get("/conflicts"), 403)
    assert patrol_world["outsider"].get("/conflicts").json()["total"] == 0
    assert_problem(patrol_world["outsider"].get(f"/conflicts/{clash['conflict_id']}"), 404)
    assert patrol_world["lead"].get("/conflicts").json()["total"] == 1


def test_a_custom_resolution_is_validated(patrol_world: dict[str, Any]) -> None:
    a: Tablet = patrol_world["tablet"]
    b: Tablet = patrol_world["second"]
    patrol_id = str(uuid.uuid4())
    a.send("patrol", patrol_id, "create", {"sector_id": patrol_world["sector"]["id"]})
    a.send("patrol", patrol_id, "update", {"rest_minutes": 10}, base_version=1)
    clash = b.send("patrol", patrol_id, "update", {"rest_minutes": 20}, base_version=1)
    lead: Caller = patrol_world["lead"]
    url = f"/conflicts/{clash['conflict_id']}/resolve"
    assert_problem(
        lead.post(url, json={"resolution": "custom", "fields": {"rest_minutes": -5}}), 422
    )
    assert_problem(lead.post(url, json={"resolution": "custom", "fields": {"version": 9}}), 422)
    assert_problem(
        lead.post(url, json={"resolution": "keep_server", "fields": {"comment": "x"}}),
        422,
        "fields_without_custom",
    )
    assert_problem(
        lead.post(url, json={"resolution": "take_device", "fields": {"comment": "x"}}),
        422,
        "fields_without_custom",
    )
    assert_problem(lead.post(url, json={"resolution": "custom"}), 422, "custom_without_fields")
    assert_problem(
        lead.post(url, json={"resolution": "custom", "fields": {}}), 422, "custom_without_fields"
    )
    assert lead.get(f"/conflicts/{clash['conflict_id']}").json()["status"] == "open"


def test_a_conflict_names_whose_change_which_tablet_and_who_made_the_servers_version(
    patrol_world: dict[str, Any], world: World
) -> None:
    sector_id = patrol_world["sector"]["id"]
    ana = world.user("ranger", username="ana-quispe", sector_ids=[sector_id])
    beto = world.user("ranger", username="beto-rojas", sector_ids=[sector_id])
    a = Tablet(world.device(ana, label="Tablet 07"))
    b = Tablet(world.device(beto, label="Tablet 12"))
    patrol_id = str(uuid.uuid4())
    a.send("patrol", patrol_id, "create", {"sector_id": sector_id})
    a.send("patrol", patrol_id, "update", {"objective": "from A"}, base_version=1)
    clash = b.send("patrol", patrol_id, "update", {"objective": "from B"}, base_version=1)

    page = patrol_world["coordinator"].get("/conflicts").json()

    assert (page["total"], page["limit"], page["offset"]) == (1, 100, 0)
    conflict = page["items"][0]
    assert conflict["id"] == clash["conflict_id"]
    assert conflict["device_op"] == "update"
    assert conflict["device_label"] == "Tablet 12"
    assert conflict["user"] == {
        "user_id": str(beto.user_id),
        "username": "beto-rojas",
        "full_name": "Beto-Rojas",
    }
    assert conflict["server_user"]["username"] == "ana-quispe"
    assert conflict["fields"] == {"objective": {"server": "from A", "device": "from B"}}
    detail = patrol_world["coordinator"].get(f"/conflicts/{clash['conflict_id']}").json()
    assert detail == conflict


def test_conflicts_come_a_page_at_a_time_with_the_total(patrol_world: dict[str, Any]) -> None:
    a: Tablet = patrol_world["tablet"]
    b: Tablet = patrol_world["second"]
    made = []
    for _ in range(3):
        patrol_id = str(uuid.uuid4())
        a.send("patrol", patrol_id, "create", {"sector_id": patrol_world["sector"]["id"]})
        a.send("patrol", patrol_id, "update", {"objective": "A"}, base_version=1)
        made.append(b.send("patrol", patrol_id, "update", {"objective": "B"}, base_version=1))
    coordinator: Caller = patrol_world["coordinator"]

    page = coordinator.get("/conflicts", params={"limit": 2, "offset": 1}).json()

    assert page["total"] == 3
    assert [c["id"] for c in page["items"]] == [m["conflict_id"] for m in made[1:]]
    assert_problem(coordinator.get("/conflicts", params={"limit": 0}), 422)
    assert_problem(coordinator.get("/conflicts", params={"sattus": "open"}), 422)


def test_a_create_held_back_shows_the_record_field_by_field_and_no_internal_key(
    patrol_world: dict[str, Any], world: World
) -> None:
    _logging_category(world)
    tablet: Tablet = patrol_world["tablet"]
    lead: Caller = patrol_world["lead"]
    patrol_id = _submitted_patrol(tablet, patrol_world["sector"]["id"])
    lead.post(f"/patrols/{patrol_id}/review", json={"decision": "approve"})
    fields = _observation_of(patrol_id)
    held = tablet.send("observation", str(uuid.uuid4()), "create", fields)

    conflict = lead.get(f"/conflicts/{held['conflict_id']}").json()

    assert (conflict["kind"], conflict["device_op"]) == ("create_locked", "create")
    assert conflict["fields"] == {
        name: {"server": None, "device": value} for name, value in fields.items()
    }
    assert conflict["server_user"] is None
    assert "__create__" not in str(lead.get("/conflicts").json())


def test_a_delete_of_an_approved_patrol_says_delete_and_who_approved_it(
    patrol_world: dict[str, Any],
) -> None:
    tablet: Tablet = patrol_world["tablet"]
    lead: Caller = patrol_world["lead"]
    patrol_id = _submitted_patrol(tablet, patrol_world["sector"]["id"])
    lead.post(f"/patrols/{patrol_id}/review", json={"decision": "approve"})

    deleted = tablet.send("patrol", patrol_id, "delete", base_version=3)

    conflict = lead.get(f"/conflicts/{deleted['conflict_id']}").json()
    assert (conflict["kind"], conflict["device_op"], conflict["fields"]) == (
        "locked",
        "delete",
        {},
    )
    assert conflict["server_user"]["user_id"] == str(lead.user_id)


# ------------------------------------------------ resolutions meet the rules of a push


def _approved_with_locked_edit(
    patrol_world: dict[str, Any], fields: dict[str, Any]
) -> tuple[str, str]:
    """An approved patrol and the conflict of a device's edit of it."""
    tablet: Tablet = patrol_world["tablet"]
    lead: Caller = patrol_world["lead"]
    patrol_id = _submitted_patrol(tablet, patrol_world["sector"]["id"])
    assert (
        lead.post(f"/patrols/{patrol_id}/review", json={"decision": "approve"}).status_code == 200
    )
    result = tablet.send("patrol", patrol_id, "update", fields, base_version=3)
    assert result["status"] == "conflict", result
    return patrol_id, result["conflict_id"]


def _field_codes(answer: Any) -> dict[str, str]:
    problem = assert_problem(answer, 422, "validation_failed")
    return {error["field"]: error["code"] for error in problem["errors"]}


def test_a_resolution_moves_an_approved_patrol_only_for_a_resolver_who_sees_both_sectors(
    patrol_world: dict[str, Any], world: World
) -> None:
    patrol_id, conflict_id = _approved_with_locked_edit(patrol_world, {"objective": "moved"})
    elsewhere = world.sector("AM-09")["id"]
    lead: Caller = patrol_world["lead"]
    coordinator: Caller = patrol_world["coordinator"]
    body = {"resolution": "custom", "fields": {"sector_id": elsewhere}}

    refused = lead.post(f"/conflicts/{conflict_id}/resolve", json=body)
    assert _field_codes(refused) == {"fields.sector_id": "out_of_scope"}
    assert lead.get(f"/conflicts/{conflict_id}").json()["status"] == "open"

    moved = coordinator.post(f"/conflicts/{conflict_id}/resolve", json=body)
    assert moved.status_code == 200, moved.text
    patrol = coordinator.get(f"/patrols/{patrol_id}").json()["patrol"]
    assert (patrol["sector_id"], patrol["status"]) == (elsewhere, "approved")


@pytest.mark.parametrize("status", ["draft", "submitted", "returned"])
def test_a_resolution_cannot_unapprove_a_patrol(patrol_world: dict[str, Any], status: str) -> None:
    patrol_id, conflict_id = _approved_with_locked_edit(patrol_world, {"objective": "later"})
    lead: Caller = patrol_world["lead"]

    answer = lead.post(
        f"/conflicts/{conflict_id}/resolve",
        json={"resolution": "custom", "fields": {"status": status}},
    )

    assert _field_codes(answer) == {"fields.status": "review_status"}
    assert lead.get(f"/patrols/{patrol_id}").json()["patrol"]["status"] == "approved"


def test_taking_a_devices_status_does_not_unapprove_a_patrol_either(
    patrol_world: dict[str, Any],
) -> None:
    patrol_id, conflict_id = _approved_with_locked_edit(
        patrol_world, {"status": "draft", "objective": "reopened on the tablet"}
    )
    lead: Caller = patrol_world["lead"]

    answer = lead.post(f"/conflicts/{conflict_id}/resolve", json={"resolution": "take_device"})

    assert _field_codes(answer) == {"fields.status": "review_status"}
    assert lead.get(f"/patrols/{patrol_id}").json()["patrol"]["status"] == "approved"
    kept = lead.post(f"/conflicts/{conflict_id}/resolve", json={"resolution": "keep_server"})
    assert kept.status_code == 200, kept.text


def test_a_resolution_cannot_approve_a_patrol_nor_set_what_the_server_owns(
    patrol_world: dict[str, Any],
) -> None:
    a: Tablet = patrol_world["tablet"]
    b: Tablet = patrol_world["second"]
    patrol_id = str(uuid.uuid4())
    a.send("patrol", patrol_id, "create", {"sector_id": patrol_world["sector"]["id"]})
    a.send("patrol", patrol_id, "update", {"objective": "A"}, base_version=1)
    clash = b.send("patrol", patrol_id, "update", {"objective": "B"}, base_version=1)
    url = f"/conflicts/{clash['conflict_id']}/resolve"
    lead: Caller = patrol_world["lead"]

    approve = lead.post(url, json={"resolution": "custom", "fields": {"status": "approved"}})
    reviewed = lead.post(url, json={"resolution": "custom", "fields": {"reviewed_by": None}})

    assert _field_codes(approve) == {"fields.status": "review_status"}
    assert _field_codes(reviewed) == {"fields.reviewed_by": "server_owned_field"}
    assert lead.get(f"/patrols/{patrol_id}").json()["patrol"]["status"] == "draft"


def test_a_resolution_moves_an_observation_to_a_patrol_of_another_sector(
    patrol_world: dict[str, Any], world: World
) -> None:
    _logging_category(world)
    tablet: Tablet = patrol_world["tablet"]
    b: Tablet = patrol_world["second"]
    patrol_id = _submitted_patrol(tablet, patrol_world["sector"]["id"])
    other_sector = world.sector("AM-07")
    stranger = Tablet(world.device(world.user("ranger", sector_ids=[other_sector["id"]])))
    other_patrol = str(uuid.uuid4())
    stranger.send("patrol", other_patrol, "create", {"sector_id": other_sector["id"]})
    observation_id = str(uuid.uuid4())
    fields = _observation_of(patrol_id)
    tablet.send("observation", observation_id, "create", fields)
    tablet.send("observation", observation_id, "update", {"notes": "A"}, base_version=1)
    clash = b.send("observation", observation_id, "update", {"notes": "B"}, base_version=1)
    assert clash["status"] == "conflict", clash
    coordinator: Caller = patrol_world["coordinator"]

    answer = coordinator.post(
        f"/conflicts/{clash['conflict_id']}/resolve",
        json={"resolution": "custom", "fields": {"patrol_id": other_patrol}},
    )

    assert answer.status_code == 200, answer.text
    held, _ = pull_all(stranger.device)
    moved = [c for c in held if c["id"] == observation_id]
    assert [(c["op"], c["fields"]["sector_id"]) for c in moved] == [("upsert", other_sector["id"])]
