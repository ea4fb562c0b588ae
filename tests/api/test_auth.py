"""Signing in over HTTP: logins and their throttle, refresh rotation and replay,
forged tokens, and changes an admin makes that take effect on the very next request.

The concurrency tests at the end send the same request from several threads at once,
each through its own ``TestClient`` on the one app, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from api.app import create_app
from schemas import LoginFailure, RefreshFamily
from sync.accounts import security
from sync.platform.settings import Settings
from tests.asgi import TestClient
from tests.conftest import (
    PASSWORD,
    Caller,
    World,
    all_at_once,
    assert_problem,
    login,
    make_settings,
)
from tests.servers import Deployment, deployment_fixture  # noqa: F401 (a fixture)

BASE_URL = "http://testserver/api/v1"
OTHER_KEY = "another-secret-key-that-is-also-long-enough-9876543210"
THREADS = 8


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _claims_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def _b64_json(value: dict[str, Any]) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _refresh(client: TestClient, refresh_token: str) -> httpx.Response:
    answer: httpx.Response = client.post("/auth/refresh", json={"refresh_token": refresh_token})
    return answer


def _me(client: TestClient, access_token: str) -> httpx.Response:
    answer: httpx.Response = client.get("/auth/me", headers=_bearer(access_token))
    return answer


def _assert_refused_token(answer: httpx.Response, code: str | None = None) -> None:
    assert_problem(answer, 401, code)
    assert answer.headers["www-authenticate"] == "Bearer"


def _wrong_logins(client: TestClient, username: str, times: int) -> None:
    for _ in range(times):
        assert_problem(login(client, username, "not the password"), 401, "invalid_credentials")


def _from(client: TestClient, address: str, **settings: Any) -> TestClient:
    """A client of the same app (or of one with other ``settings``) at ``address``."""
    app: Any = client.app
    if settings:
        changed = make_settings(app.state.settings.database_url, **settings)
        app = create_app(changed, app.state.engine)
    return TestClient(app, base_url=str(client.base_url), client=(address, 50000))


def _without_instance(problem: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in problem.items() if k != "instance"}


# ---------------------------------------------------------------- login


def test_a_login_returns_a_bearer_token_pair(world: World, settings: Settings) -> None:
    ranger = world.user("ranger")
    answer = login(world.client, ranger.username)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.access_token_minutes * 60
    assert body["refresh_token"]
    assert body["refresh_token"] != body["access_token"]
    assert _claims_of(body["access_token"])["sub"] == str(ranger.user_id)
    assert _me(world.client, body["access_token"]).status_code == 200


def test_each_login_is_a_new_sign_in(world: World) -> None:
    ranger = world.user("ranger")
    first = login(world.client, ranger.username).json()
    second = login(world.client, ranger.username).json()
    assert first["refresh_token"] != second["refresh_token"]
    assert _claims_of(first["access_token"])["fam"] != _claims_of(second["access_token"])["fam"]


def test_a_wrong_password_is_refused_as_invalid_credentials(world: World) -> None:
    ranger = world.user("ranger")
    body = assert_problem(login(world.client, ranger.username, "not the password"), 401)
    assert body["code"] == "invalid_credentials"
    assert "access_token" not in body


def test_an_unknown_user_gets_the_same_answer_as_a_wrong_password(world: World) -> None:
    ranger = world.user("ranger")
    wrong_password = assert_problem(login(world.client, ranger.username, "nope nope nope"), 401)
    unknown_user = assert_problem(login(world.client, "nobody-here"), 401, "invalid_credentials")
    assert {k: v for k, v in unknown_user.items() if k != "instance"} == {
        k: v for k, v in wrong_password.items() if k != "instance"
    }


def test_the_username_is_case_insensitive_at_login(world: World) -> None:
    ranger = world.user("ranger", username="maria.quispe")
    for typed in ("MARIA.QUISPE", "Maria.Quispe", "  maria.quispe  "):
        answer = login(world.client, typed)
        assert answer.status_code == 200, (typed, answer.text)
        assert _claims_of(answer.json()["access_token"])["sub"] == str(ranger.user_id)


@pytest.mark.parametrize(
    "username", ["x" * 65, "x" * 5000, "ab\x00cd", "\x00"], ids=["65", "5000", "nul", "only-nul"]
)
def test_a_username_no_account_can_have_is_refused_as_invalid_credentials(
    world: World, username: str
) -> None:
    assert_problem(login(world.client, username), 401, "invalid_credentials")


def test_the_longest_possible_username_logs_in(world: World) -> None:
    username = "x" * 64
    world.user("ranger", username=username)
    assert login(world.client, username.upper()).status_code == 200


def test_the_password_is_case_sensitive(world: World) -> None:
    ranger = world.user("ranger")
    assert_problem(login(world.client, ranger.username, PASSWORD.upper()), 401)


@pytest.mark.parametrize(
    "form",
    [{}, {"username": "someone"}, {"password": PASSWORD}],
    ids=["nothing", "no-password", "no-username"],
)
def test_a_login_form_missing_fields_is_a_validation_problem(
    world: World, form: dict[str, str]
) -> None:
    body = assert_problem(world.client.post("/auth/token", data=form), 422, "validation_failed")
    assert body["errors"]


def test_a_login_sent_as_json_instead_of_a_form_is_a_validation_problem(world: World) -> None:
    answer = world.client.post("/auth/token", json={"username": "admin", "password": PASSWORD})
    assert_problem(answer, 422, "validation_failed")


def test_logins_are_throttled_after_too_many_failures_even_with_the_right_password(
    world: World, settings: Settings
) -> None:
    ranger = world.user("ranger")
    _wrong_logins(world.client, ranger.username, settings.login_max_failures)
    answer = login(world.client, ranger.username, PASSWORD)
    assert_problem(answer, 429, "too_many_attempts")
    retry_after = int(answer.headers["retry-after"])
    assert 0 < retry_after <= settings.login_window_seconds + 1
    assert_problem(login(world.client, ranger.username, "not the password"), 429)


def test_the_throttle_counts_the_username_however_it_is_typed(
    world: World, settings: Settings
) -> None:
    world.user("ranger", username="jorge.huaman")
    _wrong_logins(world.client, "JORGE.HUAMAN", settings.login_max_failures)
    assert_problem(login(world.client, "jorge.huaman"), 429, "too_many_attempts")


def test_the_last_failure_before_the_limit_is_still_answered_401(
    world: World, settings: Settings
) -> None:
    ranger = world.user("ranger")
    _wrong_logins(world.client, ranger.username, settings.login_max_failures - 1)
    assert login(world.client, ranger.username).status_code == 200


def test_a_success_before_the_limit_clears_the_failures(world: World, settings: Settings) -> None:
    ranger = world.user("ranger")
    _wrong_logins(world.client, ranger.username, settings.login_max_failures - 1)
    assert login(world.client, ranger.username).status_code == 200
    _wrong_logins(world.client, ranger.username, settings.login_max_failures - 1)
    assert login(world.client, ranger.username).status_code == 200


def test_the_throttle_is_per_username_at_one_address(world: World, settings: Settings) -> None:
    locked = world.user("ranger")
    other = world.user("ranger")
    _wrong_logins(world.client, locked.username, settings.login_max_failures)
    assert_problem(login(world.client, locked.username), 429, "too_many_attempts")
    assert login(world.client, other.username).status_code == 200


def test_a_username_locked_at_one_address_still_signs_in_from_another(
    world: World, settings: Settings
) -> None:
    admin = world.admin
    attacker = _from(world.client, "203.0.113.66")
    _wrong_logins(attacker, admin.username, settings.login_max_failures)
    assert_problem(login(attacker, admin.username), 429, "too_many_attempts")

    assert login(_from(world.client, "198.51.100.7"), admin.username).status_code == 200
    # Signing in elsewhere clears nothing at the attacker's address.
    assert_problem(login(attacker, admin.username), 429, "too_many_attempts")


def test_the_throttle_answers_retry_after_until_the_limit_th_newest_failure_leaves(
    world: World, engine: Engine, settings: Settings
) -> None:
    ranger = world.user("ranger")
    ages = [800, 700, 600, 300, 200, 100, 50]  # seconds ago; the 5th newest is 600
    now = datetime.now(UTC)
    with Session(engine) as session:
        session.add_all(
            LoginFailure(
                username=ranger.username,
                client_ip="testclient",
                failed_at=now - timedelta(seconds=age),
            )
            for age in ages
        )
        session.commit()
    answer = login(world.client, ranger.username)
    assert_problem(answer, 429, "too_many_attempts")
    expected = settings.login_window_seconds - 600
    assert expected <= int(answer.headers["retry-after"]) <= expected + 2


def test_an_address_that_fails_on_many_usernames_is_throttled_for_every_username(
    world: World, settings: Settings
) -> None:
    ranger = world.user("ranger")
    sprayer = _from(world.client, "203.0.113.66")
    for n in range(settings.login_address_max_failures):
        assert_problem(login(sprayer, f"guess-{n}", "Summer2026!"), 401, "invalid_credentials")

    answer = login(sprayer, ranger.username)
    assert_problem(answer, 429, "too_many_attempts")
    assert 0 < int(answer.headers["retry-after"]) <= settings.login_window_seconds + 1
    assert_problem(login(sprayer, "guess-new", "Summer2026!"), 429, "too_many_attempts")
    # Nobody else's address is spent.
    assert login(world.client, ranger.username).status_code == 200


def test_the_last_failure_before_the_address_budget_is_still_answered_401(
    world: World, settings: Settings
) -> None:
    ranger = world.user("ranger")
    sprayer = _from(world.client, "203.0.113.66")
    for n in range(settings.login_address_max_failures - 1):
        assert_problem(login(sprayer, f"guess-{n}"), 401, "invalid_credentials")
    assert login(sprayer, ranger.username).status_code == 200


def test_x_forwarded_for_from_an_untrusted_peer_does_not_escape_the_throttle(
    world: World, settings: Settings
) -> None:
    ranger = world.user("ranger")
    attacker = _from(world.client, "203.0.113.66")
    for n in range(settings.login_max_failures):
        answer = attacker.post(
            "/auth/token",
            data={"username": ranger.username, "password": "not the password"},
            headers={"X-Forwarded-For": f"198.51.100.{n}"},
        )
        assert_problem(answer, 401, "invalid_credentials")
    answer = attacker.post(
        "/auth/token",
        data={"username": ranger.username, "password": PASSWORD},
        headers={"X-Forwarded-For": "198.51.100.200"},
    )
    assert_problem(answer, 429, "too_many_attempts")


def test_behind_a_trusted_proxy_each_forwarded_client_is_throttled_on_its_own(
    world: World, engine: Engine, settings: Settings
) -> None:
    ranger = world.user("ranger")
    proxy = _from(world.client, "10.0.0.5", trusted_proxies="10.0.0.0/24")

    def from_client(address: str, password: str) -> httpx.Response:
        answer: httpx.Response = proxy.post(
            "/auth/token",
            data={"username": ranger.username, "password": password},
            # What the client sent, then what nginx appended: the address it saw.
            headers={"X-Forwarded-For": f"192.0.2.1, {address}"},
        )
        return answer

    for _ in range(settings.login_max_failures):
        assert_problem(from_client("203.0.113.66", "not the password"), 401)
    assert_problem(from_client("203.0.113.66", PASSWORD), 429, "too_many_attempts")
    assert from_client("198.51.100.7", PASSWORD).status_code == 200
    with Session(engine) as session:
        recorded = set(session.exec(select(LoginFailure.client_ip)).all())
    assert recorded == {"203.0.113.66"}


def test_an_unknown_username_is_throttled_like_a_known_one(
    world: World, settings: Settings
) -> None:
    _wrong_logins(world.client, "nobody-here", settings.login_max_failures)
    assert_problem(login(world.client, "nobody-here"), 429, "too_many_attempts")


def test_failures_older_than_the_window_no_longer_count(
    world: World, engine: Engine, settings: Settings
) -> None:
    ranger = world.user("ranger")
    _wrong_logins(world.client, ranger.username, settings.login_max_failures)
    assert_problem(login(world.client, ranger.username), 429)
    with Session(engine) as session:
        for failure in session.exec(select(LoginFailure)):
            failure.failed_at -= timedelta(seconds=settings.login_window_seconds + 1)
            session.add(failure)
        session.commit()
    assert login(world.client, ranger.username).status_code == 200


@pytest.mark.slow
@pytest.mark.parametrize("trusted", ["", "127.0.0.1"], ids=["no-proxy", "behind-a-proxy"])
def test_a_real_server_believes_x_forwarded_for_only_from_a_trusted_proxy(
    deployment: Deployment, trusted: str
) -> None:
    """uvicorn's own proxy handling would trust 127.0.0.1 whatever the setting says."""
    deployment.env["FIELDSYNC_TRUSTED_PROXIES"] = trusted
    server = deployment.start()
    with httpx.Client(base_url=server.api) as http:

        def boss(password: str, forwarded_for: str) -> httpx.Response:
            return http.post(
                "/auth/token",
                data={"username": "boss", "password": password},
                headers={"X-Forwarded-For": forwarded_for},
            )

        for n in range(5):  # the default limit
            assert_problem(boss("not the password", f"203.0.113.{n}"), 401)
        answer = boss(PASSWORD, "203.0.113.99")
    if trusted:
        assert answer.status_code == 200, answer.text
    else:
        assert_problem(answer, 429, "too_many_attempts")


