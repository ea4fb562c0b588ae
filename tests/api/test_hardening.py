"""What fuzzing and an outside review found: each input that once made a 500, kept as
a test of its own. Every one is a problem+json with a stable code.
"""

from __future__ import annotations

import gzip
import json
import re
import uuid
from typing import Any

import pytest

from api.body import MAX_JSON_DEPTH, nested_deeper_than, parse_json
from schemas.enums import Role
from schemas.queries import MAX_OFFSET
from tests.asgi import TestClient
from tests.conftest import World, assert_problem
from tests.sync_support import change

JSON = {"Content-Type": "application/json"}


def nested(levels: int, inner: str = "") -> str:
    return "[" * levels + inner + "]" * levels


# ---------------------------------------------------------------- the JSON parser


@pytest.mark.parametrize(
    ("document", "limit", "deeper"),
    [
        (1, 0, False),
        ([], 1, False),
        ([], 0, True),
        ([[1, [2]]], 3, False),
        ([[1, [2]]], 2, True),
        ({"a": [{"b": {}}]}, 4, False),
        ({"a": [{"b": {}}]}, 3, True),
        ({"a": "[[[[[[[[[["}, 1, False),  # brackets in text are text
        ([[], [[[]]], []], 4, False),
        ([[], [[[]]], []], 3, True),
    ],
)
def test_nesting_is_counted_in_arrays_and_objects_only(
    document: Any, limit: int, deeper: bool
) -> None:
    assert nested_deeper_than(document, limit) is deeper


@pytest.mark.parametrize(
    "raw",
    [
        nested(100_000).encode(),
        nested(MAX_JSON_DEPTH + 1).encode(),
        b'{"z": ' + nested(450).encode() + b"}",
        b"NaN",
        b"[1e999]",
        '{"a": 1}'.encode("utf-16"),
        b'{"a": "\xff"}',
    ],
    ids=["100k-deep", "one-too-deep", "450-deep-in-an-object", "nan", "1e999", "utf-16", "latin-1"],
)
def test_what_is_not_json_by_the_protocol_is_a_decode_error(raw: bytes) -> None:
    with pytest.raises(json.JSONDecodeError):
        parse_json(raw)


def test_the_deepest_document_allowed_parses_and_big_numbers_stay_exact() -> None:
    assert parse_json(nested(MAX_JSON_DEPTH, "1").encode()) is not None
    assert parse_json(b'{"logs": 1000000000000000000000000000000}') == {"logs": 10**30}


# ---------------------------------------------------------------- nested bodies


@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH + 1, 990, 100_000])
def test_a_deeply_nested_push_is_malformed_json_and_applies_nothing(
    world: World, levels: int
) -> None:
    ranger = world.user(Role.ranger, sector_ids=[world.sector()["id"]])
    tablet = world.device(ranger)

    answer = tablet.post("/sync/push", content=nested(levels), headers=JSON)

    problem = assert_problem(answer, 400, "malformed_json")
    assert "nested" in problem["detail"] or "depth" in problem["detail"]


def test_deep_nesting_inside_a_change_is_malformed_json_gzipped_too(world: World) -> None:
    sector = world.sector()
    ranger = world.user(Role.ranger, sector_ids=[sector["id"]])
    tablet = world.device(ranger)
    patrol = change("patrol", str(uuid.uuid4()), "create", 1, {"sector_id": sector["id"]})
    body = json.dumps(
        {"protocol": 1, "device_id": tablet.tokens["device_id"], "changes": [patrol]}
    ).replace('"fields": {', '"fields": {"deep": ' + nested(300) + ", ")

    answer = tablet.post(
        "/sync/push",
        content=gzip.compress(body.encode()),
        headers={**JSON, "Content-Encoding": "gzip"},
    )

    assert_problem(answer, 400, "malformed_json")
    pulled = tablet.get("/sync/pull").json()
    assert pulled["last_seq"] is None
    assert [c for c in pulled["changes"] if c["entity"] == "patrol"] == []


def test_deep_nesting_inside_a_track_point_is_malformed_json(world: World) -> None:
    """A segment's points are read before the depth check (``schemas.track``); those its
    reader cannot vouch for are walked by it still."""
    sector = world.sector()
    ranger = world.user(Role.ranger, sector_ids=[sector["id"]])
    tablet = world.device(ranger)
    patrol_id = str(uuid.uuid4())
    patrol = change("patrol", patrol_id, "create", 1, {"sector_id": sector["id"]})
    point = {"t": "2026-03-09T07:34:02-05:00", "lat": -5.7, "lon": -77.2, "alt_m": []}
    segment = change("track_segment", str(uuid.uuid4()), "create", 2)
    segment["fields"] = {"patrol_id": patrol_id, "points": [point]}
    body = json.dumps(
        {"protocol": 1, "device_id": tablet.tokens["device_id"], "changes": [patrol, segment]}
    ).replace('"alt_m": []', '"alt_m": ' + nested(300, "1"))

    answer = tablet.post("/sync/push", content=body, headers=JSON)

    assert_problem(answer, 400, "malformed_json")
    assert tablet.get("/sync/pull").json()["last_seq"] is None


