"""Fixtures: every storage test runs on SQLite and on PostgreSQL, through the real app.

The schema is made by the real migrations once per backend and worker; each test
starts from empty tables. Tests talk HTTP to the app (``TestClient``), or to a real
server process where they say so.
"""

from __future__ import annotations

import functools
import json
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from api.app import create_app
from schemas.enums import Role
from sync.accounts import users
from sync.accounts.users import COMMUNITY_ROLES, SECTOR_ROLES
from sync.platform import migrate
from sync.platform.database import create_db_engine, transaction
from sync.platform.settings import Settings
from tests.asgi import TestClient
from tests.databases import backends, fresh_database

SECRET_KEY = "test-secret-key-that-is-long-enough-0123456789"
PASSWORD = "correct horse battery"


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "production",
        "database_url": database_url,
        "secret_key": SECRET_KEY,
        "argon2_time_cost": 1,
        "argon2_memory_kib": 64,
        # Never the default (beside the database, or ./attachments in the checkout).
        "attachments_url": _attachments_folder().as_uri(),
        # The test client speaks plain HTTP, over which a browser sends no Secure cookie.
        "console_cookie_secure": False,
        **overrides,
    }
    return Settings(_env_file=None, **values)


@functools.cache
def _attachments_folder() -> Path:
    """One temporary folder per test process for the files tests upload."""
    return Path(tempfile.mkdtemp(prefix="fieldsync-test-attachments-"))


@pytest.fixture(scope="session", params=backends())
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fresh_database(backend, tmp_path_factory.mktemp(backend)) as url:
        engine = create_db_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url


@pytest.fixture(scope="session")
def shared_engine(database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def engine(shared_engine: Engine) -> Engine:
    """The migrated database, emptied before the test."""
    _empty(shared_engine)
    return shared_engine


def _empty(engine: Engine) -> None:
    # The clock row is made by the migrations and only ever moves forward.
    tables = [t.name for t in reversed(SQLModel.metadata.sorted_tables) if t.name != "sync_clock"]
    # DELETE, not TRUNCATE: for a few rows in each of ~25 tables it is several times
    # faster on PostgreSQL, which pays a fixed cost per truncated table.
    with engine.begin() as connection:
        for name in tables:
            connection.exec_driver_sql(f'DELETE FROM "{name}"')  # noqa: S608 (our table names)
        # The audit chain starts again with the blocks emptied (its head is in the row).
        connection.execute(
            sa.text("UPDATE sync_clock SET chain_number = 0, chain_hash = :g, chain_prev = :g"),
            {"g": "0" * 64},
        )


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
def client(engine: Engine, settings: Settings) -> Iterator[TestClient]:
    with TestClient(app_for(settings, engine), base_url="http://testserver/api/v1") as test_client:
        yield test_client


@pytest.fixture
def own_app_client(client: TestClient) -> Iterator[TestClient]:
    """The whole app at its root, on an app of its own (the test may add routes to it),
    with its 500s answered rather than raised in the test."""
    app = create_app(client.app.state.settings, client.app.state.engine)  # type: ignore[attr-defined]
    with TestClient(app, base_url="http://testserver", raise_server_exceptions=False) as own:
        yield own


_apps: dict[tuple[str, int], FastAPI] = {}


def app_for(settings: Settings, engine: Engine) -> FastAPI:
    """The app of ``settings`` on ``engine``, built once per test process: FastAPI
    works out every route's dependencies as the app is built (0.1 s for ours), which
    each of some 2,500 tests paid. The app keeps nothing of a request: what a test
    leaves is in its database, which the next test empties."""
    values = {
        name: value.get_secret_value() if isinstance(value, SecretStr) else value
        for name, value in settings
    }
    key = (json.dumps(values, default=str, sort_keys=True), id(engine))
    app = _apps.get(key)
    if app is None:
        app = _apps[key] = create_app(settings, engine)
    return app


@dataclass
class Caller:
    """A signed-in user, for tests: ``caller.get("/sectors")`` sends their token."""

    client: TestClient
    user_id: uuid.UUID
    username: str
    password: str
    role: Role
    tokens: dict[str, Any] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens['access_token']}"}

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        return self.request("PATCH", path, **kwargs)


def login(client: TestClient, username: str, password: str = PASSWORD) -> Any:
    return client.post("/auth/token", data={"username": username, "password": password})


