"""Resumable uploads' state on both databases, their bytes in a local folder or S3:
parts at their offsets, resumed from any process, checked on the last byte."""

from __future__ import annotations

import hashlib
import io
import os
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from schemas import Attachment, AttachmentUpload
from schemas.enums import Role
from schemas.sniff import sniff
from schemas.types import utcnow
from sync.accounts.principal import Principal
from sync.attachments import uploads
from sync.attachments.storage import Storage, open_storage
from sync.platform.database import open_session, transaction
from sync.platform.errors import (
    Conflict,
    KeepsChanges,
    NotFound,
    PayloadTooLarge,
    Unprocessable,
)
from sync.platform.settings import Settings
from tests.engine.test_push_and_pull import office

JPEG = b"\xff\xd8\xff\xe0" + os.urandom(600 * 1024)
PNG_HEAD = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def store(tmp_path: Path) -> Storage:
    return open_storage((tmp_path / "files").as_uri())


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def begin(
    engine: Engine,
    settings: Settings,
    principal: Principal,
    store: Storage,
    data: bytes = JPEG,
    *,
    content_type: str = "image/jpeg",
    sha256: str | None = None,
) -> uploads.Progress:
    with transaction(engine) as session:
        return uploads.create(
            session,
            principal=principal,
            length=len(data),
            sha256=sha256 or digest(data),
            content_type=content_type,
            settings=settings,
            storage=store,
        )


def send(
    engine: Engine, principal: Principal, store: Storage, progress: uploads.Progress, part: bytes
) -> uploads.Progress:
    """One PATCH's work, in a transaction that commits an error marked ``KeepsChanges``
    (a discarded upload), as the request's session does (``api.deps``)."""
    assert progress.upload_id is not None
    session = open_session(engine, write=True)
    try:
        answer = uploads.append(
            session,
            principal=principal,
            upload_id=progress.upload_id,
            offset=progress.received,
            source=io.BytesIO(part),
            size=len(part),
            storage=store,
        )
        session.commit()
        return answer
    except Exception as error:
        if isinstance(error, KeepsChanges):
            session.commit()
        raise
    finally:
        session.rollback()
        session.close()


