"""Migration 0015, schema version 2: observations' ``accuracy_m`` moved into ``gps`` —
the rows, the pull entries tablets read and the open conflicts the office resolves —
and moved back by its downgrade; the version history left as it was written. On a
database of its own, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from api.app import create_app
from sync.platform import migrate
from tests.asgi import TestClient
from tests.conftest import World, make_settings
from tests.sync_support import change, pull_all, push
from tests.test_migrations import fresh_engine  # noqa: F401  (a fixture)

HISTORY = "SELECT record_id, version, fields FROM record_version ORDER BY record_id, version"
CATEGORY = {"key": "wildlife.sighting", "name_es": "Avistamiento", "name_en": "Sighting"}


def observation(sector_id: str, patrol_id: str, gps: Any) -> dict[str, Any]:
    return {
        "patrol_id": patrol_id,
        "sector_id": sector_id,
        "category_key": CATEGORY["key"],
        "observed_at": "2026-11-02T09:31:07-05:00",
        "lat": -5.8,
        "lon": -77.3,
        "gps": gps,
    }


def read(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(sa.text(sql), params))


def json_of(value: Any) -> Any:
    """A JSON column as read through plain SQL: parsed by PostgreSQL's driver, text on
    SQLite."""
    import json

    return json.loads(value) if isinstance(value, str) else value


def test_observations_move_to_gps_and_back_with_their_pull_entries_and_open_conflicts(
    fresh_engine: Engine,  # noqa: F811
) -> None:
    migrate.upgrade(fresh_engine)
    settings = make_settings(fresh_engine.url.render_as_string(hide_password=False))
    with TestClient(create_app(settings, fresh_engine), base_url="http://t/api/v1") as client:
        world = World(client, fresh_engine, settings)
        sector = world.sector("AM-01")["id"]
        assert world.admin.post("/observation-categories", json=CATEGORY).status_code == 201
        lead = world.user("ranger_lead", sector_ids=[sector])
        tablet = world.device(world.user("ranger", sector_ids=[sector]))
        patrol, placed, unplaced = (str(uuid.uuid4()) for _ in range(3))
        made = push(
            tablet,
            change("patrol", patrol, "create", 1, {"sector_id": sector, "status": "submitted"}),
            change(
                "observation",
                placed,
                "create",
                2,
                observation(sector, patrol, {"accuracy_m": 4.5, "fix": "gps"}),
            ),
            change("observation", unplaced, "create", 3, observation(sector, patrol, None)),
        )
        assert [r["status"] for r in made["results"]] == ["applied"] * 3
        approve = {"decision": "approve", "comment": "ok"}
        assert lead.post(f"/patrols/{patrol}/review", json=approve).status_code == 200
        # An edit of an observation of an approved patrol waits for the lead.
        edit = change(
            "observation", placed, "update", 4, {"gps": {"accuracy_m": 9.0, "fix": "network"}}
        )
        [locked] = push(tablet, {**edit, "base_version": 1})["results"]
        assert locked["status"] == "conflict"
        history = read(fresh_engine, HISTORY)

        migrate.downgrade(fresh_engine, "0014")
        rows = dict(read(fresh_engine, "SELECT id, accuracy_m FROM observation"))
        entries = [json_of(f) for (f,) in read(fresh_engine, "SELECT fields FROM sync_entry")]
        [sides] = [json_of(f) for (f,) in read(fresh_engine, "SELECT fields FROM conflict")]

        migrate.upgrade(fresh_engine)
        pulled, _ = pull_all(tablet)
        [sides_again] = [json_of(f) for (f,) in read(fresh_engine, "SELECT fields FROM conflict")]
        resolved = lead.post(
            f"/conflicts/{locked['conflict_id']}/resolve", json={"resolution": "take_device"}
        )

    assert sorted(rows.values(), key=str) == [4.5, None]
    observed = [e for e in entries if "category_key" in e]
    assert sorted((e["accuracy_m"], "gps" in e) for e in observed if e["accuracy_m"]) == [
        (4.5, False)
    ]
    assert sides == {"accuracy_m": {"server": 4.5, "device": 9.0}}
    # Up again: the fix version 1 never held is unknown; no accuracy is no gps.
    shown = {c["id"]: c["fields"] for c in pulled if c["entity"] == "observation"}
    assert shown[placed]["gps"] == {"accuracy_m": 4.5, "fix": None}
    assert shown[unplaced]["gps"] is None
    assert all("accuracy_m" not in fields for fields in shown.values())
    assert sides_again == {
        "gps": {
            "server": {"accuracy_m": 4.5, "fix": None},
            "device": {"accuracy_m": 9.0, "fix": None},
        }
    }
    assert resolved.status_code == 200, resolved.text
    # The audit trail says what each version was when it was written.
    after = read(fresh_engine, HISTORY)
    assert [row for row in after if row in history] == history
