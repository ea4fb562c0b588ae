"""Sessions of the web console: a person signed in at a browser.

The browser keeps a random secret in an ``HttpOnly`` cookie; the database keeps its
SHA-256 with the user, an anti-forgery token for the session's forms, and when it was
last used. Every request reads the session and its user as they are now, so a
session ends for every server process at once when the person signs out, leaves it
idle for ``console_idle_minutes``, reaches ``console_session_hours``, or is
deactivated (or demoted to a role the console does not serve: the pages check the
role on every request, as the API does).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select, update

from schemas import ConsoleSession, User
from sync.accounts import security
from sync.platform.settings import Settings

# A session's last use is written at most this often: reading a page writes nothing
# most of the time.
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class Began:
    """A new session and the secret its cookie carries (shown once, kept hashed)."""

    secret: str
    session: ConsoleSession


def begin(session: Session, *, user: User, settings: Settings, now: datetime) -> Began:
    """A new console session for ``user``, signed in just now."""
    secret = secrets.token_urlsafe(32)
    made = ConsoleSession(
        secret_hash=security.sha256(secret),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=settings.console_session_hours),
    )
    session.add(made)
    session.flush()
    return Began(secret=secret, session=made)


def current(
    session: Session, *, secret: str, settings: Settings, now: datetime
) -> tuple[ConsoleSession, User] | None:
    """The live session this cookie secret names, with its active user; None if it
    ended, expired, went idle, or its user is deactivated."""
    if not secret or len(secret) > 128:
        return None
    row = session.exec(
        select(ConsoleSession, User)
        .join(User, col(User.id) == col(ConsoleSession.user_id))
        .where(col(ConsoleSession.secret_hash) == security.sha256(secret))
    ).first()
    if row is None:
        return None
    found, user = row
    idle = timedelta(minutes=settings.console_idle_minutes)
    if (
        found.ended_at is not None
        or found.expires_at <= now
        or found.last_seen_at + idle <= now
        or not user.active
    ):
        return None
    return found, user


def needs_touch(found: ConsoleSession, now: datetime) -> bool:
    return found.last_seen_at + TOUCH_EVERY <= now


def touch(session: Session, *, session_id: object, now: datetime) -> None:
    """Note that the session was used now (it is not idle)."""
    session.exec(
        update(ConsoleSession).where(col(ConsoleSession.id) == session_id).values(last_seen_at=now)
    )


def end(session: Session, *, session_id: object, now: datetime) -> None:
    """Sign out: the session's cookie signs no one in from now on, on any process."""
    session.exec(
        update(ConsoleSession)
        .where(col(ConsoleSession.id) == session_id, col(ConsoleSession.ended_at).is_(None))
        .values(ended_at=now)
    )


def forget_before(session: Session, *, cutoff: datetime) -> None:
    """Drop sessions that expired before ``cutoff``: nothing can revive them."""
    session.exec(
        ConsoleSession.__table__.delete().where(  # type: ignore[attr-defined]
            col(ConsoleSession.expires_at) < cutoff
        )
    )
