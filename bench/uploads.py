"""Tablets uploading photos at once, timed: over tus to ``fieldsync serve``, or the same
bytes as plain ``PUT`` bodies to the floor's sink (``bench.sink``).

It runs in the load process (``Load.photos``, ``Load.upload``, ``Load.held``). Each
tablet gets its own photos, distinct (random bytes after a JPEG's first bytes, so the
server's type check passes and no file is ever held already), made and hashed before
the clock starts. Then every tablet, one thread and one connection each, sends its
photos one after another in chunks of the same size: to fieldsync a ``POST`` that makes
the upload and a ``PATCH`` a chunk (tus 1.0.0); to the sink a ``PUT`` a chunk. The clock
runs from when all tablets start to when the last one has its last answer; a tablet's
own rate is its bytes over its own time. Each request is timed, from sending it to its
answer: ``chunk_ms`` over every chunk, ``last_chunk_ms`` over the photos' last ones
(where fieldsync checks and keeps the whole file), ``create_ms`` over the ``POST`` requests.
"""

from __future__ import annotations

import base64
import hashlib
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.fleet import DeviceAccess
from bench.load import HTTP_TIMEOUT, percentiles

JPEG_START = b"\xff\xd8\xff\xe0"  # what the server sniffs: a JPEG (JFIF) file's first bytes
TUS_VERSION = "1.0.0"
OFFSET_STREAM = "application/offset+octet-stream"
MB = 1024 * 1024


class UploadFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class Photo:
    data: bytes
    sha256: str

    @property
    def metadata(self) -> str:
        """tus's ``Upload-Metadata``: the file's hash and its type, each base64."""
        pairs = {"sha256": self.sha256, "content_type": "image/jpeg"}
        return ",".join(
            f"{key} {base64.b64encode(v.encode()).decode()}" for key, v in pairs.items()
        )


def album(tablets: int, *, size: int, count: int, seed: str) -> list[list[Photo]]:
    """``count`` photos of ``size`` bytes for each of ``tablets``, all distinct."""
    rng = random.Random(seed)
    made = []
    for _ in range(tablets):
        photos = []
        for _ in range(count):
            data = JPEG_START + rng.randbytes(size - len(JPEG_START))
            photos.append(Photo(data, hashlib.sha256(data).hexdigest()))
        made.append(photos)
    return made


@dataclass
class Tablet:
    """What one tablet sent: bytes answered, its own time, each request's time."""

    sent: int = 0
    seconds: float = 0.0
    chunks: list[float] = field(default_factory=list)
    creates: list[float] = field(default_factory=list)
    lasts: list[float] = field(default_factory=list)  # a photo's last chunk: the file checked
    failures: list[str] = field(default_factory=list)
    photos: int = 0


