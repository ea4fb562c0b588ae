"""A database that stops answering is a 503 with Retry-After, never a 500, and the
batch the tablet sends again is applied once.

On PostgreSQL the server's connection is killed in the middle of a push, as a
restarted database or a dropped link does; on SQLite another process holds the write
lock past the busy timeout.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from api.app import create_app
from sync.platform.database import create_db_engine
from sync.platform.settings import Settings
from tests.asgi import TestClient
from tests.conftest import World, assert_problem
from tests.sync_support import change


@pytest.fixture
def own_engine(engine: Engine, database_url: str) -> Iterator[Engine]:
    """The test's own engine on the emptied database: its listeners and its short busy
    timeout stay with this test."""
    made = create_db_engine(database_url, sqlite_busy_timeout_ms=200)
    yield made
    made.dispose()


@pytest.fixture
def own_world(own_engine: Engine, settings: Settings) -> Iterator[World]:
    app = create_app(settings, own_engine)
    with TestClient(app, base_url="http://testserver/api/v1") as client:
        yield World(client, own_engine, settings)


def _batch(device_id: str, sector_id: str) -> dict[str, Any]:
    changes = [
        change("patrol", str(uuid.uuid4()), "create", seq, {"sector_id": sector_id})
        for seq in range(1, 4)
    ]
    return {
        "protocol": 1,
        "device_id": device_id,
        "batch_id": str(uuid.uuid4()),
        "changes": changes,
    }


def _patrols(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.text("SELECT count(*) FROM patrol")).scalar_one())


def _kill_the_connection_at_the_first_insert(engine: Engine, database_url: str) -> None:
    """At the push's first INSERT, its connection is terminated from outside."""
    dsn = sa.make_url(database_url).set(drivername="postgresql").render_as_string(False)
    killed: list[int] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _kill(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if killed or not statement.lstrip().upper().startswith("INSERT"):
            return
        pid = conn.connection.dbapi_connection.info.backend_pid
        with psycopg.connect(dsn, autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s)", [pid])
        killed.append(pid)


def test_a_database_that_stops_answering_is_a_503_and_the_resent_batch_applies_once(
    own_world: World, own_engine: Engine, database_url: str, backend: str
) -> None:
    sector = own_world.sector()
    device = own_world.device(own_world.user("ranger", sector_ids=[sector["id"]]))
    batch = _batch(device.tokens["device_id"], sector["id"])
    holder: sqlite3.Connection | None = None
    if backend == "postgresql":
        _kill_the_connection_at_the_first_insert(own_engine, database_url)
    else:
        holder = sqlite3.connect(sa.make_url(database_url).database or "", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another process writing, for longer than the timeout

    answer = device.post("/sync/push", json=batch)

    problem = assert_problem(answer, 503, "database_unavailable")
    assert answer.headers["Retry-After"] == "5"
    assert "nothing of this request was kept" in problem["detail"]
    if holder is not None:
        holder.rollback()
        holder.close()
    assert _patrols(own_engine) == 0
    again = device.post("/sync/push", json=batch)
    assert again.status_code == 200, again.text
    assert [r["status"] for r in again.json()["results"]] == ["applied"] * 3
    assert not any(r.get("replayed") for r in again.json()["results"])
    assert _patrols(own_engine) == 3
    assert device.post("/sync/push", json=batch).json()["results"][0]["replayed"] is True
