"""Records that name files: the ``attachments`` field on push and pull, what a device
still owes, and who may read a file (whoever may see a live record naming it), on
both databases."""

from __future__ import annotations

import hashlib
import os
import uuid
from typing import Any

import pytest

from tests.api.test_attachments import TUS, metadata
from tests.conftest import Caller, World, assert_problem
from tests.sync_support import Tablet, change, push

JPEG = b"\xff\xd8\xff\xe0"


def photo(size: int = 4096) -> bytes:
    return JPEG + os.urandom(size)


def ref(data: bytes, caption: str | None = None) -> dict[str, Any]:
    made: dict[str, Any] = {
        "sha256": hashlib.sha256(data).hexdigest(),
        "content_type": "image/jpeg",
        "size": len(data),
    }
    if caption is not None:
        made["caption"] = caption
    return made


def upload(device: Caller, data: bytes) -> None:
    made = device.post(
        "/attachments/uploads",
        headers={**TUS, "Upload-Length": str(len(data)), "Upload-Metadata": metadata(data)},
    )
    if made.status_code == 200:
        return
    assert made.status_code == 201, made.text
    sent = device.request(
        "PATCH",
        made.headers["Location"].removeprefix("/api/v1"),
        content=data,
        headers={
            **TUS,
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert sent.status_code == 204, sent.text


def owed(device: Caller) -> list[str]:
    answer = device.get("/sync/missing-attachments")
    assert answer.status_code == 200, answer.text
    return [item["sha256"] for item in answer.json()["items"]]


def patrol_fields(sector_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "sector_id": sector_id,
        "started_at": "2026-11-02T07:00:00-05:00",
        "status": "draft",
        **fields,
    }


class Place:
    def __init__(self, world: World) -> None:
        self.sector = world.sector()["id"]
        self.other_sector = world.sector()["id"]
        self.ranger = world.user("ranger", sector_ids=[self.sector])
        self.tablet = world.device(self.ranger)
        self.lead = world.user("ranger_lead", sector_ids=[self.sector])
        self.other_lead = world.user("ranger_lead", sector_ids=[self.other_sector])
        self.coordinator = world.user("coordinator")


@pytest.fixture
def place(world: World) -> Place:
    return Place(world)


def test_a_change_naming_a_file_not_held_is_applied_and_lists_it_until_it_is_uploaded(
    place: Place,
) -> None:
    first, second = photo(), photo()
    upload(place.tablet, second)
    patrol_id = str(uuid.uuid4())
    sent = change(
        "patrol",
        patrol_id,
        "create",
        1,
        patrol_fields(place.sector, attachments=[ref(first, "tocón de cedro"), ref(second)]),
    )

    [result] = push(place.tablet, sent)["results"]

    assert result["status"] == "applied"
    assert result["missing_attachments"] == [ref(first)["sha256"]]
    assert owed(place.tablet) == [ref(first)["sha256"]]
    # Sent again, the change gets the answer it got then.
    [again] = push(place.tablet, sent)["results"]
    assert again["replayed"] is True
    assert again["missing_attachments"] == [ref(first)["sha256"]]

    upload(place.tablet, first)

    assert owed(place.tablet) == []
    tablet = Tablet(place.tablet)
    tablet.seq = 1
    later = tablet.send("patrol", patrol_id, "update", {"comment": "con fotos"}, base_version=1)
    assert later["status"] == "applied"
    assert later["missing_attachments"] is None


def test_the_attachments_field_comes_back_whole_in_pull(place: Place) -> None:
    data = photo()
    patrol_id = str(uuid.uuid4())
    push(
        place.tablet,
        change(
            "patrol",
            patrol_id,
            "create",
            1,
            patrol_fields(place.sector, attachments=[ref(data, "camión")]),
        ),
    )

    pulled = place.tablet.get("/sync/pull").json()["changes"]

    [patrol] = [c for c in pulled if c["entity"] == "patrol"]
    assert patrol["fields"]["attachments"] == [ref(data, "camión")]


@pytest.mark.parametrize(
    ("attachments", "code"),
    [
        ([{"sha256": "ABC", "content_type": "image/jpeg", "size": 1}], "string_pattern_mismatch"),
        ([{**ref(b"x"), "content_type": "text/html"}], "literal_error"),
        ([{**ref(b"x"), "size": -1}], "greater_than_equal"),
        ([{**ref(b"x"), "extra": 1}], "extra_forbidden"),
        ([ref(b"x"), ref(b"x")], "value_error"),
        ([ref(bytes([n])) for n in range(51)], "too_long"),
    ],
)
def test_a_malformed_attachment_list_is_rejected_and_nothing_is_owed(
    place: Place, attachments: list[dict[str, Any]], code: str
) -> None:
    sent = change(
        "patrol",
        str(uuid.uuid4()),
        "create",
        1,
        patrol_fields(place.sector, attachments=attachments),
    )

    [result] = push(place.tablet, sent)["results"]

    assert result["status"] == "rejected"
    assert any(error["code"] == code for error in result["errors"]), result
    assert result["missing_attachments"] is None
    assert owed(place.tablet) == []


def test_a_file_is_read_by_who_may_see_a_live_record_naming_it_and_by_its_uploader(
    place: Place, world: World
) -> None:
    data = photo()
    sha = ref(data)["sha256"]
    upload(place.tablet, data)
    patrol_id = str(uuid.uuid4())
    tablet = Tablet(place.tablet)
    stranger = world.user("extension_worker", community_ids=[world.community(place.sector)["id"]])

    # Held, but named by no record yet: only its uploader reads it.
    assert place.ranger.get(f"/attachments/{sha}").status_code == 200
    assert_problem(place.lead.get(f"/attachments/{sha}"), 404, "not_found")

    tablet.send("patrol", patrol_id, "create", patrol_fields(place.sector, attachments=[ref(data)]))

    for reader in (place.lead, place.coordinator, world.admin):
        answer = reader.get(f"/attachments/{sha}")
        assert answer.status_code == 200, (reader.role, answer.text)
        assert answer.content == data
    for outsider in (place.other_lead, stranger):
        assert_problem(outsider.get(f"/attachments/{sha}"), 404, "not_found")
        assert outsider.request("HEAD", f"/attachments/{sha}").status_code == 404

    # The record stops naming it: the lead may no longer read it; the uploader still may.
    tablet.send("patrol", patrol_id, "update", {"attachments": []}, base_version=1)
    assert_problem(place.lead.get(f"/attachments/{sha}"), 404, "not_found")
    assert place.ranger.get(f"/attachments/{sha}").status_code == 200

    tablet.send("patrol", patrol_id, "update", {"attachments": [ref(data)]}, base_version=2)
    assert place.lead.get(f"/attachments/{sha}").status_code == 200
    tablet.send("patrol", patrol_id, "delete", base_version=3)
    assert_problem(place.lead.get(f"/attachments/{sha}"), 404, "not_found")


def test_a_household_photo_is_for_the_people_side_of_its_community_only(
    place: Place, world: World
) -> None:
    community = world.community(place.sector)["id"]
    other = world.community(place.sector)["id"]
    worker = world.user("extension_worker", community_ids=[community])
    tablet = world.device(worker)
    colleague = world.user("extension_worker", community_ids=[community])
    elsewhere = world.user("extension_worker", community_ids=[other])
    data = photo()
    sha = ref(data)["sha256"]

    [result] = push(
        tablet,
        change(
            "household",
            str(uuid.uuid4()),
            "create",
            1,
            {"community_id": community, "code": "H-1", "attachments": [ref(data)]},
        ),
    )["results"]
    assert result["missing_attachments"] == [sha]
    upload(tablet, data)

    assert colleague.get(f"/attachments/{sha}").status_code == 200
    assert place.coordinator.get(f"/attachments/{sha}").status_code == 200
    for outsider in (elsewhere, place.lead, place.ranger):
        assert_problem(outsider.get(f"/attachments/{sha}"), 404, "not_found")


def test_the_files_of_records_made_in_one_large_batch_are_readable_as_its_last_change_left_them(
    place: Place,
) -> None:
    """Enough records that their links are written by ``COPY`` on PostgreSQL; records
    made by the batch have no links to clear, made, changed and deleted alike."""
    files = [photo(64) for _ in range(3)]
    for data in files:
        upload(place.tablet, data)
    kept, dropped, deleted = (ref(data)["sha256"] for data in files)
    ids = [str(uuid.uuid4()) for _ in range(60)]
    changes = [
        change("patrol", patrol_id, "create", seq, patrol_fields(place.sector, attachments=[named]))
        for seq, (patrol_id, named) in enumerate(
            zip(ids, [ref(files[0])] * 58 + [ref(files[1]), ref(files[2])], strict=True), start=1
        )
    ]
    changes += [
        change("patrol", ids[58], "update", 61, {"attachments": [ref(files[0])]}, base_version=1),
        change("patrol", ids[59], "delete", 62, base_version=1),
    ]

    results = push(place.tablet, *changes)["results"]

    assert [r["status"] for r in results] == ["applied"] * 62
    assert place.lead.get(f"/attachments/{kept}").status_code == 200
    for gone in (dropped, deleted):  # named by no live record: the uploader's alone
        assert_problem(place.lead.get(f"/attachments/{gone}"), 404, "not_found")
        assert place.ranger.get(f"/attachments/{gone}").status_code == 200
    # Later changes clear the links the batch wrote.
    again = push(
        place.tablet,
        *[
            change("patrol", patrol_id, "update", 63 + n, {"attachments": []}, base_version=1)
            for n, patrol_id in enumerate(ids[:58])
        ],
        change("patrol", ids[58], "update", 121, {"attachments": []}, base_version=2),
    )["results"]
    assert {r["status"] for r in again} == {"applied"}
    assert_problem(place.lead.get(f"/attachments/{kept}"), 404, "not_found")


def test_two_devices_changing_the_files_of_one_record_conflict_on_the_whole_list(
    place: Place, world: World
) -> None:
    one, two = Tablet(place.tablet), Tablet(world.device(place.ranger, label="Tablet 2"))
    patrol_id = str(uuid.uuid4())
    first, second, third = photo(), photo(), photo()
    one.send("patrol", patrol_id, "create", patrol_fields(place.sector, attachments=[ref(first)]))

    one.send(
        "patrol", patrol_id, "update", {"attachments": [ref(first), ref(second)]}, base_version=1
    )
    clash = two.send(
        "patrol", patrol_id, "update", {"attachments": [ref(first), ref(third)]}, base_version=1
    )

    assert clash["status"] == "conflict"
    assert clash["missing_attachments"] == [ref(first)["sha256"], ref(third)["sha256"]]
    opened = place.coordinator.get(f"/conflicts/{clash['conflict_id']}").json()
    kept = [{**ref(data), "caption": None} for data in (first, second)]
    sent = [{**ref(data), "caption": None} for data in (first, third)]
    assert opened["fields"] == {"attachments": {"server": kept, "device": sent}}


def test_missing_attachments_are_a_device_s_own(place: Place, world: World) -> None:
    data = photo()
    push(
        place.tablet,
        change(
            "patrol",
            str(uuid.uuid4()),
            "create",
            1,
            patrol_fields(place.sector, attachments=[ref(data)]),
        ),
    )
    other = world.device(place.ranger, label="Tablet 2")

    assert owed(place.tablet) == [ref(data)["sha256"]]
    assert owed(other) == []
    assert_problem(place.lead.get("/sync/missing-attachments"), 403, "device_required")