def test_me_returns_the_signed_in_user(world: World) -> None:
    sector = world.sector()
    ranger = world.user("ranger", sector_ids=[sector["id"]])
    answer = ranger.get("/auth/me")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["id"] == str(ranger.user_id)
    assert body["username"] == ranger.username
    assert body["role"] == "ranger"
    assert body["active"] is True
    assert body["sector_ids"] == [sector["id"]]
    assert "password_hash" not in body
    assert "password" not in body


# ---------------------------------------------------------------- refresh


def test_a_refresh_rotates_to_a_new_pair_that_works(world: World) -> None:
    ranger = world.user("ranger")
    first = ranger.tokens
    answer = _refresh(world.client, first["refresh_token"])
    assert answer.status_code == 200, answer.text
    second = answer.json()
    assert second["token_type"] == "bearer"
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert _claims_of(second["access_token"])["fam"] == _claims_of(first["access_token"])["fam"]
    assert _me(world.client, second["access_token"]).json()["id"] == str(ranger.user_id)
    third = _refresh(world.client, second["refresh_token"])
    assert third.status_code == 200, third.text
    assert _me(world.client, third.json()["access_token"]).status_code == 200


def test_a_replayed_refresh_token_revokes_its_whole_sign_in(world: World) -> None:
    ranger = world.user("ranger")
    other_login = login(world.client, ranger.username).json()
    stolen = ranger.tokens
    rotated = _refresh(world.client, stolen["refresh_token"]).json()
    newest = _refresh(world.client, rotated["refresh_token"]).json()

    _assert_refused_token(_refresh(world.client, stolen["refresh_token"]), "refresh_token_reused")

    _assert_refused_token(_refresh(world.client, newest["refresh_token"]))
    for access in (stolen["access_token"], rotated["access_token"], newest["access_token"]):
        _assert_refused_token(_me(world.client, access), "token_revoked")
    # The same person's other sign-in is a different family and lives on.
    assert _me(world.client, other_login["access_token"]).status_code == 200
    assert _refresh(world.client, other_login["refresh_token"]).status_code == 200


