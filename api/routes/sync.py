"""The sync protocol: push and pull for devices, the rejected changes for admins."""

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlmodel import Session

from api import metrics
from api.body import JSONRoute, check_json_media_type, parse_json, read_body
from api.deps import Admin, CurrentPrincipal, EngineDep, SessionDep, SettingsDep
from api.errors import problems
from schemas.attachments import MissingAttachmentPage
from schemas.queries import Paging
from schemas.sync import (
    MAX_VERSION,
    DeferredPage,
    HeldChangesQuery,
    PullResponse,
    PushRequest,
    PushResponse,
    RejectedPage,
)
from schemas.track import read_sent_points
from schemas.types import utcnow
from sync.accounts import contact
from sync.attachments import access
from sync.catalog import CATALOG
from sync.engine import pull as pulling
from sync.engine import push as pushing
from sync.engine import rejected, versions
from sync.engine.prepare import Prepared, prepare
from sync.engine.spent import Spent
from sync.platform.errors import Forbidden, PayloadTooLarge

router = APIRouter(route_class=JSONRoute, prefix="/sync", tags=["sync"])

# A bound for the document and the parser; the page is capped lower, at
# FIELDSYNC_PULL_MAX_LIMIT (5000 by default), which a larger limit is lowered to.
MAX_PULL_LIMIT = 1_000_000


@dataclass(frozen=True)
class Batch:
    request: PushRequest
    prepared: dict[uuid.UUID, Prepared]
    spent: Spent  # the CPU of each phase, parsing first (``sync.engine.spent``)


async def read_batch(request: Request, settings: SettingsDep) -> Batch:
    """The push body, read, parsed and prepared *before* the request's transaction
    opens: a tablet trickling 10 MiB over 2G must not hold the database's write lock,
    and what needs no database (parsing, hashing, validating creates) is done by
    several requests at once. The CPU-bound part runs off the event loop."""
    check_json_media_type(request)
    raw = await read_body(request, settings.max_body_bytes)
    return await run_in_threadpool(_parse_batch, raw, settings.max_batch)


def _parse_batch(raw: bytes, max_batch: int) -> Batch:
    spent = Spent()
    try:
        document: Any = parse_json(raw, reading=read_sent_points)
    except ValueError as error:
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body",), "msg": f"not JSON: {error}"}]
        ) from None
    changes = document.get("changes") if isinstance(document, dict) else None
    if isinstance(changes, list) and len(changes) > max_batch:
        raise PayloadTooLarge(
            f"a batch holds at most {max_batch} changes; send smaller ones",
            code="batch_too_large",
        )
    try:
        batch = PushRequest.model_validate(document)
    except ValidationError as error:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in error.errors()]
        ) from None
    prepared = prepare(batch, CATALOG)
    spent.lap("parse")
    return Batch(batch, prepared, spent)


def _push_and_commit(session: Session, *, spent: Spent, **batch: Any) -> PushResponse:
    """Apply the batch and commit it at once, in the same thread. Its last statements
    take the sync clock's row, which every other writer then waits for until this
    commit (``sync.engine.changelog``): committed by the session dependency instead,
    the commit came only after a trip back through the event loop, which under load
    held the clock three times as long as the writes themselves."""
    answer = pushing.push(session, spent=spent, **batch)
    session.commit()
    spent.lap("commit")
    return answer


# The body's schema is added to the OpenAPI document by ``api.openapi``.
@router.post("/push", responses=problems(413, 415, 426))
async def push(
    # The batch is declared first, so it is read before the session dependency opens.
    batch: Annotated[Batch, Depends(read_batch)],
    principal: CurrentPrincipal,
    session: SessionDep,
    settings: SettingsDep,
) -> PushResponse:
    """A device's batch of changes (``Content-Encoding: gzip`` welcome): one result per
    change, in the order sent, answered only once all of it is committed."""
    answer = await run_in_threadpool(
        _push_and_commit,
        session,
        catalog=CATALOG,
        principal=principal,
        batch=batch.request,
        settings=settings,
        prepared=batch.prepared,
        spent=batch.spent,
    )
    metrics.record_push(answer, batch.spent)
    return answer


@router.get("/pull", response_model=PullResponse, responses=problems(410, 426))
def pull(
    principal: CurrentPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    engine: EngineDep,
    cursor: Annotated[str | None, Query(max_length=4096)] = None,
    limit: Annotated[int | None, Query(ge=1, le=MAX_PULL_LIMIT)] = None,
    schema_version: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None,
) -> Response:
    """The records in the device's scope that changed after ``cursor`` (none: all of
    them), oldest change first; ``410 cursor_reset`` if the cursor cannot be served.

    Records are written in the version of the data model ``schema_version`` asks for
    (default: the server's current one); ``426 app_too_old`` for one it no longer
    answers in. A page may hold fewer changes than ``limit`` when they are very large;
    ``has_more`` says whether more remain."""
    try:
        version = versions.pull_version(schema_version, settings=settings)
    except versions.AppTooOld:
        if principal.device_id is not None:
            contact.note_too_old(engine, principal.device_id, now=utcnow())
        raise
    # The page comes already written as JSON (see sync.engine.pull): answered as it is, not
    # validated and serialised again; response_model still describes it in OpenAPI.
    page = pulling.pull(
        session,
        principal=principal,
        cursor=cursor,
        limit=limit,
        settings=settings,
        schema_version=version,
    )
    contact.note_pull(engine, page.note, seq=page.seq, caught_up=page.caught_up, now=utcnow())
    metrics.record_pull(page.changes)
    return Response(content=page.body, media_type="application/json")


@router.get("/missing-attachments", responses=problems(403))
def missing_attachments(
    query: Annotated[Paging, Query()], principal: CurrentPrincipal, session: SessionDep
) -> MissingAttachmentPage:
    """The files this device named in its changes and has not sent yet, the longest
    owed first: upload each (``/attachments/uploads``). A device's token only."""
    if principal.device_id is None:
        raise Forbidden("only a device owes files; use its token", code="device_required")
    return access.owed_by(session, device_id=principal.device_id, paging=query)


@router.get("/rejected")
def list_rejected(
    query: Annotated[HeldChangesQuery, Query()], _admin: Admin, session: SessionDep
) -> RejectedPage:
    """Changes that were rejected, newest first, with their reasons and content."""
    return rejected.list_rejected(session, query=query)


@router.get("/deferred")
def list_deferred(
    query: Annotated[HeldChangesQuery, Query()], _admin: Admin, session: SessionDep
) -> DeferredPage:
    """Changes still waiting for a record the server has not received, oldest first,
    with what each waits for."""
    return rejected.list_deferred(session, query=query)
