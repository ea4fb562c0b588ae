"""Liveness, readiness and the API's own description."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from api.app import create_app
from sync.platform import migrate
from sync.platform.database import create_db_engine
from tests.asgi import TestClient
from tests.conftest import assert_problem, make_settings

API_PATHS = [
    "/api/v1/auth/token",
    "/api/v1/auth/refresh",
    "/api/v1/auth/me",
    "/api/v1/users",
    "/api/v1/users/{user_id}",
    "/api/v1/devices",
    "/api/v1/devices/enroll",
    "/api/v1/devices/{device_id}",
    "/api/v1/devices/{device_id}/revoke",
    "/api/v1/sectors",
    "/api/v1/sectors/{sector_id}",
    "/api/v1/communities",
    "/api/v1/communities/{community_id}",
    "/api/v1/observation-categories",
    "/api/v1/observation-categories/{category_id}",
]


@pytest.fixture
def root(client: TestClient) -> Iterator[TestClient]:
    """The app of ``client``, addressed from its root rather than from ``/api/v1``."""
    with TestClient(client.app, base_url="http://testserver") as at_root:
        yield at_root


def _client_for(database_url: str) -> TestClient:
    engine = create_db_engine(database_url)
    return TestClient(create_app(make_settings(database_url), engine), base_url="http://testserver")


def test_healthz_answers_at_the_root(root: TestClient) -> None:
    answer = root.get("/healthz")

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "ok"


def test_readyz_reports_the_database_and_its_revision_when_migrated(
    root: TestClient, backend: str
) -> None:
    answer = root.get("/readyz")

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "ready"
    assert body["database"] == backend
    assert body["revision"] == migrate.head_revision()
    assert body["revision"]


def test_the_probes_answer_without_a_token(root: TestClient) -> None:
    for path in ("/healthz", "/readyz"):
        answer = root.get(path, headers={"Authorization": "Bearer not-a-token"})
        assert answer.status_code == 200, (path, answer.text)


def test_readyz_refuses_a_database_that_is_not_migrated(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"

    with _client_for(url) as client:
        ready = client.get("/readyz")
        alive = client.get("/healthz")

    problem = assert_problem(ready, 503, "migrations_pending")
    assert "fieldsync db upgrade" in problem["detail"]
    assert alive.status_code == 200, alive.text


def test_readyz_refuses_a_database_behind_the_newest_migration(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'behind.db'}"
    engine = create_db_engine(url)
    migrate.upgrade(engine)
    migrate.downgrade(engine, "base")
    engine.dispose()

    with _client_for(url) as client:
        answer = client.get("/readyz")

    assert_problem(answer, 503, "migrations_pending")


def test_readyz_refuses_a_database_that_does_not_answer(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no-such-folder' / 'fieldsync.db'}"

    with _client_for(url) as client:
        ready = client.get("/readyz")
        alive = client.get("/healthz")

    assert_problem(ready, 503, "database_unavailable")
    assert alive.status_code == 200, alive.text


def test_the_docs_page_answers(root: TestClient) -> None:
    answer = root.get("/docs")

    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert "/api/v1/openapi.json" in answer.text


def test_the_openapi_document_lists_every_route(client: TestClient) -> None:
    answer = client.get("/openapi.json")

    assert answer.status_code == 200, answer.text
    document = answer.json()
    assert document["info"]["title"] == "fieldsync"
    assert set(API_PATHS) <= set(document["paths"]), sorted(document["paths"])


def test_the_probes_answer_under_the_api_prefix_too_but_are_documented_once(
    client: TestClient,
) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert {"/healthz", "/readyz"} <= set(paths)
    assert "/api/v1/healthz" not in paths
    assert "/api/v1/readyz" not in paths


def test_the_openapi_document_describes_errors_as_problems(client: TestClient) -> None:
    document = client.get("/openapi.json").json()

    assert "Problem" in document["components"]["schemas"]
    refused = document["paths"]["/api/v1/sectors"]["post"]["responses"]["401"]
    assert "application/problem+json" in refused["content"]
