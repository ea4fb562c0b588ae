"""Attachments over HTTP: resumable uploads (tus 1.0.0: Core, Creation, Termination,
Checksum) and downloads by SHA-256.

tus is written here, over ``sync.attachments.uploads``, rather than taken from a
FastAPI tus package: the one maintained (tuspyserver) keeps its uploads' state in
files of one machine's disk, so a second server process cannot continue an upload,
and it has no S3 store; here the state is in the database and the parts in the
shared storage. A ``PATCH`` body is read whole (to a temporary file past 1 MiB)
before the transaction opens: a tablet trickling a chunk over 2G holds no lock; a
chunk cut short by a lost link keeps the bytes that arrived, as tus asks.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import IO, Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi import Path as Path_
from fastapi.responses import StreamingResponse
from starlette.requests import ClientDisconnect

from api import metrics
from api.body import JSONRoute
from api.deps import CurrentPrincipal, SessionDep, SettingsDep
from api.errors import problems
from schemas import Attachment
from sync.attachments import access, thumbnails, uploads
from sync.attachments.storage import Storage, open_storage
from sync.platform.errors import (
    BadRequest,
    ChecksumMismatch,
    FieldsyncError,
    PayloadTooLarge,
    UnsupportedMediaType,
)

router = APIRouter(route_class=JSONRoute, prefix="/attachments", tags=["attachments"])

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,termination,checksum"
CHECKSUMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256}
OFFSET_STREAM = "application/offset+octet-stream"
UPLOADS = "/api/v1/attachments/uploads"


class TusVersionMismatch(FieldsyncError):
    status, code, title = 412, "tus_version_unsupported", "Precondition failed"


def get_storage(request: Request, settings: SettingsDep) -> Storage:
    """The app's storage, opened once (``FIELDSYNC_ATTACHMENTS_URL``)."""
    storage: Storage | None = getattr(request.app.state, "storage", None)
    if storage is None:
        storage = open_storage(
            settings.attachments_location(), s3_endpoint_url=settings.s3_endpoint_url
        )
        request.app.state.storage = storage
    return storage


StorageDep = Annotated[Storage, Depends(get_storage)]
TusResumable = Annotated[str | None, Header(alias="Tus-Resumable", max_length=16)]


def _tus(version: str | None) -> None:
    if version != TUS_VERSION:
        raise TusVersionMismatch(
            f"this server speaks tus {TUS_VERSION}; send Tus-Resumable: {TUS_VERSION}"
        )


def _headers(progress: uploads.Progress) -> dict[str, str]:
    return {
        "Tus-Resumable": TUS_VERSION,
        "Upload-Offset": str(progress.received),
        "Upload-Length": str(progress.length),
        "Cache-Control": "no-store",
    }


@router.options("/uploads", status_code=204, response_class=Response)
def capabilities(settings: SettingsDep) -> Response:
    """What this tus server does: its version, extensions, largest file, checksums."""
    return Response(
        status_code=204,
        headers={
            "Tus-Resumable": TUS_VERSION,
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": TUS_EXTENSIONS,
            "Tus-Max-Size": str(settings.max_attachment_bytes),
            "Tus-Checksum-Algorithm": ",".join(CHECKSUMS),
        },
    )


def _metadata(header: str) -> dict[str, str]:
    """tus's ``Upload-Metadata``: ``key base64value`` pairs, comma separated."""
    found: dict[str, str] = {}
    for pair in header.split(","):
        key, _, value = pair.strip().partition(" ")
        try:
            found[key] = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise BadRequest(
                f"Upload-Metadata's {key!r} is not base64 of UTF-8 text",
                code="invalid_upload_metadata",
            ) from None
    return found


