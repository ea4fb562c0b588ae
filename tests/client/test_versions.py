"""The reference client and the data model's versions: it writes version 2 (an
observation's ``gps``), keeps with each queued edit the version it was made in — so
an edit queued by an older app goes as version 1 and the server upcasts it — and is
told, keeping its outbox, when the server no longer takes its version
(``AppTooOld``). On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from schemas.versions import CURRENT
from sync.client import AppTooOld, DeviceClient
from sync.client.store import SCHEMA_VERSION
from tests.asgi import TestClient
from tests.conftest import Caller, World, app_for, make_settings

CATEGORY = {"key": "wildlife.sighting", "name_es": "Avistamiento", "name_en": "Sighting"}
# The outbox as a client of version 1 made it, before each edit kept its version.
OLD_OUTBOX = """
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY,
    change_id TEXT NOT NULL UNIQUE,
    entity TEXT NOT NULL,
    id TEXT NOT NULL,
    op TEXT NOT NULL,
    base_version INTEGER,
    fields TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
"""


@pytest.fixture
def ranger(world: World) -> tuple[Caller, str]:
    sector = world.sector("AM-01")["id"]
    assert world.admin.post("/observation-categories", json=CATEGORY).status_code == 201
    return world.user("ranger", sector_ids=[sector]), sector


def observation(sector: str, **fields: Any) -> dict[str, Any]:
    return {
        "sector_id": sector,
        "category_key": CATEGORY["key"],
        "observed_at": "2026-11-02T09:31:07-05:00",
        "lat": -5.8,
        "lon": -77.3,
        **fields,
    }


def client_of(http: TestClient, device: Caller, path: Path) -> DeviceClient:
    return DeviceClient(
        http,
        path,
        device_id=device.tokens["device_id"],
        access_token=device.tokens["access_token"],
        refresh_token=device.tokens["refresh_token"],
        backoff=0,
    )


def queue_as_version_1(path: Path, sector: str) -> str:
    """Make the state file at ``path`` one an app of version 1 left: its outbox without
    versions, holding an observation in version 1's shape. The observation's id."""
    record_id = str(uuid.uuid4())
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE outbox")
        db.executescript(OLD_OUTBOX)
        db.execute(
            "INSERT INTO outbox VALUES (1, ?, 'observation', ?, 'create', NULL, ?, ?)",
            (
                str(uuid.uuid4()),
                record_id,
                json.dumps(observation(sector, accuracy_m=7.5)),
                "2026-11-02T14:31:07+00:00",
            ),
        )
        db.execute("UPDATE meta SET value = '2' WHERE key = 'next_seq'")
    return record_id


def test_the_client_writes_and_reads_the_current_version(
    world: World, ranger: tuple[Caller, str], tmp_path: Path
) -> None:
    person, sector = ranger
    record_id = uuid.uuid4()
    with client_of(world.client, world.device(person), tmp_path / "t.db") as tablet:
        made = tablet.create(
            "observation", record_id, observation(sector, gps={"accuracy_m": 3, "fix": "gps"})
        )
        [result] = tablet.sync()
        report = tablet.report()

    assert SCHEMA_VERSION == CURRENT == 2
    assert (made.schema_version, made.as_change().schema_version) == (2, 2)
    assert report.schema_version == 2
    assert result.status == "applied"
    assert tablet_view(tmp_path / "t.db", str(record_id))["gps"] == {"accuracy_m": 3, "fix": "gps"}


def tablet_view(path: Path, record_id: str) -> dict[str, Any]:
    with sqlite3.connect(path) as db:
        [(fields,)] = db.execute("SELECT base_fields FROM record WHERE id = ?", (record_id,))
    view: dict[str, Any] = json.loads(fields)
    return view


def test_an_edit_queued_by_an_older_app_goes_in_its_own_version_and_is_upcast(
    world: World, ranger: tuple[Caller, str], tmp_path: Path, engine: Engine
) -> None:
    person, sector = ranger
    path = tmp_path / "t.db"
    device = world.device(person)
    client_of(world.client, device, path).close()
    old = queue_as_version_1(path, sector)
    new = uuid.uuid4()

    with DeviceClient(world.client, path, backoff=0) as upgraded:
        queued = upgraded.outbox()
        upgraded.create("observation", new, observation(sector, gps=None))
        results = upgraded.sync()
        shown = upgraded.records("observation")

    assert [(p.id, p.schema_version) for p in queued] == [(old, 1)]
    assert [r.status for r in results] == ["applied", "applied"]
    assert shown[old]["gps"] == {"accuracy_m": 7.5, "fix": None}
    assert "accuracy_m" not in shown[old]
    assert shown[str(new)]["gps"] is None


@pytest.fixture
def strict(engine: Engine, database_url: str) -> Iterator[TestClient]:
    """The service taking version 2 and later only."""
    settings = make_settings(database_url, min_schema_version=2)
    with TestClient(app_for(settings, engine), base_url="http://testserver/api/v1") as client:
        yield client


def test_a_client_too_old_for_the_server_is_told_so_and_keeps_its_outbox(
    world: World, ranger: tuple[Caller, str], tmp_path: Path, strict: TestClient
) -> None:
    person, sector = ranger
    path = tmp_path / "t.db"
    client_of(strict, world.device(person), path).close()
    queue_as_version_1(path, sector)

    with DeviceClient(strict, path, backoff=0) as tablet:
        with pytest.raises(AppTooOld) as refused:
            tablet.push()
        kept = tablet.outbox()

    assert (refused.value.status, refused.value.code) == (426, "app_too_old")
    assert len(kept) == 1
