"""Resumable uploads (tus 1.0.0): their state in the database, their bytes in the
storage, so that an upload survives a restart and continues on any server process.

An upload is made with its length, the SHA-256 of the whole file and its declared
type. Each part that arrives is kept in the storage at the offset it starts at, and
the upload's row says how much has arrived: a part is accepted only at that offset,
under a lock on the row, so two processes can never both add the same bytes. When
the last byte arrives the file is assembled, checked against its SHA-256 and against
its real type (what its first bytes are, not what it was said to be), and kept under
its hash; a file that fails is discarded with its upload. A file the server already
holds is never sent again: making its upload answers that it is complete.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO

import sqlalchemy as sa
from sqlmodel import Session, col, select

from schemas import Attachment, AttachmentOwed, AttachmentUpload
from schemas.attachments import ALLOWED_TYPES
from schemas.sniff import sniff
from schemas.types import utcnow
from sync.accounts.principal import Principal
from sync.attachments.storage import PIECE, Storage
from sync.platform.database import upsert
from sync.platform.errors import (
    ChecksumMismatch,
    Conflict,
    KeepsChanges,
    NotFound,
    PayloadTooLarge,
    Unprocessable,
    UnsupportedMediaType,
)
from sync.platform.settings import Settings

SHA256 = re.compile(r"[0-9a-f]{64}")
EXPIRED_AT_A_TIME = 10


class Discarded(KeepsChanges, ChecksumMismatch):
    """The file's bytes do not hash to its name: the upload is gone (and that stays)."""


class WrongType(KeepsChanges, UnsupportedMediaType):
    """The file is not what it was said to be, or not a type we keep: discarded."""

    code = "unsupported_attachment_type"


@dataclass(frozen=True)
class Progress:
    """Where an upload stands: its id (None when the server held the file already),
    its length and how much has arrived."""

    upload_id: uuid.UUID | None
    length: int
    received: int

    @property
    def complete(self) -> bool:
        return self.received == self.length


def create(
    session: Session,
    *,
    principal: Principal,
    length: int,
    sha256: str,
    content_type: str,
    settings: Settings,
    storage: Storage,
) -> Progress:
    """A new upload of ``length`` bytes; complete at once when the file is held."""
    if not SHA256.fullmatch(sha256):
        raise Unprocessable(
            "sha256 is the file's SHA-256, 64 lowercase hex digits", code="invalid_sha256"
        )
    if content_type not in ALLOWED_TYPES:
        raise WrongType(f"attachments are {', '.join(ALLOWED_TYPES)}; not {content_type}")
    if length > settings.max_attachment_bytes:
        raise PayloadTooLarge(
            f"an attachment holds at most {settings.max_attachment_bytes} bytes",
            code="attachment_too_large",
        )
    held = session.get(Attachment, sha256)
    if held is not None and storage.size(sha256) is not None:
        return Progress(None, held.size, held.size)
    now = utcnow()
    # Each new upload clears away a few abandoned ones: no timer to run, on any process.
    expire(session, settings=settings, storage=storage, now=now, limit=EXPIRED_AT_A_TIME)
    upload = AttachmentUpload(
        id=uuid.uuid4(),
        sha256=sha256,
        content_type=content_type,
        length=length,
        user_id=principal.user_id,
        device_id=principal.device_id,
        created_at=now,
        updated_at=now,
    )
    session.add(upload)
    session.flush()
    return Progress(upload.id, length, 0)


def progress(session: Session, *, principal: Principal, upload_id: uuid.UUID) -> Progress:
    """Where the caller's upload stands (``HEAD``): what to send next after a lost link."""
    upload = _own(session, principal, upload_id, lock=False)
    return Progress(upload.id, upload.length, upload.received)


