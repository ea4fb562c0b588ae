"""Devices over HTTP: enrollment codes, enrollment, listing, relabelling and revocation."""

from __future__ import annotations

import re
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select, update

from api.app import create_app
from schemas import Device, EnrollmentFailure
from sync.accounts import security
from sync.platform.settings import Settings
from tests.asgi import TestClient
from tests.conftest import Caller, World, assert_problem, login, make_settings

CODE_FORMAT = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$")


def _parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _enroll(client: TestClient, code: str) -> httpx.Response:
    answer: httpx.Response = client.post("/devices/enroll", json={"enrollment_code": code})
    return answer


def _make_code(by: Caller, owner: Caller, label: str = "Tablet") -> dict[str, Any]:
    answer = by.post("/devices", json={"label": label, "user_id": str(owner.user_id)})
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _set_device(engine: Engine, device_id: str | uuid.UUID, **values: Any) -> None:
    with Session(engine) as session:
        session.exec(
            update(Device).where(col(Device.id) == uuid.UUID(str(device_id))).values(**values)
        )
        session.commit()


def _device_id(device: Caller) -> str:
    claims: dict[str, Any] = jwt.decode(
        device.tokens["access_token"], options={"verify_signature": False}
    )
    return str(claims["dev"])


def _by_id(devices: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["id"]: d for d in devices}


@pytest.fixture
def sector(world: World) -> dict[str, Any]:
    return world.sector("AM-01")


@pytest.fixture
def ranger(world: World, sector: dict[str, Any]) -> Caller:
    return world.user("ranger", sector_ids=[sector["id"]])


@pytest.fixture
def lead(world: World, sector: dict[str, Any]) -> Caller:
    return world.user("ranger_lead", sector_ids=[sector["id"]])


# ---------------------------------------------------------------- making enrollment codes


@pytest.mark.parametrize("maker", ["admin", "coordinator", "ranger_lead"])
def test_office_staff_and_a_ranger_lead_make_a_code_for_a_ranger(
    world: World, sector: dict[str, Any], ranger: Caller, maker: str
) -> None:
    by = world.admin if maker == "admin" else world.user(maker, sector_ids=[sector["id"]])
    before = datetime.now(UTC)

    answer = by.post("/devices", json={"label": "Tablet 07", "user_id": str(ranger.user_id)})

    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert uuid.UUID(body["device_id"])
    assert CODE_FORMAT.match(body["enrollment_code"]), body["enrollment_code"]
    expires_at = _parse(body["expires_at"])
    assert expires_at.tzinfo is not None
    assert expires_at > before + timedelta(hours=world.settings.enrollment_code_hours - 1)
    assert expires_at <= datetime.now(UTC) + timedelta(hours=world.settings.enrollment_code_hours)


def test_each_code_is_new(world: World, ranger: Caller) -> None:
    codes = {_make_code(world.admin, ranger)["enrollment_code"] for _ in range(5)}

    assert len(codes) == 5


def test_a_new_device_is_pending_until_enrolled(world: World, ranger: Caller) -> None:
    made = _make_code(world.admin, ranger, label="Tablet 07")

    answer = world.admin.get(f"/devices/{made['device_id']}")

    assert answer.status_code == 200, answer.text
    device = answer.json()
    assert device["status"] == "pending"
    assert device["label"] == "Tablet 07"
    assert device["user_id"] == str(ranger.user_id)
    assert device["username"] == ranger.username
    assert device["enrolled_at"] is None
    assert device["last_seen_at"] is None
    assert device["revoked_at"] is None
    assert _parse(device["enrollment_expires_at"]) == _parse(made["expires_at"])
    assert "enrollment_code" not in device
    assert made["enrollment_code"] not in answer.text


