"""Versions of the data model on the wire (docs/protocol.md, "Versions on the wire"):
an old app's change upcast and applied, kept as sent; a change newer than the server
rejected, kept, and applied once the server is upgraded (``fieldsync changes retry``,
and ``fieldsync db upgrade``); an app below the minimum refused whole with
``426 app_too_old``, and the fleet's health saying so. On SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from schemas import Observation, RecordVersion, SyncChange
from schemas.versions import CURRENT, STEPS
from sync.catalog import CATALOG
from sync.engine import versions
from sync.engine.retry import retry_too_new
from sync.platform.settings import Settings
from tests.asgi import TestClient
from tests.conftest import Caller, World, app_for, assert_problem, make_settings
from tests.sync_support import change, pull_all, push
from tests.test_cli import COMMAND_TIMEOUT_SECONDS, base_environment, fieldsync_command

CATEGORY = {"key": "wildlife.sighting", "name_es": "Avistamiento", "name_en": "Sighting"}
OBSERVED_AT = "2026-11-02T09:31:07-05:00"


class Ranger:
    """A ranger's tablet, numbering its own changes, of whichever version it writes."""

    def __init__(self, device: Caller, sector_id: str) -> None:
        self.device = device
        self.sector_id = sector_id
        self.seq = 0

    def change(
        self,
        op: str,
        fields: dict[str, Any],
        *,
        schema_version: int,
        record_id: str | None = None,
        base_version: int | None = None,
        entity: str = "observation",
    ) -> dict[str, Any]:
        self.seq += 1
        return change(
            entity,
            record_id or str(uuid.uuid4()),
            op,
            self.seq,
            fields,
            base_version=base_version,
            schema_version=schema_version,
        )

    def observation(self, **fields: Any) -> dict[str, Any]:
        return {
            "sector_id": self.sector_id,
            "category_key": CATEGORY["key"],
            "observed_at": OBSERVED_AT,
            "lat": -5.8,
            "lon": -77.3,
            **fields,
        }

    def push(self, *changes: dict[str, Any]) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = push(self.device, *changes)["results"]
        return results

    def pulled(self, record_id: str, **params: Any) -> dict[str, Any]:
        """The record's ``fields`` as a pull answers them."""
        answer = self.device.get("/sync/pull", params=params)
        assert answer.status_code == 200, answer.text
        found = [c for c in answer.json()["changes"] if c["id"] == record_id]
        assert len(found) == 1, found
        fields: dict[str, Any] = found[0]["fields"]
        return fields


@pytest.fixture
def ranger(world: World) -> Ranger:
    sector = world.sector("AM-01")
    made = world.admin.post("/observation-categories", json=CATEGORY)
    assert made.status_code == 201, made.text
    person = world.user("ranger", sector_ids=[sector["id"]])
    return Ranger(world.device(person), sector["id"])