def append(
    session: Session,
    *,
    principal: Principal,
    upload_id: uuid.UUID,
    offset: int,
    source: IO[bytes],
    size: int,
    storage: Storage,
) -> Progress:
    """Keep ``size`` bytes of ``source`` as the part at ``offset``; on the last byte,
    check the file and keep it. ``source`` was read whole before the transaction."""
    upload = _own(session, principal, upload_id, lock=True)
    if offset != upload.received:
        raise Conflict(
            f"this upload has {upload.received} bytes; send from there",
            code="upload_offset_mismatch",
        )
    if upload.received + size > upload.length:
        raise PayloadTooLarge(
            f"this upload is {upload.length} bytes; {size} more from {offset} is past its end",
            code="upload_past_its_length",
        )
    if size:
        storage.write_part(upload.id, offset, source)
        upload.parts = [*upload.parts, offset]
        upload.received += size
    upload.updated_at = utcnow()
    session.add(upload)
    session.flush()
    if upload.received == upload.length:
        _finish(session, upload, storage)
    return Progress(upload.id, upload.length, upload.received)


def terminate(
    session: Session, *, principal: Principal, upload_id: uuid.UUID, storage: Storage
) -> None:
    """Give up an upload (tus termination): its parts are forgotten."""
    upload = _own(session, principal, upload_id, lock=True)
    _drop(session, upload, storage)


def expire(
    session: Session,
    *,
    settings: Settings,
    storage: Storage,
    now: datetime,
    limit: int | None = None,
) -> int:
    """Forget the uploads nobody added to for ``upload_expiry_hours`` (at most
    ``limit`` of them, the oldest first); how many."""
    cutoff = now - timedelta(hours=settings.upload_expiry_hours)
    stale = session.exec(
        select(AttachmentUpload)
        .where(col(AttachmentUpload.updated_at) < cutoff)
        .order_by(col(AttachmentUpload.updated_at))
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for upload in stale:
        _drop(session, upload, storage)
    return len(stale)


def _own(
    session: Session, principal: Principal, upload_id: uuid.UUID, *, lock: bool
) -> AttachmentUpload:
    """The caller's upload: another device's (or person's) is not found, as if absent."""
    query = select(AttachmentUpload).where(col(AttachmentUpload.id) == upload_id)
    if lock:
        query = query.with_for_update()
    upload = session.exec(query).first()
    if (
        upload is None
        or upload.user_id != principal.user_id
        or upload.device_id != principal.device_id
    ):
        raise NotFound("no such upload")
    return upload


def _finish(session: Session, upload: AttachmentUpload, storage: Storage) -> None:
    with storage.assembled(upload.id, upload.parts) as whole:
        head = whole.read(PIECE)
        hasher = hashlib.sha256(head)
        for piece in iter(lambda: whole.read(PIECE), b""):
            hasher.update(piece)
        if hasher.hexdigest() != upload.sha256:
            _drop(session, upload, storage)
            raise Discarded("the file's bytes do not hash to its sha256; send it again")
        found = sniff(head)
        if found != upload.content_type:
            _drop(session, upload, storage)
            raise WrongType(
                f"the file was said to be {upload.content_type} but is "
                f"{found or 'of a type we do not keep'}"
            )
        whole.seek(0)
        storage.put(upload.sha256, whole)
    # Two uploads of one file may finish at once, on two processes: the first row stays.
    session.connection().execute(
        upsert(session, Attachment, key=["sha256"], update=["sha256"]),
        [
            {
                "sha256": upload.sha256,
                "content_type": upload.content_type,
                "size": upload.length,
                "uploaded_by": upload.user_id,
                "device_id": upload.device_id,
                "created_at": utcnow(),
            }
        ],
    )
    _drop(session, upload, storage)
    # Whoever named it owes it no more.
    session.connection().execute(
        sa.delete(AttachmentOwed).where(col(AttachmentOwed.sha256) == upload.sha256)
    )


def _drop(session: Session, upload: AttachmentUpload, storage: Storage) -> None:
    storage.discard(upload.id, upload.parts)
    session.delete(upload)
    session.flush()
