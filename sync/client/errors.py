"""What the reference device client raises when sync fails: nothing local is lost by any.

``SyncError`` is every refusal; ``Unreachable``, ``AuthFailed`` and ``AppTooOld`` are
the three a tablet acts on (try again later; enroll again; update the app),
``NotEnrolled`` the state file with no device.
"""

from __future__ import annotations

from pathlib import Path


class SyncError(Exception):
    """The server refused a request, or could not be reached; nothing local was lost."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


class Unreachable(SyncError):
    """Network failures or ``5xx`` answers outlasted the retries; try again later."""


class AuthFailed(SyncError):
    """The device's tokens are refused for good (revoked, deactivated, replayed):
    it must be enrolled again (``enroll`` with a new code). Its outbox is kept."""


class AppTooOld(SyncError):
    """The server no longer takes this client's version of the data model (``426
    app_too_old``): update the app, then sync again. Nothing was sent; the outbox is
    kept."""


class NotEnrolled(AuthFailed):
    """The state file holds no device yet: ``enroll(code)`` first."""

    def __init__(self, state_path: Path) -> None:
        super().__init__(f"{state_path} holds no enrolled device: enroll it with a code first")


__all__ = ["AppTooOld", "AuthFailed", "NotEnrolled", "SyncError", "Unreachable"]
