"""The office sees a patrol's evidence: its photos and its observations' in the
detail (held or still owed, with links and thumbnails), a count of owed files in the
review queue, and the files' URLs in the CSV and GeoJSON exports; on both databases."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import pytest

from tests.api.test_record_attachments import photo, ref, upload
from tests.conftest import Caller, World
from tests.sync_support import change, push


@pytest.fixture
def patrol(world: World) -> dict[str, Any]:
    """A submitted patrol with a photo of its own (uploaded) and an observation whose
    two photos are still on the tablet."""
    sector = world.sector("AM-01")["id"]
    ranger = world.user("ranger", sector_ids=[sector])
    tablet = world.device(ranger)
    made = world.admin.post(
        "/observation-categories",
        json={"key": "threat.logging", "name_es": "Tala", "name_en": "Logging", "attributes": []},
    )
    assert made.status_code == 201, made.text
    truck, stump, sheet = photo(), photo(), photo()
    upload(tablet, truck)
    patrol_id, observation_id = str(uuid.uuid4()), str(uuid.uuid4())
    results = push(
        tablet,
        change(
            "patrol",
            patrol_id,
            "create",
            1,
            {
                "sector_id": sector,
                "started_at": "2026-11-02T07:00:00-05:00",
                "ended_at": "2026-11-02T15:00:00-05:00",
                "status": "submitted",
                "attachments": [ref(truck, "camión con madera")],
            },
        ),
        change(
            "observation",
            observation_id,
            "create",
            2,
            {
                "patrol_id": patrol_id,
                "category_key": "threat.logging",
                "observed_at": "2026-11-02T09:00:00-05:00",
                "lat": -5.8,
                "lon": -77.3,
                "attachments": [
                    ref(stump, "tocón"),
                    {**ref(sheet), "content_type": "application/pdf"},
                ],
            },
        ),
    )["results"]
    assert [r["status"] for r in results] == ["applied", "applied"]
    return {
        "id": patrol_id,
        "observation": observation_id,
        "tablet": tablet,
        "lead": world.user("ranger_lead", sector_ids=[sector]),
        "files": {"truck": truck, "stump": stump, "sheet": sheet},
    }


def sha(data: bytes) -> str:
    return str(ref(data)["sha256"])


def test_the_detail_lists_the_patrol_s_and_its_observations_files_held_or_owed(
    patrol: dict[str, Any],
) -> None:
    lead: Caller = patrol["lead"]
    files = patrol["files"]

    detail = lead.get(f"/patrols/{patrol['id']}").json()

    truck = sha(files["truck"])
    assert detail["attachments"] == [
        {
            "sha256": truck,
            "content_type": "image/jpeg",
            "size": len(files["truck"]),
            "caption": "camión con madera",
            "held": True,
            "url": f"/api/v1/attachments/{truck}",
            "thumbnail_url": f"/api/v1/attachments/{truck}?variant=thumbnail",
        }
    ]
    [observation] = detail["observations"]
    assert [(a["sha256"], a["held"], a["caption"]) for a in observation["attachments"]] == [
        (sha(files["stump"]), False, "tocón"),
        (sha(files["sheet"]), False, None),
    ]
    assert observation["attachments"][1]["thumbnail_url"] is None  # a PDF
    assert (detail["patrol"]["attachment_count"], detail["patrol"]["attachments_missing"]) == (3, 2)
    # The link the detail gives reads the file.
    assert (
        lead.get(detail["attachments"][0]["url"].removeprefix("/api/v1")).content == files["truck"]
    )


def test_the_queue_says_which_patrols_still_owe_files_until_they_arrive(
    patrol: dict[str, Any],
) -> None:
    lead: Caller = patrol["lead"]

    def row() -> dict[str, Any]:
        [item] = lead.get("/patrols", params={"status": "submitted"}).json()["items"]
        found: dict[str, Any] = item
        return found

    assert (row()["attachment_count"], row()["attachments_missing"]) == (3, 2)

    upload(patrol["tablet"], patrol["files"]["stump"])
    assert row()["attachments_missing"] == 1

    # An observation deleted takes its files out of the count.
    push(
        patrol["tablet"],
        change("observation", patrol["observation"], "delete", 3, base_version=1),
    )
    assert (row()["attachment_count"], row()["attachments_missing"]) == (1, 0)


def test_the_exports_carry_the_files_urls(patrol: dict[str, Any]) -> None:
    lead: Caller = patrol["lead"]
    files = patrol["files"]
    base = "http://testserver/api/v1/attachments"

    table = lead.get("/patrols/export.csv")
    [row] = list(csv.DictReader(io.StringIO(table.content.decode("utf-8-sig"))))
    geojson = lead.get("/patrols/export.geojson").json()

    assert row["attachment_urls"] == f"{base}/{sha(files['truck'])}"
    assert row["observation_attachment_urls"] == (
        f"{base}/{sha(files['stump'])} {base}/{sha(files['sheet'])}"
    )
    [seen] = [f for f in geojson["features"] if f["properties"]["kind"] == "observation"]
    assert seen["properties"]["attachment_urls"] == [
        f"{base}/{sha(files['stump'])}",
        f"{base}/{sha(files['sheet'])}",
    ]