@pytest.mark.parametrize("role", ["ranger", "extension_worker"])
def test_field_staff_may_not_make_devices(world: World, sector: dict[str, Any], role: str) -> None:
    caller = world.user(role, sector_ids=[sector["id"]])

    answer = caller.post("/devices", json={"label": "Mine", "user_id": str(caller.user_id)})

    assert_problem(answer, 403, "forbidden")
    assert world.admin.get("/devices").json() == []


def test_a_ranger_lead_gets_no_code_for_a_ranger_of_another_sector(
    world: World, lead: Caller
) -> None:
    elsewhere = world.sector("AM-99")
    stranger = world.user("ranger", sector_ids=[elsewhere["id"]])

    answer = lead.post("/devices", json={"label": "Tablet", "user_id": str(stranger.user_id)})

    problem = assert_problem(answer, 404, "not_found")
    unknown = lead.post("/devices", json={"label": "Tablet", "user_id": str(uuid.uuid4())})
    assert problem["detail"] == assert_problem(unknown, 404)["detail"]
    assert world.admin.get("/devices").json() == []


def test_a_ranger_lead_gets_no_code_for_an_extension_worker(
    world: World, sector: dict[str, Any], lead: Caller
) -> None:
    community = world.community(sector["id"])
    worker = world.user(
        "extension_worker", sector_ids=[sector["id"]], community_ids=[community["id"]]
    )

    answer = lead.post("/devices", json={"label": "Tablet", "user_id": str(worker.user_id)})

    assert_problem(answer, 404, "not_found")


@pytest.mark.parametrize("role", ["admin", "coordinator"])
def test_a_ranger_lead_gets_no_code_for_office_staff(
    world: World, sector: dict[str, Any], lead: Caller, role: str
) -> None:
    office = world.admin if role == "admin" else world.user(role, sector_ids=[sector["id"]])

    answer = lead.post("/devices", json={"label": "Tablet", "user_id": str(office.user_id)})

    assert_problem(answer, 404, "not_found")


def test_a_ranger_lead_makes_a_code_for_themself(world: World, lead: Caller) -> None:
    answer = lead.post("/devices", json={"label": "My tablet", "user_id": str(lead.user_id)})

    assert answer.status_code == 201, answer.text


def test_a_code_for_an_unknown_user_is_not_found(world: World) -> None:
    answer = world.admin.post("/devices", json={"label": "Tablet", "user_id": str(uuid.uuid4())})

    assert_problem(answer, 404, "not_found")


def test_a_code_for_a_deactivated_user_is_a_conflict(world: World, ranger: Caller) -> None:
    world.admin.patch(f"/users/{ranger.user_id}", json={"active": False})

    answer = world.admin.post("/devices", json={"label": "Tablet", "user_id": str(ranger.user_id)})

    assert_problem(answer, 409, "user_inactive")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"label": "", "user_id": "USER"}, "label"),
        ({"label": "   ", "user_id": "USER"}, "label"),
        ({"user_id": "USER"}, "label"),
        ({"label": "Tablet"}, "user_id"),
        ({"label": "Tablet", "user_id": "not-a-uuid"}, "user_id"),
        ({"label": "Tablet", "user_id": "USER", "enrollment_code": "AAAA"}, "enrollment_code"),
    ],
)
def test_a_device_request_that_does_not_validate_is_refused(
    world: World, ranger: Caller, body: dict[str, Any], field: str
) -> None:
    body = {k: str(ranger.user_id) if v == "USER" else v for k, v in body.items()}

    problem = assert_problem(world.admin.post("/devices", json=body), 422, "validation_failed")

    assert field in [error["field"] for error in problem["errors"]]


# ---------------------------------------------------------------- enrolling


def test_enrolling_returns_the_device_the_user_and_tokens(world: World, ranger: Caller) -> None:
    made = _make_code(world.admin, ranger)

    answer = _enroll(world.client, made["enrollment_code"])

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["device_id"] == made["device_id"]
    assert body["user_id"] == str(ranger.user_id)
    assert body["token_type"] == "bearer"
    assert body["access_token"]
    assert body["refresh_token"]
    assert body["expires_in"] > 0
    assert body["refresh_expires_in"] > body["expires_in"]


