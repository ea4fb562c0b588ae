"""What the server notes of each device's contact, for the office's view of the fleet:
what a tablet reports of itself with a push, and how far its pulls got.

A pull is a reader: it must not take SQLite's one write lock, nor wait on a push of
the same device for PostgreSQL's row lock, on every page. Its note is written in a
short transaction of its own, only when it is due — at most once a minute per device,
and on the page that catches the device up when that moved its position — and
skipped when the lock it needs is held longer than a tenth of a second (a long batch
being written): the next pull notes it instead. So a tablet pulling fifty pages in
a row writes twice, and one polling every ten seconds with nothing new writes once a
minute.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import col, update

from schemas import Device
from schemas.sync import ClientReport
from sync.platform.database import Busy, brief_write

# How often a pull that did not catch its device up is noted.
PULL_NOTE_EVERY = timedelta(minutes=1)
# How long a note waits for the lock it needs: long enough for other notes and small
# pushes to get out of the way, far too short to hold a pull behind a long batch.
PULL_NOTE_PATIENCE_MS = 100
# The numbers of a version, each padded to this many digits in its sort key.
VERSION_DIGITS = 6
VERSION_PARTS = 4
_VERSION = re.compile(r"v?(\d{1,6}(?:\.\d{1,6}){0,3})(?:[-+~_ ]?(.*))?", re.IGNORECASE)


def note_report(device: Device, report: ClientReport | None, now: datetime) -> None:
    """Keep what the tablet reported with its push (``None``: it reported nothing, and
    what it said before stands)."""
    if report is None:
        return
    device.reported_at = now
    device.app_version = report.app_version
    device.app_version_key = version_key(report.app_version)
    device.client_schema_version = report.schema_version
    device.pending_changes = report.pending_changes
    device.oldest_pending_at = report.oldest_pending_at
    device.free_storage_mb = report.free_storage_mb


def version_key(version: str | None) -> str | None:
    """``version`` as text that sorts as versions do: ``2.10`` after ``2.9``, and a
    pre-release (``2.4.0-beta.1``) before its release. ``None`` for a version with no
    leading number (``dev``), which no "older than" filter can place."""
    if version is None:
        return None
    found = _VERSION.fullmatch(version.strip())
    if found is None:
        return None
    numbers = [int(part) for part in found.group(1).split(".")]
    numbers += [0] * (VERSION_PARTS - len(numbers))
    key = ".".join(f"{number:0{VERSION_DIGITS}d}" for number in numbers)
    # "~" sorts after every printable character but itself, "-" before the letters and
    # digits of a pre-release's name: a release after all its pre-releases.
    rest = (found.group(2) or "").strip()
    return f"{key}-{rest.lower()}" if rest else f"{key}~"


@dataclass(frozen=True)
class PullNote:
    """What a device's row says of its pulls as a pull page reads it."""

    device_id: uuid.UUID
    last_pull_at: datetime | None
    pulled_seq: int | None

    def due(self, *, seq: int, caught_up: bool, now: datetime) -> bool:
        """Whether a page that got the device to change number ``seq`` is noted."""
        if self.last_pull_at is None or self.last_pull_at <= now - PULL_NOTE_EVERY:
            return True
        return caught_up and seq != self.pulled_seq


def note_pull(engine: Engine, note: PullNote, *, seq: int, caught_up: bool, now: datetime) -> bool:
    """Note a pull page, if due, in a transaction of its own that waits at most
    ``PULL_NOTE_PATIENCE_MS`` for a lock: whether it was written. A pull is the
    device's contact too."""
    if not note.due(seq=seq, caught_up=caught_up, now=now):
        return False
    try:
        with brief_write(engine, patience_ms=PULL_NOTE_PATIENCE_MS) as connection:
            connection.execute(
                update(Device)
                .where(col(Device.id) == note.device_id)
                .values(last_pull_at=now, pulled_seq=seq, last_seen_at=now)
            )
    except Busy:
        return False
    return True


def note_too_old(engine: Engine, device_id: uuid.UUID, *, now: datetime) -> bool:
    """Note that a request of the device was refused as too old for the data model
    (``426 app_too_old``), in a short transaction of its own — for a reader, whose own
    transaction writes nothing (a pull asking for a version the server no longer
    answers). A push notes it in its own transaction, which holds the device's row.
    Whether it was written (not if a lock was held past ``PULL_NOTE_PATIENCE_MS``)."""
    try:
        with brief_write(engine, patience_ms=PULL_NOTE_PATIENCE_MS) as connection:
            connection.execute(
                update(Device)
                .where(col(Device.id) == device_id)
                .values(app_too_old_at=now, last_seen_at=now)
            )
    except Busy:
        return False
    return True


__all__ = ["PullNote", "note_pull", "note_report", "note_too_old", "version_key"]