class World:
    """Builds the people and places a test needs, through the API where it can."""

    def __init__(self, client: TestClient, engine: Engine, settings: Settings) -> None:
        self.client = client
        self.engine = engine
        self.settings = settings
        self._admin: Caller | None = None

    @property
    def admin(self) -> Caller:
        if self._admin is None:
            with transaction(self.engine) as session:
                made = users.create_admin(
                    session,
                    username="admin",
                    password=PASSWORD,
                    full_name="Office Admin",
                    settings=self.settings,
                )
            self._admin = self._signed_in(made.id, "admin", Role.admin)
        return self._admin

    def _signed_in(self, user_id: uuid.UUID, username: str, role: Role) -> Caller:
        answer = login(self.client, username)
        assert answer.status_code == 200, answer.text
        return Caller(self.client, user_id, username, PASSWORD, role, answer.json())

    def sector(self, code: str | None = None, **fields: Any) -> dict[str, Any]:
        code = code or f"S-{uuid.uuid4().hex[:6]}"
        answer = self.admin.post(
            "/sectors", json={"code": code, "name": f"Sector {code}", **fields}
        )
        assert answer.status_code == 201, answer.text
        result: dict[str, Any] = answer.json()
        return result

    def community(self, sector_id: str, name: str | None = None, **fields: Any) -> dict[str, Any]:
        body = {
            "name": name or f"Community {uuid.uuid4().hex[:6]}",
            "sector_id": sector_id,
            "kind": "settlement",
            **fields,
        }
        answer = self.admin.post("/communities", json=body)
        assert answer.status_code == 201, answer.text
        result: dict[str, Any] = answer.json()
        return result

    def user(
        self,
        role: Role | str,
        *,
        username: str | None = None,
        sector_ids: list[str] = (),  # type: ignore[assignment]
        community_ids: list[str] = (),  # type: ignore[assignment]
    ) -> Caller:
        """A signed-in user of ``role``. Tests parametrized over roles pass both kinds of
        scope; each role is given only the kind it holds (sectors for rangers and ranger
        leads, communities for extension workers, none for the office)."""
        username = username or f"{role}-{uuid.uuid4().hex[:6]}".replace("_", "-")
        if Role(role) not in SECTOR_ROLES:
            sector_ids = []
        if Role(role) not in COMMUNITY_ROLES:
            community_ids = []
        answer = self.admin.post(
            "/users",
            json={
                "username": username,
                "password": PASSWORD,
                "full_name": username.title(),
                "role": str(role),
                "sector_ids": list(sector_ids),
                "community_ids": list(community_ids),
            },
        )
        assert answer.status_code == 201, answer.text
        return self._signed_in(uuid.UUID(answer.json()["id"]), username, Role(role))

    def device(self, owner: Caller, *, by: Caller | None = None, label: str = "Tablet") -> Caller:
        """Enroll a device for ``owner``; the caller returned holds the device's tokens."""
        code = (by or self.admin).post(
            "/devices", json={"label": label, "user_id": str(owner.user_id)}
        )
        assert code.status_code == 201, code.text
        enrolled = self.client.post(
            "/devices/enroll", json={"enrollment_code": code.json()["enrollment_code"]}
        )
        assert enrolled.status_code == 200, enrolled.text
        return Caller(
            self.client, owner.user_id, owner.username, owner.password, owner.role, enrolled.json()
        )


@pytest.fixture
def world(client: TestClient, engine: Engine, settings: Settings) -> World:
    return World(client, engine, settings)


def all_at_once(
    client: TestClient, send: Callable[[TestClient], httpx.Response], times: int = 8
) -> list[httpx.Response]:
    """``send`` from ``times`` threads released together, each with its own client."""
    barrier = threading.Barrier(times)

    def one(_: int) -> httpx.Response:
        own = TestClient(client.app, base_url=str(client.base_url))
        barrier.wait(timeout=30)
        return send(own)

    with ThreadPoolExecutor(max_workers=times) as pool:
        return list(pool.map(one, range(times)))


def assert_problem(answer: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The answer is a problem+json of ``status`` (and ``code``), shaped as RFC 9457 says."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json"), answer.headers
    body: dict[str, Any] = answer.json()
    assert {"type", "title", "status", "detail", "code"} <= body.keys(), body
    assert body["status"] == status
    if code is not None:
        assert body["code"] == code, body
    return body


__all__ = [
    "PASSWORD",
    "Caller",
    "World",
    "all_at_once",
    "assert_problem",
    "login",
    "make_settings",
    "sa",
]