def test_the_device_token_names_the_device_and_signs_the_user_in(
    world: World, ranger: Caller
) -> None:
    made = _make_code(world.admin, ranger)
    tokens = _enroll(world.client, made["enrollment_code"]).json()

    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    me = world.client.get("/auth/me", headers=_bearer(tokens["access_token"]))

    assert claims["dev"] == made["device_id"]
    assert claims["sub"] == str(ranger.user_id)
    assert me.status_code == 200, me.text
    assert me.json()["id"] == str(ranger.user_id)
    assert me.json()["username"] == ranger.username


def test_an_enrolled_device_is_active_and_was_seen(world: World, ranger: Caller) -> None:
    made = _make_code(world.admin, ranger)
    _enroll(world.client, made["enrollment_code"])

    device = world.admin.get(f"/devices/{made['device_id']}").json()

    assert device["status"] == "active"
    assert device["enrolled_at"] is not None
    assert device["last_seen_at"] == device["enrolled_at"]


def test_a_device_refreshes_its_tokens(world: World, ranger: Caller) -> None:
    device = world.device(ranger)

    answer = world.client.post(
        "/auth/refresh", json={"refresh_token": device.tokens["refresh_token"]}
    )

    assert answer.status_code == 200, answer.text
    claims = jwt.decode(answer.json()["access_token"], options={"verify_signature": False})
    assert claims["dev"] == _device_id(device)


def test_an_enrollment_code_works_once(world: World, ranger: Caller) -> None:
    made = _make_code(world.admin, ranger)
    assert _enroll(world.client, made["enrollment_code"]).status_code == 200

    again = _enroll(world.client, made["enrollment_code"])

    assert_problem(again, 401, "invalid_enrollment_code")


@pytest.mark.parametrize(
    "typed",
    [
        lambda code: code.lower().replace("-", ""),
        lambda code: code.replace("-", " "),
        lambda code: f"  {code.lower()}  ",
    ],
    ids=["lowercase-without-dashes", "spaces-for-dashes", "padded-lowercase"],
)
def test_a_code_typed_by_hand_still_works(world: World, ranger: Caller, typed: Any) -> None:
    made = _make_code(world.admin, ranger)

    answer = _enroll(world.client, typed(made["enrollment_code"]))

    assert answer.status_code == 200, answer.text
    assert answer.json()["device_id"] == made["device_id"]


def test_an_unknown_code_is_refused(world: World) -> None:
    assert_problem(_enroll(world.client, "ABCD-EFGH-JKMN-PQRS"), 401, "invalid_enrollment_code")


@pytest.mark.parametrize("body", [{}, {"enrollment_code": ""}, {"code": "ABCD"}])
def test_an_enrollment_without_a_code_does_not_validate(world: World, body: dict[str, Any]) -> None:
    answer = world.client.post("/devices/enroll", json=body)

    assert_problem(answer, 422, "validation_failed")


def test_an_expired_code_is_refused_and_the_device_shows_expired(
    world: World, engine: Engine, ranger: Caller
) -> None:
    made = _make_code(world.admin, ranger)
    _set_device(
        engine,
        made["device_id"],
        enrollment_expires_at=datetime.now(UTC) - timedelta(minutes=1),
    )

    answer = _enroll(world.client, made["enrollment_code"])

    assert_problem(answer, 401, "invalid_enrollment_code")
    assert world.admin.get(f"/devices/{made['device_id']}").json()["status"] == "expired"


def test_a_code_for_a_user_deactivated_since_is_refused(world: World, ranger: Caller) -> None:
    made = _make_code(world.admin, ranger)
    world.admin.patch(f"/users/{ranger.user_id}", json={"active": False})

    answer = _enroll(world.client, made["enrollment_code"])

    assert_problem(answer, 401, "account_disabled")
    assert world.admin.get(f"/devices/{made['device_id']}").json()["status"] == "pending"