def test_an_upload_resumed_after_a_lost_link_on_another_process_keeps_the_file_once(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    place = office(engine, settings)
    ranger = place.tablet(Role.ranger)
    first = open_storage((tmp_path / "files").as_uri())
    made = begin(engine, settings, ranger, first)
    made = send(engine, ranger, first, made, JPEG[: 100 * 1024])

    # The link drops; the tablet asks another server process where to go on from.
    second = open_storage((tmp_path / "files").as_uri())
    assert made.upload_id is not None
    with transaction(engine, write=False) as session:
        now = uploads.progress(session, principal=ranger, upload_id=made.upload_id)
    assert now.received == 100 * 1024
    now = send(engine, ranger, second, now, JPEG[100 * 1024 : 400 * 1024])
    done = send(engine, ranger, second, now, JPEG[400 * 1024 :])

    assert done.complete
    assert b"".join(second.read(digest(JPEG))) == JPEG
    with transaction(engine, write=False) as session:
        held = session.get(Attachment, digest(JPEG))
        assert held is not None
        assert (held.size, held.content_type, held.uploaded_by) == (
            len(JPEG),
            "image/jpeg",
            ranger.user_id,
        )
        assert session.exec(select(AttachmentUpload)).all() == []
    again = begin(engine, settings, place.tablet(Role.ranger), second)
    assert again.upload_id is None
    assert again.complete


def test_a_part_at_the_wrong_offset_is_refused_and_changes_nothing(
    engine: Engine, settings: Settings, store: Storage
) -> None:
    place = office(engine, settings)
    ranger = place.tablet(Role.ranger)
    made = send(engine, ranger, store, begin(engine, settings, ranger, store), JPEG[:1000])

    behind = uploads.Progress(made.upload_id, made.length, 0)
    with pytest.raises(Conflict) as refused:
        send(engine, ranger, store, behind, JPEG[:1000])

    assert refused.value.code == "upload_offset_mismatch"
    with transaction(engine, write=False) as session:
        assert made.upload_id is not None
        assert (
            uploads.progress(session, principal=ranger, upload_id=made.upload_id).received == 1000
        )


def test_another_devices_upload_is_not_found(
    engine: Engine, settings: Settings, store: Storage
) -> None:
    place = office(engine, settings)
    owner, other = place.tablet(Role.ranger), place.tablet(Role.ranger)
    made = begin(engine, settings, owner, store)

    with pytest.raises(NotFound):
        send(engine, other, store, made, JPEG[:10])
    assert made.upload_id is not None
    with transaction(engine, write=False) as session, pytest.raises(NotFound):
        uploads.progress(session, principal=other, upload_id=made.upload_id)


def test_bytes_that_do_not_hash_to_the_name_are_discarded_with_their_upload(
    engine: Engine, settings: Settings, store: Storage
) -> None:
    place = office(engine, settings)
    ranger = place.tablet(Role.ranger)
    claimed = digest(b"another photo")
    made = begin(engine, settings, ranger, store, sha256=claimed)

    with pytest.raises(uploads.Discarded) as refused:
        send(engine, ranger, store, made, JPEG)

    assert refused.value.status == 460
    assert store.size(claimed) is None
    with transaction(engine, write=False) as session:
        assert session.exec(select(AttachmentUpload)).all() == []  # the discard was kept
        assert session.get(Attachment, claimed) is None


def test_a_file_that_is_not_what_it_was_said_to_be_is_discarded(
    engine: Engine, settings: Settings, store: Storage
) -> None:
    place = office(engine, settings)
    ranger = place.tablet(Role.ranger)
    made = begin(engine, settings, ranger, store, content_type="image/png")

    with pytest.raises(uploads.WrongType) as refused:
        send(engine, ranger, store, made, JPEG)

    assert refused.value.status == 415
    assert store.size(digest(JPEG)) is None


@pytest.mark.parametrize(
    ("changes", "error", "code"),
    [
        ({"content_type": "text/html"}, uploads.WrongType, "unsupported_attachment_type"),
        ({"sha256": "A" * 64}, Unprocessable, "invalid_sha256"),
        ({"data": b"\xff" * (25 * 1024 * 1024 + 1)}, PayloadTooLarge, "attachment_too_large"),
    ],
    ids=["a-type-we-do-not-keep", "not-a-sha256", "over-the-limit"],
)
def test_an_upload_that_cannot_be_kept_is_refused_when_it_is_made(
    engine: Engine,
    settings: Settings,
    store: Storage,
    changes: dict[str, object],
    error: type[Exception],
    code: str,
) -> None:
    place = office(engine, settings)
    with pytest.raises(error) as refused:
        begin(engine, settings, place.tablet(Role.ranger), store, **changes)  # type: ignore[arg-type]
    assert getattr(refused.value, "code", None) == code


def test_bytes_past_the_uploads_length_are_refused(
    engine: Engine, settings: Settings, store: Storage
) -> None:
    place = office(engine, settings)
    ranger = place.tablet(Role.ranger)
    made = begin(engine, settings, ranger, store, JPEG[:1000])

    with pytest.raises(PayloadTooLarge):
        send(engine, ranger, store, made, JPEG[:1001])


def test_an_abandoned_upload_expires_with_its_parts(
    engine: Engine, settings: Settings, store: Storage
) -> None:
    place = office(engine, settings)
    ranger = place.tablet(Role.ranger)
    made = send(engine, ranger, store, begin(engine, settings, ranger, store), JPEG[:1000])
    later = utcnow() + timedelta(hours=settings.upload_expiry_hours, minutes=1)

    with transaction(engine) as session:
        assert uploads.expire(session, settings=settings, storage=store, now=utcnow()) == 0
        assert uploads.expire(session, settings=settings, storage=store, now=later) == 1

    assert made.upload_id is not None
    with transaction(engine, write=False) as session, pytest.raises(NotFound):
        uploads.progress(session, principal=ranger, upload_id=made.upload_id)


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"\xff\xd8\xff\xdb", "image/jpeg"),
        (PNG_HEAD, "image/png"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"%PDF-1.7", "application/pdf"),
        (b"\x00\x00\x00\x20ftypM4A \x00", "audio/mp4"),
        (b"OggS\x00\x02", "audio/ogg"),
        (b"<html>", None),
        (b"", None),
    ],
)
def test_a_files_type_is_read_from_its_first_bytes(head: bytes, kind: str | None) -> None:
    assert sniff(head) == kind