@pytest.mark.parametrize("path", ["/auth/refresh", "/devices/enroll"])
@pytest.mark.parametrize("levels", [450, 100_000])
def test_a_deeply_nested_body_without_a_token_is_malformed_json(
    client: TestClient, path: str, levels: int
) -> None:
    answer = client.post(path, content='{"z": ' + nested(levels) + "}", headers=JSON)

    assert_problem(answer, 400, "malformed_json")


def test_a_body_nested_within_the_limit_is_answered_by_validation(client: TestClient) -> None:
    answer = client.post(
        "/auth/refresh", content='{"z": ' + nested(MAX_JSON_DEPTH - 1) + "}", headers=JSON
    )

    assert_problem(answer, 422, "validation_failed")


def test_nul_deep_in_an_admin_body_is_a_validation_error(world: World) -> None:
    answer = world.admin.post(
        "/sectors", content='{"code": "X", "name": ' + nested(40, '"a\\u0000"') + "}", headers=JSON
    )

    assert_problem(answer, 422, "validation_failed")


# ---------------------------------------------------------------- query parameters


PAGED_LISTS = [
    "/patrols",
    "/sync/deferred",
    "/sync/rejected",
    "/people",
    "/households",
    "/agreements",
    "/training-sessions",
    "/attendance",
    "/people/duplicates",
    "/personal-data-log",
    "/conflicts",
]


@pytest.mark.parametrize("path", PAGED_LISTS)
@pytest.mark.parametrize("offset", [MAX_OFFSET + 1, 2**63, 1079219461141358725159182240055296, -1])
def test_an_offset_no_list_can_reach_is_a_validation_error(
    world: World, path: str, offset: int
) -> None:
    answer = world.admin.get(path, params={"offset": offset})

    problem = assert_problem(answer, 422, "validation_failed")
    assert [e["field"] for e in problem["errors"]] == ["offset"]


@pytest.mark.parametrize("path", PAGED_LISTS)
def test_the_deepest_offset_allowed_answers_an_empty_page(world: World, path: str) -> None:
    answer = world.admin.get(path, params={"offset": MAX_OFFSET})

    assert answer.status_code == 200, answer.text
    assert answer.json()["items"] == []


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/people", {"q": "a\x00b"}),
        ("/households", {"q": "a\x00b"}),
        ("/agreements", {"status": "a\x00b"}),
        ("/patrols", {"category": "a\x00b"}),
        ("/conflicts", {"entity": "a\x00b"}),
    ],
)
def test_a_nul_in_a_query_parameter_is_a_validation_error(
    world: World, path: str, params: dict[str, str]
) -> None:
    answer = world.admin.get(path, params=params)

    problem = assert_problem(answer, 422, "validation_failed")
    assert {e["code"] for e in problem["errors"]} == {"nul_character"}


# ---------------------------------------------------------------- the OpenAPI document


def test_the_push_body_is_a_component_every_reference_of_which_resolves(
    client: TestClient,
) -> None:
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/api/v1/sync/push"]["post"]["requestBody"]
    schemas = spec["components"]["schemas"]

    assert body["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PushRequest"
    }
    text = json.dumps(spec)
    assert "#/$defs/" not in text
    for name in {part.split('"')[0] for part in text.split("#/components/schemas/")[1:]}:
        assert name in schemas, name
    assert schemas["PushRequest"]["properties"]["changes"]["items"] == {
        "$ref": "#/components/schemas/Change"
    }