# ---------------------------------------------------------------- guessing codes

GUESSER = "203.0.113.66"


def _from(client: TestClient, address: str, **settings: Any) -> TestClient:
    """A client of the same app (or of one with other ``settings``) at ``address``."""
    app: Any = client.app
    if settings:
        changed = make_settings(app.state.settings.database_url, **settings)
        app = create_app(changed, app.state.engine)
    return TestClient(app, base_url=str(client.base_url), client=(address, 50000))


def _wrong_codes(client: TestClient, times: int) -> None:
    for _ in range(times):
        wrong = security.new_enrollment_code()
        assert_problem(_enroll(client, wrong), 401, "invalid_enrollment_code")


def test_an_address_that_tries_too_many_wrong_codes_is_throttled_even_with_a_right_one(
    world: World, settings: Settings, ranger: Caller
) -> None:
    made = _make_code(world.admin, ranger)
    guesser = _from(world.client, GUESSER)
    _wrong_codes(guesser, settings.enrollment_max_failures)

    answer = _enroll(guesser, made["enrollment_code"])

    assert_problem(answer, 429, "too_many_attempts")
    assert 0 < int(answer.headers["retry-after"]) <= settings.enrollment_window_seconds + 1
    assert world.admin.get(f"/devices/{made['device_id']}").json()["status"] == "pending"


def test_the_last_wrong_code_before_the_limit_still_lets_a_right_one_through(
    world: World, settings: Settings, ranger: Caller
) -> None:
    made = _make_code(world.admin, ranger)
    guesser = _from(world.client, GUESSER)
    _wrong_codes(guesser, settings.enrollment_max_failures - 1)

    assert _enroll(guesser, made["enrollment_code"]).status_code == 200


def test_a_right_code_from_an_address_that_is_not_throttled_enrolls(
    world: World, settings: Settings, ranger: Caller
) -> None:
    made = _make_code(world.admin, ranger)
    _wrong_codes(_from(world.client, GUESSER), settings.enrollment_max_failures)

    answer = _enroll(_from(world.client, "198.51.100.7"), made["enrollment_code"])

    assert answer.status_code == 200, answer.text
    assert answer.json()["device_id"] == made["device_id"]


def test_a_right_code_does_not_wipe_the_wrong_ones_of_its_address(
    world: World, settings: Settings, ranger: Caller
) -> None:
    guesser = _from(world.client, GUESSER)
    _wrong_codes(guesser, settings.enrollment_max_failures - 1)
    assert _enroll(guesser, _make_code(world.admin, ranger)["enrollment_code"]).status_code == 200
    _wrong_codes(guesser, 1)

    answer = _enroll(guesser, _make_code(world.admin, ranger)["enrollment_code"])

    assert_problem(answer, 429, "too_many_attempts")


def test_wrong_codes_older_than_the_window_no_longer_count_and_are_forgotten(
    world: World, engine: Engine, settings: Settings, ranger: Caller
) -> None:
    long_ago = datetime.now(UTC) - timedelta(seconds=settings.enrollment_window_seconds + 1)
    with Session(engine) as session:
        session.add_all(
            EnrollmentFailure(client_ip=GUESSER, failed_at=long_ago)
            for _ in range(settings.enrollment_max_failures)
        )
        session.commit()
    guesser = _from(world.client, GUESSER)

    _wrong_codes(guesser, 1)

    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(EnrollmentFailure)).one() == 1
    assert _enroll(guesser, _make_code(world.admin, ranger)["enrollment_code"]).status_code == 200