def test_a_replay_is_kept_even_though_its_request_fails(world: World) -> None:
    """The revocation must be committed, not rolled back with the failed request."""
    ranger = world.user("ranger")
    rotated = _refresh(world.client, ranger.tokens["refresh_token"]).json()
    _assert_refused_token(_refresh(world.client, ranger.tokens["refresh_token"]))
    _assert_refused_token(_me(world.client, rotated["access_token"]), "token_revoked")
    _assert_refused_token(_refresh(world.client, rotated["refresh_token"]), "token_revoked")


def test_an_unknown_refresh_token_is_refused(world: World) -> None:
    answer = _refresh(world.client, security.new_refresh_secret())
    _assert_refused_token(answer, "invalid_refresh_token")


def test_an_access_token_is_not_a_refresh_token(world: World) -> None:
    admin = world.admin
    _assert_refused_token(_refresh(world.client, admin.tokens["access_token"]))


@pytest.mark.parametrize(
    "body", [{}, {"refresh_token": ""}, {"refresh_token": "x" * 513}, {"token": "x"}]
)
def test_a_malformed_refresh_request_is_a_validation_problem(
    world: World, body: dict[str, str]
) -> None:
    assert_problem(world.client.post("/auth/refresh", json=body), 422, "validation_failed")


# ---------------------------------------------------------------- bad access tokens


