"""Migration 0016: on PostgreSQL the documents a push writes are ``json`` compressed
by lz4; a track's points survive the change of type both ways, and read back the same."""

from __future__ import annotations

import json
import uuid

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from api.app import create_app
from sync.platform import migrate
from tests.asgi import TestClient
from tests.conftest import World, make_settings
from tests.sync_support import change, pull_all, push
from tests.test_migrations import fresh_engine  # noqa: F401  (a fixture)

DOCUMENTS = [
    ("track_segment", "points"),
    ("record_version", "fields"),
    ("sync_change", "change"),
    ("sync_entry", "fields"),
]


def storage(engine: Engine) -> dict[tuple[str, str], tuple[str, str]]:
    """Each document column's type and compression (``l``: lz4, ``p``: pglz, empty:
    the server's default, pglz)."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT c.relname, a.attname, format_type(a.atttypid, NULL), a.attcompression "
                "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                "WHERE c.relkind = 'r' AND a.attnum > 0"
            )
        ).all()
    found = {(table, column): (kind, str(method)) for table, column, kind, method in rows}
    return {document: found[document] for document in DOCUMENTS}


def test_documents_are_lz4_json_and_a_track_survives_the_change_both_ways(
    fresh_engine: Engine,  # noqa: F811
) -> None:
    postgresql = fresh_engine.dialect.name == "postgresql"  # SQLite: nothing changes
    migrate.upgrade(fresh_engine)
    settings = make_settings(fresh_engine.url.render_as_string(hide_password=False))
    points = [
        {"t": f"2026-03-02T08:{minute:02d}:00-05:00", "lat": -5.7 - minute / 1000, "lon": -77.4}
        for minute in range(60)
    ]
    with TestClient(create_app(settings, fresh_engine), base_url="http://t/api/v1") as client:
        world = World(client, fresh_engine, settings)
        sector = world.sector("AM-01")["id"]
        tablet = world.device(world.user("ranger", sector_ids=[sector]))
        patrol, segment = str(uuid.uuid4()), str(uuid.uuid4())
        made = push(
            tablet,
            change(
                "patrol",
                patrol,
                "create",
                1,
                {"sector_id": sector, "started_at": "2026-03-02T08:00:00-05:00"},
            ),
            change("track_segment", segment, "create", 2, {"patrol_id": patrol, "points": points}),
        )
        assert [r["status"] for r in made["results"]] == ["applied"] * 2
        up = storage(fresh_engine) if postgresql else {}

        # Down at 0015 the service itself cannot run (later migrations add what it
        # reads): the points are read as stored.
        migrate.downgrade(fresh_engine, "0015")
        down = storage(fresh_engine) if postgresql else {}
        with fresh_engine.connect() as connection:
            stored = connection.execute(sa.text("SELECT points FROM track_segment")).scalar_one()
        held_down = json.loads(stored) if isinstance(stored, str) else stored

        migrate.upgrade(fresh_engine)
        pulled_up, _ = pull_all(tablet)

    if postgresql:
        assert all(kind == "json" for kind, _ in up.values()), up
        assert down[("track_segment", "points")][0] == "jsonb"
        if {method for _, method in up.values()} != {"l"}:
            assert "lz4" not in _methods(fresh_engine), up  # only where the server lacks it
        assert all(method in ("p", "") for _, method in down.values()), down
    [pulled] = [c["fields"]["points"] for c in pulled_up if c["entity"] == "track_segment"]
    kept = [[(p["t"], p["lat"]) for p in points] for points in (held_down, pulled)]
    utc = [(f"2026-03-02T{13 + (m // 60)}:{m % 60:02d}:00Z", -5.7 - m / 1000) for m in range(60)]
    assert kept == [utc, utc]


def _methods(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                sa.text("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")
            ).scalar()
            or []
        )