def test_concurrent_wrong_codes_from_one_address_never_get_past_the_throttle(
    world: World, engine: Engine
) -> None:
    limit = 5
    guesser = _from(world.client, GUESSER, enrollment_max_failures=limit)
    attempts = 12
    barrier = threading.Barrier(attempts)

    def guess(_: int) -> httpx.Response:
        # all_at_once's clients are at the default test address: each is made here.
        own = _from(guesser, GUESSER)
        barrier.wait(timeout=30)
        return _enroll(own, security.new_enrollment_code())

    with ThreadPoolExecutor(max_workers=attempts) as pool:
        answers = list(pool.map(guess, range(attempts)))

    statuses = Counter(answer.status_code for answer in answers)
    assert statuses == {401: limit, 429: attempts - limit}, [a.text for a in answers]
    for answer in answers:
        if answer.status_code == 429:
            assert_problem(answer, 429, "too_many_attempts")
            assert int(answer.headers["retry-after"]) > 0
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(EnrollmentFailure)).one() == limit


# ---------------------------------------------------------------- revoking


def test_a_revoked_device_is_refused_on_every_route_with_every_token(
    world: World, sector: dict[str, Any], ranger: Caller
) -> None:
    device = world.device(ranger)
    rotated = world.client.post(
        "/auth/refresh", json={"refresh_token": device.tokens["refresh_token"]}
    ).json()
    assert device.get("/sectors").status_code == 200

    answer = world.admin.post(f"/devices/{_device_id(device)}/revoke")

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "revoked"
    for access in (device.tokens["access_token"], rotated["access_token"]):
        for path in ("/auth/me", "/sectors", f"/sectors/{sector['id']}", "/devices"):
            refused = world.client.get(path, headers=_bearer(access))
            assert_problem(refused, 401, "device_revoked")
            assert refused.headers["www-authenticate"] == "Bearer"
        assert_problem(
            world.client.post(
                "/devices",
                json={"label": "x", "user_id": str(ranger.user_id)},
                headers=_bearer(access),
            ),
            401,
            "device_revoked",
        )
    refreshed = world.client.post("/auth/refresh", json={"refresh_token": rotated["refresh_token"]})
    assert_problem(refreshed, 401, "device_revoked")


def test_the_refresh_token_a_revoked_device_already_used_is_refused_too(
    world: World, ranger: Caller
) -> None:
    device = world.device(ranger)
    world.client.post("/auth/refresh", json={"refresh_token": device.tokens["refresh_token"]})
    world.admin.post(f"/devices/{_device_id(device)}/revoke")

    answer = world.client.post(
        "/auth/refresh", json={"refresh_token": device.tokens["refresh_token"]}
    )

    assert_problem(answer, 401)


