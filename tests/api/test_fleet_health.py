"""The fleet's health as an office asks it: which tablet is silent, which runs an old
app, which owes files or holds rejected changes, which is behind its scope — with
hand-made devices, on both databases.

What a tablet reports with a push (``client``), the filters and the CSV file are
here; the cursor lag while others push and the pulls' bookkeeping are in
``test_fleet_lag.py``.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import Session, col, update

from schemas import Device
from schemas.types import utcnow
from sync.accounts.contact import version_key
from tests.api.test_record_attachments import photo, ref
from tests.conftest import Caller, World, assert_problem
from tests.sync_support import Tablet, change


def device_id(tablet: Tablet) -> str:
    return str(tablet.device.tokens["device_id"])


def push_with(tablet: Tablet, client: dict[str, Any] | None, *changes: dict[str, Any]) -> Any:
    body: dict[str, Any] = {
        "protocol": 1,
        "device_id": device_id(tablet),
        "changes": list(changes),
    }
    if client is not None:
        body["client"] = client
    return tablet.device.post("/sync/push", json=body)


def report(version: str, **more: Any) -> dict[str, Any]:
    return {
        "app_version": version,
        "schema_version": 1,
        "pending_changes": 3,
        "oldest_pending_at": "2026-11-30T07:15:00-05:00",
        "free_storage_mb": 812,
        **more,
    }


def silence(world: World, tablet: Tablet, days: int) -> None:
    with Session(world.engine) as session:
        session.exec(
            update(Device)
            .where(col(Device.id) == uuid.UUID(device_id(tablet)))
            .values(last_seen_at=utcnow() - timedelta(days=days))
        )
        session.commit()


class Fleet:
    """Four tablets in sector AM-01, each unwell in one way, and one well in AM-02."""

    def __init__(self, world: World) -> None:
        self.sector, self.other = world.sector("AM-01"), world.sector("AM-02")
        here = [self.sector["id"]]
        self.silent = Tablet(world.device(world.user("ranger", sector_ids=here), label="silent"))
        self.old = Tablet(world.device(world.user("ranger", sector_ids=here), label="old"))
        self.owing = Tablet(world.device(world.user("ranger", sector_ids=here), label="owing"))
        self.refused = Tablet(world.device(world.user("ranger", sector_ids=here), label="refused"))
        self.well = Tablet(
            world.device(world.user("ranger", sector_ids=[self.other["id"]]), label="well")
        )
        for tablet in (self.silent, self.owing, self.refused, self.well):
            self.patrol(tablet, client=report("2.4.1"))
        self.patrol(self.old, client=report("2.3.9", pending_changes=41, free_storage_mb=95))
        self.patrol(self.owing, files=[ref(photo()), ref(photo())])
        refused = change("patrol", str(uuid.uuid4()), "create", self.refused.seq + 1, {})
        self.refused.seq += 1
        assert push_with(self.refused, None, refused).json()["results"][0]["status"] == "rejected"
        silence(world, self.silent, days=10)

    def patrol(
        self,
        tablet: Tablet,
        *,
        client: dict[str, Any] | None = None,
        files: list[dict[str, Any]] | None = None,
    ) -> None:
        tablet.seq += 1
        sector = self.other if tablet is self.well else self.sector
        fields = {"sector_id": sector["id"], "attachments": files or []}
        made = change("patrol", str(uuid.uuid4()), "create", tablet.seq, fields)
        answer = push_with(tablet, client, made)
        assert answer.status_code == 200, answer.text
        assert answer.json()["results"][0]["status"] == "applied", answer.text


def labels(answer: Any) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [item["label"] for item in answer.json()["items"]]


def by_label(caller: Caller, **params: Any) -> dict[str, dict[str, Any]]:
    answer = caller.get("/devices/health", params=params)
    assert answer.status_code == 200, answer.text
    return {item["label"]: item for item in answer.json()["items"]}


def test_each_unwell_tablet_shows_what_is_wrong_with_it(world: World) -> None:
    Fleet(world)

    health = by_label(world.user("coordinator"))

    assert set(health) == {"silent", "old", "owing", "refused", "well"}
    assert health["silent"]["last_seen_at"] < (utcnow() - timedelta(days=9)).isoformat()
    old = health["old"]
    assert (old["app_version"], old["schema_version"]) == ("2.3.9", 1)
    assert (old["pending_changes"], old["free_storage_mb"]) == (41, 95)
    assert old["oldest_pending_at"].startswith("2026-11-30T12:15:00")  # kept in UTC
    assert old["reported_at"] is not None
    assert health["owing"]["attachments_owed"] == 2
    assert health["refused"]["rejected_changes"] == 1
    for label, item in health.items():
        if label != "owing":
            assert item["attachments_owed"] == 0, label
        if label != "refused":
            assert item["rejected_changes"] == 0, label


def test_filters_find_the_silent_the_outdated_and_a_sectors_tablets(world: World) -> None:
    Fleet(world)
    office = world.user("coordinator")

    assert labels(office.get("/devices/health", params={"silent_days": 7})) == ["silent"]
    assert labels(office.get("/devices/health", params={"app_version_below": "2.4"})) == ["old"]
    assert labels(office.get("/devices/health", params={"app_version": "2.3.9"})) == ["old"]
    assert labels(office.get("/devices/health", params={"app_version_below": "2.3"})) == []
    outdated = labels(office.get("/devices/health", params={"app_version_below": "2.4.2"}))
    assert sorted(outdated) == ["old", "owing", "refused", "silent", "well"]
    sector = world.sector("AM-03")
    assert labels(office.get("/devices/health", params={"sector_id": sector["id"]})) == []
    assert labels(office.get("/devices/health", params={"role": "extension_worker"})) == []
    assert len(labels(office.get("/devices/health", params={"role": "ranger"}))) == 5
    assert_problem(office.get("/devices/health", params={"app_version_below": "new"}), 422)
    assert_problem(office.get("/devices/health", params={"role": "boss"}), 422)


def test_a_sector_filter_finds_its_rangers_and_its_communities_extension_workers(
    world: World,
) -> None:
    fleet = Fleet(world)
    village = world.community(fleet.other["id"])
    worker = world.user("extension_worker", community_ids=[village["id"]])
    world.device(worker, label="extension")
    office = world.user("coordinator")

    found = labels(office.get("/devices/health", params={"sector_id": fleet.other["id"]}))

    assert sorted(found) == ["extension", "well"]


def test_a_lead_sees_only_their_sectors_rangers_whatever_the_filter(world: World) -> None:
    fleet = Fleet(world)
    lead = world.user("ranger_lead", sector_ids=[fleet.other["id"]])

    assert labels(lead.get("/devices/health")) == ["well"]
    assert labels(lead.get("/devices/health", params={"sector_id": fleet.sector["id"]})) == []
    assert labels(lead.get("/devices/health", params={"app_version_below": "9"})) == ["well"]


def test_the_csv_file_holds_every_matching_tablet_with_every_figure(world: World) -> None:
    Fleet(world)
    office = world.user("coordinator")

    answer = office.get("/devices/health", params={"format": "csv", "limit": 1})
    every = office.get("/devices/health", params={"format": "csv", "role": "ranger"})

    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert 'filename="devices.csv"' in answer.headers["content-disposition"]
    assert len(list(csv.DictReader(io.StringIO(answer.text.lstrip("\ufeff"))))) == 1
    rows = {r["label"]: r for r in csv.DictReader(io.StringIO(every.text.lstrip("\ufeff")))}
    assert set(rows) == {"silent", "old", "owing", "refused", "well"}
    assert (rows["old"]["app_version"], rows["old"]["pending_changes"]) == ("2.3.9", "41")
    assert rows["old"]["oldest_pending_at"] == "2026-11-30T07:15:00-05:00"  # the zone's time
    assert rows["owing"]["attachments_owed"] == "2"
    assert rows["refused"]["rejected_changes"] == "1"
    assert rows["well"]["role"] == "ranger"


def test_a_push_without_a_report_keeps_the_last_one(world: World) -> None:
    fleet = Fleet(world)

    fleet.patrol(fleet.old)

    assert by_label(world.admin)["old"]["app_version"] == "2.3.9"
    fleet.patrol(fleet.old, client={"app_version": "2.4.1"})
    newer = by_label(world.admin)["old"]
    assert (newer["app_version"], newer["pending_changes"]) == ("2.4.1", None)


@pytest.mark.parametrize(
    "sent",
    [
        {"app_version": ""},
        {"app_version": "2.4 beta"},
        {"app_version": "x" * 65},
        {"pending_changes": -1},
        {"pending_changes": "3"},
        {"free_storage_mb": True},
        {"schema_version": 0},
        {"oldest_pending_at": "2026-11-30T07:15:00"},  # no offset
        {"oldest_pending_at": "yesterday"},
        [],
        "2.4.1",
    ],
)
def test_a_report_that_will_not_do_refuses_the_batch_and_applies_nothing(
    world: World, sent: Any
) -> None:
    sector = world.sector()
    tablet = Tablet(world.device(world.user("ranger", sector_ids=[sector["id"]])))
    made = change("patrol", str(uuid.uuid4()), "create", 1, {"sector_id": sector["id"]})

    answer = push_with(tablet, sent, made)

    problem = assert_problem(answer, 422)
    assert "client" in str(problem), problem
    [health] = world.admin.get("/devices/health").json()["items"]
    assert (health["last_seq"], health["app_version"]) == (None, None)


def test_a_report_with_keys_this_server_does_not_know_is_taken(world: World) -> None:
    sector = world.sector()
    tablet = Tablet(world.device(world.user("ranger", sector_ids=[sector["id"]])))
    made = change("patrol", str(uuid.uuid4()), "create", 1, {"sector_id": sector["id"]})

    answer = push_with(tablet, {"app_version": "3.0.0", "battery_percent": 71}, made)

    assert answer.status_code == 200, answer.text
    [health] = world.admin.get("/devices/health").json()["items"]
    assert health["app_version"] == "3.0.0"


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("2.3.9", "2.4"),
        ("2.4", "2.4.1"),
        ("2.9.0", "2.10.0"),
        ("2.4.0-beta.1", "2.4.0"),
        ("2.4.0-alpha", "2.4.0-beta"),
        ("v1.9", "2.0"),
        ("2.4.0", "2.4.0.1"),
        ("1.0.0+build.7", "1.0.1"),
    ],
)
def test_version_keys_sort_as_versions_do(older: str, newer: str) -> None:
    low, high = version_key(older), version_key(newer)
    assert low is not None
    assert high is not None
    assert low < high
    assert version_key("2.4.0") == version_key("2.4") == version_key("v2.4.0.0")
    assert version_key("dev") is None


def test_the_last_push_is_the_last_that_brought_something_new(world: World) -> None:
    sector = world.sector()
    tablet = Tablet(world.device(world.user("ranger", sector_ids=[sector["id"]])))
    sent = change("patrol", str(uuid.uuid4()), "create", 1, {"sector_id": sector["id"]})
    assert push_with(tablet, None, sent).status_code == 200
    earlier = utcnow() - timedelta(days=3)
    with Session(world.engine) as session:
        session.exec(
            update(Device)
            .where(col(Device.id) == uuid.UUID(device_id(tablet)))
            .values(last_push_at=earlier)
        )
        session.commit()

    replayed = push_with(tablet, None, sent)

    assert replayed.json()["results"][0]["replayed"] is True
    [health] = world.admin.get("/devices/health").json()["items"]
    assert health["last_push_at"].startswith(earlier.isoformat()[:19])
    tablet.seq = 1
    tablet.send("patrol", str(uuid.uuid4()), "create", {"sector_id": sector["id"]})
    [health] = world.admin.get("/devices/health").json()["items"]
    assert health["last_push_at"] > earlier.isoformat()


@pytest.mark.parametrize("role", ["ranger", "extension_worker"])
@pytest.mark.parametrize("format_", ["json", "csv"])
def test_field_roles_may_not_read_the_fleet(world: World, role: str, format_: str) -> None:
    sector = world.sector()
    village = world.community(sector["id"])
    field = world.user(role, sector_ids=[sector["id"]], community_ids=[village["id"]])
    tablet = world.device(field)

    for caller in (field, tablet):
        assert_problem(caller.get("/devices/health", params={"format": format_}), 403)
