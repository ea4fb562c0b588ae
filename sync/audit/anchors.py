"""Anchors: the audit chain's head, signed with the office's Ed25519 key.

Whoever can write the database could rewrite the whole chain from some block on,
hashes and all, and leave a chain that verifies. An anchor stops that: each day the
office signs the head (the last block's number and hash) and sends it out of the
office — an e-mail, a printout, a verifier's inbox. A chain rewritten from before an
anchor no longer has, at that number, the hash that was signed.

``anchor`` writes it three ways: a line appended to the anchor file (JSON, one
anchor a line, flushed to disk), a row of ``audit_anchor`` (listed at ``GET
/audit/anchors``), and the line it prints. What is signed is the anchor's
``statement``: the JSON of its block, hash, time, public key and the chain's form,
keys sorted, no spaces — which a verifier can rebuild from the line alone.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlmodel import Session

from schemas.audit import AnchorRead, AuditAnchor
from sync.platform import chain


class AnchorRefused(Exception):
    """An anchor that cannot be made: no key, a key that is not one, nothing chained."""


def keygen() -> tuple[str, str]:
    """A new signing key: its seed and its public key, each base64."""
    key = Ed25519PrivateKey.generate()
    return _b64(key.private_bytes_raw()), public_key_of(key)


def signing_key(seed: str | None) -> Ed25519PrivateKey:
    """The key ``FIELDSYNC_AUDIT_SIGNING_KEY`` holds (base64 of a 32-byte seed)."""
    if not seed:
        raise AnchorRefused(
            "FIELDSYNC_AUDIT_SIGNING_KEY is not set; make one with `fieldsync audit keygen`"
        )
    try:
        raw = base64.b64decode(seed, validate=True)
        return Ed25519PrivateKey.from_private_bytes(raw)
    except ValueError as error:
        raise AnchorRefused(
            "FIELDSYNC_AUDIT_SIGNING_KEY is not an Ed25519 key (base64 of 32 bytes)"
        ) from error


def public_key_of(key: Ed25519PrivateKey) -> str:
    return _b64(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


STATEMENT_FORM = "fieldsync-audit-1"
"""Names the anchor's statement (below); it is not the form rows are hashed by."""


def statement(block: int, hash_: str, anchored_at: str, public_key: str) -> bytes:
    """What an anchor's signature covers."""
    document = {
        "anchored_at": anchored_at,
        "block": block,
        "form": STATEMENT_FORM,
        "hash": hash_,
        "public_key": public_key,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def anchor(
    session: Session, key: Ed25519PrivateKey, file: Path, *, head: tuple[int, str] | None = None
) -> AnchorRead:
    """Sign the chain's head now (or ``head``, a block and its hash as read in an
    earlier snapshot); append it to ``file``, keep it, and return it."""
    number, hash_ = head or chain.head(session)
    if number == 0:
        raise AnchorRefused("nothing is chained yet: there is no head to anchor")
    at = datetime.now(UTC)
    public_key = public_key_of(key)
    stamp = at.isoformat(timespec="microseconds")
    signature = _b64(key.sign(statement(number, hash_, stamp, public_key)))
    made = AnchorRead(
        block=number,
        hash=hash_,
        anchored_at=at,
        public_key=public_key,
        signature=signature,
    )
    _append(file, line_of(made))
    session.add(AuditAnchor(**made.model_dump()))
    return made


def line_of(made: AnchorRead) -> str:
    """The anchor as a line of the anchor file."""
    document = made.model_dump(mode="json")
    document["anchored_at"] = made.anchored_at.astimezone(UTC).isoformat(timespec="microseconds")
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def signed(made: AnchorRead) -> bool:
    """Whether the anchor's signature is its key's, over its statement."""
    stamp = made.anchored_at.astimezone(UTC).isoformat(timespec="microseconds")
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(made.public_key))
        key.verify(
            base64.b64decode(made.signature),
            statement(made.block, made.hash, stamp, made.public_key),
        )
    except (ValueError, InvalidSignature):
        return False
    return True


def held(bind: Session | sa.Connection, *, limit: int | None = None) -> list[AnchorRead]:
    """The anchors kept, newest first (at most ``limit``)."""
    table = chain.table_of(AuditAnchor)
    query = sa.select(table).order_by(table.c.id.desc()).limit(limit)
    return [AnchorRead.model_validate(dict(row)) for row in bind.execute(query).mappings()]


def read_file(file: Path) -> Iterable[AnchorRead]:
    """The anchors of an anchor file, oldest first."""
    for line in file.read_text(encoding="utf-8").splitlines():
        if line.strip():
            yield AnchorRead.model_validate_json(line)


def _append(file: Path, line: str) -> None:
    """Add ``line`` to ``file`` and wait until it is on disk."""
    file.parent.mkdir(parents=True, exist_ok=True)
    with file.open("a", encoding="utf-8") as out:
        out.write(line + "\n")
        out.flush()
        os.fsync(out.fileno())


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()