def test_revoking_one_device_leaves_the_users_other_device_and_password_sign_in(
    world: World, ranger: Caller
) -> None:
    lost = world.device(ranger, label="Lost")
    kept = world.device(ranger, label="Kept")

    world.admin.post(f"/devices/{_device_id(lost)}/revoke")

    assert_problem(lost.get("/auth/me"), 401, "device_revoked")
    assert kept.get("/auth/me").status_code == 200
    assert kept.get("/sectors").status_code == 200
    refreshed = world.client.post(
        "/auth/refresh", json={"refresh_token": kept.tokens["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    assert ranger.get("/auth/me").status_code == 200
    assert login(world.client, ranger.username).status_code == 200


def test_revoking_twice_is_fine_and_keeps_the_first_moment(world: World, ranger: Caller) -> None:
    device_id = _device_id(world.device(ranger))

    first = world.admin.post(f"/devices/{device_id}/revoke")
    second = world.admin.post(f"/devices/{device_id}/revoke")

    assert first.status_code == 200, first.text
    assert second.status_code == 200, second.text
    assert second.json()["status"] == "revoked"
    assert _parse(second.json()["revoked_at"]) == _parse(first.json()["revoked_at"])
    listed = world.admin.get(f"/devices/{device_id}").json()
    assert _parse(listed["revoked_at"]) == _parse(first.json()["revoked_at"])


def test_a_pending_device_that_is_revoked_cannot_be_enrolled(world: World, ranger: Caller) -> None:
    made = _make_code(world.admin, ranger)

    revoked = world.admin.post(f"/devices/{made['device_id']}/revoke")

    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked"
    assert_problem(_enroll(world.client, made["enrollment_code"]), 401, "invalid_enrollment_code")


def test_a_ranger_lead_revokes_a_device_of_a_ranger_of_their_sector(
    world: World, ranger: Caller, lead: Caller
) -> None:
    device = world.device(ranger, by=lead)

    answer = lead.post(f"/devices/{_device_id(device)}/revoke")

    assert answer.status_code == 200, answer.text
    assert_problem(device.get("/auth/me"), 401, "device_revoked")


def test_a_ranger_lead_may_not_revoke_a_device_outside_their_sectors(
    world: World, lead: Caller
) -> None:
    elsewhere = world.sector("AM-99")
    stranger = world.user("ranger", sector_ids=[elsewhere["id"]])
    device = world.device(stranger)

    answer = lead.post(f"/devices/{_device_id(device)}/revoke")

    assert_problem(answer, 404, "not_found")
    assert device.get("/auth/me").status_code == 200


@pytest.mark.parametrize("role", ["ranger", "extension_worker"])
def test_field_staff_may_not_revoke_even_their_own_device(
    world: World, sector: dict[str, Any], role: str
) -> None:
    caller = world.user(role, sector_ids=[sector["id"]])
    device = world.device(caller)

    assert_problem(caller.post(f"/devices/{_device_id(device)}/revoke"), 403, "forbidden")
    assert device.get("/auth/me").status_code == 200


def test_revoking_an_unknown_device_is_not_found(world: World) -> None:
    assert_problem(world.admin.post(f"/devices/{uuid.uuid4()}/revoke"), 404, "not_found")


# ---------------------------------------------------------------- listing


@pytest.fixture
def fleet(world: World, sector: dict[str, Any], ranger: Caller, lead: Caller) -> dict[str, Any]:
    """Devices of a ranger and a lead of AM-01, of a ranger of AM-02 and of a worker."""
    other_sector = world.sector("AM-02")
    stranger = world.user("ranger", sector_ids=[other_sector["id"]])
    community = world.community(sector["id"])
    worker = world.user("extension_worker", community_ids=[community["id"]])
    return {
        "ranger": _device_id(world.device(ranger)),
        "lead": _device_id(world.device(lead)),
        "stranger": _device_id(world.device(stranger)),
        "worker": _device_id(world.device(worker)),
        "worker_caller": worker,
    }


@pytest.mark.parametrize("role", ["admin", "coordinator"])
def test_office_staff_list_every_device(world: World, fleet: dict[str, Any], role: str) -> None:
    caller = world.admin if role == "admin" else world.user(role)

    answer = caller.get("/devices")

    assert answer.status_code == 200, answer.text
    assert set(_by_id(answer.json())) == {
        fleet["ranger"],
        fleet["lead"],
        fleet["stranger"],
        fleet["worker"],
    }


def test_a_ranger_lead_lists_the_devices_of_the_rangers_of_their_sectors(
    fleet: dict[str, Any], lead: Caller
) -> None:
    answer = lead.get("/devices")

    assert answer.status_code == 200, answer.text
    assert set(_by_id(answer.json())) == {fleet["ranger"], fleet["lead"]}


def test_a_ranger_lists_only_their_own_devices(fleet: dict[str, Any], ranger: Caller) -> None:
    answer = ranger.get("/devices")

    assert answer.status_code == 200, answer.text
    assert set(_by_id(answer.json())) == {fleet["ranger"]}


def test_an_extension_worker_lists_only_their_own_devices(fleet: dict[str, Any]) -> None:
    answer = fleet["worker_caller"].get("/devices")

    assert answer.status_code == 200, answer.text
    assert set(_by_id(answer.json())) == {fleet["worker"]}


def test_devices_are_listed_newest_first(world: World, ranger: Caller) -> None:
    made = [_make_code(world.admin, ranger, label=f"Tablet {i}")["device_id"] for i in range(3)]

    listed = [d["id"] for d in world.admin.get("/devices").json()]

    assert listed == list(reversed(made))


def test_a_ranger_lead_no_longer_sees_the_device_of_a_ranger_moved_away(
    world: World, fleet: dict[str, Any], ranger: Caller, lead: Caller
) -> None:
    other_sector = world.sector("AM-03")
    world.admin.patch(f"/users/{ranger.user_id}", json={"sector_ids": [other_sector["id"]]})

    assert fleet["ranger"] not in _by_id(lead.get("/devices").json())
    assert_problem(lead.get(f"/devices/{fleet['ranger']}"), 404, "not_found")


def test_the_list_shows_each_status(world: World, engine: Engine, ranger: Caller) -> None:
    pending = _make_code(world.admin, ranger)["device_id"]
    expired = _make_code(world.admin, ranger)["device_id"]
    _set_device(engine, expired, enrollment_expires_at=datetime.now(UTC) - timedelta(seconds=1))
    active = _device_id(world.device(ranger))
    revoked = _device_id(world.device(ranger))
    world.admin.post(f"/devices/{revoked}/revoke")

    listed = _by_id(world.admin.get("/devices").json())

    assert {key: listed[key]["status"] for key in (pending, expired, active, revoked)} == {
        pending: "pending",
        expired: "expired",
        active: "active",
        revoked: "revoked",
    }
    assert {d["status"] for d in ranger.get("/devices").json()} == {
        "pending",
        "expired",
        "active",
        "revoked",
    }


def test_a_ranger_lead_sees_one_device_of_their_ranger_but_not_of_another_sector(
    fleet: dict[str, Any], lead: Caller
) -> None:
    mine = lead.get(f"/devices/{fleet['ranger']}")

    assert mine.status_code == 200, mine.text
    assert mine.json()["id"] == fleet["ranger"]
    assert_problem(lead.get(f"/devices/{fleet['stranger']}"), 404, "not_found")
    assert_problem(lead.get(f"/devices/{fleet['worker']}"), 404, "not_found")


# ---------------------------------------------------------------- last seen


def test_a_device_is_seen_when_it_refreshes(world: World, engine: Engine, ranger: Caller) -> None:
    device = world.device(ranger)
    device_id = _device_id(device)
    long_ago = datetime.now(UTC) - timedelta(days=3)
    _set_device(engine, device_id, last_seen_at=long_ago)
    before = datetime.now(UTC)

    world.client.post("/auth/refresh", json={"refresh_token": device.tokens["refresh_token"]})

    seen = _parse(world.admin.get(f"/devices/{device_id}").json()["last_seen_at"])
    assert seen >= before - timedelta(seconds=1)


def test_a_device_is_seen_when_it_writes(world: World, engine: Engine, lead: Caller) -> None:
    device = world.device(lead)
    device_id = _device_id(device)
    _set_device(engine, device_id, last_seen_at=datetime.now(UTC) - timedelta(days=3))
    before = datetime.now(UTC)

    written = device.patch(f"/devices/{device_id}", json={"label": "Lead tablet"})

    assert written.status_code == 200, written.text
    seen = _parse(world.admin.get(f"/devices/{device_id}").json()["last_seen_at"])
    assert seen >= before - timedelta(seconds=1)


def test_a_password_sign_in_does_not_make_any_device_seen(
    world: World, engine: Engine, lead: Caller
) -> None:
    device_id = _device_id(world.device(lead))
    long_ago = datetime.now(UTC) - timedelta(days=3)
    _set_device(engine, device_id, last_seen_at=long_ago)

    lead.patch(f"/devices/{device_id}", json={"label": "Renamed from the office"})

    seen = _parse(world.admin.get(f"/devices/{device_id}").json()["last_seen_at"])
    assert seen < datetime.now(UTC) - timedelta(days=2)


# ---------------------------------------------------------------- relabelling


def test_an_admin_relabels_a_device(world: World, ranger: Caller) -> None:
    device_id = _device_id(world.device(ranger, label="Tablet 1"))

    answer = world.admin.patch(f"/devices/{device_id}", json={"label": "  Tablet 7 (spare)  "})

    assert answer.status_code == 200, answer.text
    assert answer.json()["label"] == "Tablet 7 (spare)"
    assert answer.json()["status"] == "active"
    assert world.admin.get(f"/devices/{device_id}").json()["label"] == "Tablet 7 (spare)"


def test_a_ranger_lead_relabels_a_device_of_their_ranger(
    world: World, ranger: Caller, lead: Caller
) -> None:
    device_id = _device_id(world.device(ranger, by=lead))

    answer = lead.patch(f"/devices/{device_id}", json={"label": "Patrol tablet"})

    assert answer.status_code == 200, answer.text
    assert answer.json()["label"] == "Patrol tablet"


def test_relabelling_a_device_out_of_scope_is_not_found(world: World, lead: Caller) -> None:
    elsewhere = world.sector("AM-99")
    stranger = world.user("ranger", sector_ids=[elsewhere["id"]])
    device_id = _device_id(world.device(stranger, label="Theirs"))

    answer = lead.patch(f"/devices/{device_id}", json={"label": "Mine now"})

    assert_problem(answer, 404, "not_found")
    assert world.admin.get(f"/devices/{device_id}").json()["label"] == "Theirs"


def test_relabelling_an_unknown_device_is_not_found(world: World) -> None:
    answer = world.admin.patch(f"/devices/{uuid.uuid4()}", json={"label": "Nothing"})

    assert_problem(answer, 404, "not_found")


@pytest.mark.parametrize("body", [{"label": ""}, {}, {"label": "x", "user_id": "y"}])
def test_a_relabel_that_does_not_validate_is_refused(
    world: World, ranger: Caller, body: dict[str, Any]
) -> None:
    device_id = _device_id(world.device(ranger))

    assert_problem(world.admin.patch(f"/devices/{device_id}", json=body), 422, "validation_failed")


def test_a_ranger_may_not_relabel_their_own_device(world: World, ranger: Caller) -> None:
    device_id = _device_id(world.device(ranger))

    assert_problem(ranger.patch(f"/devices/{device_id}", json={"label": "Mine"}), 403, "forbidden")


def test_a_ranger_reads_their_own_device_but_not_another(world: World) -> None:
    sector = world.sector()
    ranger = world.user("ranger", sector_ids=[sector["id"]])
    other = world.user("ranger", sector_ids=[sector["id"]])
    mine = _make_code(world.admin, ranger)
    theirs = _make_code(world.admin, other)

    answer = ranger.get(f"/devices/{mine['device_id']}")
    assert answer.status_code == 200, answer.text
    assert answer.json()["user_id"] == str(ranger.user_id)
    assert_problem(ranger.get(f"/devices/{theirs['device_id']}"), 404, "not_found")
    assert_problem(ranger.post(f"/devices/{mine['device_id']}/revoke"), 403, "forbidden")


def test_a_ranger_lead_does_not_manage_another_ranger_lead_of_their_sector(world: World) -> None:
    sector = world.sector()
    lead = world.user("ranger_lead", sector_ids=[sector["id"]])
    other_lead = world.user("ranger_lead", sector_ids=[sector["id"]])
    device = _make_code(world.admin, other_lead)

    answer = lead.post("/devices", json={"label": "T", "user_id": str(other_lead.user_id)})
    assert_problem(answer, 404, "not_found")
    assert_problem(lead.post(f"/devices/{device['device_id']}/revoke"), 404, "not_found")
    assert device["device_id"] not in [d["id"] for d in lead.get("/devices").json()]