@router.post(
    "/uploads",
    status_code=201,
    response_class=Response,
    responses={
        **problems(409, 412, 413, 415),
        200: {"description": "The server holds this file already: nothing to send"},
    },
)
def create_upload(
    principal: CurrentPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
    upload_length: Annotated[int, Header(alias="Upload-Length", ge=0, le=2**62)],
    upload_metadata: Annotated[str, Header(alias="Upload-Metadata", max_length=4096)],
    tus_resumable: TusResumable = None,
) -> Response:
    """Make an upload (tus creation); ``Upload-Metadata`` carries ``sha256`` and
    ``content_type``. ``Location`` is where its bytes go."""
    _tus(tus_resumable)
    metadata = _metadata(upload_metadata)
    missing = [key for key in ("sha256", "content_type") if not metadata.get(key)]
    if missing:
        raise BadRequest(
            f"Upload-Metadata needs {' and '.join(missing)}", code="invalid_upload_metadata"
        )
    progress = uploads.create(
        session,
        principal=principal,
        length=upload_length,
        sha256=metadata["sha256"],
        content_type=metadata["content_type"],
        settings=settings,
        storage=storage,
    )
    if progress.upload_id is None:
        return Response(status_code=200, headers=_headers(progress))
    return Response(
        status_code=201,
        headers={**_headers(progress), "Location": f"{UPLOADS}/{progress.upload_id}"},
    )


@router.head("/uploads/{upload_id}", response_class=Response, responses=problems(412))
def upload_progress(
    upload_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    tus_resumable: TusResumable = None,
) -> Response:
    """How much of the upload has arrived: where to resume after a lost link."""
    _tus(tus_resumable)
    return Response(
        headers=_headers(uploads.progress(session, principal=principal, upload_id=upload_id))
    )


@dataclass
class Chunk:
    """A ``PATCH`` body as it arrived: spooled to disk past 1 MiB, and its size."""

    file: IO[bytes]
    size: int


async def read_chunk(request: Request, settings: SettingsDep) -> AsyncIterator[Chunk]:
    """The body, read before the transaction opens; what arrived of it if the link
    drops halfway (tus keeps it, and the client resumes from there)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != OFFSET_STREAM:
        raise UnsupportedMediaType(
            f"an upload's bytes come as {OFFSET_STREAM}", code="unsupported_media_type"
        )
    checksum = request.headers.get("upload-checksum")
    hasher = None
    expected = None
    if checksum is not None:
        algorithm, _, encoded = checksum.strip().partition(" ")
        if algorithm not in CHECKSUMS:
            raise BadRequest(
                f"Upload-Checksum takes {', '.join(CHECKSUMS)}", code="unsupported_checksum"
            )
        try:
            expected = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise BadRequest(
                "Upload-Checksum's digest is not base64", code="bad_checksum"
            ) from None
        hasher = CHECKSUMS[algorithm]()
    spooled = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)  # noqa: SIM115 (yielded)
    try:
        size = 0
        try:
            async for piece in request.stream():
                size += len(piece)
                if size > settings.max_attachment_bytes:
                    raise PayloadTooLarge("a chunk is at most the largest attachment")
                spooled.write(piece)
                if hasher is not None:
                    hasher.update(piece)
        except ClientDisconnect:
            if hasher is not None:  # a part cut short cannot match its checksum: drop it
                size, hasher = 0, None
                spooled.seek(0)
                spooled.truncate()
        if hasher is not None and hasher.digest() != expected:
            raise ChecksumMismatch("the chunk's bytes do not match its Upload-Checksum")
        spooled.seek(0)
        yield Chunk(spooled, size)
    finally:
        spooled.close()


@router.patch(
    "/uploads/{upload_id}",
    status_code=204,
    response_class=Response,
    responses=problems(409, 412, 413, 415, 460),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {OFFSET_STREAM: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
def append_to_upload(
    upload_id: uuid.UUID,
    chunk: Annotated[Chunk, Depends(read_chunk)],
    principal: CurrentPrincipal,
    session: SessionDep,
    storage: StorageDep,
    upload_offset: Annotated[int, Header(alias="Upload-Offset", ge=0, le=2**62)],
    tus_resumable: TusResumable = None,
) -> Response:
    """Add bytes at ``Upload-Offset``; the last byte checks the file's SHA-256 and type."""
    _tus(tus_resumable)
    progress = uploads.append(
        session,
        principal=principal,
        upload_id=upload_id,
        offset=upload_offset,
        source=chunk.file,
        size=chunk.size,
        storage=storage,
    )
    metrics.record_upload(chunk.size)
    return Response(status_code=204, headers=_headers(progress))


@router.delete(
    "/uploads/{upload_id}", status_code=204, response_class=Response, responses=problems(412)
)
def terminate_upload(
    upload_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    storage: StorageDep,
    tus_resumable: TusResumable = None,
) -> Response:
    """Give up an upload (tus termination)."""
    _tus(tus_resumable)
    uploads.terminate(session, principal=principal, upload_id=upload_id, storage=storage)
    return Response(status_code=204, headers={"Tus-Resumable": TUS_VERSION})


