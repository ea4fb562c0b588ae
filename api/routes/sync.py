"""The sync protocol: push and pull for devices, the rejected changes for admins."""

import json
import math
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from api.body import read_body
from api.deps import Admin, CurrentPrincipal, SessionDep, SettingsDep
from schemas.sync import DeferredRead, PullResponse, PushRequest, PushResponse, RejectedChange
from sync import pull as pulling
from sync import push as pushing
from sync import rejected
from sync.errors import PayloadTooLarge

router = APIRouter(prefix="/sync", tags=["sync"])


@dataclass(frozen=True)
class Batch:
    request: PushRequest
    prepared: dict[uuid.UUID, pushing.Prepared]


async def read_batch(request: Request, settings: SettingsDep) -> Batch:
    """The push body, read, parsed and prepared *before* the request's transaction
    opens: a tablet trickling 10 MiB over 2G must not hold the database's write lock,
    and what needs no database (parsing, hashing, validating creates) is done by
    several requests at once. The CPU-bound part runs off the event loop."""
    raw = await read_body(request, settings.max_body_bytes)
    return await run_in_threadpool(_parse_batch, raw, settings.max_batch)


def _parse_batch(raw: bytes, max_batch: int) -> Batch:
    try:
        document: Any = json.loads(raw, parse_constant=_not_json, parse_float=_finite)
    except (ValueError, UnicodeDecodeError):
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body",), "msg": "not JSON"}]
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
    return Batch(batch, pushing.prepare(batch))


def _not_json(constant: str) -> Any:
    """NaN and Infinity: Python reads them, JSON has no such thing."""
    raise ValueError(f"{constant} is not JSON")


def _finite(text: str) -> float:
    """A number too large for a float (1e999) is refused, not read as infinity."""
    value = float(text)
    if value in (math.inf, -math.inf):
        raise ValueError(f"{text} is too large")
    return value


@router.post(
    "/push",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": PushRequest.model_json_schema()}},
        }
    },
)
async def push(
    # The batch is declared first, so it is read before the session dependency opens.
    batch: Annotated[Batch, Depends(read_batch)],
    principal: CurrentPrincipal,
    session: SessionDep,
    settings: SettingsDep,
) -> PushResponse:
    """A device's batch of changes (``Content-Encoding: gzip`` welcome): one result per
    change, in the order sent, answered only once all of it is committed."""
    return await run_in_threadpool(
        pushing.push,
        session,
        principal=principal,
        batch=batch.request,
        settings=settings,
        prepared=batch.prepared,
    )


@router.get("/pull", response_model=PullResponse)
def pull(
    principal: CurrentPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    cursor: Annotated[str | None, Query(max_length=4096)] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """The records in the device's scope that changed after ``cursor`` (none: all of
    them), oldest change first; ``410 cursor_reset`` if the cursor cannot be served.

    A page may hold fewer changes than ``limit`` when they are very large; ``has_more``
    says whether more remain."""
    # The page comes already written as JSON (see sync.pull): answered as it is, not
    # validated and serialised again; response_model still describes it in OpenAPI.
    page = pulling.pull(session, principal=principal, cursor=cursor, limit=limit, settings=settings)
    return Response(content=page, media_type="application/json")


@router.get("/rejected")
def list_rejected(
    _admin: Admin,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[RejectedChange]:
    """Changes that were rejected, newest first, with their reasons and content."""
    return rejected.list_rejected(session, limit=limit, offset=offset)


@router.get("/deferred")
def list_deferred(
    _admin: Admin,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[DeferredRead]:
    """Changes still waiting for a record the server has not received, oldest first,
    with what each waits for."""
    return rejected.list_deferred(session, limit=limit, offset=offset)
