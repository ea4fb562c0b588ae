"""Settings, read from ``FIELDSYNC_*`` environment variables (and a ``.env`` file).

No secret has a working default outside development. In ``production`` (the default,
so a forgotten variable fails safe) the server refuses to start without a strong
``FIELDSYNC_SECRET_KEY``. In ``development`` a key is generated once and kept in
``.fieldsync/secret_key`` so that several local processes and restarts share it.
"""

from __future__ import annotations

import os
import secrets
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from schemas.versions import CURRENT, OLDEST
from sync.platform.addresses import trusted_networks

MIN_SECRET_KEY_LENGTH = 32
MIN_SECRET_KEY_CHARACTERS = 12
DEFAULT_DATABASE_URL = "sqlite:///fieldsync.db"
LOCAL_STATE_DIR = Path(".fieldsync")


class Environment(StrEnum):
    development = "development"
    production = "production"


class SettingsError(RuntimeError):
    """Settings that would make the service unsafe or unable to run."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FIELDSYNC_", env_file=".env", extra="ignore", frozen=True
    )

    env: Environment = Environment.production
    database_url: str = DEFAULT_DATABASE_URL
    secret_key: SecretStr | None = None

    access_token_minutes: int = Field(default=15, ge=1, le=24 * 60)
    refresh_token_days: int = Field(default=30, ge=1, le=365)
    enrollment_code_hours: int = Field(default=72, ge=1, le=24 * 30)
    token_issuer: str = "fieldsync"  # noqa: S105 (a name, not a secret)
    token_audience: str = "fieldsync-api"  # noqa: S105

    # Failed logins are counted per (username, client address), so that a guesser locks
    # a username out only at the guesser's own address, and per address across
    # usernames (the budget), so that one address cannot try a password on every name.
    login_max_failures: int = Field(default=5, ge=1)
    login_address_max_failures: int = Field(default=20, ge=1)
    login_window_seconds: int = Field(default=15 * 60, ge=1)
    # Wrong enrollment codes, per client address.
    enrollment_max_failures: int = Field(default=10, ge=1)
    enrollment_window_seconds: int = Field(default=15 * 60, ge=1)
    # Reverse proxies whose X-Forwarded-For is believed (addresses or networks, comma
    # separated); the client address is the socket peer otherwise (sync.platform.addresses).
    trusted_proxies: str = ""

    max_batch: int = Field(default=1000, ge=1)
    # The oldest version of the data model a tablet may push (or pull) in; an app below
    # it is refused with 426 app_too_old. Between 1 and the current version
    # (schemas.versions.CURRENT); docs/schema_versions.md.
    min_schema_version: int = Field(default=OLDEST, ge=OLDEST, le=CURRENT)
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    # Every other body (sign-in, enrollment, an edit): the largest is a few KiB, so
    # 1 MiB refuses a memory-filling body long before it is read (api/limits.py).
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    # A client that stops sending its body for this long gets 408 and is disconnected;
    # one that has not finished its request line and headers in time is disconnected.
    # A tablet on 2G sends its few hundred bytes of headers in well under a second.
    body_timeout_seconds: float = Field(default=60, gt=0)
    header_timeout_seconds: float = Field(default=30, gt=0)
    pull_default_limit: int = Field(default=500, ge=1)
    pull_max_limit: int = Field(default=5000, ge=1)
    # gzip level of answers. 9 costs several times 5's CPU for a few percent fewer
    # bytes (most of a pull's cost, measured); 1 is fastest but 30 % bigger, which a
    # tablet on a 2G link pays for.
    gzip_level: int = Field(default=5, ge=1, le=9)
    # Where the work happens: a date in a filter (``from=2026-03-01``) and a month or
    # a day in a report are this zone's. Alto Mayo is on Peru time (UTC-5, no DST).
    timezone: str = "America/Lima"

    # Attachments: where files live (file:///folder, or s3://bucket/prefix for several
    # server processes; empty: a folder beside the SQLite file, or ./attachments), the
    # endpoint of an S3-compatible store other than AWS, the largest file, and how long
    # an abandoned upload is kept.
    attachments_url: str = ""
    s3_endpoint_url: str | None = None
    max_attachment_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    upload_expiry_hours: int = Field(default=72, ge=1)

    # The web console (/console/): a signed-in person's session ends after this many
    # idle minutes, and after this many hours in any case. Its cookie is Secure (sent
    # over HTTPS only) unless ``console_cookie_secure`` is false; by default it is,
    # outside development.
    console_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    console_session_hours: int = Field(default=12, ge=1, le=24 * 30)
    console_cookie_secure: bool | None = None

    # Watching the service. ``GET /metrics`` (Prometheus) answers only a scraper that
    # sends this token as ``Authorization: Bearer …``; without one it is a 404, never open.
    metrics_token: SecretStr | None = None
    # Log lines on stderr: JSON, one object a line with the request's id, for a log
    # collector; or text, for a person at a terminal.
    log_format: Literal["json", "text"] = "json"

    # The audit chain's anchors (docs/audit.md): the office's Ed25519 key that signs
    # the chain's head (base64 of its 32-byte seed; ``fieldsync audit keygen`` makes
    # one), and the append-only file each anchor is added to (empty: beside an SQLite
    # file, or ./audit-anchors.jsonl).
    audit_signing_key: SecretStr | None = None
    audit_anchor_file: str = ""

    # Argon2id cost. The defaults are argon2-cffi's (RFC 9106 low-memory profile);
    # tests lower them, production should not.
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=8)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(
                f"unknown time zone {name!r} (an IANA name such as America/Lima)"
            ) from error
        return name

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, setting: str) -> str:
        trusted_networks(setting)  # refuse at start what could not be read per request
        return setting

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def secure_cookies(self) -> bool:
        """Whether the console's cookies are sent over HTTPS only."""
        if self.console_cookie_secure is not None:
            return self.console_cookie_secure
        return self.env is not Environment.development

    def anchor_file(self) -> Path:
        """``audit_anchor_file``, or its default beside an SQLite file, else in the
        working folder."""
        if self.audit_anchor_file:
            return Path(self.audit_anchor_file)
        url = make_url(self.database_url)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            database = Path(url.database).resolve()
            return database.parent / f"{database.stem}-audit-anchors.jsonl"
        return Path.cwd() / "audit-anchors.jsonl"

    def attachments_location(self) -> str:
        """``attachments_url``, or its default: ``<database>-attachments`` beside an
        SQLite file, else ``./attachments``."""
        if self.attachments_url:
            return self.attachments_url
        url = make_url(self.database_url)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            database = Path(url.database).resolve()
            return (database.parent / f"{database.stem}-attachments").as_uri()
        return (Path.cwd() / "attachments").as_uri()

    def signing_key(self) -> str:
        """The key that signs tokens; raises ``SettingsError`` where none is safe to use."""
        if self.secret_key is not None:
            key = self.secret_key.get_secret_value()
            if len(key) < MIN_SECRET_KEY_LENGTH:
                raise SettingsError(
                    f"FIELDSYNC_SECRET_KEY must be at least {MIN_SECRET_KEY_LENGTH} characters"
                )
            weakness = key_weakness(key)
            if weakness is not None:
                raise SettingsError(
                    f"FIELDSYNC_SECRET_KEY is too easy to guess: {weakness}. Generate one with "
                    "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
                )
            return key
        if self.env is Environment.development:
            return _local_development_key()
        raise SettingsError(
            "FIELDSYNC_SECRET_KEY is not set. Generate one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(48))'` and set it "
            "(the same value on every server process), or set FIELDSYNC_ENV=development "
            "on a developer's machine."
        )