SHA256_PATH = r"^[0-9a-f]{64}$"
CACHE_CONTROL = "private, max-age=31536000"  # a file never changes under its hash


def _visible(session: SessionDep, principal: CurrentPrincipal, sha256: str) -> Attachment:
    """A file the caller may read: one a live record they may see names, or one they
    uploaded. Anyone else: 404, as if it were not held."""
    return access.readable(session, principal=principal, sha256=sha256)


@router.get(
    "/{sha256}",
    response_class=StreamingResponse,
    responses={
        **problems(416),
        200: {
            "content": {"application/octet-stream": {}, "image/jpeg": {}},
            "description": "The file's bytes, or its thumbnail (a JPEG)",
        },
        206: {"description": "The part of the file asked for with Range"},
        304: {"description": "The caller holds this file already (If-None-Match)"},
        422: {
            **problems(422)[422],
            "description": "A thumbnail of a file that is not an image (no_thumbnail), or of "
            "an image that cannot be decoded (thumbnail_failed)",
        },
    },
)
def download(
    sha256: Annotated[str, Path_(pattern=SHA256_PATH)],
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
    storage: StorageDep,
    variant: Annotated[
        Literal["thumbnail"] | None,
        Query(description="thumbnail: a JPEG at most 320 px on its longer side, for images"),
    ] = None,
) -> Response:
    """The file's bytes, whole or the ``Range`` asked for; its ``ETag`` is its hash.
    With ``variant=thumbnail``, a small JPEG of an image instead, made once and kept."""
    held = _visible(session, principal, sha256)
    if variant == "thumbnail":
        return _thumbnail(held, request, storage)
    etag = f'"{held.sha256}"'
    common = {"ETag": etag, "Accept-Ranges": "bytes", "Cache-Control": CACHE_CONTROL}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=common)
    wanted = _range(request.headers.get("range"), held.size)
    if wanted is None:
        return StreamingResponse(
            storage.read(sha256),
            media_type=held.content_type,
            headers={**common, "Content-Length": str(held.size)},
        )
    start, end = wanted
    return StreamingResponse(
        storage.read(sha256, start, end),
        status_code=206,
        media_type=held.content_type,
        headers={
            **common,
            "Content-Length": str(end - start),
            "Content-Range": f"bytes {start}-{end - 1}/{held.size}",
        },
    )


def _thumbnail(held: Attachment, request: Request, storage: Storage) -> Response:
    """The image's thumbnail, with an ``ETag`` of its own (whole only: no ``Range``)."""
    # Made (or found kept) first, so that a file with no thumbnail never answers 304.
    size = thumbnails.thumbnail(storage=storage, sha256=held.sha256, content_type=held.content_type)
    etag = f'"{held.sha256}-{thumbnails.VARIANT}"'
    common = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=common)
    return StreamingResponse(
        storage.read_variant(held.sha256, thumbnails.VARIANT),
        media_type="image/jpeg",
        headers={**common, "Content-Length": str(size)},
    )


class RangeNotSatisfiable(FieldsyncError):
    status, code, title = 416, "range_not_satisfiable", "Range not satisfiable"


def _range(header: str | None, size: int) -> tuple[int, int] | None:
    """One ``bytes=`` range of RFC 9110 as [start, end); None for the whole file."""
    if header is None:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip() != "bytes" or "," in spec:
        return None  # a unit or a multi-range we do not serve: the whole file, as allowed
    first, _, last = spec.strip().partition("-")
    try:
        if first == "":
            start, end = max(0, size - int(last)), size
        else:
            start = int(first)
            end = size if last == "" else min(size, int(last) + 1)
    except ValueError:
        return None
    if start >= size or start >= end:
        raise RangeNotSatisfiable(
            f"the file has {size} bytes", headers={"Content-Range": f"bytes */{size}"}
        )
    return start, end


@router.head("/{sha256}", response_class=Response)
def held(
    sha256: Annotated[str, Path_(pattern=SHA256_PATH)],
    principal: CurrentPrincipal,
    session: SessionDep,
) -> Response:
    """Whether the server holds the file (and the caller may read it)."""
    found = _visible(session, principal, sha256)
    return Response(headers={"Content-Length": str(found.size), "ETag": f'"{found.sha256}"'})
