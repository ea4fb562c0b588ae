"""The pull cursor: opaque to devices, signed, and self-contained.

It holds the database's epoch, the change number the device has everything up to,
the scope the device had when it got that far (role, sectors, communities), and,
while a scope change is being caught up, the phase and position of that catch-up.
It is signed with the server's key, so a device cannot hand back a forged one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass, field
from typing import Literal

from sync.platform.errors import BadRequest

Phase = Literal["live", "evict", "backfill"]
SIGNATURE_BYTES = 16


@dataclass(frozen=True)
class Scope:
    role: str
    sector_ids: frozenset[uuid.UUID] = field(default_factory=frozenset)
    community_ids: frozenset[uuid.UUID] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Cursor:
    epoch: uuid.UUID
    seq: int  # every change numbered up to here, in ``scope``, has been handed out
    scope: Scope
    phase: Phase = "live"
    position: int = 0  # within a catch-up phase: the last change number handed out
    target: Scope | None = None  # the scope being caught up to
    # Targets of catch-ups cut short by another scope change: the device may hold
    # records of ``scope`` or of any of these, and surely holds those in all of them.
    also: tuple[Scope, ...] = ()


class InvalidCursor(BadRequest):
    code = "invalid_cursor"


def encode(cursor: Cursor, key: str) -> str:
    body = {
        "e": cursor.epoch.hex,
        "s": cursor.seq,
        "c": _scope(cursor.scope),
        "p": cursor.phase,
        "k": cursor.position,
    }
    if cursor.target is not None:
        body["t"] = _scope(cursor.target)
    if cursor.also:
        body["a"] = [_scope(scope) for scope in cursor.also]
    payload = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    signature = hmac.new(key.encode(), payload, hashlib.sha256).digest()[:SIGNATURE_BYTES]
    return base64.urlsafe_b64encode(signature + payload).decode().rstrip("=")


def decode(token: str, key: str) -> Cursor:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        signature, payload = raw[:SIGNATURE_BYTES], raw[SIGNATURE_BYTES:]
        expected = hmac.new(key.encode(), payload, hashlib.sha256).digest()[:SIGNATURE_BYTES]
        if not hmac.compare_digest(signature, expected):
            raise ValueError("bad signature")
        body = json.loads(payload)
        return Cursor(
            epoch=uuid.UUID(body["e"]),
            seq=int(body["s"]),
            scope=_unscope(body["c"]),
            phase=body["p"],
            position=int(body["k"]),
            target=_unscope(body["t"]) if "t" in body else None,
            also=tuple(_unscope(scope) for scope in body.get("a", [])),
        )
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidCursor("this cursor was not made by this server") from error


def _scope(scope: Scope) -> list[object]:
    return [
        scope.role,
        sorted(s.hex for s in scope.sector_ids),
        sorted(c.hex for c in scope.community_ids),
    ]


def _unscope(raw: list[object]) -> Scope:
    role, sectors, communities = raw
    if not (isinstance(role, str) and isinstance(sectors, list) and isinstance(communities, list)):
        raise ValueError("malformed scope")
    return Scope(
        role=role,
        sector_ids=frozenset(uuid.UUID(s) for s in sectors),
        community_ids=frozenset(uuid.UUID(c) for c in communities),
    )
