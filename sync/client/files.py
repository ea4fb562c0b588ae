"""A tablet's files: attached by their SHA-256, uploaded with tus before the changes
that name them are pushed, resumed after a lost link, never sent twice.

``attach`` reads a file in pieces (a 25 MiB recording never sits whole in memory),
names it by the SHA-256 of its bytes, reads its type from its first bytes, and keeps
``sha256 → path, type, size`` in the state file (``local_file``); it answers the
``AttachmentRef`` a record's ``attachments`` field takes.

Before each push the client sends the files that a change made on this device names
and that the server is not known to hold (an attached file no change names is never
sent; one whose upload gave out goes with the next push, even if its change went
ahead without it). ``Uploads.send`` uploads them with tus 1.0.0
(``/attachments/uploads``):

- ``POST`` makes the upload; ``200`` means the server holds the file already (sent by
  another tablet, or before a lost answer): nothing is sent, it is marked held.
- The upload's ``Location`` is stored before its first byte is sent: a client closed
  or killed mid-upload, opened again on the same state file, asks the server (``HEAD``)
  how much arrived and continues that very upload.
- ``PATCH`` sends ``chunk_size`` bytes at a time (256 KiB by default), each read from
  disk when it is sent, so memory holds one chunk whatever the file's size. A chunk is
  never resent blind: after a network failure or a ``5xx`` the client waits (the
  connection's backoff), asks ``HEAD`` where the server is (tus keeps what arrived of
  a chunk cut short) and goes on from there; a ``409`` (wrong offset) likewise. The
  retries (``max_retries``) count failures in a row: any progress starts them afresh,
  so a link that drops every 100 KiB still gets a file through, and one that carries
  nothing gives up with ``Unreachable``, keeping the upload for next time.
- A ``404`` for the upload (it expired, or was given up) starts a new one.
- No ``Upload-Checksum`` per chunk: the server drops a chunk cut short that carries
  one, and so a link that never carries a whole chunk would never progress. The
  whole file's SHA-256, checked by the server on its last byte, guards the bytes.

A file whose bytes will not do is *refused*: the server's ``460`` (they do not hash to
the name: changed or damaged on disk since it was attached), ``415`` (not the type it
was said to be), ``413`` (over the server's limit), or the client's own check before
sending (the file is gone, or no longer hashes to its name: nothing is sent over a
slow link to be thrown away). Sending it again would fail the same way forever, so it
is marked refused in the state file and not sent again until it is attached again. It
blocks nothing: the other files are sent, and the changes that name it are pushed
(the server applies them, and lists the file as missing, which the office sees). The
push raises ``AttachmentRefused`` once it is done, naming each refused file and why,
with the push's results; ``DeviceClient.refused_attachments()`` lists them after.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from schemas.attachments import ALLOWED_TYPES
from schemas.records import AttachmentRef
from schemas.sniff import sniff
from schemas.sync import ChangeResult
from sync.client.connection import Connection, problem_code, problem_detail, raise_for
from sync.client.errors import SyncError, Unreachable
from sync.client.store import LocalFile, LocalStore

CHUNK_SIZE = 256 * 1024
PIECE = 1024 * 1024  # how much of a file is read at a time to hash it
HEAD_BYTES = 16  # enough of a file's start to tell its type
UPLOADS = "/attachments/uploads"
TUS = {"Tus-Resumable": "1.0.0"}
OFFSET_STREAM = "application/offset+octet-stream"
MAX_RESTARTS = 3  # new uploads for one file in one send, when its upload keeps vanishing
OWED_PAGE = 100
# The server's answers that mean "these bytes will not do", at POST or at the last PATCH.
REFUSALS = {400: "invalid", 413: "too large", 415: "wrong type", 422: "invalid", 460: "checksum"}


class AttachmentRefused(SyncError):
    """Attached files whose bytes will not do, each with the reason (``refused``): the
    push (or sync) did everything else first, and its results are ``results``. The
    files are not sent again until attached again; the records still name them."""

    def __init__(self, refused: list[LocalFile], results: list[ChangeResult]) -> None:
        named = "; ".join(f"{file.sha256[:12]}… ({file.path}): {file.refused}" for file in refused)
        super().__init__(
            f"{len(refused)} attached file(s) cannot be sent: {named}", code="attachment_refused"
        )
        self.refused = refused
        self.results = results


@dataclass
class OwedFiles:
    """What ``upload_missing`` did with the files the server says this device owes:
    ``sent`` (the server holds them now; bytes were sent only where needed),
    ``not_here`` (this device holds no file by that hash: it was attached elsewhere,
    or the state file was replaced), ``refused`` (their bytes will not do)."""

    sent: list[str] = field(default_factory=list)
    not_here: list[str] = field(default_factory=list)
    refused: list[LocalFile] = field(default_factory=list)


# ---------------------------------------------------------------- attaching


def read_file(path: Path) -> tuple[str, int, bytes]:
    """The SHA-256 (hex) of the file at ``path``, its size and its first bytes, read
    a piece at a time."""
    hasher = hashlib.sha256()
    size = 0
    head = b""
    with path.open("rb") as source:
        for piece in iter(lambda: source.read(PIECE), b""):
            if size == 0:
                head = piece[:HEAD_BYTES]
            hasher.update(piece)
            size += len(piece)
    return hasher.hexdigest(), size, head


def attach(
    store: LocalStore, path: str | Path, content_type: str | None, caption: str | None
) -> dict[str, Any]:
    """Keep the file at ``path`` as an attachment of this device; the ``AttachmentRef``
    to put in a record's ``attachments``. A type given is checked against the bytes, as
    the server will: a mismatch, or a type fieldsync does not keep, is a ``ValueError``
    now, while the user still looks at it."""
    where = Path(path).resolve()
    if not where.is_file():
        raise ValueError(f"{where} is not a file")
    sha256, size, head = read_file(where)
    found = sniff(head)
    if content_type is None:
        if found is None:
            raise ValueError(
                f"{where} is not of a type fieldsync keeps ({', '.join(ALLOWED_TYPES)})"
            )
        content_type = found
    elif content_type not in ALLOWED_TYPES:
        raise ValueError(f"attachments are {', '.join(ALLOWED_TYPES)}; not {content_type}")
    elif found != content_type:
        raise ValueError(
            f"{where} is {found or 'of a type fieldsync does not keep'}, not {content_type}"
        )
    ref = AttachmentRef(sha256=sha256, content_type=content_type, size=size, caption=caption)
    with store.transaction():
        store.keep_file(
            sha256=sha256,
            path=str(where),
            content_type=content_type,
            size=size,
            attached_at=_now(),
        )
    return ref.model_dump()  # caption None too: the record reads as the server keeps it


def named_files(fields: dict[str, Any]) -> list[str]:
    """The files a change's fields name, each once, in order."""
    refs = fields.get("attachments")
    if not isinstance(refs, list):
        return []
    found = [ref["sha256"] for ref in refs if isinstance(ref, dict) and "sha256" in ref]
    return [str(sha256) for sha256 in dict.fromkeys(found)]