def test_every_problem_is_documented_as_problem_json_and_every_write_its_409(
    client: TestClient,
) -> None:
    spec = client.get("/openapi.json").json()
    operations = [
        (path, method, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    ]

    for path, method, operation in operations:
        for status, answer in operation["responses"].items():
            if int(status) >= 400:
                assert answer["content"] == {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                }, (path, method, status)
        if "requestBody" in operation:
            assert {"408", "413"} <= operation["responses"].keys(), (path, method)
    writes = {(p, m) for p, m, o in operations if "409" in o["responses"]}
    assert ("/api/v1/users", "post") in writes
    assert ("/api/v1/conflicts/{conflict_id}/resolve", "post") in writes
    assert ("/api/v1/sync/push", "post") not in writes  # a change conflicts, not the batch


def test_a_blank_name_and_a_nul_are_refused_by_the_documented_patterns(
    client: TestClient,
) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    [full_name, _none] = schemas["UserUpdate"]["properties"]["full_name"]["anyOf"]
    [search] = [
        p["schema"]
        for p in client.get("/openapi.json").json()["paths"]["/api/v1/people"]["get"]["parameters"]
        if p["name"] == "q"
    ]
    blank_or_nul = re.compile(full_name["pattern"])
    no_nul = re.compile(search["anyOf"][0]["pattern"])

    assert [bool(blank_or_nul.match(t)) for t in ["Rosa", " a ", "  ", "\x85", "a\x00"]] == [
        True,
        True,
        False,
        False,
        False,
    ]
    assert [bool(no_nul.match(t)) for t in ["", "Rosa", "a\x00b"]] == [True, True, False]


# ---------------------------------------------------------------- rules stated in words


def test_rules_no_schema_can_state_answer_codes_of_their_own(world: World) -> None:
    open_ring = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}
    twice = [{"key": "dbh", "type": "number"}, {"key": "dbh", "type": "text"}]

    sector = world.admin.post(
        "/sectors", json={"code": "S-OPEN", "name": "Open", "boundary": open_ring}
    )
    category = world.admin.post(
        "/observation-categories",
        json={"key": "stump", "name_es": "Tocón", "name_en": "Stump", "attributes": twice},
    )

    assert assert_problem(sector, 422, "validation_failed")["errors"][0]["code"] == (
        "ring_not_closed"
    )
    assert assert_problem(category, 422, "validation_failed")["errors"] == [
        {"field": "attributes", "code": "duplicate_key", "message": "attribute keys must be unique"}
    ]


# ---------------------------------------------------------------- strict wire types


def _tablet_and_batch(world: World) -> tuple[Any, dict[str, Any]]:
    sector = world.sector()
    tablet = world.device(world.user(Role.ranger, sector_ids=[sector["id"]]))
    patrol = change("patrol", str(uuid.uuid4()), "create", 1, {"sector_id": sector["id"]})
    return tablet, {"protocol": 1, "device_id": tablet.tokens["device_id"], "changes": [patrol]}


@pytest.mark.parametrize(
    ("content_type", "encode"),
    [
        ("text/plain", "utf-8"),
        ("application/x-www-form-urlencoded", "utf-8"),
        (None, "utf-8"),
        ("application/json; charset=utf-16", "utf-16"),
        ("application/json", "utf-16"),
    ],
    ids=["text", "form", "untyped", "utf-16-declared", "utf-16-undeclared"],
)
def test_push_takes_json_in_utf8_only(world: World, content_type: str | None, encode: str) -> None:
    tablet, batch = _tablet_and_batch(world)
    headers = {"Content-Type": content_type} if content_type else {}

    answer = tablet.post("/sync/push", content=json.dumps(batch).encode(encode), headers=headers)

    if content_type == "application/json":
        assert_problem(answer, 400, "malformed_json")  # declared UTF-8, is not
    else:
        assert_problem(answer, 415, "unsupported_media_type")
    assert tablet.get("/sync/pull").json()["last_seq"] is None


def test_push_refuses_bytes_after_the_end_of_its_gzip_stream(world: World) -> None:
    tablet, batch = _tablet_and_batch(world)
    body = gzip.compress(json.dumps(batch).encode()) + b"trailing"

    answer = tablet.post("/sync/push", content=body, headers={**JSON, "Content-Encoding": "gzip"})

    assert_problem(answer, 400, "bad_gzip")
    assert tablet.get("/sync/pull").json()["last_seq"] is None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("seq", "1"),
        ("seq", 1.5),
        ("seq", True),
        ("base_version", "0"),
        ("base_version", False),
        ("schema_version", "1"),
    ],
)
def test_a_changes_numbers_are_numbers(world: World, key: str, value: Any) -> None:
    tablet, batch = _tablet_and_batch(world)
    batch["changes"][0][key] = value

    problem = assert_problem(tablet.post("/sync/push", json=batch), 422, "validation_failed")

    assert any(e["field"].endswith(key) for e in problem["errors"]), problem
    assert tablet.get("/sync/pull").json()["last_seq"] is None


@pytest.mark.parametrize("value", [0, 1, "false", "no"])
def test_active_is_true_or_false_not_something_like_it(world: World, value: Any) -> None:
    ranger = world.user(Role.ranger, sector_ids=[world.sector()["id"]])

    answer = world.admin.patch(f"/users/{ranger.user_id}", json={"active": value})

    problem = assert_problem(answer, 422, "validation_failed")
    assert [e["field"] for e in problem["errors"]] == ["active"]
    assert ranger.get("/auth/me").status_code == 200
