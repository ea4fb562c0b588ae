"""Thumbnails of photos: a JPEG at most 320 px on its longer side, for the tablets'
lists, made the first time one is asked for and kept beside its file in the storage.

A thumbnail is turned upright as the camera's EXIF orientation says, and then keeps
no EXIF at all: a ranger's photo carries where it was taken (GPS), and that stays in
the original, which only those who may read the file get whole. Alpha is laid on
white, since JPEG has none.

The original is copied from the storage in pieces into a temporary file and decoded
from there; a big JPEG is decoded already shrunk (JPEG's draft mode, at 1/2, 1/4 or
1/8 of its size), and no image is decoded past ``MAX_PIXELS``, so that a small file
that claims a huge picture (a decompression bomb) is refused before it is unpacked.

    Unprocessable           422
    ├── NoThumbnail         no_thumbnail      the file is not an image (a PDF, a recording)
    └── ThumbnailFailed     thumbnail_failed  the image cannot be decoded, or is too big
"""

from __future__ import annotations

import tempfile
from typing import IO

from PIL import Image, ImageOps

from sync.attachments.storage import Storage
from sync.platform.errors import Unprocessable

VARIANT = "thumbnail"
LONGER_SIDE = 320  # px
QUALITY = 80
# The most pixels decoded: a 50-megapixel camera photo, ~150 MB as RGB. A JPEG's
# pixels are counted after draft mode has shrunk it, so bigger JPEG photos pass.
MAX_PIXELS = 50_000_000
IMAGE_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}


class NoThumbnail(Unprocessable):
    code, title = "no_thumbnail", "No thumbnail"


class ThumbnailFailed(Unprocessable):
    code, title = "thumbnail_failed", "Thumbnail failed"


def thumbnail(*, storage: Storage, sha256: str, content_type: str) -> int:
    """The size in bytes of the file's thumbnail (read it with
    ``storage.read_variant(sha256, VARIANT)``), made and kept the first time."""
    image_format = IMAGE_FORMATS.get(content_type)
    if image_format is None:
        raise NoThumbnail(f"a file of type {content_type} has no thumbnail: only images do")
    kept = storage.variant_size(sha256, VARIANT)
    if kept is not None:
        return kept
    with tempfile.TemporaryFile() as original, tempfile.TemporaryFile() as made:
        for piece in storage.read(sha256):
            original.write(piece)
        original.seek(0)
        shrink(original, made, image_format=image_format)
        size = made.tell()
        made.seek(0)
        storage.put_variant(sha256, VARIANT, made)
    # Two processes making it at once each write a whole one and the first kept stays:
    # its size is the one to answer with, which need not be ours.
    kept = storage.variant_size(sha256, VARIANT)
    return size if kept is None else kept


def shrink(original: IO[bytes], target: IO[bytes], *, image_format: str) -> None:
    """Write to ``target`` the JPEG thumbnail of the image in ``original``."""
    box = (LONGER_SIDE, LONGER_SIDE)
    try:
        with Image.open(original, formats=[image_format]) as image:
            # Twice the box: shrunk as it is decoded, then finely (thumbnail's reducing_gap).
            image.draft(None, (2 * LONGER_SIDE, 2 * LONGER_SIDE))  # JPEG's; others ignore it
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ThumbnailFailed(
                    f"the image is {width}x{height} pixels, more than {MAX_PIXELS} are decoded"
                )
            # The box is square: shrink first, then turn the small image upright.
            image.thumbnail(box, Image.Resampling.LANCZOS)
            upright = ImageOps.exif_transpose(image)
            # No exif= and no xmp=: Pillow writes neither unless it is given them.
            _on_white(upright).save(target, "JPEG", quality=QUALITY, optimize=True)
    except ThumbnailFailed:
        raise
    # Decoders of damaged or hostile files fail in many ways (OSError, SyntaxError,
    # struct.error, DecompressionBombError, ...): each is a file we cannot shrink.
    except Exception as error:
        raise ThumbnailFailed(f"the image cannot be decoded: {error}") from error


def _on_white(image: Image.Image) -> Image.Image:
    """The image in RGB; what was transparent is white."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGB", rgba.size, "white")
        white.paste(rgba, mask=rgba.getchannel("A"))
        return white
    return image.convert("RGB")
