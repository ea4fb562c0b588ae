"""Reference data over HTTP: sectors, communities and observation categories.

Admins make and change them, with a new version on every real change; every other
role reads what is in their scope, and what is out of scope reads as absent.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest

from tests.conftest import Caller, World, all_at_once, assert_problem

NON_ADMIN_ROLES = ["coordinator", "ranger_lead", "ranger", "extension_worker"]
ALL_ROLES = ["admin", *NON_ADMIN_ROLES]

# Roughly the Alto Mayo, as [lon, lat]; closed.
BOUNDARY: dict[str, Any] = {
    "type": "Polygon",
    "coordinates": [
        [[-77.6, -5.7], [-77.2, -5.7], [-77.2, -5.5], [-77.6, -5.5], [-77.6, -5.7]],
    ],
}
MULTI_BOUNDARY: dict[str, Any] = {
    "type": "MultiPolygon",
    "coordinates": [
        BOUNDARY["coordinates"],
        [[[-77.1, -5.9], [-77.0, -5.9], [-77.0, -5.8], [-77.1, -5.9]]],
    ],
}
WITH_HOLE: dict[str, Any] = {
    "type": "Polygon",
    "coordinates": [
        BOUNDARY["coordinates"][0],
        [[-77.5, -5.65], [-77.4, -5.65], [-77.4, -5.6], [-77.5, -5.65]],
    ],
}


def _caller(world: World, role: str, **scope: Any) -> Caller:
    return world.admin if role == "admin" else world.user(role, **scope)


def _fields_of(problem: dict[str, Any]) -> list[str]:
    return [error["field"] for error in problem["errors"]]


def _category(key: str = "threat.logging.timber", **fields: Any) -> dict[str, Any]:
    return {
        "key": key,
        "name_es": "Tala de madera",
        "name_en": "Timber logging",
        "attributes": [
            {"key": "species", "type": "text"},
            {"key": "logs", "type": "number", "required": True},
            {"key": "tool", "type": "list", "options": ["chainsaw", "axe"]},
        ],
        **fields,
    }


# ---------------------------------------------------------------- sectors


def test_an_admin_makes_a_sector(world: World) -> None:
    answer = world.admin.post(
        "/sectors", json={"code": "AM-01", "name": "Venceremos", "zone": "recovery"}
    )

    assert answer.status_code == 201, answer.text
    sector = answer.json()
    assert uuid.UUID(sector["id"])
    assert sector["code"] == "AM-01"
    assert sector["name"] == "Venceremos"
    assert sector["zone"] == "recovery"
    assert sector["boundary"] is None
    assert sector["version"] == 1
    assert sector["created_at"]
    assert sector["updated_at"]
    assert world.admin.get(f"/sectors/{sector['id']}").json() == sector


@pytest.mark.parametrize("boundary", [BOUNDARY, MULTI_BOUNDARY, WITH_HOLE])
def test_a_sector_boundary_comes_back_as_it_was_given(
    world: World, boundary: dict[str, Any]
) -> None:
    answer = world.admin.post(
        "/sectors", json={"code": "AM-01", "name": "Venceremos", "boundary": boundary}
    )

    assert answer.status_code == 201, answer.text
    assert answer.json()["boundary"] == boundary
    assert world.admin.get(f"/sectors/{answer.json()['id']}").json()["boundary"] == boundary


def _open_ring() -> dict[str, Any]:
    boundary = copy.deepcopy(BOUNDARY)
    boundary["coordinates"][0][-1] = [-77.6, -5.6]
    return boundary


def _at(lon: Any, lat: Any) -> dict[str, Any]:
    boundary = copy.deepcopy(BOUNDARY)
    boundary["coordinates"][0][1] = [lon, lat]
    return boundary


@pytest.mark.parametrize(
    "boundary",
    [
        pytest.param({"type": "Point", "coordinates": [-77.4, -5.6]}, id="a-point"),
        pytest.param(
            {"type": "LineString", "coordinates": [[-77.6, -5.7], [-77.2, -5.7]]},
            id="a-line",
        ),
        pytest.param(_open_ring(), id="open-ring"),
        pytest.param(
            {"type": "Polygon", "coordinates": [[[-77.6, -5.7], [-77.2, -5.7], [-77.6, -5.7]]]},
            id="too-few-positions",
        ),
        pytest.param(_at(-200.0, -5.7), id="longitude-out-of-range"),
        pytest.param(_at(-77.2, 95.0), id="latitude-out-of-range"),
        pytest.param(_at("-77.2", "-5.7"), id="coordinates-as-text"),
        pytest.param(_at(-77.2, None), id="a-null-coordinate"),
        pytest.param(
            {"type": "Polygon", "coordinates": [[-77.6, -5.7], [-77.2, -5.7]]},
            id="positions-not-in-a-ring",
        ),
        pytest.param({"type": "MultiPolygon", "coordinates": [[-77.6, -5.7]]}, id="multi-flat"),
        pytest.param({"type": "MultiPolygon", "coordinates": [1, 2]}, id="multi-of-numbers"),
        pytest.param({"type": "MultiPolygon", "coordinates": [None]}, id="multi-of-null"),
        pytest.param({"type": "Polygon", "coordinates": [7]}, id="ring-a-number"),
        pytest.param({"type": "Polygon"}, id="no-coordinates"),
        pytest.param({"coordinates": BOUNDARY["coordinates"]}, id="no-type"),
        pytest.param("POLYGON((-77.6 -5.7, -77.2 -5.7))", id="wkt-text"),
    ],
)
def test_a_sector_boundary_that_is_not_a_closed_lon_lat_polygon_is_refused(
    world: World, boundary: Any
) -> None:
    answer = world.admin.post(
        "/sectors", json={"code": "AM-01", "name": "Venceremos", "boundary": boundary}
    )

    problem = assert_problem(answer, 422, "validation_failed")
    assert any(field.startswith("boundary") for field in _fields_of(problem)), problem
    assert world.admin.get("/sectors").json() == []


def test_a_taken_sector_code_is_a_conflict(world: World) -> None:
    world.sector("AM-01")

    answer = world.admin.post("/sectors", json={"code": "AM-01", "name": "Another"})

    assert_problem(answer, 409, "already_exists")
    assert [s["code"] for s in world.admin.get("/sectors").json()] == ["AM-01"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "No code"}, "code"),
        ({"code": "AM-01"}, "name"),
        ({"code": "", "name": "Empty code"}, "code"),
        ({"code": "AM-01", "name": "   "}, "name"),
        ({"code": "X" * 33, "name": "Long code"}, "code"),
        ({"code": "AM-01", "name": "Sector", "version": 7}, "version"),
        ({"code": "AM-01", "name": "Sector", "id": str(uuid.uuid4())}, "id"),
    ],
)
def test_a_sector_that_does_not_validate_is_refused(
    world: World, body: dict[str, Any], field: str
) -> None:
    problem = assert_problem(world.admin.post("/sectors", json=body), 422, "validation_failed")

    assert field in _fields_of(problem)


@pytest.mark.parametrize("role", NON_ADMIN_ROLES)
def test_only_an_admin_makes_a_sector(world: World, role: str) -> None:
    caller = world.user(role)

    answer = caller.post("/sectors", json={"code": "AM-01", "name": "Venceremos"})

    assert_problem(answer, 403, "forbidden")
    assert world.admin.get("/sectors").json() == []


@pytest.mark.parametrize("role", NON_ADMIN_ROLES)
def test_only_an_admin_changes_a_sector(world: World, role: str) -> None:
    sector = world.sector("AM-01")
    caller = world.user(role, sector_ids=[sector["id"]])

    answer = caller.patch(f"/sectors/{sector['id']}", json={"name": "Renamed"})

    assert_problem(answer, 403, "forbidden")
    assert world.admin.get(f"/sectors/{sector['id']}").json()["name"] == sector["name"]


def test_a_sector_change_makes_a_new_version(world: World) -> None:
    sector = world.sector("AM-01")

    answer = world.admin.patch(f"/sectors/{sector['id']}", json={"name": "Venceremos"})

    assert answer.status_code == 200, answer.text
    changed = answer.json()
    assert changed["name"] == "Venceremos"
    assert changed["code"] == "AM-01"
    assert changed["version"] == 2
    assert changed["updated_at"] >= sector["updated_at"]
    assert world.admin.get(f"/sectors/{sector['id']}").json()["version"] == 2


def test_a_sector_patch_that_changes_nothing_keeps_the_version(world: World) -> None:
    sector = world.sector("AM-01", zone="recovery", boundary=BOUNDARY)

    same = world.admin.patch(
        f"/sectors/{sector['id']}",
        json={"name": sector["name"], "zone": "recovery", "boundary": BOUNDARY},
    )
    empty = world.admin.patch(f"/sectors/{sector['id']}", json={})

    assert same.status_code == 200, same.text
    assert same.json()["version"] == 1
    assert same.json()["updated_at"] == sector["updated_at"]
    assert empty.status_code == 200, empty.text
    assert empty.json()["version"] == 1


def test_each_real_sector_change_is_one_more_version(world: World) -> None:
    sector = world.sector("AM-01")

    world.admin.patch(f"/sectors/{sector['id']}", json={"zone": "strict"})
    world.admin.patch(f"/sectors/{sector['id']}", json={"zone": "strict"})
    answer = world.admin.patch(f"/sectors/{sector['id']}", json={"boundary": BOUNDARY})

    assert answer.json()["version"] == 3
    assert answer.json()["boundary"] == BOUNDARY


def test_a_sector_name_cannot_be_emptied(world: World) -> None:
    sector = world.sector("AM-01")

    answer = world.admin.patch(f"/sectors/{sector['id']}", json={"name": None})

    problem = assert_problem(answer, 422, "validation_failed")
    assert problem["errors"] == [
        {"field": "name", "code": "required", "message": problem["errors"][0]["message"]}
    ]
    kept = world.admin.get(f"/sectors/{sector['id']}").json()
    assert kept["name"] == sector["name"]
    assert kept["version"] == 1


def test_a_null_zone_and_boundary_clear_them(world: World) -> None:
    sector = world.sector("AM-01", zone="recovery", boundary=BOUNDARY)

    answer = world.admin.patch(f"/sectors/{sector['id']}", json={"zone": None, "boundary": None})

    assert answer.status_code == 200, answer.text
    assert answer.json()["zone"] is None
    assert answer.json()["boundary"] is None
    assert answer.json()["version"] == 2
    assert world.admin.get(f"/sectors/{sector['id']}").json()["zone"] is None


def test_a_sector_code_cannot_be_changed(world: World) -> None:
    sector = world.sector("AM-01")

    answer = world.admin.patch(f"/sectors/{sector['id']}", json={"code": "AM-02"})

    assert_problem(answer, 422, "validation_failed")


def test_a_bad_boundary_in_a_patch_is_refused(world: World) -> None:
    sector = world.sector("AM-01", boundary=BOUNDARY)

    answer = world.admin.patch(f"/sectors/{sector['id']}", json={"boundary": _open_ring()})

    assert_problem(answer, 422, "validation_failed")
    assert world.admin.get(f"/sectors/{sector['id']}").json()["boundary"] == BOUNDARY


def test_changing_an_unknown_sector_is_not_found(world: World) -> None:
    answer = world.admin.patch(f"/sectors/{uuid.uuid4()}", json={"name": "Nowhere"})

    assert_problem(answer, 404, "not_found")


# ---------------------------------------------------------------- communities


def test_an_admin_makes_a_community(world: World) -> None:
    sector = world.sector("AM-01")

    answer = world.admin.post(
        "/communities",
        json={
            "name": "Nuevo Edén",
            "sector_id": sector["id"],
            "kind": "native_community",
            "inside_protected_area": True,
        },
    )

    assert answer.status_code == 201, answer.text
    community = answer.json()
    assert uuid.UUID(community["id"])
    assert community["name"] == "Nuevo Edén"
    assert community["sector_id"] == sector["id"]
    assert community["kind"] == "native_community"
    assert community["inside_protected_area"] is True
    assert community["version"] == 1
    assert world.admin.get(f"/communities/{community['id']}").json() == community


def test_a_community_is_outside_the_protected_area_unless_said(world: World) -> None:
    sector = world.sector("AM-01")

    community = world.community(sector["id"])

    assert community["inside_protected_area"] is False
    assert community["kind"] == "settlement"


def test_a_community_name_is_unique_within_its_sector_only(world: World) -> None:
    north = world.sector("AM-N")
    south = world.sector("AM-S")
    world.community(north["id"], "Aguas Verdes")

    same_sector = world.admin.post(
        "/communities", json={"name": "Aguas Verdes", "sector_id": north["id"], "kind": "hamlet"}
    )
    other_sector = world.admin.post(
        "/communities", json={"name": "Aguas Verdes", "sector_id": south["id"], "kind": "hamlet"}
    )

    assert_problem(same_sector, 409, "already_exists")
    assert other_sector.status_code == 201, other_sector.text


def test_a_community_of_an_unknown_sector_is_refused(world: World) -> None:
    answer = world.admin.post(
        "/communities",
        json={"name": "Nowhere", "sector_id": str(uuid.uuid4()), "kind": "settlement"},
    )

    problem = assert_problem(answer, 422, "validation_failed")
    assert _fields_of(problem) == ["sector_id"]
    assert problem["errors"][0]["code"] == "unknown_reference"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "city"}, "kind"),
        ({"name": ""}, "name"),
        ({"sector_id": "AM-01"}, "sector_id"),
        ({"inside_protected_area": "perhaps"}, "inside_protected_area"),
        ({"population": 120}, "population"),
    ],
)
def test_a_community_that_does_not_validate_is_refused(
    world: World, change: dict[str, Any], field: str
) -> None:
    sector = world.sector("AM-01")
    body = {"name": "Nuevo Edén", "sector_id": sector["id"], "kind": "settlement", **change}

    problem = assert_problem(world.admin.post("/communities", json=body), 422, "validation_failed")

    assert field in _fields_of(problem)


@pytest.mark.parametrize("role", NON_ADMIN_ROLES)
def test_only_an_admin_makes_a_community(world: World, role: str) -> None:
    sector = world.sector("AM-01")
    caller = world.user(role, sector_ids=[sector["id"]])

    answer = caller.post(
        "/communities", json={"name": "Nuevo Edén", "sector_id": sector["id"], "kind": "hamlet"}
    )

    assert_problem(answer, 403, "forbidden")
    assert world.admin.get("/communities").json() == []


@pytest.mark.parametrize("role", NON_ADMIN_ROLES)
def test_only_an_admin_changes_a_community(world: World, role: str) -> None:
    sector = world.sector("AM-01")
    community = world.community(sector["id"], "Nuevo Edén")
    caller = world.user(role, sector_ids=[sector["id"]], community_ids=[community["id"]])

    answer = caller.patch(f"/communities/{community['id']}", json={"name": "Renamed"})

    assert_problem(answer, 403, "forbidden")


def test_a_community_change_makes_a_new_version_only_when_something_changed(
    world: World,
) -> None:
    sector = world.sector("AM-01")
    community = world.community(sector["id"], "Nuevo Edén")

    same = world.admin.patch(
        f"/communities/{community['id']}", json={"name": "Nuevo Edén", "kind": "settlement"}
    )
    changed = world.admin.patch(
        f"/communities/{community['id']}", json={"inside_protected_area": True}
    )

    assert same.status_code == 200, same.text
    assert same.json()["version"] == 1
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == 2
    assert changed.json()["inside_protected_area"] is True
    assert changed.json()["name"] == "Nuevo Edén"


def test_a_community_moves_to_another_sector(world: World) -> None:
    north = world.sector("AM-N")
    south = world.sector("AM-S")
    community = world.community(north["id"], "Nuevo Edén")

    answer = world.admin.patch(f"/communities/{community['id']}", json={"sector_id": south["id"]})

    assert answer.status_code == 200, answer.text
    assert answer.json()["sector_id"] == south["id"]
    assert answer.json()["version"] == 2


def test_a_community_cannot_move_to_an_unknown_sector(world: World) -> None:
    sector = world.sector("AM-01")
    community = world.community(sector["id"])

    answer = world.admin.patch(
        f"/communities/{community['id']}", json={"sector_id": str(uuid.uuid4())}
    )

    problem = assert_problem(answer, 422, "validation_failed")
    assert _fields_of(problem) == ["sector_id"]


def test_a_community_cannot_take_a_name_taken_in_its_sector(world: World) -> None:
    north = world.sector("AM-N")
    south = world.sector("AM-S")
    world.community(north["id"], "Aguas Verdes")
    elsewhere = world.community(south["id"], "Aguas Verdes")
    other = world.community(north["id"], "Nuevo Edén")

    renamed = world.admin.patch(f"/communities/{other['id']}", json={"name": "Aguas Verdes"})
    moved = world.admin.patch(f"/communities/{elsewhere['id']}", json={"sector_id": north["id"]})

    assert_problem(renamed, 409, "already_exists")
    assert_problem(moved, 409, "already_exists")


@pytest.mark.parametrize("field", ["name", "sector_id", "kind", "inside_protected_area"])
def test_a_community_field_cannot_be_emptied(world: World, field: str) -> None:
    sector = world.sector("AM-01")
    community = world.community(sector["id"])

    answer = world.admin.patch(f"/communities/{community['id']}", json={field: None})

    problem = assert_problem(answer, 422, "validation_failed")
    assert _fields_of(problem) == [field]
    assert problem["errors"][0]["code"] == "required"


def test_changing_an_unknown_community_is_not_found(world: World) -> None:
    answer = world.admin.patch(f"/communities/{uuid.uuid4()}", json={"name": "Nowhere"})

    assert_problem(answer, 404, "not_found")


# ---------------------------------------------------------------- observation categories


def test_an_admin_makes_an_observation_category(world: World) -> None:
    answer = world.admin.post("/observation-categories", json=_category())

    assert answer.status_code == 201, answer.text
    category = answer.json()
    assert uuid.UUID(category["id"])
    assert category["key"] == "threat.logging.timber"
    assert category["name_es"] == "Tala de madera"
    assert category["name_en"] == "Timber logging"
    assert category["active"] is True
    assert category["version"] == 1
    assert category["attributes"] == [
        {"key": "species", "type": "text", "options": None, "required": False},
        {"key": "logs", "type": "number", "options": None, "required": True},
        {"key": "tool", "type": "list", "options": ["chainsaw", "axe"], "required": False},
    ]
    assert world.admin.get(f"/observation-categories/{category['id']}").json() == category


@pytest.mark.parametrize("key", ["threat", "threat.logging.timber", "wildlife.mammal.tapir_2"])
def test_a_category_key_is_dotted_lowercase(world: World, key: str) -> None:
    answer = world.admin.post("/observation-categories", json=_category(key, attributes=[]))

    assert answer.status_code == 201, answer.text
    assert answer.json()["key"] == key


@pytest.mark.parametrize(
    "key",
    [
        "Threat Logging",
        "threat logging",
        "threat..logging",
        ".threat",
        "threat.",
        "threat-logging",
        "2threat",
        "threat.9",
        "",
    ],
)
def test_a_category_key_that_is_not_dotted_lowercase_is_refused(world: World, key: str) -> None:
    answer = world.admin.post("/observation-categories", json=_category(key))

    problem = assert_problem(answer, 422, "validation_failed")
    assert "key" in _fields_of(problem)


def test_a_taken_category_key_is_a_conflict(world: World) -> None:
    assert world.admin.post("/observation-categories", json=_category()).status_code == 201

    answer = world.admin.post("/observation-categories", json=_category(name_en="Logging again"))

    assert_problem(answer, 409, "already_exists")


@pytest.mark.parametrize("kind", ["number", "text", "list", "bool", "date"])
def test_every_attribute_type_is_accepted(world: World, kind: str) -> None:
    attribute: dict[str, Any] = {"key": "value", "type": kind}
    if kind == "list":
        attribute["options"] = ["a", "b"]

    answer = world.admin.post(
        "/observation-categories", json=_category("wildlife.sighting", attributes=[attribute])
    )

    assert answer.status_code == 201, answer.text
    assert answer.json()["attributes"][0]["type"] == kind


@pytest.mark.parametrize(
    ("attributes", "field"),
    [
        pytest.param([{"key": "tool", "type": "list"}], "attributes.0", id="list-without-options"),
        pytest.param(
            [{"key": "tool", "type": "list", "options": []}], "attributes.0", id="list-no-options"
        ),
        pytest.param(
            [{"key": "logs", "type": "number", "options": ["1", "2"]}],
            "attributes.0",
            id="options-on-a-number",
        ),
        pytest.param(
            [{"key": "note", "type": "text", "options": []}],
            "attributes.0",
            id="empty-options-on-text",
        ),
        pytest.param(
            [{"key": "logs", "type": "number"}, {"key": "logs", "type": "text"}],
            "attributes",
            id="duplicate-keys",
        ),
        pytest.param([{"key": "logs", "type": "integer"}], "attributes.0.type", id="bad-type"),
        pytest.param([{"key": "Logs", "type": "number"}], "attributes.0.key", id="bad-key"),
        pytest.param([{"key": "a.b", "type": "number"}], "attributes.0.key", id="dotted-key"),
        pytest.param([{"type": "number"}], "attributes.0.key", id="no-key"),
        pytest.param(
            [{"key": "logs", "type": "number", "unit": "m3"}],
            "attributes.0.unit",
            id="unknown-field",
        ),
    ],
)
def test_category_attributes_that_do_not_validate_are_refused(
    world: World, attributes: list[dict[str, Any]], field: str
) -> None:
    answer = world.admin.post("/observation-categories", json=_category(attributes=attributes))

    problem = assert_problem(answer, 422, "validation_failed")
    assert any(f.startswith(field) for f in _fields_of(problem)), problem
    assert world.admin.get("/observation-categories").json() == []


@pytest.mark.parametrize("role", NON_ADMIN_ROLES)
def test_only_an_admin_makes_a_category(world: World, role: str) -> None:
    caller = world.user(role)

    answer = caller.post("/observation-categories", json=_category())

    assert_problem(answer, 403, "forbidden")


@pytest.mark.parametrize("role", NON_ADMIN_ROLES)
def test_only_an_admin_changes_a_category(world: World, role: str) -> None:
    category = world.admin.post("/observation-categories", json=_category()).json()
    caller = world.user(role)

    answer = caller.patch(f"/observation-categories/{category['id']}", json={"active": False})

    assert_problem(answer, 403, "forbidden")


def test_a_category_change_makes_a_new_version_only_when_something_changed(
    world: World,
) -> None:
    category = world.admin.post("/observation-categories", json=_category()).json()
    path = f"/observation-categories/{category['id']}"

    same = world.admin.patch(path, json={"name_en": "Timber logging", "active": True})
    retired = world.admin.patch(path, json={"active": False})
    new_attributes = world.admin.patch(
        path, json={"attributes": [{"key": "volume_m3", "type": "number"}]}
    )

    assert same.json()["version"] == 1
    assert retired.json()["version"] == 2
    assert retired.json()["active"] is False
    assert new_attributes.status_code == 200, new_attributes.text
    assert new_attributes.json()["version"] == 3
    assert [a["key"] for a in new_attributes.json()["attributes"]] == ["volume_m3"]


def test_the_same_attributes_sent_again_keep_the_version(world: World) -> None:
    category = world.admin.post("/observation-categories", json=_category()).json()

    answer = world.admin.patch(
        f"/observation-categories/{category['id']}", json={"attributes": category["attributes"]}
    )

    assert answer.status_code == 200, answer.text
    assert answer.json()["version"] == 1


def test_a_category_patch_checks_its_attributes(world: World) -> None:
    category = world.admin.post("/observation-categories", json=_category()).json()

    answer = world.admin.patch(
        f"/observation-categories/{category['id']}",
        json={"attributes": [{"key": "x", "type": "text"}, {"key": "x", "type": "date"}]},
    )

    problem = assert_problem(answer, 422, "validation_failed")
    assert _fields_of(problem) == ["attributes"]
    assert world.admin.get(f"/observation-categories/{category['id']}").json() == category


@pytest.mark.parametrize("field", ["name_es", "name_en", "attributes", "active"])
def test_a_category_field_cannot_be_emptied(world: World, field: str) -> None:
    category = world.admin.post("/observation-categories", json=_category()).json()

    answer = world.admin.patch(f"/observation-categories/{category['id']}", json={field: None})

    problem = assert_problem(answer, 422, "validation_failed")
    assert _fields_of(problem) == [field]


def test_a_category_key_cannot_be_changed(world: World) -> None:
    category = world.admin.post("/observation-categories", json=_category()).json()

    answer = world.admin.patch(
        f"/observation-categories/{category['id']}", json={"key": "threat.logging"}
    )

    assert_problem(answer, 422, "validation_failed")


@pytest.mark.parametrize("role", ALL_ROLES)
def test_every_role_reads_the_observation_categories(world: World, role: str) -> None:
    logging = world.admin.post("/observation-categories", json=_category()).json()
    retired = world.admin.post(
        "/observation-categories", json=_category("threat.fire", attributes=[], active=False)
    ).json()
    caller = _caller(world, role)

    listed = caller.get("/observation-categories")
    active = caller.get("/observation-categories", params={"active": "true"})
    inactive = caller.get("/observation-categories", params={"active": "false"})
    one = caller.get(f"/observation-categories/{logging['id']}")

    assert listed.status_code == 200, listed.text
    assert [c["key"] for c in listed.json()] == ["threat.fire", "threat.logging.timber"]
    assert [c["id"] for c in active.json()] == [logging["id"]]
    assert [c["id"] for c in inactive.json()] == [retired["id"]]
    assert one.json() == logging


def test_an_unknown_category_is_not_found(world: World) -> None:
    assert_problem(world.admin.get(f"/observation-categories/{uuid.uuid4()}"), 404, "not_found")
    assert_problem(
        world.admin.patch(f"/observation-categories/{uuid.uuid4()}", json={"active": False}),
        404,
        "not_found",
    )


# ---------------------------------------------------------------- who sees what


@pytest.fixture
def places(world: World) -> dict[str, dict[str, Any]]:
    """Two sectors with two communities each."""
    north = world.sector("AM-N")
    south = world.sector("AM-S")
    return {
        "north": north,
        "south": south,
        "north_a": world.community(north["id"], "Aguas Verdes"),
        "north_b": world.community(north["id"], "Bajo Naranjillo"),
        "south_a": world.community(south["id"], "Salas"),
        "south_b": world.community(south["id"], "Shampuyacu"),
    }


def _ids(answer: Any) -> set[str]:
    assert answer.status_code == 200, answer.text
    return {record["id"] for record in answer.json()}


@pytest.mark.parametrize("role", ["ranger", "ranger_lead"])
def test_rangers_see_only_their_sectors_and_the_communities_in_them(
    world: World, places: dict[str, dict[str, Any]], role: str
) -> None:
    caller = world.user(role, sector_ids=[places["north"]["id"]])

    assert _ids(caller.get("/sectors")) == {places["north"]["id"]}
    assert _ids(caller.get("/communities")) == {places["north_a"]["id"], places["north_b"]["id"]}
    assert caller.get(f"/sectors/{places['north']['id']}").status_code == 200
    assert caller.get(f"/communities/{places['north_a']['id']}").status_code == 200


@pytest.mark.parametrize("role", ["ranger", "ranger_lead"])
def test_another_sector_and_its_communities_read_as_absent_to_rangers(
    world: World, places: dict[str, dict[str, Any]], role: str
) -> None:
    caller = world.user(role, sector_ids=[places["north"]["id"]])

    hidden = assert_problem(caller.get(f"/sectors/{places['south']['id']}"), 404, "not_found")
    unknown = assert_problem(caller.get(f"/sectors/{uuid.uuid4()}"), 404, "not_found")
    assert hidden["detail"] == unknown["detail"]
    assert_problem(caller.get(f"/communities/{places['south_a']['id']}"), 404, "not_found")


def test_an_extension_worker_sees_their_communities_and_the_sectors_they_lie_in(
    world: World, places: dict[str, dict[str, Any]]
) -> None:
    worker = world.user("extension_worker", community_ids=[places["north_a"]["id"]])

    assert _ids(worker.get("/communities")) == {places["north_a"]["id"]}
    assert _ids(worker.get("/sectors")) == {places["north"]["id"]}
    assert worker.get(f"/sectors/{places['north']['id']}").status_code == 200
    assert worker.get(f"/communities/{places['north_a']['id']}").status_code == 200
    assert_problem(worker.get(f"/communities/{places['north_b']['id']}"), 404, "not_found")
    assert_problem(worker.get(f"/communities/{places['south_a']['id']}"), 404, "not_found")
    assert_problem(worker.get(f"/sectors/{places['south']['id']}"), 404, "not_found")


def test_an_extension_worker_with_communities_in_two_sectors_sees_both(
    world: World, places: dict[str, dict[str, Any]]
) -> None:
    worker = world.user(
        "extension_worker", community_ids=[places["north_b"]["id"], places["south_a"]["id"]]
    )

    assert _ids(worker.get("/sectors")) == {places["north"]["id"], places["south"]["id"]}
    assert _ids(worker.get("/communities")) == {places["north_b"]["id"], places["south_a"]["id"]}


def test_an_extension_worker_follows_a_community_moved_to_another_sector(
    world: World, places: dict[str, dict[str, Any]]
) -> None:
    worker = world.user("extension_worker", community_ids=[places["north_a"]["id"]])

    world.admin.patch(
        f"/communities/{places['north_a']['id']}", json={"sector_id": places["south"]["id"]}
    )

    assert _ids(worker.get("/sectors")) == {places["south"]["id"]}


@pytest.mark.parametrize("role", ["ranger", "extension_worker"])
def test_a_caller_without_a_scope_sees_no_places(
    world: World, places: dict[str, dict[str, Any]], role: str
) -> None:
    caller = world.user(role)

    assert caller.get("/sectors").json() == []
    assert caller.get("/communities").json() == []


def test_an_extension_workers_sectors_do_not_widen_their_communities(
    world: World, places: dict[str, dict[str, Any]]
) -> None:
    worker = world.user(
        "extension_worker",
        sector_ids=[places["south"]["id"]],
        community_ids=[places["north_a"]["id"]],
    )

    assert _ids(worker.get("/communities")) == {places["north_a"]["id"]}
    assert _ids(worker.get("/sectors")) == {places["north"]["id"]}


@pytest.mark.parametrize("role", ["admin", "coordinator"])
def test_office_staff_see_every_sector_and_community(
    world: World, places: dict[str, dict[str, Any]], role: str
) -> None:
    caller = _caller(world, role)

    sectors = caller.get("/sectors")
    communities = caller.get("/communities")

    assert [s["code"] for s in sectors.json()] == ["AM-N", "AM-S"]
    assert [c["name"] for c in communities.json()] == [
        "Aguas Verdes",
        "Bajo Naranjillo",
        "Salas",
        "Shampuyacu",
    ]
    assert caller.get(f"/sectors/{places['south']['id']}").status_code == 200
    assert caller.get(f"/communities/{places['south_b']['id']}").status_code == 200


@pytest.mark.parametrize("role", ["admin", "coordinator"])
def test_communities_can_be_listed_for_one_sector(
    world: World, places: dict[str, dict[str, Any]], role: str
) -> None:
    caller = _caller(world, role)

    answer = caller.get("/communities", params={"sector_id": places["south"]["id"]})

    assert _ids(answer) == {places["south_a"]["id"], places["south_b"]["id"]}


def test_the_sector_filter_does_not_widen_a_rangers_scope(
    world: World, places: dict[str, dict[str, Any]]
) -> None:
    ranger = world.user("ranger", sector_ids=[places["north"]["id"]])

    mine = ranger.get("/communities", params={"sector_id": places["north"]["id"]})
    other = ranger.get("/communities", params={"sector_id": places["south"]["id"]})

    assert _ids(mine) == {places["north_a"]["id"], places["north_b"]["id"]}
    assert other.json() == []


def test_the_sector_filter_must_be_an_id(world: World) -> None:
    problem = assert_problem(
        world.admin.get("/communities", params={"sector_id": "AM-N"}), 422, "validation_failed"
    )

    assert _fields_of(problem) == ["sector_id"]


def test_reading_places_needs_a_token(world: World, places: dict[str, dict[str, Any]]) -> None:
    for path in (
        "/sectors",
        f"/sectors/{places['north']['id']}",
        "/communities",
        f"/communities/{places['north_a']['id']}",
        "/observation-categories",
    ):
        assert_problem(world.client.get(path), 401, "not_authenticated")


def test_two_admins_making_the_same_sector_at_once_get_one_201_and_409s_never_a_500(
    world: World,
) -> None:
    headers = world.admin.headers
    answers = all_at_once(
        world.client,
        lambda client: client.post(
            "/sectors", json={"code": "AM-RACE", "name": "Race"}, headers=headers
        ),
    )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] + [409] * (len(answers) - 1), [a.text for a in answers]
    for answer in answers:
        if answer.status_code == 409:
            assert_problem(answer, 409, "already_exists")
    assert [s["code"] for s in world.admin.get("/sectors").json()] == ["AM-RACE"]
