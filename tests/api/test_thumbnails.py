"""Thumbnails over HTTP, on both databases: ``GET /attachments/{sha256}?variant=thumbnail``
answers a small upright JPEG to whoever may read the file, with an ETag of its own."""

from __future__ import annotations

import hashlib
import io
import os
import random
from typing import Any

import pytest
from PIL import Image

from tests.api.test_attachments import TUS, UPLOADS, metadata, patch
from tests.conftest import Caller, World, assert_problem


@pytest.fixture
def ranger(world: World) -> Caller:
    sector = world.sector()
    return world.device(world.user("ranger", sector_ids=[sector["id"]]))


def upload(device: Caller, data: bytes, content_type: str = "image/jpeg") -> str:
    """Send ``data`` by tus in one chunk; its SHA-256."""
    made = device.post(
        UPLOADS,
        headers={
            **TUS,
            "Upload-Length": str(len(data)),
            "Upload-Metadata": metadata(data, content_type),
        },
    )
    assert made.status_code == 201, made.text
    sent = patch(device, made.headers["Location"], 0, data)
    assert sent.status_code == 204, sent.text
    return hashlib.sha256(data).hexdigest()


def photo() -> bytes:
    """A 1600x1200 JPEG stored on its side (EXIF orientation 6), with GPS; each one
    new, so that each test makes its thumbnail afresh."""
    image = Image.new("RGB", (1600, 1200), "red")
    image.paste((0, 0, 255), (0, 0, 800, 1200))
    image.paste(tuple(random.randrange(256) for _ in range(3)), (700, 500, 900, 700))
    exif = image.getexif()
    exif[0x0112] = 6
    exif.get_ifd(0x8825).update({1: "S", 2: (5.0, 51.0, 30.0)})
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


def thumbnail_of(caller: Caller, name: str, headers: dict[str, str] | None = None) -> Any:
    return caller.get(
        f"/attachments/{name}", params={"variant": "thumbnail"}, headers=headers or {}
    )


def test_an_uploaded_photo_has_a_small_upright_jpeg_thumbnail_cached_by_its_etag(
    ranger: Caller,
) -> None:
    name = upload(ranger, photo())

    answer = thumbnail_of(ranger, name)

    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/jpeg"
    assert answer.headers["etag"] == f'"{name}-thumbnail"'
    assert answer.headers["cache-control"] == "private, max-age=31536000"
    assert int(answer.headers["content-length"]) == len(answer.content)
    image = Image.open(io.BytesIO(answer.content))
    assert image.format == "JPEG"
    assert image.size == (240, 320)  # upright, 320 on its longer side
    assert len(image.getexif()) == 0  # no EXIF, so no GPS

    again = thumbnail_of(ranger, name, {"If-None-Match": answer.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    original = ranger.get(f"/attachments/{name}", headers={"If-None-Match": answer.headers["etag"]})
    assert original.status_code == 200  # the thumbnail's ETag is not the file's
    assert original.headers["etag"] == f'"{name}"'


def test_a_thumbnail_asked_for_again_is_the_same_bytes(ranger: Caller) -> None:
    name = upload(ranger, photo())

    first = thumbnail_of(ranger, name)
    second = thumbnail_of(ranger, name)

    assert first.status_code == second.status_code == 200
    assert first.content == second.content


def test_a_stranger_gets_no_thumbnail(ranger: Caller, world: World) -> None:
    name = upload(ranger, photo())
    sector = world.sector()
    stranger = world.device(world.user("ranger", sector_ids=[sector["id"]]))

    answer = thumbnail_of(stranger, name)

    assert_problem(answer, 404)


def test_a_pdf_has_no_thumbnail(ranger: Caller) -> None:
    name = upload(ranger, b"%PDF-1.7\n" + os.urandom(2000), "application/pdf")

    answer = thumbnail_of(ranger, name)

    assert_problem(answer, 422, "no_thumbnail")


def test_a_damaged_jpeg_is_a_422(ranger: Caller) -> None:
    name = upload(ranger, b"\xff\xd8\xff\xe0" + os.urandom(5000))

    answer = thumbnail_of(ranger, name)

    assert_problem(answer, 422, "thumbnail_failed")


def test_a_variant_other_than_thumbnail_does_not_validate(ranger: Caller) -> None:
    name = upload(ranger, photo())

    answer = ranger.get(f"/attachments/{name}", params={"variant": "poster"})

    problem = assert_problem(answer, 422, "validation_failed")
    assert problem["errors"][0]["field"] == "variant"
