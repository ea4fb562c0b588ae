"""One suite for both places files live: a local folder, and an S3-compatible store
(moto's server, a real S3 API over HTTP on this machine; never a mocked client).
The ``storage`` fixture, one test per place, is in ``conftest.py``."""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import threading
import uuid
from pathlib import Path

import pytest

from sync.attachments.storage import LocalStorage, Storage, open_storage


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


PHOTO = os.urandom(700 * 1024)  # more than two pieces of 256 KiB


def test_a_file_put_is_read_back_whole_and_by_range(storage: Storage) -> None:
    name = digest(PHOTO)
    assert storage.size(name) is None

    storage.put(name, io.BytesIO(PHOTO))

    assert storage.size(name) == len(PHOTO)
    assert b"".join(storage.read(name)) == PHOTO
    assert b"".join(storage.read(name, 1000, 300_000)) == PHOTO[1000:300_000]
    assert b"".join(storage.read(name, len(PHOTO) - 5)) == PHOTO[-5:]
    assert b"".join(storage.read(name, 10, 10)) == b""


def test_a_file_sent_twice_is_stored_once_and_keeps_its_first_bytes(storage: Storage) -> None:
    name = digest(PHOTO)
    storage.put(name, io.BytesIO(PHOTO))
    storage.put(name, io.BytesIO(b"anything else"))  # a name is its bytes: never replaced

    assert b"".join(storage.read(name)) == PHOTO


def test_an_upload_in_parts_is_assembled_in_order_and_then_forgotten(storage: Storage) -> None:
    upload = uuid.uuid4()
    cuts = [0, 100 * 1024, 356 * 1024, len(PHOTO)]
    offsets = cuts[:-1]
    for start, end in itertools.pairwise(cuts):
        assert storage.write_part(upload, start, io.BytesIO(PHOTO[start:end])) == end - start

    with storage.assembled(upload, offsets) as whole:
        assert whole.read() == PHOTO

    storage.discard(upload, offsets)
    with pytest.raises(Exception), storage.assembled(upload, offsets) as gone:  # noqa: B017, PT011
        gone.read()


def test_a_part_written_again_at_its_offset_replaces_the_first_attempt(storage: Storage) -> None:
    """A part whose request failed after it was kept is sent again at the same offset."""
    upload = uuid.uuid4()
    storage.write_part(upload, 0, io.BytesIO(b"half of a lost"))
    storage.write_part(upload, 0, io.BytesIO(b"the whole part"))

    with storage.assembled(upload, [0]) as whole:
        assert whole.read() == b"the whole part"


def test_two_processes_putting_the_same_file_at_once_leave_one_whole_file(
    storage: Storage,
) -> None:
    name = digest(PHOTO)
    barrier = threading.Barrier(4)
    failures: list[BaseException] = []

    def send() -> None:
        try:
            barrier.wait(timeout=10)
            storage.put(name, io.BytesIO(PHOTO))
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert b"".join(storage.read(name)) == PHOTO


def test_a_variant_is_kept_beside_its_file_and_read_back_whole(storage: Storage) -> None:
    name = digest(PHOTO)
    storage.put(name, io.BytesIO(PHOTO))
    small = os.urandom(300 * 1024)  # more than one piece
    assert storage.variant_size(name, "thumbnail") is None

    storage.put_variant(name, "thumbnail", io.BytesIO(small))

    assert storage.variant_size(name, "thumbnail") == len(small)
    assert b"".join(storage.read_variant(name, "thumbnail")) == small
    assert storage.variant_size(name, "preview") is None  # each variant its own
    assert b"".join(storage.read(name)) == PHOTO  # the file itself untouched


def test_a_variant_kept_is_not_replaced(storage: Storage) -> None:
    """A variant is made from a file that never changes: the first one kept stays."""
    name = digest(PHOTO)
    storage.put_variant(name, "thumbnail", io.BytesIO(b"the first"))
    storage.put_variant(name, "thumbnail", io.BytesIO(b"a second, made at once"))

    assert b"".join(storage.read_variant(name, "thumbnail")) == b"the first"


def test_two_processes_keeping_the_same_variant_at_once_leave_one_whole(
    storage: Storage,
) -> None:
    name = digest(PHOTO)
    barrier = threading.Barrier(4)
    failures: list[BaseException] = []

    def keep() -> None:
        try:
            barrier.wait(timeout=10)
            storage.put_variant(name, "thumbnail", io.BytesIO(PHOTO))
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=keep) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert b"".join(storage.read_variant(name, "thumbnail")) == PHOTO


@pytest.mark.parametrize("variant", ["../files", "Thumbnail", "", "a/b", "x" * 40])
def test_a_variant_name_that_is_not_one_plain_word_is_refused(
    storage: Storage, variant: str
) -> None:
    with pytest.raises(ValueError, match="a variant is named"):
        storage.put_variant(digest(PHOTO), variant, io.BytesIO(b"x"))


def test_a_local_variant_lives_under_variants_and_leaves_no_temporary_file(
    tmp_path: Path,
) -> None:
    local = LocalStorage(tmp_path)
    name = digest(PHOTO)

    local.put_variant(name, "thumbnail", io.BytesIO(b"small"))

    held = [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()]
    assert held == [f"variants/thumbnail/{name[:2]}/{name}"]


def test_a_local_file_is_never_seen_half_written_under_its_name(tmp_path: Path) -> None:
    """A copy that fails midway leaves no file under the real name, nor a temporary one."""
    local = LocalStorage(tmp_path)
    name = digest(PHOTO)

    class Breaks(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            if self.tell() > 300 * 1024:
                raise OSError("the disk is full")
            return super().read(size)

    with pytest.raises(OSError, match="disk is full"):
        local.put(name, Breaks(PHOTO))

    assert local.size(name) is None
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_an_unknown_scheme_is_refused_with_what_is_known() -> None:
    with pytest.raises(ValueError, match=r"file:// or s3://"):
        open_storage("ftp://files.example/attachments")


def test_files_live_beside_the_sqlite_file_unless_told_otherwise(tmp_path: Path) -> None:
    from tests.conftest import make_settings

    beside = make_settings(f"sqlite:///{tmp_path / 'fieldsync.db'}", attachments_url="")
    told = make_settings("sqlite:///x.db", attachments_url="s3://evidence/alto-mayo")

    assert beside.attachments_location() == (tmp_path / "fieldsync-attachments").as_uri()
    assert told.attachments_location() == "s3://evidence/alto-mayo"