def _signed(claims: dict[str, Any], key: str, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def _with_another_key(victim: Caller, _admin: Caller, settings: Settings) -> str:
    return _signed(_claims_of(victim.tokens["access_token"]), OTHER_KEY)


def _with_sub_tampered_to_the_admin(victim: Caller, admin: Caller, settings: Settings) -> str:
    header, _, signature = victim.tokens["access_token"].split(".")
    claims = _claims_of(victim.tokens["access_token"])
    claims["sub"] = str(admin.user_id)
    return f"{header}.{_b64_json(claims)}.{signature}"


def _expired(victim: Caller, _admin: Caller, settings: Settings) -> str:
    return security.issue_access_token(
        user_id=victim.user_id,
        family_id=uuid.UUID(_claims_of(victim.tokens["access_token"])["fam"]),
        device_id=None,
        now=datetime.now(UTC) - timedelta(minutes=settings.access_token_minutes, seconds=60),
        settings=settings,
    )


def _with_alg_none(victim: Caller, _admin: Caller, settings: Settings) -> str:
    claims = _claims_of(victim.tokens["access_token"])
    return f"{_b64_json({'alg': 'none', 'typ': 'JWT'})}.{_b64_json(claims)}."


def _with_hs512(victim: Caller, _admin: Caller, settings: Settings) -> str:
    claims = _claims_of(victim.tokens["access_token"])
    return _signed(claims, settings.signing_key(), "HS512")


def _naming_the_admin_with_the_victims_family(
    victim: Caller, admin: Caller, settings: Settings
) -> str:
    """Well signed (as if the key leaked), but the sign-in is not the admin's."""
    return security.issue_access_token(
        user_id=admin.user_id,
        family_id=uuid.UUID(_claims_of(victim.tokens["access_token"])["fam"]),
        device_id=None,
        now=datetime.now(UTC),
        settings=settings,
    )


def _naming_an_unknown_family(victim: Caller, _admin: Caller, settings: Settings) -> str:
    return security.issue_access_token(
        user_id=victim.user_id,
        family_id=uuid.uuid4(),
        device_id=None,
        now=datetime.now(UTC),
        settings=settings,
    )


def _naming_a_device_the_sign_in_is_not(victim: Caller, _admin: Caller, settings: Settings) -> str:
    return security.issue_access_token(
        user_id=victim.user_id,
        family_id=uuid.UUID(_claims_of(victim.tokens["access_token"])["fam"]),
        device_id=uuid.uuid4(),
        now=datetime.now(UTC),
        settings=settings,
    )


def _typed_refresh(victim: Caller, _admin: Caller, settings: Settings) -> str:
    claims = {**_claims_of(victim.tokens["access_token"]), "typ": "refresh"}
    return _signed(claims, settings.signing_key())


def _garbage(_victim: Caller, _admin: Caller, settings: Settings) -> str:
    return "this-is-not-a-token"


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize(
    "forge",
    [
        _with_another_key,
        _with_sub_tampered_to_the_admin,
        _expired,
        _with_alg_none,
        _with_hs512,
        _naming_the_admin_with_the_victims_family,
        _naming_an_unknown_family,
        _naming_a_device_the_sign_in_is_not,
        _typed_refresh,
        _garbage,
    ],
)
def test_a_bad_access_token_is_refused_over_http(
    world: World, settings: Settings, forge: Callable[[Caller, Caller, Settings], str]
) -> None:
    admin = world.admin
    victim = world.user("ranger")
    token = forge(victim, admin, settings)
    for answer in (
        world.client.get("/auth/me", headers=_bearer(token)),
        world.client.get("/users", headers=_bearer(token)),
        world.client.post("/sectors", headers=_bearer(token), json={"code": "X", "name": "X"}),
    ):
        _assert_refused_token(answer, "invalid_token")
    # The genuine token of the same user still works: the refusal was the forgery's.
    assert victim.get("/auth/me").status_code == 200


def test_a_request_without_authorization_is_refused_as_not_authenticated(world: World) -> None:
    _assert_refused_token(world.client.get("/auth/me"), "not_authenticated")


@pytest.mark.parametrize(
    "authorization",
    ["Bearer", "Bearer ", "Basic YWRtaW46Y29ycmVjdCBob3JzZSBiYXR0ZXJ5", "Token abc"],
)
def test_an_authorization_header_without_a_bearer_token_is_refused(
    world: World, authorization: str
) -> None:
    answer = world.client.get("/auth/me", headers={"Authorization": authorization})
    _assert_refused_token(answer, "not_authenticated")


@pytest.mark.parametrize("garbage", ["garbage", "a.b.c", "Bearer x", "%%%", "e30.e30.e30"])
def test_a_bearer_header_with_garbage_is_refused(world: World, garbage: str) -> None:
    answer = world.client.get("/auth/me", headers={"Authorization": f"Bearer {garbage}"})
    _assert_refused_token(answer, "invalid_token")


# ---------------------------------------------------------------- admin changes, next request


def test_a_deactivated_users_token_is_refused_on_the_very_next_request(world: World) -> None:
    ranger = world.user("ranger")
    assert ranger.get("/auth/me").status_code == 200
    answer = world.admin.patch(f"/users/{ranger.user_id}", json={"active": False})
    assert answer.status_code == 200, answer.text
    assert answer.json()["active"] is False
    _assert_refused_token(ranger.get("/auth/me"), "account_disabled")


def test_a_deactivated_user_cannot_refresh(world: World) -> None:
    ranger = world.user("ranger")
    world.admin.patch(f"/users/{ranger.user_id}", json={"active": False})
    _assert_refused_token(
        _refresh(world.client, ranger.tokens["refresh_token"]), "account_disabled"
    )


def test_a_deactivated_user_with_the_right_password_is_answered_as_a_wrong_password(
    world: World,
) -> None:
    ranger = world.user("ranger")
    world.admin.patch(f"/users/{ranger.user_id}", json={"active": False})
    right = assert_problem(login(world.client, ranger.username), 401, "invalid_credentials")
    wrong = assert_problem(login(world.client, ranger.username, "not the password"), 401)
    assert _without_instance(right) == _without_instance(wrong)


def test_the_right_password_of_a_deactivated_user_counts_as_a_failure(
    world: World, settings: Settings
) -> None:
    """Otherwise a guesser would see which guess did not bring the lock closer."""
    ranger = world.user("ranger")
    world.admin.patch(f"/users/{ranger.user_id}", json={"active": False})
    _wrong_logins(world.client, ranger.username, settings.login_max_failures - 1)
    assert_problem(login(world.client, ranger.username), 401, "invalid_credentials")
    assert_problem(login(world.client, ranger.username, "not the password"), 429)


def test_a_reactivated_user_logs_in_again_but_old_sign_ins_stay_dead(world: World) -> None:
    ranger = world.user("ranger")
    world.admin.patch(f"/users/{ranger.user_id}", json={"active": False})
    world.admin.patch(f"/users/{ranger.user_id}", json={"active": True})
    assert login(world.client, ranger.username).status_code == 200
    _assert_refused_token(ranger.get("/auth/me"))
    _assert_refused_token(_refresh(world.client, ranger.tokens["refresh_token"]))


def test_a_password_change_by_an_admin_ends_the_users_sign_ins(world: World) -> None:
    ranger = world.user("ranger")
    new_password = "a brand new password"
    answer = world.admin.patch(f"/users/{ranger.user_id}", json={"password": new_password})
    assert answer.status_code == 200, answer.text
    _assert_refused_token(ranger.get("/auth/me"))
    _assert_refused_token(_refresh(world.client, ranger.tokens["refresh_token"]))
    assert_problem(login(world.client, ranger.username), 401, "invalid_credentials")
    assert login(world.client, ranger.username, new_password).status_code == 200


def test_a_promotion_takes_effect_on_the_next_request_with_the_old_token(world: World) -> None:
    ranger = world.user("ranger")
    sector = {"code": "AM-PROMO", "name": "Promoted"}
    assert_problem(ranger.post("/sectors", json=sector), 403, "forbidden")
    answer = world.admin.patch(f"/users/{ranger.user_id}", json={"role": "admin"})
    assert answer.status_code == 200, answer.text
    assert ranger.post("/sectors", json=sector).status_code == 201
    assert ranger.get("/auth/me").json()["role"] == "admin"


def test_a_demotion_takes_effect_on_the_next_request_with_the_old_token(world: World) -> None:
    second_admin = world.user("admin")
    assert second_admin.post("/sectors", json={"code": "AM-A", "name": "A"}).status_code == 201
    world.admin.patch(f"/users/{second_admin.user_id}", json={"role": "ranger"})
    answer = second_admin.post("/sectors", json={"code": "AM-B", "name": "B"})
    assert_problem(answer, 403, "forbidden")


def test_a_scope_change_takes_effect_on_the_next_request_with_the_old_token(
    world: World,
) -> None:
    first = world.sector("AM-01")
    second = world.sector("AM-02")
    ranger = world.user("ranger", sector_ids=[first["id"]])
    assert [s["code"] for s in ranger.get("/sectors").json()] == ["AM-01"]
    world.admin.patch(f"/users/{ranger.user_id}", json={"sector_ids": [second["id"]]})
    assert [s["code"] for s in ranger.get("/sectors").json()] == ["AM-02"]


# ---------------------------------------------------------------- at the same moment


def test_a_refresh_token_sent_by_several_clients_at_once_wins_exactly_once(
    world: World,
) -> None:
    ranger = world.user("ranger")
    refresh_token = ranger.tokens["refresh_token"]

    answers = all_at_once(world.client, lambda client: _refresh(client, refresh_token))

    statuses = Counter(answer.status_code for answer in answers)
    assert statuses == {200: 1, 401: THREADS - 1}, [a.text for a in answers]
    codes = Counter(answer.json()["code"] for answer in answers if answer.status_code == 401)
    assert set(codes) <= {"refresh_token_reused", "token_revoked"}, codes
    assert codes["refresh_token_reused"] >= 1, codes
    # A replay was seen, so the winner's new pair is dead along with the rest.
    winner = next(answer.json() for answer in answers if answer.status_code == 200)
    _assert_refused_token(_refresh(world.client, winner["refresh_token"]), "token_revoked")
    _assert_refused_token(_me(world.client, winner["access_token"]), "token_revoked")


def test_an_enrollment_code_sent_by_several_tablets_at_once_enrolls_exactly_one(
    world: World, engine: Engine
) -> None:
    ranger = world.user("ranger")
    made = world.admin.post("/devices", json={"label": "Tablet 7", "user_id": str(ranger.user_id)})
    assert made.status_code == 201, made.text
    code = made.json()["enrollment_code"]

    answers = all_at_once(
        world.client, lambda client: client.post("/devices/enroll", json={"enrollment_code": code})
    )

    statuses = Counter(answer.status_code for answer in answers)
    assert statuses == {200: 1, 401: THREADS - 1}, [a.text for a in answers]
    for answer in answers:
        if answer.status_code == 401:
            assert_problem(answer, 401, "invalid_enrollment_code")
    winner = next(answer.json() for answer in answers if answer.status_code == 200)
    assert winner["device_id"] == made.json()["device_id"]
    assert _me(world.client, winner["access_token"]).status_code == 200
    with Session(engine) as session:
        families = session.exec(
            select(func.count()).where(
                col(RefreshFamily.device_id) == uuid.UUID(made.json()["device_id"])
            )
        ).one()
    assert families == 1


def test_concurrent_wrong_passwords_never_get_past_the_throttle(
    world: World, engine: Engine, settings: Settings
) -> None:
    ranger = world.user("ranger")
    attempts = 12

    answers = all_at_once(
        world.client,
        lambda client: login(client, ranger.username, "not the password"),
        times=attempts,
    )

    statuses = Counter(answer.status_code for answer in answers)
    assert set(statuses) <= {401, 429}, [a.text for a in answers]
    assert statuses[401] == settings.login_max_failures, statuses
    assert statuses[429] == attempts - settings.login_max_failures, statuses
    for answer in answers:
        if answer.status_code == 429:
            assert_problem(answer, 429, "too_many_attempts")
            assert int(answer.headers["retry-after"]) > 0
    with Session(engine) as session:
        recorded = session.exec(
            select(func.count()).where(col(LoginFailure.username) == ranger.username)
        ).one()
    assert recorded == settings.login_max_failures
    assert_problem(login(world.client, ranger.username), 429, "too_many_attempts")


def test_concurrent_guesses_at_many_usernames_never_get_past_the_address_budget(
    world: World, engine: Engine
) -> None:
    budget = 5
    sprayer = _from(world.client, "203.0.113.66", login_address_max_failures=budget)
    attempts = 12
    barrier = threading.Barrier(attempts)

    def guess(n: int) -> httpx.Response:
        # all_at_once's clients are at the default test address: each is made here.
        own = _from(sprayer, "203.0.113.66")
        barrier.wait(timeout=30)
        answer: httpx.Response = login(own, f"guess-{n}", "Summer2026!")
        return answer

    with ThreadPoolExecutor(max_workers=attempts) as pool:
        answers = list(pool.map(guess, range(attempts)))

    statuses = Counter(answer.status_code for answer in answers)
    assert statuses == {401: budget, 429: attempts - budget}, [a.text for a in answers]
    with Session(engine) as session:
        recorded = session.exec(
            select(func.count()).where(col(LoginFailure.client_ip) == "203.0.113.66")
        ).one()
    assert recorded == budget


def test_a_lock_at_one_address_holds_while_the_owner_signs_in_from_another_at_once(
    world: World, settings: Settings
) -> None:
    ranger = world.user("ranger")
    _wrong_logins(_from(world.client, "203.0.113.66"), ranger.username, settings.login_max_failures)
    barrier = threading.Barrier(THREADS)

    def one(n: int) -> tuple[str, int]:
        who = "owner" if n % 2 else "attacker"
        client = _from(world.client, "198.51.100.7" if who == "owner" else "203.0.113.66")
        barrier.wait(timeout=30)
        password = PASSWORD if who == "owner" else "not the password"
        return who, login(client, ranger.username, password).status_code

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        answers = Counter(pool.map(one, range(THREADS)))

    assert answers == {("owner", 200): THREADS // 2, ("attacker", 429): THREADS // 2}


def test_failures_older_than_the_window_are_forgotten(
    world: World, engine: Engine, settings: Settings
) -> None:
    long_ago = datetime.now(UTC) - timedelta(seconds=settings.login_window_seconds + 60)
    with Session(engine) as session:
        session.add_all(
            LoginFailure(username=f"made-up-{n}", failed_at=long_ago) for n in range(20)
        )
        session.commit()

    assert_problem(
        login(world.client, "someone-else", "wrong password"), 401, "invalid_credentials"
    )

    with Session(engine) as session:
        left = session.exec(select(LoginFailure.username)).all()
    assert left == ["someone-else"]
