"""Errors the service raises, each carrying its HTTP status and a stable machine code.

    FieldsyncError                  500 internal_error (never raised on purpose)
    ├── BadRequest                  400
    ├── Unauthorized                401 (invalid_credentials, invalid_token, ...)
    ├── Forbidden                   403 forbidden
    ├── NotFound                    404 not_found
    ├── Conflict                    409 (already_exists, ...)
    ├── Gone                        410
    ├── PayloadTooLarge             413
    ├── UnsupportedMediaType        415 unsupported_encoding
    ├── Unprocessable               422 validation_failed
    ├── UpgradeRequired             426 upgrade_required (app_too_old)
    ├── TooManyRequests             429 too_many_attempts (with retry_after)
    ├── ServiceUnavailable          503 not_ready
    └── ChecksumMismatch            460 checksum_mismatch (tus)

``api/errors.py`` renders every one as ``application/problem+json``; the codes are
listed, with their meaning, in ``docs/errors.md``. ``sync`` knows nothing of HTTP
beyond these numbers.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldProblem:
    field: str
    code: str
    message: str


class FieldsyncError(Exception):
    status: int = 500
    code: str = "internal_error"
    title: str = "Internal error"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        errors: list[FieldProblem] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.errors = errors
        self.headers = headers or {}


class BadRequest(FieldsyncError):
    status, code, title = 400, "bad_request", "Bad request"


class Unauthorized(FieldsyncError):
    status, code, title = 401, "invalid_token", "Not authenticated"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail, code=code, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(FieldsyncError):
    status, code, title = 403, "forbidden", "Forbidden"


class NotFound(FieldsyncError):
    status, code, title = 404, "not_found", "Not found"


class Conflict(FieldsyncError):
    status, code, title = 409, "conflict", "Conflict"


class Gone(FieldsyncError):
    status, code, title = 410, "gone", "Gone"


class PayloadTooLarge(FieldsyncError):
    status, code, title = 413, "payload_too_large", "Payload too large"


class Unprocessable(FieldsyncError):
    status, code, title = 422, "validation_failed", "Validation failed"


class UpgradeRequired(FieldsyncError):
    """The client must be updated before the server can take its request (a tablet's
    app too old for the data model)."""

    status, code, title = 426, "upgrade_required", "Upgrade required"


class TooManyRequests(FieldsyncError):
    status, code, title = 429, "too_many_attempts", "Too many attempts"

    def __init__(self, detail: str, *, retry_after_seconds: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after_seconds))})
        self.retry_after_seconds = retry_after_seconds


class ServiceUnavailable(FieldsyncError):
    status, code, title = 503, "not_ready", "Service not ready"


class KeepsChanges:
    """Mixed into an error whose transaction must still commit: the request fails, but
    what it found out is kept (a failed login counted, a stolen token family revoked)."""

    keeps_changes = True


class UnsupportedMediaType(FieldsyncError):
    status, code, title = 415, "unsupported_encoding", "Unsupported media type"


class ChecksumMismatch(FieldsyncError):
    """tus's checksum extension: the bytes do not hash to what the client declared."""

    status, code, title = 460, "checksum_mismatch", "Checksum mismatch"