@pytest.fixture
def server_at_version_1(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process's server as it was before schema version 2: it reads version 1
    only. Undone at the end of the test, or by ``upgrade_server``."""
    _set_server_version(monkeypatch, 1)
    yield
    monkeypatch.undo()
    _clear_caches()


def upgrade_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()
    _clear_caches()


def _set_server_version(monkeypatch: pytest.MonkeyPatch, version: int) -> None:
    monkeypatch.setattr(versions, "CURRENT", version)
    monkeypatch.setattr(versions, "STEPS", STEPS[: version - versions.OLDEST])
    _clear_caches()


def _clear_caches() -> None:
    versions._changed_since.cache_clear()
    versions.lowest_servable.cache_clear()


def stored(engine: Engine, change_id: str) -> SyncChange:
    with Session(engine) as session:
        return session.exec(
            select(SyncChange).where(SyncChange.change_id == uuid.UUID(change_id))
        ).one()


def count(engine: Engine, table: Any) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(table)).one())


# ---------------------------------------------------------------- an old app's changes


def test_an_observation_of_version_1_is_upcast_applied_and_pulled_in_version_2(
    ranger: Ranger, engine: Engine
) -> None:
    made = ranger.change("create", ranger.observation(accuracy_m=4.5), schema_version=1)

    [result] = ranger.push(made)

    assert result["status"] == "applied", result
    record_id = made["id"]
    pulled = ranger.pulled(record_id)
    assert pulled["gps"] == {"accuracy_m": 4.5, "fix": None}
    assert "accuracy_m" not in pulled
    # What the tablet sent is kept as sent; what was decided is in version 2.
    kept = stored(engine, made["change_id"])
    assert kept.change is not None
    assert (kept.change["schema_version"], kept.change["fields"]["accuracy_m"]) == (1, 4.5)
    with Session(engine) as session:
        row = session.get(Observation, uuid.UUID(record_id))
        first = session.exec(
            select(RecordVersion).where(col(RecordVersion.record_id) == uuid.UUID(record_id))
        ).one()
    assert row is not None
    assert row.gps == {"accuracy_m": 4.5, "fix": None}
    assert first.fields["gps"] == {"accuracy_m": 4.5, "fix": None}


def test_version_1_updates_carry_only_what_they_change(ranger: Ranger) -> None:
    made = ranger.change(
        "create", ranger.observation(gps={"accuracy_m": 3, "fix": "gps"}), schema_version=CURRENT
    )
    record_id = made["id"]
    ranger.push(made)

    [notes] = ranger.push(
        ranger.change(
            "update", {"notes": "huellas"}, record_id=record_id, base_version=1, schema_version=1
        )
    )
    after_notes = ranger.pulled(record_id)
    [accuracy] = ranger.push(
        ranger.change(
            "update", {"accuracy_m": 8.0}, record_id=record_id, base_version=2, schema_version=1
        )
    )
    after_accuracy = ranger.pulled(record_id)
    [emptied] = ranger.push(
        ranger.change(
            "update", {"accuracy_m": None}, record_id=record_id, base_version=3, schema_version=1
        )
    )

    assert [r["status"] for r in (notes, accuracy, emptied)] == ["applied"] * 3
    # An update of other fields leaves gps, fix and all, as it was.
    assert after_notes["gps"] == {"accuracy_m": 3, "fix": "gps"}
    assert after_notes["notes"] == "huellas"
    # Version 1 knows no fix: its accuracy comes with the fix unknown.
    assert after_accuracy["gps"] == {"accuracy_m": 8.0, "fix": None}
    assert ranger.pulled(record_id)["gps"] is None


def test_a_replay_of_an_upcast_change_is_compared_with_what_was_sent(
    ranger: Ranger, engine: Engine
) -> None:
    made = ranger.change("create", ranger.observation(accuracy_m=4.5), schema_version=1)
    [first] = ranger.push(made)
    # The same change_id sent in version 2's shape is other content.
    as_version_2 = {
        **made,
        "schema_version": CURRENT,
        "fields": ranger.observation(gps={"accuracy_m": 4.5, "fix": None}),
    }

    [again] = ranger.push(made)
    [reused] = ranger.push(as_version_2)

    assert again == {**first, "replayed": True}
    assert reused["status"] == "rejected"
    assert reused["errors"][0]["code"] == "change_id_reused"
    assert count(engine, Observation) == 1


def test_a_version_1_change_naming_version_2_fields_is_rejected(ranger: Ranger) -> None:
    made = ranger.change(
        "create", ranger.observation(gps={"accuracy_m": 4.5, "fix": "gps"}), schema_version=1
    )

    [result] = ranger.push(made)

    assert result["status"] == "rejected"
    assert result["errors"][0]["field"] == "fields.gps"
    assert result["errors"][0]["code"] == "unknown_field"


def test_a_version_1_change_that_waited_for_its_patrol_is_upcast_when_it_wakes(
    ranger: Ranger,
) -> None:
    patrol_id = str(uuid.uuid4())
    waiting = ranger.change(
        "create",
        {**ranger.observation(accuracy_m=6.0), "patrol_id": patrol_id},
        schema_version=1,
    )
    [deferred] = ranger.push(waiting)
    patrol = ranger.change(
        "create",
        {"sector_id": ranger.sector_id, "status": "draft"},
        record_id=patrol_id,
        schema_version=CURRENT,
        entity="patrol",
    )

    [arrived] = ranger.push(patrol)

    assert (deferred["status"], arrived["status"]) == ("deferred", "applied")
    assert ranger.pulled(waiting["id"])["gps"] == {"accuracy_m": 6.0, "fix": None}


def test_a_pull_in_version_1_answers_observations_with_accuracy_alone(ranger: Ranger) -> None:
    made = ranger.change(
        "create", ranger.observation(gps={"accuracy_m": 4.5, "fix": "gps"}), schema_version=CURRENT
    )
    ranger.push(made)

    old = ranger.pulled(made["id"], schema_version=1)
    new = ranger.pulled(made["id"], schema_version=CURRENT)

    assert (old["accuracy_m"], "gps" in old) == (4.5, False)
    assert new["gps"] == {"accuracy_m": 4.5, "fix": "gps"}


# ---------------------------------------------------------------- a newer app's changes


def test_a_change_newer_than_the_server_is_rejected_kept_and_applied_after_the_upgrade(
    ranger: Ranger,
    world: World,
    engine: Engine,
    server_at_version_1: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A tablet updated to schema version 2 pushes to a server still on version 1."""
    made = ranger.change(
        "create", ranger.observation(gps={"accuracy_m": 2.5, "fix": "gps"}), schema_version=2
    )
    edit = ranger.change(
        "update",
        {"notes": "visto de nuevo"},
        record_id=made["id"],
        base_version=1,
        schema_version=2,
    )
    from_the_future = ranger.change("create", ranger.observation(), schema_version=CURRENT + 1)

    before = ranger.push(made, edit, from_the_future)
    kept = world.admin.get("/sync/rejected").json()["items"]
    nothing, _ = pull_all(ranger.device)
    upgrade_server(monkeypatch)
    retried = retry_too_new(engine, catalog=CATALOG)
    again = ranger.push(made, edit, from_the_future)
    still = world.admin.get("/sync/rejected").json()["items"]

    assert [r["status"] for r in before] == ["rejected"] * 3
    assert {e["code"] for r in before for e in r["errors"]} == {"schema_too_new"}
    assert {k["change_id"] for k in kept} == {
        made["change_id"],
        edit["change_id"],
        from_the_future["change_id"],
    }
    assert [c for c in nothing if c["entity"] == "observation"] == []
    # Oldest first: the create, then the edit of what it made.
    assert (dict(retried.statuses), retried.still_too_new, retried.failed) == ({"applied": 2}, 1, 0)
    assert [(r["status"], r.get("version"), r.get("replayed")) for r in again] == [
        ("applied", 1, True),
        ("applied", 2, True),
        ("rejected", None, True),
    ]
    assert [k["change_id"] for k in still] == [from_the_future["change_id"]]
    pulled = ranger.pulled(made["id"])
    assert (pulled["gps"], pulled["notes"]) == ({"accuracy_m": 2.5, "fix": "gps"}, "visto de nuevo")
    assert stored(engine, made["change_id"]).applied_at is not None
    assert retry_too_new(engine, catalog=CATALOG).decided == 0  # nothing left to do


def _fieldsync(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {**base_environment(), "FIELDSYNC_DATABASE_URL": settings.database_url}
    return subprocess.run(
        [fieldsync_command(), *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
    )


def test_fieldsync_changes_retry_and_db_upgrade_apply_what_was_too_new(
    ranger: Ranger,
    settings: Settings,
    server_at_version_1: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = ranger.change("create", ranger.observation(gps=None), schema_version=2)
    second = ranger.change("create", ranger.observation(notes="otra"), schema_version=2)
    [refused] = ranger.push(first)
    upgrade_server(monkeypatch)  # this process; the commands run the upgraded code anyway

    retried = _fieldsync(settings, "changes", "retry")
    _set_server_version(monkeypatch, 1)
    [refused_too] = ranger.push(second)
    upgraded = _fieldsync(settings, "db", "upgrade")
    upgrade_server(monkeypatch)

    assert (refused["status"], refused_too["status"]) == ("rejected", "rejected")
    assert retried.returncode == 0, retried.stderr
    assert "1 decided again (1 applied)" in retried.stdout
    assert upgraded.returncode == 0, upgraded.stderr
    assert "1 decided again (1 applied)" in upgraded.stdout
    assert ranger.push(first)[0]["status"] == "applied"
    assert ranger.push(second)[0]["status"] == "applied"
    assert ranger.pulled(second["id"])["notes"] == "otra"


# ---------------------------------------------------------------- an app too old


@pytest.fixture
def strict(engine: Engine, database_url: str) -> Iterator[TestClient]:
    """The same service, taking schema version 2 and later only."""
    settings = make_settings(database_url, min_schema_version=2)
    with TestClient(app_for(settings, engine), base_url="http://testserver/api/v1") as client:
        yield client


def _on(client: TestClient, device: Caller) -> Caller:
    return Caller(
        client, device.user_id, device.username, device.password, device.role, device.tokens
    )


def test_an_app_below_the_minimum_is_refused_whole_with_426_and_its_health_says_so(
    ranger: Ranger, world: World, engine: Engine, strict: TestClient
) -> None:
    tablet = Ranger(_on(strict, ranger.device), ranger.sector_id)
    new = tablet.change("create", tablet.observation(gps=None), schema_version=2)
    old = tablet.change("create", tablet.observation(accuracy_m=3.0), schema_version=1)
    body = {
        "protocol": 1,
        "device_id": ranger.device.tokens["device_id"],
        "changes": [new, old],
        "client": {"app_version": "2.3.9", "schema_version": 1},
    }

    refused = tablet.device.post("/sync/push", json=body)
    health = world.admin.get("/devices/health").json()["items"]
    reported_only = tablet.device.post(
        "/sync/push", json={**body, "changes": [new], "client": {"schema_version": 1}}
    )
    taken = tablet.device.post(
        "/sync/push",
        json={**body, "changes": [new], "client": {"app_version": "2.5.0", "schema_version": 2}},
    )
    healed = world.admin.get("/devices/health").json()["items"]

    problem = assert_problem(refused, 426, "app_too_old")
    assert "update the app" in problem["detail"]
    assert_problem(reported_only, 426, "app_too_old")
    assert taken.status_code == 200, taken.text
    assert [r["status"] for r in taken.json()["results"]] == ["applied"]
    # Nothing of the refused batches was applied or kept: only the last batch's change.
    assert count(engine, SyncChange) == 1
    assert count(engine, Observation) == 1
    [device] = [d for d in health if d["device_id"] == ranger.device.tokens["device_id"]]
    assert device["app_too_old_at"] is not None
    assert (device["app_version"], device["schema_version"]) == ("2.3.9", 1)
    assert device["last_push_at"] is None
    [device] = [d for d in healed if d["device_id"] == ranger.device.tokens["device_id"]]
    assert device["app_too_old_at"] is None
    assert (device["app_version"], device["schema_version"]) == ("2.5.0", 2)


def test_the_fleet_csv_has_when_each_app_was_refused_as_too_old(
    ranger: Ranger, world: World, strict: TestClient
) -> None:
    tablet = Ranger(_on(strict, ranger.device), ranger.sector_id)
    body = {
        "protocol": 1,
        "device_id": ranger.device.tokens["device_id"],
        "changes": [tablet.change("create", tablet.observation(), schema_version=1)],
    }
    assert tablet.device.post("/sync/push", json=body).status_code == 426

    sheet = world.admin.get("/devices/health", params={"format": "csv"})

    header, row = sheet.text.lstrip("\ufeff").splitlines()[:2]
    column = header.split(",").index("app_too_old_at")
    assert row.split(",")[column] != ""


def test_a_pull_asking_for_a_version_no_longer_answered_is_426_and_its_health_says_so(
    ranger: Ranger, world: World, strict: TestClient
) -> None:
    tablet = _on(strict, ranger.device)

    refused = tablet.get("/sync/pull", params={"schema_version": 1})
    answered = tablet.get("/sync/pull", params={"schema_version": 2})
    [health] = world.admin.get("/devices/health").json()["items"]

    problem = assert_problem(refused, 426, "app_too_old")
    assert "update the app" in problem["detail"]
    assert health["app_too_old_at"] is not None
    assert answered.status_code == 200, answered.text
