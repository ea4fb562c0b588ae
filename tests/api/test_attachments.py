"""Attachments over HTTP: the tus 1.0.0 upload (Core, Creation, Termination, Checksum)
and the download by hash, on both databases."""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

import pytest

from tests.conftest import Caller, World, assert_problem

UPLOADS = "/attachments/uploads"
TUS = {"Tus-Resumable": "1.0.0"}
PHOTO = b"\xff\xd8\xff\xe0" + os.urandom(300 * 1024)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def metadata(data: bytes, content_type: str = "image/jpeg") -> str:
    return f"sha256 {b64(hashlib.sha256(data).hexdigest())},content_type {b64(content_type)}"


def start(device: Caller, data: bytes = PHOTO, **headers: str) -> Any:
    return device.post(
        UPLOADS,
        headers={
            **TUS,
            "Upload-Length": str(len(data)),
            "Upload-Metadata": metadata(data),
            **headers,
        },
    )


def patch(device: Caller, location: str, offset: int, part: bytes, **headers: str) -> Any:
    return device.request(
        "PATCH",
        location.removeprefix("/api/v1"),
        content=part,
        headers={
            **TUS,
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
            **headers,
        },
    )


@pytest.fixture
def ranger(world: World) -> Caller:
    sector = world.sector()
    return world.device(world.user("ranger", sector_ids=[sector["id"]]))


def test_options_tells_the_tus_capabilities(ranger: Caller) -> None:
    answer = ranger.request("OPTIONS", UPLOADS)

    assert answer.status_code == 204
    assert answer.headers["Tus-Version"] == "1.0.0"
    assert set(answer.headers["Tus-Extension"].split(",")) == {
        "creation",
        "termination",
        "checksum",
    }
    assert int(answer.headers["Tus-Max-Size"]) == 25 * 1024 * 1024
    assert "sha1" in answer.headers["Tus-Checksum-Algorithm"]


def test_a_photo_uploaded_in_chunks_and_resumed_is_downloaded_whole_and_by_range(
    ranger: Caller,
) -> None:
    made = start(ranger)
    assert made.status_code == 201, made.text
    location = made.headers["Location"]
    assert made.headers["Upload-Offset"] == "0"

    assert patch(ranger, location, 0, PHOTO[:100_000]).status_code == 204
    # The link dropped: where to go on from?
    asked = ranger.request("HEAD", location.removeprefix("/api/v1"), headers=TUS)
    assert asked.status_code == 200
    assert asked.headers["Upload-Offset"] == "100000"
    assert asked.headers["Cache-Control"] == "no-store"
    last = patch(ranger, location, 100_000, PHOTO[100_000:])
    assert last.status_code == 204, last.text
    assert last.headers["Upload-Offset"] == str(len(PHOTO))

    name = hashlib.sha256(PHOTO).hexdigest()
    whole = ranger.get(f"/attachments/{name}")
    assert whole.status_code == 200
    assert whole.content == PHOTO
    assert whole.headers["content-type"] == "image/jpeg"
    assert whole.headers["etag"] == f'"{name}"'
    part = ranger.get(f"/attachments/{name}", headers={"Range": "bytes=10-19"})
    assert part.status_code == 206
    assert part.content == PHOTO[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(PHOTO)}"
    cached = ranger.get(f"/attachments/{name}", headers={"If-None-Match": f'"{name}"'})
    assert cached.status_code == 304
    assert ranger.request("HEAD", f"/attachments/{name}").status_code == 200


def test_a_file_the_server_holds_is_never_sent_again(ranger: Caller, world: World) -> None:
    made = start(ranger)
    patch(ranger, made.headers["Location"], 0, PHOTO)

    again = start(ranger)

    assert again.status_code == 200
    assert again.headers["Upload-Offset"] == str(len(PHOTO))
    assert "Location" not in again.headers