# Placeholders people leave in a configuration file.
PLACEHOLDERS = ("changeme", "change-me", "change_me", "replaceme", "replace-me", "example")


def key_weakness(key: str) -> str | None:
    """Why a key of the right length is still guessable, or None. A random key of 32
    characters or more (``secrets.token_urlsafe``) uses many characters and repeats no
    piece of itself; a typed one (``changeme-changeme-…``, ``kkkk…``) does."""
    lowered = key.lower()
    for placeholder in PLACEHOLDERS:
        if placeholder in lowered:
            return f"it holds the placeholder {placeholder!r}"
    if len(set(key)) < MIN_SECRET_KEY_CHARACTERS:
        return f"it uses fewer than {MIN_SECRET_KEY_CHARACTERS} different characters"
    pieces: dict[str, int] = {}
    for start in range(len(key) - 3):
        piece = key[start : start + 4]
        pieces[piece] = pieces.get(piece, 0) + 1
        if pieces[piece] >= 3:
            return f"it repeats {piece!r}"
    return None


def _local_development_key() -> str:
    path = LOCAL_STATE_DIR / "secret_key"
    if not path.exists():
        LOCAL_STATE_DIR.mkdir(mode=0o700, exist_ok=True)
        candidate = path.with_suffix(f".{secrets.token_hex(4)}")
        descriptor = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(48))
        # Two processes starting at once: link() refuses to replace, so the first
        # key written wins and every process reads that one.
        try:
            os.link(candidate, path)
        except FileExistsError:
            pass
        finally:
            candidate.unlink()
    return path.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    return Settings()
