"""Security headers on every answer, a strict Content-Security-Policy, and no caching
of tokens (api/headers.py)."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from tests.asgi import TestClient
from tests.conftest import World, login

ALWAYS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


@pytest.fixture
def root(own_app_client: TestClient) -> TestClient:
    return own_app_client


def directives(policy: str) -> dict[str, list[str]]:
    parts = (part.split() for part in policy.split(";") if part.strip())
    return {name: sources for name, *sources in parts}


def inline_scripts(html: str) -> list[str]:
    return re.findall(r"<script>(.*?)</script>", html, re.DOTALL)


def csp_hash(text: str) -> str:
    return f"'sha256-{base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()}'"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/healthz", 200),
        ("GET", "/", 200),
        ("GET", "/docs", 200),
        ("GET", "/docs/assets/swagger-ui.css", 200),
        ("GET", "/api/v1/openapi.json", 200),
        ("GET", "/api/v1/auth/me", 401),
        ("GET", "/api/v1/no-such-thing", 404),
        ("POST", "/api/v1/auth/refresh", 422),
        ("GET", "/boom", 500),
    ],
)
def test_every_answer_carries_the_security_headers_and_a_policy(
    root: TestClient, method: str, path: str, status: int
) -> None:
    @root.app.get("/boom")  # type: ignore[attr-defined,untyped-decorator]
    def boom() -> None:
        raise RuntimeError("a bug")

    answer = root.request(method, path, json={} if method == "POST" else None)

    assert answer.status_code == status, answer.text
    assert {name: answer.headers.get(name) for name in ALWAYS} == ALWAYS
    policy = directives(answer.headers["content-security-policy"])
    assert policy["default-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]


def test_a_refused_body_carries_the_security_headers(root: TestClient) -> None:
    answer = root.post("/api/v1/auth/refresh", content=b" " * (2 * 1024 * 1024))

    assert answer.status_code == 413
    assert {name: answer.headers.get(name) for name in ALWAYS} == ALWAYS


@pytest.mark.parametrize("page", ["/", "/docs", "/redoc"])
def test_no_page_allows_inline_scripts_or_other_origins(root: TestClient, page: str) -> None:
    policy = directives(root.get(page).headers["content-security-policy"])

    assert "'unsafe-inline'" not in policy["script-src"]
    assert "'unsafe-eval'" not in policy["script-src"]
    for sources in policy.values():
        assert not any(s.startswith(("http:", "https:")) or s == "*" for s in sources), policy


def test_swagger_uis_policy_admits_its_own_inline_script_by_hash(root: TestClient) -> None:
    answer = root.get("/docs")
    scripts = inline_scripts(answer.text)
    assert len(scripts) == 1
    assert "SwaggerUIBundle(" in scripts[0]

    policy = directives(answer.headers["content-security-policy"])

    assert csp_hash(scripts[0]) in policy["script-src"]


def test_behind_a_proxy_prefix_swagger_uis_policy_matches_its_script(client: TestClient) -> None:
    with TestClient(client.app, root_path="/fieldsync") as prefixed:
        answer = prefixed.get("/docs")
    (script,) = inline_scripts(answer.text)

    policy = directives(answer.headers["content-security-policy"])

    assert "/fieldsync/api/v1/openapi.json" in script
    assert csp_hash(script) in policy["script-src"]


def test_the_root_pages_style_is_admitted_by_hash_and_nothing_else_inline(
    root: TestClient,
) -> None:
    answer = root.get("/")
    (style,) = re.findall(r"<style>(.*?)</style>", answer.text, re.DOTALL)

    policy = directives(answer.headers["content-security-policy"])

    assert policy["style-src"] == ["'self'", csp_hash(style)]
    assert not inline_scripts(answer.text)


def test_a_login_answer_is_not_stored_by_any_cache(world: World) -> None:
    world.admin  # noqa: B018 (makes the admin)

    signed_in = login(world.client, "admin")
    refused = login(world.client, "admin", "wrong password")

    assert signed_in.status_code == 200
    assert signed_in.headers["cache-control"] == "no-store"
    assert refused.headers["cache-control"] == "no-store"


def test_refresh_enrollment_and_an_enrollment_code_are_not_stored(world: World) -> None:
    ranger = world.user("ranger", sector_ids=[world.sector()["id"]])
    code = world.admin.post("/devices", json={"label": "T", "user_id": str(ranger.user_id)})
    enrolled = world.client.post(
        "/devices/enroll", json={"enrollment_code": code.json()["enrollment_code"]}
    )
    refreshed = world.client.post(
        "/auth/refresh", json={"refresh_token": enrolled.json()["refresh_token"]}
    )

    for answer in (code, enrolled, refreshed):
        assert answer.status_code in (200, 201), answer.text
        assert answer.headers["cache-control"] == "no-store", answer.request.url


def test_other_answers_keep_their_own_caching(world: World) -> None:
    answer = world.admin.get("/sectors")

    assert answer.status_code == 200
    assert answer.headers.get("cache-control") != "no-store"
