"""Preparing a push batch: what can be worked out of its changes without the database.

Each change's JSON form, the canonical text it is hashed by (its ``change_id`` is
answered from memory only when the same content comes again), the change read in the
current version of the data model (``sync.engine.versions``: a change of an older
version upcast, one of a newer version refused), and, for a create, its fields
validated. This is about half of a batch's CPU, and it runs before the transaction
opens: on SQLite the write lock is held only for the decisions that need the
database, and several server processes prepare batches at once.

What is kept of a change, and hashed, is always what the device sent; what is
decided is its current form.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from schemas.records import Fields
from schemas.sync import Change, Op, PushRequest
from sync.engine import records, versions
from sync.engine.entities import Catalog
from sync.engine.rules import Rejected

# The NUL character in canonical JSON: ``\u0000`` after an even number of backslashes
# (``\\u0000`` is a backslash, then the text "u0000").
NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
MAX_NAME = 64  # sync_change.entity
MAX_OP = 16  # sync_change.op


def document_of(change: Change) -> dict[str, Any]:
    """``change.model_dump(mode="json")``, without serialising ``fields`` value by value:
    they were read from JSON and are JSON already (pydantic's walk of a ``dict[str,
    Any]`` of a hundred track points was the largest cost of preparing a batch)."""
    document = change.model_dump(mode="json", exclude={"fields"})
    document["fields"] = change.fields
    return document


def canonical(document: dict[str, Any]) -> bytes:
    """A change's JSON form (``Change.model_dump(mode="json")``) as the bytes it is
    hashed by: keys sorted, no spaces, UTF-8 (orjson's, in C). A document orjson cannot
    write — an integer beyond 64 bits, which the exact parser lets through — always
    takes the standard library's form instead, so the same content always has the
    same bytes."""
    try:
        return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return _legacy(document).encode()


def _legacy(document: dict[str, Any]) -> str:
    """The canonical form before ``HASH_FORM``: the standard library's JSON, keys
    sorted, no spaces, ASCII-escaped."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


# Content hashes name the canonical form they were made of, so that it can change: a
# change stored under an older form is compared by that form when it is sent again.
HASH_FORM = "2:"


def content_hash(text: bytes) -> str:
    """The hash a replay is compared by: ``HASH_FORM`` and 62 hex digits of the SHA-256
    of ``canonical`` (248 bits; the column holds 64 characters)."""
    return HASH_FORM + hashlib.sha256(text).hexdigest()[:62]


def same_content(stored_hash: str, document: dict[str, Any], digest: str) -> bool:
    """Whether a change stored with ``stored_hash`` had the content of ``document``
    (whose hash is ``digest``), whatever form the stored hash was made of: before
    ``HASH_FORM``, the SHA-256 of the standard library's JSON with sorted keys,
    ASCII-escaped."""
    if stored_hash.startswith(HASH_FORM):
        return stored_hash == digest
    return stored_hash == hashlib.sha256(_legacy(document).encode()).hexdigest()


@dataclass(frozen=True)
class Prepared:
    """What can be worked out of a change without the database: its JSON form, the
    text it is hashed by, the change in the current version, and, for a create, its
    fields validated (or why not)."""

    sent: Change  # the very object prepared: a change_id sent twice is prepared once
    # What is decided: ``sent`` in the current version of the data model (``sent``
    # itself when its record type did not change since its version). The decider
    # knows a create validated here by this very object.
    change: Change
    document: dict[str, Any]  # ``sent``'s JSON form: what is kept of it
    text: bytes
    digest: str
    created: tuple[Fields, dict[str, Any]] | records.InvalidFields | None
    # Why ``sent`` cannot be read in the current version (``schema_too_new``, or what
    # an upcaster refuses): it is rejected with this, and kept.
    refused: Rejected | None = None

    @classmethod
    def of(cls, change: Change) -> Prepared:
        """A change prepared without validating its fields (met again in a batch)."""
        document = document_of(change)
        text = canonical(document)
        current, refused = in_current_version(change)
        return cls(change, current, document, text, content_hash(text), None, refused)


def in_current_version(change: Change) -> tuple[Change, Rejected | None]:
    """``change`` upcast to the current version of the data model; or itself, and why
    it cannot be (a rejection to answer it with)."""
    try:
        return versions.upcast_change(change), None
    except versions.Unconvertible as problem:
        return change, Rejected(problem.field, problem.code, problem.message)


def prepare(batch: PushRequest, catalog: Catalog) -> dict[uuid.UUID, Prepared]:
    """Each change of the batch, prepared, by ``change_id``."""
    prepared: dict[uuid.UUID, Prepared] = {}
    for sent in batch.changes:
        if sent.change_id in prepared:
            continue
        document = document_of(sent)
        text = canonical(document)
        change, refused = in_current_version(sent)
        created: tuple[Fields, dict[str, Any]] | records.InvalidFields | None = None
        spec = catalog.get(change.entity)
        if (
            refused is None
            and spec is not None
            and change.op == Op.create
            and set(change.fields) <= spec.settable
        ):
            try:
                model = records.validated(spec, change.fields)
                created = model, records.json_form(model)
            except records.InvalidFields as invalid:
                created = invalid
        prepared[sent.change_id] = Prepared(
            sent, change, document, text, content_hash(text), created, refused
        )
    return prepared


def unstorable(change: Change, text: bytes) -> Rejected | None:
    """Why a change cannot even be looked at: text PostgreSQL cannot hold (NUL), or
    names longer than any record type or op has."""
    if b"\\u0000" in text and NUL_ESCAPE.search(text):
        return Rejected("fields", "nul_character", "text must not contain the NUL character")
    if len(change.entity) > MAX_NAME:
        return Rejected("entity", "unknown_entity", "no such record type")
    if len(change.op) > MAX_OP:
        return Rejected("op", "unknown_op", "op is create, update or delete")
    return None


def storable(change: Change) -> Change:
    """The change as it can be kept for admins to read: NULs shown as U+FFFD."""
    text = json.dumps(change.model_dump(mode="json")).replace("\\u0000", "\\ufffd")
    kept = Change.model_validate(json.loads(text))
    return kept.model_copy(update={"entity": kept.entity[:MAX_NAME], "op": kept.op[:MAX_OP]})