# ---------------------------------------------------------------- uploading


class _Refused(Exception):
    """Inside ``Uploads``: this file's bytes will not do, for ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Uploads:
    """The tus uploads of a device's files, over its connection (token refresh and
    backoff as every other call), their state in its store."""

    def __init__(
        self,
        link: Connection,
        store: LocalStore,
        *,
        chunk_size: int,
        sleep: Callable[[float], None],
    ) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        self._link = link
        self._store = store
        self.chunk_size = chunk_size
        self._sleep = sleep

    def send(self, hashes: Iterable[str], refused: list[LocalFile]) -> None:
        """Upload each of these files the device holds and the server is not known to
        hold; each refused now is added to ``refused`` (also when a later one raises).
        Raises ``Unreachable`` when the link gives out (what arrived is kept, to
        continue next time), ``AuthFailed``, or ``SyncError`` for an answer that is
        about the server, not the file."""
        for sha256 in hashes:
            file = self._store.file(sha256)
            if file is None or file.uploaded_at is not None or file.refused is not None:
                continue
            try:
                self._upload(file)
            except _Refused as refusal:
                with self._store.transaction():
                    self._store.refuse_file(sha256, refusal.reason)
                refused.append(self._held(sha256))

    def resend(self, hashes: Iterable[str], refused: list[LocalFile]) -> list[str]:
        """The server says it lacks these files: send those the device holds again,
        even if it thought them sent (a ``POST`` finds out whether the server has
        since got them, and sends nothing then). Those refused, now or before, are
        added to ``refused`` (once each); those the device does not hold are answered."""
        not_here: list[str] = []
        to_send: list[str] = []
        for sha256 in dict.fromkeys(hashes):
            file = self._store.file(sha256)
            if file is None:
                not_here.append(sha256)
            elif file.refused is not None:
                if all(known.sha256 != sha256 for known in refused):
                    refused.append(file)
            else:
                with self._store.transaction():
                    self._store.forget_uploaded(sha256)
                to_send.append(sha256)
        self.send(to_send, refused)
        return not_here

    def owed(self) -> list[str]:
        """The files the server says this device named and has not sent
        (``GET /sync/missing-attachments``), every page."""
        owed: list[str] = []
        offset = 0
        while True:
            response = self._link.call(
                "GET", "/sync/missing-attachments", params={"limit": OWED_PAGE, "offset": offset}
            )
            raise_for(response)
            page = response.json()
            items = page["items"]
            owed.extend(str(item["sha256"]) for item in items)
            offset += len(items)
            if not items or offset >= int(page["total"]):
                return owed

    # ------------------------------------------------------------ one file

    def _held(self, sha256: str) -> LocalFile:
        file = self._store.file(sha256)
        assert file is not None  # kept by attach, never deleted
        return file

    def _upload(self, file: LocalFile) -> None:
        _check(file)
        location = file.location
        offset: int | None = None  # None: ask the server (HEAD)
        confirmed = 0  # the most the server has said it holds
        failures = 0  # in a row, without progress
        restarts = 0
        while True:
            if location is None:
                location = self._create(file)
                if location is None:
                    return  # the server holds it already
                offset = 0
            if offset is None:
                offset = self._progress(location)
                if offset is None:  # the upload is gone (expired, given up, completed)
                    restarts += 1
                    self._restart(file, restarts)
                    location = None
                    continue
                if offset > confirmed:
                    confirmed, failures = offset, 0
            if offset >= file.size:
                self._done(file)
                return
            chunk = _chunk(file, offset, min(self.chunk_size, file.size - offset))
            try:
                answer = self._once(
                    "PATCH",
                    location,
                    content=chunk,
                    headers={
                        **TUS,
                        "Content-Type": OFFSET_STREAM,
                        "Upload-Offset": str(offset),
                    },
                )
            except Unreachable as lost:
                failures = self._wait(failures, lost)
                offset = None
                continue
            if answer.status_code == 204:
                now = int(answer.headers["Upload-Offset"])
                if now <= offset:  # taken, yet no further: do not spin on it
                    failures = self._wait(failures, Unreachable(f"stuck at {now}"))
                offset = now
                if offset > confirmed:
                    confirmed, failures = offset, 0
                continue
            if answer.status_code == 409:  # the server holds another offset: ask it
                failures = self._wait(failures, Unreachable(_said(answer)))
                offset = None
                continue
            if answer.status_code == 404:
                restarts += 1
                self._restart(file, restarts)
                location = None
                continue
            if answer.status_code in REFUSALS:
                raise _Refused(f"the server refused its bytes: {_said(answer)}")
            raise SyncError(
                f"PATCH {location}: {_said(answer)}",
                status=answer.status_code,
                code=problem_code(answer),
            )

    def _create(self, file: LocalFile) -> str | None:
        """A new upload, its location stored before any byte is sent; ``None`` when the
        server holds the file already (marked so)."""
        metadata = ",".join(
            f"{key} {base64.b64encode(value.encode()).decode()}"
            for key, value in (("sha256", file.sha256), ("content_type", file.content_type))
        )
        answer = self._link.call(
            "POST",
            UPLOADS,
            headers={**TUS, "Upload-Length": str(file.size), "Upload-Metadata": metadata},
        )
        if answer.status_code == 200:
            self._done(file)
            return None
        if answer.status_code in REFUSALS:
            raise _Refused(f"the server will not take it: {_said(answer)}")
        if answer.status_code != 201 or "Location" not in answer.headers:
            raise SyncError(
                f"POST {UPLOADS}: {_said(answer)}",
                status=answer.status_code,
                code=problem_code(answer),
            )
        location = self._keepable(answer.request.url.join(answer.headers["Location"]))
        with self._store.transaction():
            self._store.set_upload_location(file.sha256, location)
        return location

    def _progress(self, location: str) -> int | None:
        """How much of the upload the server holds (``HEAD``); ``None`` if it is gone."""
        answer = self._link.call("HEAD", self._url(location), headers=TUS)
        if answer.status_code == 404:
            return None
        if answer.status_code != 200 or "Upload-Offset" not in answer.headers:
            raise SyncError(
                f"HEAD {location}: {answer.status_code} {answer.reason_phrase}",
                status=answer.status_code,
            )
        return int(answer.headers["Upload-Offset"])

    def _restart(self, file: LocalFile, restarts: int) -> None:
        if restarts > MAX_RESTARTS:
            raise SyncError(
                f"the uploads of {file.sha256} keep vanishing from the server",
                code="upload_vanished",
            )
        with self._store.transaction():
            self._store.set_upload_location(file.sha256, None)

    def _done(self, file: LocalFile) -> None:
        with self._store.transaction():
            self._store.mark_uploaded(file.sha256, _now())

    def _once(
        self, method: str, location: str, *, content: bytes, headers: dict[str, str]
    ) -> httpx.Response:
        """One request, not resent by the connection (its token is still refreshed on
        a ``401``): after a lost link the server may hold part of a chunk, so the next
        try starts where ``HEAD`` says, not where this one did. A network failure or a
        ``5xx`` is ``Unreachable`` at once."""
        retries = self._link.max_retries
        self._link.max_retries = 0
        try:
            return self._link.call(method, self._url(location), content=content, headers=headers)
        finally:
            self._link.max_retries = retries

    def _wait(self, failures: int, failure: Exception) -> int:
        """One more failure in a row: wait as the connection would, or give up."""
        if failures >= self._link.max_retries:
            raise Unreachable(
                f"an upload gave up after {failures + 1} failures in a row; last: {failure}",
                code="unreachable",
            )
        self._sleep(self._link.backoff * 2**failures)
        return failures + 1

    def _keepable(self, location: httpx.URL) -> str:
        """The location as kept in the state file: its path, when it is on the server
        the client talks to (so it is found again if that server's address changes),
        else the whole URL."""
        base = httpx.URL(self._link.base_url)
        if (location.scheme, location.host, location.port) == (base.scheme, base.host, base.port):
            return location.raw_path.decode("ascii")
        return str(location)

    def _url(self, location: str) -> str:
        return str(httpx.URL(self._link.base_url).join(location))


# ---------------------------------------------------------------- helpers


def _check(file: LocalFile) -> None:
    """The file is still where it was attached, with the same bytes; else it is refused
    here, before a byte goes over a slow link to be thrown away by the server."""
    try:
        sha256, size, _ = read_file(Path(file.path))
    except OSError as error:
        raise _Refused(f"the file cannot be read: {error}") from None
    if sha256 != file.sha256 or size != file.size:
        raise _Refused(
            "the file has changed since it was attached: it no longer hashes to its name"
        )


def _chunk(file: LocalFile, offset: int, size: int) -> bytes:
    """The ``size`` bytes at ``offset``, read from disk now; a file grown shorter since
    it was checked is refused."""
    try:
        with Path(file.path).open("rb") as source:
            source.seek(offset)
            chunk = source.read(size)
    except OSError as error:
        raise _Refused(f"the file cannot be read: {error}") from None
    if len(chunk) != size:
        raise _Refused("the file has changed since it was attached: it is shorter")
    return chunk


def _said(answer: httpx.Response) -> str:
    code = problem_code(answer)
    return f"{answer.status_code} {code + ': ' if code else ''}{problem_detail(answer)}"


def _now() -> str:
    return datetime.now(UTC).isoformat()


__all__ = [
    "CHUNK_SIZE",
    "AttachmentRefused",
    "OwedFiles",
    "Uploads",
    "attach",
    "named_files",
    "read_file",
]
