"""Signing in: password logins (throttled), refresh-token rotation, and who a token names.

Every check that can lock someone out is made in the database, so it holds across
any number of server processes: failed logins are rows, used refresh tokens are
rows, revoked devices and families are rows.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, delete, select, update

from schemas import (
    Device,
    LoginFailure,
    RefreshFamily,
    RefreshToken,
    User,
    UserCommunity,
    UserSector,
)
from schemas.accounts import TokenPair
from schemas.types import utcnow
from sync.accounts import security, throttle
from sync.accounts.principal import Principal
from sync.platform.errors import KeepsChanges, TooManyRequests, Unauthorized
from sync.platform.settings import Settings

# The longest username an account can have (``user.username``, ``login_failure.username``).
USERNAME_MAX_LENGTH = 64
# No password is longer (``schemas.accounts.Password``); longer ones are not hashed.
PASSWORD_MAX_LENGTH = 256


class InvalidCredentials(KeepsChanges, Unauthorized):
    code = "invalid_credentials"


class RefreshTokenReplayed(KeepsChanges, Unauthorized):
    code = "refresh_token_reused"


def login(
    session: Session,
    *,
    username: str,
    password: str,
    client_ip: str | None,
    settings: Settings,
) -> TokenPair:
    """A token pair for a person at a browser or a script (``signed_in`` says who)."""
    user = signed_in(
        session, username=username, password=password, client_ip=client_ip, settings=settings
    )
    return start_family(session, user_id=user.id, device_id=None, now=utcnow(), settings=settings)


def signed_in(
    session: Session,
    *,
    username: str,
    password: str,
    client_ip: str | None,
    settings: Settings,
) -> User:
    """The active user whose username and password these are: for a token pair, or a
    console session. Throttled.

    Failures are counted per (username, client address): ``login_max_failures`` of
    them in the window lock that pair only, so a guesser locks a username out at the
    guesser's own address and nowhere else. They are also counted per address across
    usernames: ``login_address_max_failures`` lock the address, so one address cannot
    try a likely password on every username. A locked attempt is refused even with the
    right password, so that guessing learns nothing. Each failure is written in the
    request that makes it and erased only by a success of the same pair; the count is
    taken under a lock on the address (which both counts are about), so it is exact
    across processes and on both databases.

    A deactivated account with the right password is answered exactly as a wrong
    password: the same ``invalid_credentials``, after the same hash check, and counted
    as a failure. Were it not counted, a guesser could tell the right password from
    the wrong ones by which attempt did not bring the lock closer.
    """
    username = username.strip().lower()
    if (
        len(username) > USERNAME_MAX_LENGTH
        or "\x00" in username
        or len(password) > PASSWORD_MAX_LENGTH
    ):
        # No account has such a name, and PostgreSQL could not even compare or store it.
        security.verify_password(password, None, settings)
        raise InvalidCredentials("wrong username or password")
    now = utcnow()
    window = timedelta(seconds=settings.login_window_seconds)
    throttle.lock(session, f"login:{client_ip or ''}")
    from_address = throttle.at_address(LoginFailure.client_ip, client_ip)
    pair = throttle.retry_after(
        session,
        failed_at=LoginFailure.failed_at,
        where=from_address & (col(LoginFailure.username) == username),
        limit=settings.login_max_failures,
        window=window,
        now=now,
    )
    address = throttle.retry_after(
        session,
        failed_at=LoginFailure.failed_at,
        where=from_address,
        limit=settings.login_address_max_failures,
        window=window,
        now=now,
    )
    if pair is not None or address is not None:
        raise TooManyRequests(
            "too many failed logins from this address; try again later",
            retry_after_seconds=max(pair or 0, address or 0),
        )

    user = session.exec(select(User).where(User.username == username)).first()
    verified = security.verify_password(password, user.password_hash if user else None, settings)
    if user is None or not verified or not user.active:
        session.add(LoginFailure(username=username, failed_at=now, client_ip=client_ip))
        throttle.forget_before(session, model=LoginFailure, cutoff=now - window)
        raise InvalidCredentials("wrong username or password")
    # Only this pair's count, and only within the window: older rows are the sweep's,
    # and two transactions deleting the same rows could deadlock on PostgreSQL.
    session.exec(
        delete(LoginFailure).where(
            from_address,
            col(LoginFailure.username) == username,
            col(LoginFailure.failed_at) > now - window,
        )
    )
    return user


def start_family(
    session: Session,
    *,
    user_id: uuid.UUID,
    device_id: uuid.UUID | None,
    now: datetime,
    settings: Settings,
) -> TokenPair:
    """A new sign-in: a family and its first refresh token."""
    family = RefreshFamily(user_id=user_id, device_id=device_id, created_at=now)
    session.add(family)
    session.flush()
    return _issue_pair(session, family=family, now=now, settings=settings)


def _issue_pair(
    session: Session, *, family: RefreshFamily, now: datetime, settings: Settings
) -> TokenPair:
    secret = security.new_refresh_secret()
    lifetime = timedelta(days=settings.refresh_token_days)
    session.add(
        RefreshToken(
            family_id=family.id,
            token_hash=security.sha256(secret),
            issued_at=now,
            expires_at=now + lifetime,
        )
    )
    access = security.issue_access_token(
        user_id=family.user_id,
        family_id=family.id,
        device_id=family.device_id,
        now=now,
        settings=settings,
    )
    return TokenPair(
        access_token=access,
        refresh_token=secret,
        expires_in=settings.access_token_minutes * 60,
        refresh_expires_in=int(lifetime.total_seconds()),
    )


def refresh(session: Session, *, refresh_token: str, settings: Settings) -> TokenPair:
    """Rotate: the token presented dies and a new pair is issued in the same family.

    A token that was already used is a replay, the sign of a stolen token: the whole
    family is revoked, the thief's and the owner's tokens alike.
    """
    now = utcnow()
    row = session.exec(
        select(RefreshToken, RefreshFamily, User)
        .join(RefreshFamily, col(RefreshFamily.id) == RefreshToken.family_id)
        .join(User, col(User.id) == RefreshFamily.user_id)
        .where(RefreshToken.token_hash == security.sha256(refresh_token))
    ).first()
    if row is None:
        raise Unauthorized("unknown refresh token", code="invalid_refresh_token")
    token, family, user = row
    # Deactivating also revokes the user's families: say why, not just that.
    if not user.active:
        raise Unauthorized("this account is deactivated", code="account_disabled")
    # Revoking a device also revokes its families: say why (the device), not just that.
    if family.device_id is not None:
        device = session.get(Device, family.device_id)
        if device is None or device.revoked_at is not None:
            raise Unauthorized("this device was revoked", code="device_revoked")
    if family.revoked_at is not None:
        raise Unauthorized("this sign-in was revoked", code="token_revoked")
    claimed = session.exec(
        update(RefreshToken)
        .where(col(RefreshToken.id) == token.id, col(RefreshToken.used_at).is_(None))
        .values(used_at=now)
    )
    if claimed.rowcount != 1:
        revoke_families(session, where=col(RefreshFamily.id) == family.id, reason="replay")
        raise RefreshTokenReplayed(
            "this refresh token was already used; every token of its sign-in is now revoked"
        )
    if token.expires_at <= now:
        raise Unauthorized("the refresh token expired", code="invalid_refresh_token")
    if family.device_id is not None:
        session.exec(
            update(Device).where(col(Device.id) == family.device_id).values(last_seen_at=now)
        )
    return _issue_pair(session, family=family, now=now, settings=settings)


def revoke_families(session: Session, *, where: sa.ColumnElement[bool], reason: str) -> None:
    session.exec(
        update(RefreshFamily)
        .where(where, col(RefreshFamily.revoked_at).is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )


def authenticate(session: Session, *, access_token: str, settings: Settings) -> Principal:
    """The caller an access token names, checked against the database as it is now."""
    try:
        claims = security.decode_access_token(access_token, settings)
    except security.InvalidAccessToken as error:
        raise Unauthorized("the access token is invalid or expired") from error
    row = session.exec(
        select(User, RefreshFamily)
        .join(RefreshFamily, col(RefreshFamily.user_id) == User.id)
        .where(User.id == claims.user_id, RefreshFamily.id == claims.family_id)
    ).first()
    if row is None:
        raise Unauthorized("the access token is invalid or expired")
    user, family = row
    if family.device_id != claims.device_id:
        raise Unauthorized("the access token is invalid or expired")
    # Deactivating also revokes the user's families: say why, not just that.
    if not user.active:
        raise Unauthorized("this account is deactivated", code="account_disabled")
    # Revoking a device also revokes its families: say why (the device), not just that.
    if claims.device_id is not None:
        device = session.get(Device, claims.device_id)
        if device is None or device.revoked_at is not None or device.user_id != user.id:
            raise Unauthorized("this device was revoked", code="device_revoked")
    if family.revoked_at is not None:
        raise Unauthorized("this sign-in was revoked", code="token_revoked")
    return principal_of(session, user, family_id=family.id, device_id=claims.device_id)


def principal_of(
    session: Session, user: User, *, family_id: uuid.UUID | None, device_id: uuid.UUID | None
) -> Principal:
    """``user`` as a caller, with their role and scope as the database holds them now."""
    sector_ids = session.exec(
        select(UserSector.sector_id).where(UserSector.user_id == user.id)
    ).all()
    community_ids = session.exec(
        select(UserCommunity.community_id).where(UserCommunity.user_id == user.id)
    ).all()
    return Principal(
        user_id=user.id,
        username=user.username,
        role=user.role,
        family_id=family_id,
        device_id=device_id,
        sector_ids=frozenset(sector_ids),
        community_ids=frozenset(community_ids),
    )
