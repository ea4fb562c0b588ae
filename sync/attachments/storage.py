"""Where attachment files live: a local folder, or an S3-compatible bucket shared by
several server processes. Both keep the same three kinds of thing:

- **files**, named by the SHA-256 of their bytes, each stored once however often it
  is sent, and never visible under that name until it is whole and on disk;
- **uploads in progress**, the bytes a tus upload has received so far, kept outside
  any process's memory so that any server process can continue one, after a restart
  too;
- **variants** of a file, made from it (a photo's thumbnail), kept under the file's
  name and the variant's, with the same care as files: whole or not at all.

A file is read in pieces and written from a file object, so that no process holds a
whole file in memory.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import unquote, urlsplit

PIECE = 256 * 1024  # bytes read at a time
VARIANT = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")  # one segment of a path or key


class Storage(Protocol):
    """What the service needs of a place for files."""

    def size(self, sha256: str) -> int | None:
        """The file's size in bytes, or None when it is not held."""

    def read(self, sha256: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The file's bytes from ``start`` up to (not including) ``end``, in pieces."""

    def put(self, sha256: str, source: IO[bytes]) -> None:
        """Keep ``source``'s bytes as the file ``sha256``: whole, or not at all."""

    def write_part(self, upload_id: uuid.UUID, offset: int, source: IO[bytes]) -> int:
        """Keep ``source``'s bytes as the part of an upload that starts at ``offset``;
        how many bytes it held."""

    def assembled(
        self, upload_id: uuid.UUID, parts: list[int]
    ) -> contextlib.AbstractContextManager[IO[bytes]]:
        """The upload's bytes, its parts at these offsets in order, as one readable file."""

    def discard(self, upload_id: uuid.UUID, parts: list[int]) -> None:
        """Forget an upload's parts."""

    def variant_size(self, sha256: str, variant: str) -> int | None:
        """The size of the file's ``variant`` in bytes, or None when none is kept."""

    def read_variant(self, sha256: str, variant: str) -> Iterator[bytes]:
        """The bytes of the file's ``variant``, in pieces."""

    def put_variant(self, sha256: str, variant: str, source: IO[bytes]) -> None:
        """Keep ``source``'s bytes as the file's ``variant``: whole, or not at all. A
        variant is made from its file, which never changes, so the first one kept stays
        (two processes making it at once both write a whole one; either is right)."""


def open_storage(url: str, *, s3_endpoint_url: str | None = None) -> Storage:
    """The storage ``FIELDSYNC_ATTACHMENTS_URL`` names: ``file:///path`` or
    ``s3://bucket/prefix``."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        return LocalStorage(Path(unquote(parts.path)))
    if parts.scheme == "s3":
        return S3Storage(parts.netloc, parts.path.strip("/"), endpoint_url=s3_endpoint_url)
    raise ValueError(f"attachments are kept at file:// or s3:// URLs, not {parts.scheme}://")


def _sha_path(sha256: str) -> str:
    return f"{sha256[:2]}/{sha256}"


def _variant_path(sha256: str, variant: str) -> str:
    if not VARIANT.fullmatch(variant):
        raise ValueError(f"a variant is named in lowercase letters, digits and -, not {variant!r}")
    return f"variants/{variant}/{_sha_path(sha256)}"


class LocalStorage:
    """A folder: ``files/ab/ab…`` for files, ``uploads/<id>/<offset>`` for parts,
    ``variants/<variant>/ab/ab…`` for variants.
    Every file is written under a temporary name, flushed to disk, then renamed, so
    that no reader ever sees half a file under a real name."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files = root / "files"
        self.uploads = root / "uploads"
        self.files.mkdir(parents=True, exist_ok=True)
        self.uploads.mkdir(parents=True, exist_ok=True)

    def size(self, sha256: str) -> int | None:
        try:
            return (self.files / _sha_path(sha256)).stat().st_size
        except FileNotFoundError:
            return None

    def read(self, sha256: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        return _pieces(self.files / _sha_path(sha256), start, end)

    def put(self, sha256: str, source: IO[bytes]) -> None:
        target = self.files / _sha_path(sha256)
        if target.exists():
            return  # stored once, however often it is sent
        _durably(source, target)

    def variant_size(self, sha256: str, variant: str) -> int | None:
        try:
            return (self.root / _variant_path(sha256, variant)).stat().st_size
        except FileNotFoundError:
            return None

    def read_variant(self, sha256: str, variant: str) -> Iterator[bytes]:
        return _pieces(self.root / _variant_path(sha256, variant))

    def put_variant(self, sha256: str, variant: str, source: IO[bytes]) -> None:
        target = self.root / _variant_path(sha256, variant)
        if not target.exists():
            _durably(source, target)

    def write_part(self, upload_id: uuid.UUID, offset: int, source: IO[bytes]) -> int:
        folder = self.uploads / str(upload_id)
        folder.mkdir(exist_ok=True)
        return _durably(source, folder / f"{offset:020d}")

    @contextlib.contextmanager
    def assembled(self, upload_id: uuid.UUID, parts: list[int]) -> Iterator[IO[bytes]]:
        folder = self.uploads / str(upload_id)
        with tempfile.TemporaryFile(dir=self.uploads) as whole:
            for offset in parts:
                with open(folder / f"{offset:020d}", "rb") as part:
                    shutil.copyfileobj(part, whole, PIECE)
            whole.seek(0)
            yield whole

    def discard(self, upload_id: uuid.UUID, parts: list[int]) -> None:
        shutil.rmtree(self.uploads / str(upload_id), ignore_errors=True)


def _pieces(path: Path, start: int = 0, end: int | None = None) -> Iterator[bytes]:
    """The bytes of the file at ``path`` from ``start`` up to ``end``, in pieces."""
    with open(path, "rb") as file:
        file.seek(start)
        left = None if end is None else end - start
        while left is None or left > 0:
            piece = file.read(PIECE if left is None else min(PIECE, left))
            if not piece:
                return
            if left is not None:
                left -= len(piece)
            yield piece


def _durably(source: IO[bytes], target: Path) -> int:
    """Copy ``source`` to ``target`` through a temporary name, fsynced, then renamed;
    the bytes written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
    try:
        with os.fdopen(descriptor, "wb") as file:
            shutil.copyfileobj(source, file, PIECE)
            file.flush()
            os.fsync(file.fileno())
            written = file.tell()
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    folder = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(folder)  # the rename itself, on disk
    finally:
        os.close(folder)
    return written


class S3Storage:
    """A bucket (and a prefix in it): ``files/ab/ab…``, ``uploads/<id>/<offset>`` and
    ``variants/<variant>/ab/ab…``.
    An object appears whole or not at all, so a file is put once its bytes are
    checked; credentials come from the usual AWS settings (environment, profile)."""

    def __init__(self, bucket: str, prefix: str, *, endpoint_url: str | None = None) -> None:
        import boto3  # only where S3 is used

        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self.client: Any = boto3.client("s3", endpoint_url=endpoint_url)

    def _key(self, *parts: str) -> str:
        return self.prefix + "/".join(parts)

    def size(self, sha256: str) -> int | None:
        return self._size(self._key("files", _sha_path(sha256)))

    def _size(self, key: str) -> int | None:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return int(head["ContentLength"])

    def read(self, sha256: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        return self._pieces(self._key("files", _sha_path(sha256)), start, end)

    def _pieces(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        if end is not None and end <= start:
            return
        wanted = f"bytes={start}-" + ("" if end is None else str(end - 1))
        answer = self.client.get_object(Bucket=self.bucket, Key=key, Range=wanted)
        body = answer["Body"]
        try:
            yield from body.iter_chunks(PIECE)
        finally:
            body.close()

    def put(self, sha256: str, source: IO[bytes]) -> None:
        if self.size(sha256) is not None:
            return  # stored once, however often it is sent
        self.client.upload_fileobj(source, self.bucket, self._key("files", _sha_path(sha256)))

    def variant_size(self, sha256: str, variant: str) -> int | None:
        return self._size(self._key(_variant_path(sha256, variant)))

    def read_variant(self, sha256: str, variant: str) -> Iterator[bytes]:
        return self._pieces(self._key(_variant_path(sha256, variant)))

    def put_variant(self, sha256: str, variant: str, source: IO[bytes]) -> None:
        key = self._key(_variant_path(sha256, variant))
        if self._size(key) is None:
            self.client.upload_fileobj(source, self.bucket, key)

    def write_part(self, upload_id: uuid.UUID, offset: int, source: IO[bytes]) -> int:
        with tempfile.SpooledTemporaryFile(max_size=PIECE * 4) as spooled:
            shutil.copyfileobj(source, spooled, PIECE)
            written = spooled.tell()
            spooled.seek(0)
            key = self._key("uploads", str(upload_id), f"{offset:020d}")
            self.client.upload_fileobj(spooled, self.bucket, key)
        return written

    @contextlib.contextmanager
    def assembled(self, upload_id: uuid.UUID, parts: list[int]) -> Iterator[IO[bytes]]:
        with tempfile.TemporaryFile() as whole:
            for offset in parts:
                # Read in order, not with download_fileobj: its parallel ranged writes
                # seek in the target, which here holds the parts before this one.
                key = self._key("uploads", str(upload_id), f"{offset:020d}")
                body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
                try:
                    for piece in body.iter_chunks(PIECE):
                        whole.write(piece)
                finally:
                    body.close()
            whole.seek(0)
            yield whole

    def discard(self, upload_id: uuid.UUID, parts: list[int]) -> None:
        keys = [{"Key": self._key("uploads", str(upload_id), f"{o:020d}")} for o in parts]
        for start in range(0, len(keys), 1000):
            self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": keys[start : start + 1000], "Quiet": True}
            )