def upload(
    photos: list[list[Photo]],
    devices: list[DeviceAccess],
    *,
    api: str,
    chunk: int,
    label: str,
    sink: str | None = None,
) -> dict[str, Any]:
    """Every tablet's photos, at once: over tus to ``api``, or to ``sink`` if given."""
    tablets = [Tablet() for _ in photos]
    clock: dict[str, float] = {}
    barrier = threading.Barrier(len(photos), action=lambda: clock.update(start=time.perf_counter()))

    def tablet(index: int) -> None:
        mine = tablets[index]
        headers = {"Tus-Resumable": TUS_VERSION, **devices[index].headers} if sink is None else {}
        with httpx.Client(timeout=HTTP_TIMEOUT, headers=headers) as client:
            barrier.wait()
            for number, photo in enumerate(photos[index]):
                try:
                    if sink is None:
                        _over_tus(client, api, photo, chunk, mine)
                    else:
                        _to_sink(client, f"{sink}/{index}-{number}", photo, chunk, mine)
                    mine.photos += 1
                except (UploadFailed, httpx.HTTPError) as error:
                    mine.failures.append(f"tablet {index}, photo {number}: {error!r}"[:500])
            mine.seconds = time.perf_counter() - clock["start"]

    threads = [
        threading.Thread(target=tablet, args=(index,), name=f"tablet-{index}")
        for index in range(len(photos))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = max(mine.seconds for mine in tablets)
    return _report(label, photos, tablets, seconds, chunk, sink is None)


def _over_tus(client: httpx.Client, api: str, photo: Photo, chunk: int, mine: Tablet) -> None:
    started = time.perf_counter()
    made = client.post(
        f"{api}/attachments/uploads",
        headers={"Upload-Length": str(len(photo.data)), "Upload-Metadata": photo.metadata},
    )
    mine.creates.append(time.perf_counter() - started)
    if made.status_code != 201:
        raise UploadFailed(f"POST: {made.status_code} {made.text[:300]}")
    location = str(httpx.URL(api).join(made.headers["Location"]))
    for offset in range(0, len(photo.data), chunk):
        part = photo.data[offset : offset + chunk]
        started = time.perf_counter()
        answer = client.patch(
            location,
            content=part,
            headers={"Upload-Offset": str(offset), "Content-Type": OFFSET_STREAM},
        )
        mine.chunks.append(time.perf_counter() - started)
        if offset + len(part) == len(photo.data):
            mine.lasts.append(mine.chunks[-1])
        if answer.status_code != 204 or answer.headers.get("Upload-Offset") != str(
            offset + len(part)
        ):
            raise UploadFailed(f"PATCH at {offset}: {answer.status_code} {answer.text[:300]}")
        mine.sent += len(part)


def _to_sink(client: httpx.Client, url: str, photo: Photo, chunk: int, mine: Tablet) -> None:
    for offset in range(0, len(photo.data), chunk):
        part = photo.data[offset : offset + chunk]
        started = time.perf_counter()
        answer = client.put(f"{url}/{offset}", content=part)
        mine.chunks.append(time.perf_counter() - started)
        if answer.status_code != 204 or answer.headers.get("Sink-Written") != str(len(part)):
            raise UploadFailed(f"PUT at {offset}: {answer.status_code} {answer.text[:300]}")
        mine.sent += len(part)


def _rate(sent: int, seconds: float) -> float | None:
    return round(sent / MB / seconds, 2) if seconds and sent else None


def _report(
    label: str,
    photos: list[list[Photo]],
    tablets: list[Tablet],
    seconds: float,
    chunk: int,
    tus: bool,
) -> dict[str, Any]:
    sent = sum(mine.sent for mine in tablets)
    failures = [failure for mine in tablets for failure in mine.failures]
    report: dict[str, Any] = {
        "label": label,
        "tablets": len(tablets),
        "photos": sum(len(mine) for mine in photos),
        "photos_sent": sum(mine.photos for mine in tablets),
        "photo_bytes": len(photos[0][0].data) if photos and photos[0] else 0,
        "chunk_bytes": chunk,
        "bytes": sent,
        "seconds": round(seconds, 3),
        "mb_per_s": _rate(sent, seconds),
        "per_tablet_mb_per_s": [_rate(mine.sent, mine.seconds) for mine in tablets],
        "requests": sum(len(mine.chunks) + len(mine.creates) for mine in tablets),
        "chunk_ms": percentiles([s for mine in tablets for s in mine.chunks]),
        "failed": len(failures),
        "failures": failures[:5],
    }
    if tus:
        report["create_ms"] = percentiles([s for mine in tablets for s in mine.creates])
        report["last_chunk_ms"] = percentiles([s for mine in tablets for s in mine.lasts])
    return report


def held(photos: list[list[Photo]], devices: list[DeviceAccess], *, api: str) -> dict[str, Any]:
    """Whether the server holds every photo whole: ``HEAD /attachments/{sha256}`` as the
    tablet that sent it, 200 with the photo's length."""
    found = missing = 0
    examples: list[str] = []
    for device, mine in zip(devices, photos, strict=True):
        with httpx.Client(timeout=HTTP_TIMEOUT, headers=device.headers) as client:
            for photo in mine:
                answer = client.head(f"{api}/attachments/{photo.sha256}")
                length = answer.headers.get("Content-Length")
                if answer.status_code == 200 and length == str(len(photo.data)):
                    found += 1
                    continue
                missing += 1
                if len(examples) < 5:
                    examples.append(
                        f"{device.username}: {photo.sha256[:12]}…: {answer.status_code}, "
                        f"Content-Length {length} of {len(photo.data)}"
                    )
    return {"held": found, "missing": missing, "examples": examples}
