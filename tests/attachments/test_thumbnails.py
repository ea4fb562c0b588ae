"""Thumbnails of photos, on both places files live: small, upright, without EXIF (a
photo's GPS stays in the original), made once and kept; files that are not images, or
not decodable, or bombs, are refused with their own codes."""

from __future__ import annotations

import functools
import hashlib
import io
import os
import struct
import threading
import zlib
from collections.abc import Callable

import pytest
from PIL import Image

from sync.attachments import thumbnails
from sync.attachments.storage import Storage
from sync.attachments.thumbnails import NoThumbnail, ThumbnailFailed

ORIENTATION = 0x0112
GPS_IFD = 0x8825


def keep(storage: Storage, data: bytes) -> str:
    name = hashlib.sha256(data).hexdigest()
    storage.put(name, io.BytesIO(data))
    return name


def encoded(image: Image.Image, image_format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


@functools.cache
def camera_photo() -> bytes:
    """A 4000x3000 JPEG as a phone held upright writes it: stored on its side (blue
    half left, red half right) with EXIF orientation 6, and where it was taken."""
    image = Image.new("RGB", (4000, 3000), "red")
    image.paste((0, 0, 255), (0, 0, 2000, 3000))
    exif = image.getexif()
    exif[ORIENTATION] = 6  # turn 90° clockwise to show
    gps = exif.get_ifd(GPS_IFD)
    gps.update({1: "S", 2: (5.0, 51.0, 30.0), 3: "W", 4: (77.0, 18.0, 0.0)})
    return encoded(image, "JPEG", exif=exif, quality=90)


def shown(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def near(pixel: object, colour: tuple[int, int, int]) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(a - b) <= 12 for a, b in zip(pixel, colour, strict=True))


def made(storage: Storage, name: str, content_type: str = "image/jpeg") -> bytes:
    size = thumbnails.thumbnail(storage=storage, sha256=name, content_type=content_type)
    data = b"".join(storage.read_variant(name, thumbnails.VARIANT))
    assert len(data) == size
    return data


def test_a_camera_photo_gives_a_small_upright_jpeg_without_exif(storage: Storage) -> None:
    original = camera_photo()
    assert shown(original).getexif().get_ifd(GPS_IFD)  # the original says where
    name = keep(storage, original)

    data = made(storage, name)

    image = shown(data)
    assert image.format == "JPEG"
    assert image.mode == "RGB"
    assert image.size == (240, 320)  # upright: taller than wide, 320 on the longer side
    assert near(image.getpixel((120, 10)), (0, 0, 255))  # the left half is now on top
    assert near(image.getpixel((120, 310)), (255, 0, 0))
    assert len(image.getexif()) == 0
    assert "exif" not in image.info
    assert b"Exif\x00\x00" not in data  # no APP1 EXIF segment at all, so no GPS
    assert b"".join(storage.read(name)) == original  # the original keeps everything


def test_a_png_with_alpha_is_laid_on_white(storage: Storage) -> None:
    image = Image.new("RGBA", (900, 600), (0, 0, 0, 0))  # transparent black
    image.paste((0, 160, 0, 255), (450, 0, 900, 600))  # an opaque green right half
    name = keep(storage, encoded(image, "PNG"))

    thumbnail = shown(made(storage, name, "image/png"))

    assert thumbnail.size == (320, 213)
    assert thumbnail.mode == "RGB"
    assert near(thumbnail.getpixel((40, 100)), (255, 255, 255))
    assert near(thumbnail.getpixel((280, 100)), (0, 160, 0))


def test_a_webp_and_a_small_image_keep_their_shape(storage: Storage) -> None:
    """An image smaller than the box is not enlarged."""
    name = keep(storage, encoded(Image.new("RGB", (200, 120), "orange"), "WEBP"))

    thumbnail = shown(made(storage, name, "image/webp"))

    assert thumbnail.size == (200, 120)
    assert thumbnail.format == "JPEG"


def test_a_jpeg_of_more_pixels_than_are_decoded_is_shrunk_as_it_is_read(
    storage: Storage,
) -> None:
    """63 million pixels, but JPEG's draft mode decodes them at an eighth a side."""
    big = Image.new("L", (9000, 7000), 90)
    name = keep(storage, encoded(big, "JPEG", quality=50))
    del big

    assert shown(made(storage, name)).size == (320, 249)


def png_claiming(width: int, height: int) -> bytes:
    """A few dozen bytes whose header claims a ``width`` x ``height`` picture."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grey
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def cut_short() -> bytes:
    whole = camera_photo()
    return whole[: len(whole) // 2]


@pytest.mark.parametrize(
    ("content_type", "damaged"),
    [
        pytest.param("image/jpeg", lambda: b"\xff\xd8\xff\xe0" + os.urandom(10_000), id="garbage"),
        pytest.param("image/jpeg", cut_short, id="cut-short"),
        pytest.param("image/png", lambda: png_claiming(10_000, 6_000), id="bomb-over-our-cap"),
        pytest.param("image/png", lambda: png_claiming(100_000, 100_000), id="bomb-over-pillows"),
    ],
)
def test_an_image_that_cannot_be_decoded_is_a_422_and_nothing_is_kept(
    storage: Storage, content_type: str, damaged: Callable[[], bytes]
) -> None:
    name = keep(storage, damaged())

    with pytest.raises(ThumbnailFailed) as failed:
        thumbnails.thumbnail(storage=storage, sha256=name, content_type=content_type)

    assert (failed.value.status, failed.value.code) == (422, "thumbnail_failed")
    assert storage.variant_size(name, thumbnails.VARIANT) is None


@pytest.mark.parametrize("content_type", ["application/pdf", "audio/ogg"])
def test_a_file_that_is_not_an_image_has_no_thumbnail(storage: Storage, content_type: str) -> None:
    name = keep(storage, b"%PDF-1.7\n" + b"0" * 1000)

    with pytest.raises(NoThumbnail) as refused:
        thumbnails.thumbnail(storage=storage, sha256=name, content_type=content_type)

    assert (refused.value.status, refused.value.code) == (422, "no_thumbnail")
    assert "only images" in refused.value.detail
    assert storage.variant_size(name, thumbnails.VARIANT) is None


def test_a_thumbnail_is_made_once_and_then_read_from_the_storage(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = keep(storage, encoded(Image.new("RGB", (640, 480), "teal"), "JPEG"))
    first = made(storage, name)
    assert storage.variant_size(name, thumbnails.VARIANT) == len(first)

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("a kept thumbnail was made again")

    monkeypatch.setattr(thumbnails, "shrink", never)
    monkeypatch.setattr(storage, "read", never)  # the original is not even read

    assert made(storage, name) == first


def test_two_processes_making_the_same_thumbnail_at_once_both_answer_the_kept_one(
    storage: Storage,
) -> None:
    name = keep(storage, encoded(Image.new("RGB", (1200, 800), "navy"), "JPEG"))
    barrier = threading.Barrier(3)
    sizes: list[int] = []
    failures: list[BaseException] = []

    def make() -> None:
        try:
            barrier.wait(timeout=10)
            sizes.append(
                thumbnails.thumbnail(storage=storage, sha256=name, content_type="image/jpeg")
            )
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=make) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    kept = b"".join(storage.read_variant(name, thumbnails.VARIANT))
    assert sizes == [len(kept)] * 3
    assert shown(kept).size == (320, 213)
