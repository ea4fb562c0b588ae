"""Passwords, access tokens and one-time secrets.

Access tokens are short-lived JWTs signed with HS256 and nothing else: the algorithm
is pinned on decode, so ``alg: none`` and algorithm-confusion tokens are refused, and
``exp``, ``iat``, ``iss``, ``aud``, ``sub`` and ``fam`` must all be present. A token
only says *who* (user, device, sign-in family); role and scope are read from the
database on every request. Refresh tokens and enrollment codes are random secrets
stored only as their SHA-256.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from sync.platform.settings import Settings

ALGORITHM = "HS256"
ACCESS = "access"
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "fam", "typ"]
CLOCK_LEEWAY_SECONDS = 10

# Crockford's base32 without I, L, O, U: nothing to misread from a screen or paper.
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 16  # 80 random bits, shown as XXXX-XXXX-XXXX-XXXX


@lru_cache(maxsize=4)
def _hasher(time_cost: int, memory_kib: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)


def hash_password(password: str, settings: Settings) -> str:
    return _hasher(settings.argon2_time_cost, settings.argon2_memory_kib).hash(password)


def verify_password(password: str, password_hash: str | None, settings: Settings) -> bool:
    """True if ``password`` matches. With no hash (no such user) it still spends the time
    of a real check, so response times do not tell which usernames exist."""
    hasher = _hasher(settings.argon2_time_cost, settings.argon2_memory_kib)
    if password_hash is None:
        hasher.hash(password)
        return False
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_refresh_secret() -> str:
    return secrets.token_urlsafe(32)


def new_enrollment_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, CODE_LENGTH, 4))


def normalize_enrollment_code(code: str) -> str:
    """What a person typed, as it was issued: case, spaces and dashes do not matter."""
    raw = "".join(ch for ch in code.upper() if ch.isalnum())
    raw = raw.replace("O", "0").replace("I", "1").replace("L", "1")
    return "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    family_id: uuid.UUID
    device_id: uuid.UUID | None
    expires_at: datetime


class InvalidAccessToken(Exception):
    """The token is not one this service issued, or it expired."""


def issue_access_token(
    *,
    user_id: uuid.UUID,
    family_id: uuid.UUID,
    device_id: uuid.UUID | None,
    now: datetime,
    settings: Settings,
) -> str:
    claims: dict[str, object] = {
        "iss": settings.token_issuer,
        "aud": settings.token_audience,
        "sub": str(user_id),
        "fam": str(family_id),
        "typ": ACCESS,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=settings.access_token_minutes)).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    if device_id is not None:
        claims["dev"] = str(device_id)
    return jwt.encode(claims, settings.signing_key(), algorithm=ALGORITHM)


def decode_access_token(token: str, settings: Settings) -> AccessClaims:
    try:
        claims = jwt.decode(
            token,
            settings.signing_key(),
            algorithms=[ALGORITHM],
            audience=settings.token_audience,
            issuer=settings.token_issuer,
            leeway=CLOCK_LEEWAY_SECONDS,
            options={"require": REQUIRED_CLAIMS, "verify_signature": True},
        )
        if claims["typ"] != ACCESS:
            raise InvalidAccessToken("not an access token")
        device = claims.get("dev")
        return AccessClaims(
            user_id=uuid.UUID(claims["sub"]),
            family_id=uuid.UUID(claims["fam"]),
            device_id=uuid.UUID(device) if device is not None else None,
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        )
    except (jwt.PyJWTError, ValueError, TypeError, KeyError) as error:
        raise InvalidAccessToken(str(error)) from error
