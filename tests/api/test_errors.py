"""Every error answer has the one shape: ``application/problem+json`` with a stable code.

A client branches on ``code`` and never meets another shape, nor a 500, for a request
that is merely wrong.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import World, assert_problem


def _assert_field_errors(problem: dict[str, Any]) -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = problem["errors"]
    assert errors, problem
    for error in errors:
        assert set(error) == {"field", "code", "message"}, error
        assert all(isinstance(value, str) and value for value in error.values()), error
    return errors


def _assert_problem_shape(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    problem = assert_problem(answer, status, code)
    assert problem["type"] == f"urn:fieldsync:problem:{code}"
    assert isinstance(problem["title"], str)
    assert problem["title"]
    assert isinstance(problem["detail"], str)
    assert problem["detail"]
    return problem


@pytest.mark.parametrize(
    "content",
    ['{"code": ', "{code: 'AM-01'}", '{"code": "AM-01",}', "not json at all", "\x00\xff"],
    ids=["cut-short", "unquoted", "trailing-comma", "prose", "binary"],
)
def test_a_body_that_is_not_json_is_a_bad_request(world: World, content: str) -> None:
    answer = world.admin.post(
        "/sectors", content=content.encode("latin-1"), headers={"Content-Type": "application/json"}
    )

    problem = _assert_problem_shape(answer, 400, "malformed_json")
    assert "errors" not in problem
    assert world.admin.get("/sectors").json() == []


def test_malformed_json_is_answered_the_same_on_every_route(world: World) -> None:
    for method, path in [
        ("POST", "/users"),
        ("PATCH", f"/users/{world.admin.user_id}"),
        ("POST", "/devices"),
        ("POST", "/communities"),
        ("POST", "/observation-categories"),
    ]:
        answer = world.admin.request(
            method, path, content=b'{"a": ', headers={"Content-Type": "application/json"}
        )
        _assert_problem_shape(answer, 400, "malformed_json")


def test_malformed_json_without_a_token_is_still_a_problem(world: World) -> None:
    answer = world.client.post(
        "/devices/enroll",
        content=b'{"enrollment_code": ',
        headers={"Content-Type": "application/json"},
    )

    _assert_problem_shape(answer, 400, "malformed_json")


def test_wrong_types_name_each_field_with_a_code_and_a_message(world: World) -> None:
    answer = world.admin.post(
        "/users",
        json={
            "username": 42,
            "password": ["not", "a", "string"],
            "full_name": "Rosa",
            "role": "ranger",
            "sector_ids": ["AM-01"],
            "community_ids": "all",
        },
    )

    problem = _assert_problem_shape(answer, 422, "validation_failed")
    errors = _assert_field_errors(problem)
    assert {e["field"] for e in errors} == {
        "username",
        "password",
        "sector_ids.0",
        "community_ids",
    }
    assert {e["code"] for e in errors if e["field"] == "sector_ids.0"} == {"uuid_parsing"}


def test_a_missing_field_is_named_with_the_code_missing(world: World) -> None:
    answer = world.admin.post("/sectors", json={"name": "No code"})

    problem = _assert_problem_shape(answer, 422, "validation_failed")
    assert _assert_field_errors(problem) == [
        {"field": "code", "code": "missing", "message": problem["errors"][0]["message"]}
    ]
    assert "code" in problem["detail"]


@pytest.mark.parametrize(
    "body",
    [b"[]", b'"AM-01"', b"42", b"null", b""],
    ids=["a-list", "a-string", "a-number", "null", "empty"],
)
def test_a_body_that_is_json_but_not_an_object_does_not_validate(world: World, body: bytes) -> None:
    answer = world.admin.post(
        "/sectors", content=body, headers={"Content-Type": "application/json"}
    )

    problem = _assert_problem_shape(answer, 422, "validation_failed")
    _assert_field_errors(problem)


def test_a_body_sent_as_another_media_type_does_not_validate(world: World) -> None:
    answer = world.admin.post(
        "/sectors",
        content=b'{"code": "AM-01", "name": "X"}',
        headers={"Content-Type": "text/plain"},
    )

    problem = _assert_problem_shape(answer, 422, "validation_failed")
    assert [e["field"] for e in _assert_field_errors(problem)] == ["body"]
    assert world.admin.get("/sectors").json() == []


def test_an_unknown_field_is_named(world: World) -> None:
    answer = world.admin.post("/sectors", json={"code": "AM-01", "name": "X", "colour": "red"})

    problem = _assert_problem_shape(answer, 422, "validation_failed")
    assert [e["field"] for e in _assert_field_errors(problem)] == ["colour"]


def test_a_bad_query_parameter_is_named(world: World) -> None:
    answer = world.admin.get("/observation-categories", params={"active": "sometimes"})

    problem = _assert_problem_shape(answer, 422, "validation_failed")
    assert [e["field"] for e in _assert_field_errors(problem)] == ["active"]


@pytest.mark.parametrize(
    "path",
    ["/nowhere", "/sectors/x/y", "/v2/sectors", "/users/me/friends"],
)
def test_an_unknown_route_is_a_not_found_problem(world: World, path: str) -> None:
    for answer in (world.client.get(path), world.admin.get(path)):
        _assert_problem_shape(answer, 404, "not_found")


def test_an_unknown_route_outside_the_api_is_a_not_found_problem(world: World) -> None:
    answer = world.client.get("http://testserver/nowhere")

    _assert_problem_shape(answer, 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/sectors"),
        ("PUT", "/sectors"),
        ("DELETE", "/users/ID"),
        ("GET", "/auth/refresh"),
        ("PUT", "/devices/enroll"),
        ("PATCH", "/auth/me"),
        ("DELETE", "/observation-categories"),
    ],
)
def test_a_wrong_method_is_a_method_not_allowed_problem(
    world: World, method: str, path: str
) -> None:
    path = path.replace("ID", str(world.admin.user_id))

    answer = world.admin.request(method, path)

    _assert_problem_shape(answer, 405, "method_not_allowed")
    assert answer.headers["allow"]


@pytest.mark.parametrize(
    "path",
    [
        "/sectors/AM-01",
        "/communities/123",
        "/observation-categories/threat.logging",
        "/users/admin",
        "/devices/not-a-uuid",
    ],
)
def test_an_id_in_the_path_that_is_not_a_uuid_is_named(world: World, path: str) -> None:
    answer = world.admin.get(path)

    problem = _assert_problem_shape(answer, 422, "validation_failed")
    errors = _assert_field_errors(problem)
    assert len(errors) == 1
    assert errors[0]["field"].endswith("_id")
    assert errors[0]["code"] == "uuid_parsing"


def test_an_unknown_id_is_a_not_found_problem(world: World) -> None:
    _assert_problem_shape(world.admin.get(f"/sectors/{uuid.uuid4()}"), 404, "not_found")


def test_a_missing_token_is_a_problem_that_asks_for_a_bearer(world: World) -> None:
    answer = world.client.get("/sectors")

    _assert_problem_shape(answer, 401, "not_authenticated")
    assert answer.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        ("Bearer not-a-jwt", "invalid_token"),
        ("Bearer a.b.c", "invalid_token"),
        ("Bearer ", "not_authenticated"),
        ("Basic YWRtaW46cGFzcw==", "not_authenticated"),
    ],
)
def test_a_bad_or_absent_bearer_token_is_a_problem(
    world: World, authorization: str, code: str
) -> None:
    answer = world.client.get("/sectors", headers={"Authorization": authorization})

    _assert_problem_shape(answer, 401, code)
    assert answer.headers["www-authenticate"] == "Bearer"


def test_a_role_that_may_not_is_a_forbidden_problem(world: World) -> None:
    ranger = world.user("ranger")

    _assert_problem_shape(ranger.get("/users"), 403, "forbidden")


def test_a_problem_names_the_path_it_answers(world: World) -> None:
    answer = world.admin.get(f"/sectors/{uuid.uuid4()}")

    assert answer.json()["instance"].startswith("/api/v1/sectors/")


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("POST", "/sectors", {"json": {"code": "A" * 10_000, "name": "B" * 10_000}}),
        ("POST", "/sectors", {"json": {"code": "AM-01", "name": "X", "zone": {"a": 1}}}),
        ("POST", "/sectors", {"json": {"code": "AM-01", "name": "X", "boundary": [1, 2]}}),
        ("POST", "/communities", {"json": {"name": "X", "sector_id": None, "kind": None}}),
        ("POST", "/observation-categories", {"json": {"key": {"nested": True}}}),
        ("POST", "/users", {"json": {"username": "\x00admin", "password": "x" * 300}}),
        ("POST", "/devices", {"json": {"label": "\x00", "user_id": str(uuid.uuid4())}}),
        ("POST", "/devices/enroll", {"json": {"enrollment_code": "-" * 64}}),
        ("POST", "/devices/enroll", {"json": {"enrollment_code": "\x00\x00"}}),
        ("POST", "/auth/refresh", {"json": {"refresh_token": "\x00"}}),
        ("POST", "/auth/token", {"data": {"username": "x" * 10_000, "password": "y"}}),
        ("GET", "/communities", {"params": {"sector_id": "\x00"}}),
        ("PATCH", "/sectors/00000000-0000-0000-0000-000000000000", {"json": {"name": None}}),
    ],
)
def test_odd_requests_never_fail_the_server(
    world: World, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    answer = world.admin.request(method, path, **kwargs)

    assert answer.status_code < 500, answer.text
    if answer.status_code >= 400:
        assert_problem(answer, answer.status_code)
