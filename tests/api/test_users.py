"""Users over HTTP: admins make and change them; scope and passwords take effect at once."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.conftest import PASSWORD, World, assert_problem, login

NON_ADMIN_ROLES = ["coordinator", "ranger_lead", "ranger", "extension_worker"]
NEW_PASSWORD = "a brand new passphrase"


def _new_user(**fields: Any) -> dict[str, Any]:
    return {
        "username": f"user-{uuid.uuid4().hex[:6]}",
        "password": PASSWORD,
        "full_name": "Rosa Tapullima",
        "role": "ranger",
        **fields,
    }


def _fields_of(problem: dict[str, Any]) -> list[str]:
    return [error["field"] for error in problem["errors"]]


# ---------------------------------------------------------------- making users


def test_an_admin_makes_a_user_with_a_role_and_a_scope(world: World) -> None:
    sector = world.sector("AM-01")
    community = world.community(sector["id"], "Nuevo Edén")
    body = _new_user(username="rosa.t", role="ranger", sector_ids=[sector["id"]])

    answer = world.admin.post("/users", json=body)

    assert answer.status_code == 201, answer.text
    made = answer.json()
    assert uuid.UUID(made["id"])
    assert made["username"] == "rosa.t"
    assert made["full_name"] == "Rosa Tapullima"
    assert made["role"] == "ranger"
    assert made["active"] is True
    assert made["sector_ids"] == [sector["id"]]
    assert made["community_ids"] == []

    worker = world.admin.post(
        "/users",
        json=_new_user(username="luz.m", role="extension_worker", community_ids=[community["id"]]),
    )
    assert worker.status_code == 201, worker.text
    assert worker.json()["community_ids"] == [community["id"]]
    assert worker.json()["sector_ids"] == []


@pytest.mark.parametrize(
    ("role", "scope"),
    [
        ("ranger", "community_ids"),
        ("ranger_lead", "community_ids"),
        ("extension_worker", "sector_ids"),
        ("coordinator", "sector_ids"),
        ("admin", "community_ids"),
    ],
)
def test_a_scope_the_role_does_not_hold_is_refused(world: World, role: str, scope: str) -> None:
    sector = world.sector()
    community = world.community(sector["id"])
    ids = {"sector_ids": [sector["id"]], "community_ids": [community["id"]]}[scope]

    answer = world.admin.post("/users", json=_new_user(role=role, **{scope: ids}))

    problem = assert_problem(answer, 422, "validation_failed")
    assert problem["errors"][0] == {
        "field": scope,
        "code": "scope_mismatch",
        "message": problem["errors"][0]["message"],
    }


def test_a_new_role_drops_the_scope_it_does_not_hold(world: World) -> None:
    sector = world.sector()
    ranger = world.user("ranger", sector_ids=[sector["id"]])

    answer = world.admin.patch(f"/users/{ranger.user_id}", json={"role": "coordinator"})

    assert answer.status_code == 200, answer.text
    assert answer.json()["sector_ids"] == []
    assert ranger.get("/auth/me").json()["role"] == "coordinator"


def test_the_last_active_admin_cannot_be_demoted_or_deactivated(world: World) -> None:
    admin_id = world.admin.user_id
    for change in ({"role": "coordinator"}, {"active": False}):
        assert_problem(world.admin.patch(f"/users/{admin_id}", json=change), 409, "last_admin")
    assert world.admin.get("/auth/me").json()["role"] == "admin"

    second = world.user("admin")
    answer = world.admin.patch(f"/users/{admin_id}", json={"active": False})
    assert answer.status_code == 200, answer.text
    assert_problem(
        second.patch(f"/users/{second.user_id}", json={"active": False}), 409, "last_admin"
    )


def test_a_username_is_stored_lowercase_whatever_case_it_is_given_in(world: World) -> None:
    answer = world.admin.post("/users", json=_new_user(username="  ROSA.Tapullima "))
    assert answer.status_code == 201, answer.text
    assert answer.json()["username"] == "rosa.tapullima"
    assert_problem(
        world.admin.post("/users", json=_new_user(username="rosa.TAPULLIMA")), 409, "already_exists"
    )


def test_a_nul_character_anywhere_in_a_body_is_refused_not_a_500(world: World) -> None:
    answer = world.admin.post("/users", json=_new_user(full_name="Rosa\u0000Tapullima"))
    assert_problem(answer, 422, "validation_failed")
    answer = world.admin.post("/sectors", json={"code": "AM-9", "name": "x\x00y"})
    assert_problem(answer, 422, "validation_failed")


def test_a_made_user_never_shows_a_password_or_its_hash(world: World) -> None:
    answer = world.admin.post("/users", json=_new_user())
    assert answer.status_code == 201, answer.text
    listed = world.admin.get("/users").json()
    one = world.admin.get(f"/users/{answer.json()['id']}").json()

    for body in (answer.json(), one, *listed):
        assert not any("password" in key or "hash" in key for key in body), body
        assert PASSWORD not in str(body)
        assert "$argon2" not in str(body)


def test_the_new_user_signs_in_with_the_password_the_admin_set(world: World) -> None:
    body = _new_user()
    assert world.admin.post("/users", json=body).status_code == 201

    answer = login(world.client, body["username"], body["password"])

    assert answer.status_code == 200, answer.text


def test_spaces_around_a_username_are_dropped(world: World) -> None:
    answer = world.admin.post("/users", json=_new_user(username="  rosa.tapullima "))

    assert answer.status_code == 201, answer.text
    assert answer.json()["username"] == "rosa.tapullima"
    assert login(world.client, "rosa.tapullima").status_code == 200


@pytest.mark.parametrize("role", NON_ADMIN_ROLES)
def test_only_an_admin_may_make_a_user(world: World, role: str) -> None:
    caller = world.user(role)

    body = _new_user()

    answer = caller.post("/users", json=body)

    assert_problem(answer, 403, "forbidden")
    assert body["username"] not in [u["username"] for u in world.admin.get("/users").json()]


@pytest.mark.parametrize("role", NON_ADMIN_ROLES)
def test_only_an_admin_may_change_a_user(world: World, role: str) -> None:
    caller = world.user(role)
    victim = world.user("ranger")

    by_other = caller.patch(f"/users/{victim.user_id}", json={"role": "admin"})
    by_self = caller.patch(f"/users/{caller.user_id}", json={"role": "admin"})

    assert_problem(by_other, 403, "forbidden")
    assert_problem(by_self, 403, "forbidden")
    assert world.admin.get(f"/users/{caller.user_id}").json()["role"] == role
    assert world.admin.get(f"/users/{victim.user_id}").json()["role"] == "ranger"


def test_a_taken_username_is_a_conflict(world: World) -> None:
    assert world.admin.post("/users", json=_new_user(username="rosa")).status_code == 201

    same = world.admin.post("/users", json=_new_user(username="rosa"))

    assert_problem(same, 409, "already_exists")
    assert [u["username"] for u in world.admin.get("/users").json()].count("rosa") == 1


def test_a_username_differing_only_in_case_is_never_a_second_account(world: World) -> None:
    assert world.admin.post("/users", json=_new_user(username="rosa")).status_code == 201

    answer = world.admin.post("/users", json=_new_user(username="ROSA", password="another pw 123"))

    # Refused either as taken or as not lowercase; never a second "rosa" to sign in as.
    assert answer.status_code in (409, 422), answer.text
    assert_problem(answer, answer.status_code)
    names = [u["username"].lower() for u in world.admin.get("/users").json()]
    assert names.count("rosa") == 1
    assert login(world.client, "ROSA").status_code == 200


def test_an_unknown_sector_in_the_scope_is_refused_with_its_index(world: World) -> None:
    answer = world.admin.post("/users", json=_new_user(sector_ids=[str(uuid.uuid4())]))

    problem = assert_problem(answer, 422, "validation_failed")
    assert _fields_of(problem) == ["sector_ids.0"]
    assert problem["errors"][0]["code"] == "unknown_reference"


def test_an_unknown_community_in_the_scope_is_refused_with_its_index(world: World) -> None:
    sector = world.sector()
    known = world.community(sector["id"])
    body = _new_user(
        role="extension_worker", community_ids=[known["id"], str(uuid.uuid4()), known["id"]]
    )

    problem = assert_problem(world.admin.post("/users", json=body), 422, "validation_failed")

    assert _fields_of(problem) == ["community_ids.1"]
    assert problem["errors"][0]["code"] == "unknown_reference"


def test_a_user_with_an_unknown_scope_is_not_made(world: World) -> None:
    body = _new_user(username="ghost", sector_ids=[str(uuid.uuid4())])
    assert_problem(world.admin.post("/users", json=body), 422)

    assert "ghost" not in [u["username"] for u in world.admin.get("/users").json()]
    assert_problem(login(world.client, "ghost"), 401, "invalid_credentials")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"role": "superuser"}, "role"),
        ({"role": "Admin"}, "role"),
        ({"password": "short pw"}, "password"),
        ({"password": "123456789"}, "password"),
        ({"username": "Bad User!"}, "username"),
        ({"username": "ab"}, "username"),
        ({"username": "-leading-dash"}, "username"),
        ({"full_name": ""}, "full_name"),
        ({"sector_ids": ["not-a-uuid"]}, "sector_ids.0"),
        ({"is_superuser": True}, "is_superuser"),
        ({"password_hash": "$argon2id$v=19$whatever"}, "password_hash"),
    ],
)
def test_a_user_that_does_not_validate_is_refused_naming_the_field(
    world: World, change: dict[str, Any], field: str
) -> None:
    answer = world.admin.post("/users", json=_new_user(**change))

    problem = assert_problem(answer, 422, "validation_failed")
    assert field in _fields_of(problem), problem
    for error in problem["errors"]:
        assert {"field", "code", "message"} <= error.keys()


def test_a_password_of_exactly_ten_characters_is_enough(world: World) -> None:
    body = _new_user(password="0123456789")

    assert world.admin.post("/users", json=body).status_code == 201
    assert login(world.client, body["username"], "0123456789").status_code == 200


@pytest.mark.parametrize("missing", ["username", "password", "full_name", "role"])
def test_a_user_without_a_required_field_is_refused(world: World, missing: str) -> None:
    body = _new_user()
    del body[missing]

    problem = assert_problem(world.admin.post("/users", json=body), 422, "validation_failed")

    assert missing in _fields_of(problem)


# ---------------------------------------------------------------- reading users


@pytest.mark.parametrize("role", ["admin", "coordinator"])
def test_office_staff_list_every_user(world: World, role: str) -> None:
    ranger = world.user("ranger")
    worker = world.user("extension_worker")
    caller = world.admin if role == "admin" else world.user(role)

    answer = caller.get("/users")

    assert answer.status_code == 200, answer.text
    names = [u["username"] for u in answer.json()]
    assert {"admin", ranger.username, worker.username} <= set(names)
    assert names == sorted(names)


@pytest.mark.parametrize("role", ["ranger_lead", "ranger", "extension_worker"])
def test_field_staff_may_not_list_users(world: World, role: str) -> None:
    caller = world.user(role)

    assert_problem(caller.get("/users"), 403, "forbidden")


def test_a_ranger_sees_themself(world: World) -> None:
    sector = world.sector()
    ranger = world.user("ranger", sector_ids=[sector["id"]])

    answer = ranger.get(f"/users/{ranger.user_id}")

    assert answer.status_code == 200, answer.text
    assert answer.json()["username"] == ranger.username
    assert answer.json()["sector_ids"] == [sector["id"]]


def test_a_ranger_does_not_see_another_user(world: World) -> None:
    sector = world.sector()
    ranger = world.user("ranger", sector_ids=[sector["id"]])
    colleague = world.user("ranger", sector_ids=[sector["id"]])

    assert_problem(ranger.get(f"/users/{colleague.user_id}"), 404, "not_found")
    assert_problem(ranger.get(f"/users/{world.admin.user_id}"), 404, "not_found")


def test_another_users_id_reads_as_an_unknown_one(world: World) -> None:
    ranger = world.user("ranger")
    other = world.user("ranger")

    hidden = assert_problem(ranger.get(f"/users/{other.user_id}"), 404, "not_found")
    unknown = assert_problem(ranger.get(f"/users/{uuid.uuid4()}"), 404, "not_found")

    assert hidden["detail"] == unknown["detail"]


def test_a_coordinator_sees_any_user(world: World) -> None:
    coordinator = world.user("coordinator")
    ranger = world.user("ranger")

    answer = coordinator.get(f"/users/{ranger.user_id}")

    assert answer.status_code == 200, answer.text
    assert answer.json()["role"] == "ranger"


def test_an_unknown_user_is_not_found(world: World) -> None:
    assert_problem(world.admin.get(f"/users/{uuid.uuid4()}"), 404, "not_found")
    assert_problem(
        world.admin.patch(f"/users/{uuid.uuid4()}", json={"full_name": "Nobody"}), 404, "not_found"
    )


# ---------------------------------------------------------------- changing users


def test_a_scope_change_takes_effect_on_the_next_request_with_the_same_token(
    world: World,
) -> None:
    north = world.sector("AM-N")
    south = world.sector("AM-S")
    ranger = world.user("ranger", sector_ids=[north["id"]])
    assert [s["code"] for s in ranger.get("/sectors").json()] == ["AM-N"]

    answer = world.admin.patch(f"/users/{ranger.user_id}", json={"sector_ids": [south["id"]]})

    assert answer.status_code == 200, answer.text
    assert answer.json()["sector_ids"] == [south["id"]]
    assert [s["code"] for s in ranger.get("/sectors").json()] == ["AM-S"]
    assert_problem(ranger.get(f"/sectors/{north['id']}"), 404)
    assert ranger.get(f"/sectors/{south['id']}").status_code == 200


def test_a_scope_can_be_emptied(world: World) -> None:
    sector = world.sector()
    ranger = world.user("ranger", sector_ids=[sector["id"]])

    answer = world.admin.patch(f"/users/{ranger.user_id}", json={"sector_ids": []})

    assert answer.status_code == 200, answer.text
    assert answer.json()["sector_ids"] == []
    assert ranger.get("/sectors").json() == []


def test_a_patch_leaves_the_fields_it_does_not_name(world: World) -> None:
    sector = world.sector()
    ranger = world.user("ranger", sector_ids=[sector["id"]])

    answer = world.admin.patch(f"/users/{ranger.user_id}", json={"full_name": "Rosa T."})

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["full_name"] == "Rosa T."
    assert body["role"] == "ranger"
    assert body["sector_ids"] == [sector["id"]]
    assert body["active"] is True
    assert ranger.get("/auth/me").status_code == 200


def test_a_scope_change_to_an_unknown_sector_is_refused_and_changes_nothing(
    world: World,
) -> None:
    sector = world.sector()
    ranger = world.user("ranger", sector_ids=[sector["id"]])

    answer = world.admin.patch(
        f"/users/{ranger.user_id}", json={"sector_ids": [sector["id"], str(uuid.uuid4())]}
    )

    problem = assert_problem(answer, 422, "validation_failed")
    assert _fields_of(problem) == ["sector_ids.1"]
    assert world.admin.get(f"/users/{ranger.user_id}").json()["sector_ids"] == [sector["id"]]


def test_a_role_change_takes_effect_on_the_next_request(world: World) -> None:
    ranger = world.user("ranger")
    assert_problem(ranger.get("/users"), 403)

    answer = world.admin.patch(f"/users/{ranger.user_id}", json={"role": "coordinator"})

    assert answer.status_code == 200, answer.text
    assert ranger.get("/users").status_code == 200


def test_a_new_password_ends_the_users_sign_ins_and_the_new_one_logs_in(world: World) -> None:
    ranger = world.user("ranger")
    second_sign_in = login(world.client, ranger.username).json()
    assert ranger.get("/auth/me").status_code == 200

    answer = world.admin.patch(f"/users/{ranger.user_id}", json={"password": NEW_PASSWORD})

    assert answer.status_code == 200, answer.text
    assert_problem(ranger.get("/auth/me"), 401)
    assert_problem(
        world.client.get(
            "/auth/me", headers={"Authorization": f"Bearer {second_sign_in['access_token']}"}
        ),
        401,
    )
    refreshed = world.client.post(
        "/auth/refresh", json={"refresh_token": ranger.tokens["refresh_token"]}
    )
    assert_problem(refreshed, 401)
    assert_problem(login(world.client, ranger.username, PASSWORD), 401, "invalid_credentials")
    fresh = login(world.client, ranger.username, NEW_PASSWORD)
    assert fresh.status_code == 200, fresh.text
    me = world.client.get(
        "/auth/me", headers={"Authorization": f"Bearer {fresh.json()['access_token']}"}
    )
    assert me.status_code == 200, me.text


def test_a_new_password_that_is_too_short_is_refused(world: World) -> None:
    ranger = world.user("ranger")

    answer = world.admin.patch(f"/users/{ranger.user_id}", json={"password": "short"})

    problem = assert_problem(answer, 422, "validation_failed")
    assert "password" in _fields_of(problem)
    assert ranger.get("/auth/me").status_code == 200


def test_a_patch_with_an_unknown_field_is_refused(world: World) -> None:
    ranger = world.user("ranger")

    answer = world.admin.patch(f"/users/{ranger.user_id}", json={"username": "renamed"})

    problem = assert_problem(answer, 422, "validation_failed")
    assert "username" in _fields_of(problem)


def test_a_deactivated_user_is_refused_at_once_and_cannot_sign_in(world: World) -> None:
    ranger = world.user("ranger")

    answer = world.admin.patch(f"/users/{ranger.user_id}", json={"active": False})

    assert answer.status_code == 200, answer.text
    assert answer.json()["active"] is False
    assert_problem(ranger.get("/auth/me"), 401, "account_disabled")
    # Signing in is answered as a wrong password would be: the answer must not confirm it.
    assert_problem(login(world.client, ranger.username), 401, "invalid_credentials")


def test_a_reactivated_user_signs_in_again(world: World) -> None:
    ranger = world.user("ranger")
    world.admin.patch(f"/users/{ranger.user_id}", json={"active": False})

    answer = world.admin.patch(f"/users/{ranger.user_id}", json={"active": True})

    assert answer.status_code == 200, answer.text
    assert login(world.client, ranger.username).status_code == 200
