"""Every error as ``application/problem+json`` (RFC 9457) with a stable ``code``.

Services raise ``sync.platform.errors.FieldsyncError`` subclasses; FastAPI's own validation
errors and Starlette's routing errors are rendered the same way here, so a client
never sees another shape. The codes are listed in ``docs/errors.md``.
"""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from schemas.problem import FieldError, Problem
from sync.platform.database import unavailable
from sync.platform.errors import FieldsyncError

log = logging.getLogger("fieldsync")

PROBLEM_JSON = "application/problem+json"

HTTP_CODES = {
    400: ("bad_request", "Bad request"),
    401: ("not_authenticated", "Not authenticated"),
    403: ("forbidden", "Forbidden"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    406: ("not_acceptable", "Not acceptable"),
    413: ("payload_too_large", "Payload too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
}


def problem_response(
    request: Request,
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = Problem(
        type=f"urn:fieldsync:problem:{code}",
        title=title,
        status=status,
        detail=detail,
        code=code,
        instance=request.url.path,
        errors=errors,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


async def _fieldsync_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, FieldsyncError)
    errors = (
        [FieldError(field=e.field, code=e.code, message=e.message) for e in error.errors]
        if error.errors
        else None
    )
    return problem_response(
        request,
        status=error.status,
        code=error.code,
        title=error.title,
        detail=error.detail,
        errors=errors,
        headers=error.headers,
    )


def _field_name(location: tuple[Any, ...] | list[Any]) -> str:
    parts = list(location)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(str(part) for part in parts) or "body"


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    raw = error.errors()
    invalid = next((e for e in raw if e.get("type") == "json_invalid"), None)
    if invalid is not None:
        reason = (invalid.get("ctx") or {}).get("error") or invalid.get("msg")
        return problem_response(
            request,
            status=400,
            code="malformed_json",
            title="Malformed JSON",
            detail=f"the request body is not valid JSON ({reason})",
        )
    errors = [
        FieldError(field=_field_name(e.get("loc", ())), code=e["type"], message=e["msg"])
        for e in raw
    ]
    return problem_response(
        request,
        status=422,
        code="validation_failed",
        title="Validation failed",
        detail="; ".join(f"{e.field}: {e.message}" for e in errors[:5]),
        errors=errors,
    )


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    code, title = HTTP_CODES.get(error.status_code, ("http_error", "HTTP error"))
    return problem_response(
        request,
        status=error.status_code,
        code=code,
        title=title,
        detail=str(error.detail),
        headers=dict(error.headers) if error.headers else None,
    )


async def _integrity_error(request: Request, error: Exception) -> JSONResponse:
    # Services check uniqueness first and answer 409 themselves; this catches the
    # request that raced another past that check and met the database's constraint.
    log.info("integrity error on %s %s: %s", request.method, request.url.path, error)
    return problem_response(
        request,
        status=409,
        code="already_exists",
        title="Conflict",
        detail="a record with the same unique name, code or key was just made; nothing was kept",
    )


# How long a client should wait before trying again when the database does not answer.
RETRY_AFTER_UNAVAILABLE_SECONDS = 5


async def _database_error(request: Request, error: Exception) -> JSONResponse:
    if not unavailable(error):
        return await _unexpected_error(request, error)
    log.warning(
        "the database does not answer on %s %s: %s", request.method, request.url.path, error
    )
    return problem_response(
        request,
        status=503,
        code="database_unavailable",
        title="Service unavailable",
        detail="the database does not answer; nothing of this request was kept, try again",
        headers={"Retry-After": str(RETRY_AFTER_UNAVAILABLE_SECONDS)},
    )


async def _unexpected_error(request: Request, error: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
    return problem_response(
        request,
        status=500,
        code="internal_error",
        title="Internal error",
        detail="the server failed; nothing of this request was kept",
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(FieldsyncError, _fieldsync_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(Exception, _unexpected_error)


# For the OpenAPI document: what each error status means, in one place.
PROBLEM_DESCRIPTIONS: dict[int, str] = {
    400: "The body is not JSON (or not within its limits: UTF-8, 64 levels deep)",
    401: "Not authenticated: no, a bad, or a revoked token",
    403: "The caller's role may not do this",
    404: "No such record, or not in the caller's scope",
    408: "The body stalled; the connection is closed",
    409: "The request conflicts with the record's state, or takes a unique name, code or key",
    410: "The cursor cannot be served: push, then pull from no cursor",
    413: "The body is over its size limit; nothing of it was read",
    412: "The request does not say Tus-Resumable: 1.0.0",
    415: "Not JSON in UTF-8, a Content-Encoding other than gzip, or a file of a type not kept",
    416: "The Range asked for lies past the end of the file",
    460: "The bytes do not match their checksum (tus); the upload or chunk was not kept",
    422: "The request does not validate",
    426: "The tablet's app is too old for the server's data model (app_too_old): update it",
    429: "Too many failed attempts from this address; wait Retry-After seconds",
    503: "The database does not answer; try again after Retry-After seconds",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route (or the app): each status answered as problem+json."""
    return {
        status: {
            "model": Problem,
            "content": {PROBLEM_JSON: {}},
            "description": PROBLEM_DESCRIPTIONS[status],
        }
        for status in statuses
    }


# Every operation may answer these: a bad body, a token refused, a role or scope
# refused, a validation error, a database that does not answer.
PROBLEM_RESPONSES = problems(400, 401, 403, 404, 422, 503)