def test_a_chunk_at_the_wrong_offset_is_a_409(ranger: Caller) -> None:
    location = start(ranger).headers["Location"]
    patch(ranger, location, 0, PHOTO[:1000])

    assert_problem(patch(ranger, location, 0, PHOTO[:1000]), 409, "upload_offset_mismatch")


def test_a_file_that_does_not_hash_to_its_name_is_a_460_and_is_gone(ranger: Caller) -> None:
    other = b"\xff\xd8\xff" + os.urandom(1000)
    made = ranger.post(
        UPLOADS,
        headers={**TUS, "Upload-Length": str(len(PHOTO)), "Upload-Metadata": metadata(other)},
    )
    location = made.headers["Location"]

    assert_problem(patch(ranger, location, 0, PHOTO), 460, "checksum_mismatch")
    gone = ranger.request("HEAD", location.removeprefix("/api/v1"), headers=TUS)
    assert gone.status_code == 404


def test_a_chunk_that_does_not_match_its_upload_checksum_is_a_460_and_not_kept(
    ranger: Caller,
) -> None:
    location = start(ranger).headers["Location"]
    other = hashlib.sha1(b"something else", usedforsecurity=False)
    wrong = base64.b64encode(other.digest()).decode()

    answer = patch(ranger, location, 0, PHOTO[:1000], **{"Upload-Checksum": f"sha1 {wrong}"})

    assert_problem(answer, 460, "checksum_mismatch")
    asked = ranger.request("HEAD", location.removeprefix("/api/v1"), headers=TUS)
    assert asked.headers["Upload-Offset"] == "0"
    right = base64.b64encode(hashlib.sha1(PHOTO[:1000], usedforsecurity=False).digest()).decode()
    kept = patch(ranger, location, 0, PHOTO[:1000], **{"Upload-Checksum": f"sha1 {right}"})
    assert kept.status_code == 204


def test_a_png_that_is_a_jpeg_is_a_415(ranger: Caller) -> None:
    made = ranger.post(
        UPLOADS,
        headers={
            **TUS,
            "Upload-Length": str(len(PHOTO)),
            "Upload-Metadata": metadata(PHOTO, "image/png"),
        },
    )

    assert_problem(
        patch(ranger, made.headers["Location"], 0, PHOTO), 415, "unsupported_attachment_type"
    )


def test_a_file_over_the_limit_is_a_413_when_the_upload_is_made(ranger: Caller) -> None:
    answer = ranger.post(
        UPLOADS,
        headers={
            **TUS,
            "Upload-Length": str(25 * 1024 * 1024 + 1),
            "Upload-Metadata": metadata(PHOTO),
        },
    )
    assert_problem(answer, 413, "attachment_too_large")


def test_another_devices_upload_and_file_are_not_found(ranger: Caller, world: World) -> None:
    location = start(ranger).headers["Location"]
    sector = world.sector()
    other = world.device(world.user("ranger", sector_ids=[sector["id"]]))

    assert_problem(patch(other, location, 0, PHOTO), 404)
    patch(ranger, location, 0, PHOTO)
    assert_problem(other.get(f"/attachments/{hashlib.sha256(PHOTO).hexdigest()}"), 404)


def test_a_request_without_tus_resumable_is_a_412(ranger: Caller) -> None:
    answer = ranger.post(
        UPLOADS, headers={"Upload-Length": str(len(PHOTO)), "Upload-Metadata": metadata(PHOTO)}
    )
    assert_problem(answer, 412, "tus_version_unsupported")


def test_an_upload_given_up_is_gone(ranger: Caller) -> None:
    location = start(ranger).headers["Location"].removeprefix("/api/v1")
    assert ranger.request("DELETE", location, headers=TUS).status_code == 204
    assert ranger.request("HEAD", location, headers=TUS).status_code == 404


def test_bytes_that_are_not_an_upload_are_a_415(ranger: Caller) -> None:
    location = start(ranger).headers["Location"]
    answer = patch(ranger, location, 0, b"{}", **{"Content-Type": "application/json"})
    assert_problem(answer, 415)
