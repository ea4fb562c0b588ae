"""Versions of the data model on the wire: reading an old change in the current shape,
answering a record in the shape a tablet asks for, and refusing an app too old.

The data model has one version for the whole app (``schemas.versions``: the steps,
and per step, per record type, an upcaster and maybe a downcaster). This module runs
them; it names no record type.

- **Push.** A change of a version below ``CURRENT`` is upcast step by step to
  ``CURRENT`` before it is validated and decided (``upcast_change``, called by
  ``sync.engine.prepare``); what is kept of it (``sync_change.change``, and the hash
  a replay is compared by) is what the device sent. A change of a version above
  ``CURRENT`` cannot be read: it is rejected with ``schema_too_new``, kept, and
  decided again once the server knows its version (``sync.engine.retry``). A batch
  holding a change — or a client report — below the minimum the server accepts
  (``minimum``) is refused whole with ``426 app_too_old`` (``too_old``).
- **Pull.** ``pull_version`` reads the version a pull asks for (or refuses it with
  ``426 app_too_old``); ``needs_downcast`` says cheaply whether a record type's
  entries must be converted for it, and ``downcast_json`` converts one entry's
  ``fields`` text.

Versions here are whole numbers from ``OLDEST`` to ``CURRENT``; the functions take
any integer and say what they do with those outside.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import Any

from schemas.sync import Change, PushRequest
from schemas.versions import CURRENT, OLDEST, STEPS, Step, Unconvertible
from sync.platform.errors import UpgradeRequired
from sync.platform.settings import Settings

__all__ = [
    "CURRENT",
    "OLDEST",
    "AppTooOld",
    "Unconvertible",
    "downcast",
    "downcast_json",
    "lowest_servable",
    "minimum",
    "needs_downcast",
    "pull_version",
    "too_old",
    "upcast",
    "upcast_change",
]


class AppTooOld(UpgradeRequired):
    """The tablet's app writes or reads a version of the data model the server no
    longer takes: nothing of its request is applied; the app must be updated."""

    code, title = "app_too_old", "The app is too old"


def _steps_from(version: int) -> tuple[Step, ...]:
    """The steps from ``version`` up to ``CURRENT`` (none from ``CURRENT`` or above)."""
    return STEPS[max(version, OLDEST) - OLDEST :]


@cache
def _changed_since(version: int) -> frozenset[str]:
    """The record types some step from ``version`` to ``CURRENT`` changes."""
    return frozenset(name for step in _steps_from(version) for name in step.casts)


# ---------------------------------------------------------------- push: old to current


def upcast(entity: str, fields: Mapping[str, Any], *, version: int) -> dict[str, Any]:
    """A change's ``fields``, written in ``version``, as they read in ``CURRENT``.

    Raises ``Unconvertible``: ``schema_too_new`` for a version above ``CURRENT``
    (field ``schema_version``), or what an upcaster refuses."""
    if version > CURRENT:
        raise Unconvertible(
            "schema_version",
            "schema_too_new",
            f"schema version {version} is newer than this server's ({CURRENT}); the "
            "change is kept and applied once the server is upgraded",
        )
    if version < OLDEST:
        raise Unconvertible(
            "schema_version", "app_too_old", f"schema version {version} is before {OLDEST}"
        )
    current = dict(fields)
    for step in _steps_from(version):
        cast = step.casts.get(entity)
        if cast is not None:
            current = cast.up(current)
    return current


def upcast_change(change: Change) -> Change:
    """``change`` in ``CURRENT``'s shape: the very object when no step since its
    version changed its record type, else a copy with its fields upcast (and
    ``schema_version`` set to ``CURRENT``). Raises ``Unconvertible`` as ``upcast``."""
    if change.schema_version > CURRENT or change.schema_version < OLDEST:
        upcast(change.entity, {}, version=change.schema_version)  # raises
    if change.entity not in _changed_since(change.schema_version):
        return change
    fields = upcast(change.entity, change.fields, version=change.schema_version)
    return change.model_copy(update={"fields": fields, "schema_version": CURRENT})


def minimum(settings: Settings) -> int:
    """The oldest version a push may write: ``FIELDSYNC_MIN_SCHEMA_VERSION``, never
    below ``OLDEST`` (settings refuse one above ``CURRENT``)."""
    return max(OLDEST, min(settings.min_schema_version, CURRENT))


def too_old(batch: PushRequest, *, settings: Settings) -> str | None:
    """Why the batch's app is too old for this server — a change, or the tablet's own
    report, of a version below ``minimum`` — or ``None``: a detail for ``AppTooOld``."""
    floor = minimum(settings)
    written = [change.schema_version for change in batch.changes]
    if batch.client is not None and batch.client.schema_version is not None:
        written.append(batch.client.schema_version)
    oldest = min(written, default=floor)
    if oldest >= floor:
        return None
    return (
        f"this app writes schema version {oldest}; the server takes versions {floor} to "
        f"{CURRENT}: update the app, then push again (nothing of this batch was kept)"
    )


# ---------------------------------------------------------------- pull: current to old


@cache
def lowest_servable() -> int:
    """The oldest version a pull can be answered in: below ``CURRENT`` as far down as
    every step has a downcaster for every record type it changes."""
    lowest = CURRENT
    for step in reversed(STEPS):
        if any(cast.down is None for cast in step.casts.values()):
            break
        lowest = step.makes - 1
    return lowest


def pull_version(asked: int | None, *, settings: Settings) -> int:
    """The version a pull that asks for ``asked`` (``?schema_version=``) is answered in:
    ``CURRENT`` when it asks for none, or for one newer than the server knows (a newer
    app reads the versions before its own); else the one asked. Raises ``AppTooOld``
    for a version below ``minimum`` or below what the downcasters reach."""
    if asked is None or asked >= CURRENT:
        return CURRENT
    floor = max(minimum(settings), lowest_servable())
    if asked < floor:
        raise AppTooOld(
            f"this app reads schema version {asked}; the server answers versions {floor} "
            f"to {CURRENT}: update the app"
        )
    return asked


def needs_downcast(entity: str, to_version: int) -> bool:
    """Whether a record of ``entity`` reads differently in ``to_version`` than in
    ``CURRENT``: a set lookup, cheap enough for every entry of a page."""
    return to_version < CURRENT and entity in _changed_since(to_version)


def downcast(entity: str, fields: Mapping[str, Any], *, to_version: int) -> dict[str, Any]:
    """A record's whole state in ``CURRENT`` as ``to_version`` holds it. Raises
    ``AppTooOld`` for a version the downcasters do not reach (see ``pull_version``)."""
    state = dict(fields)
    if to_version >= CURRENT:
        return state
    if to_version < lowest_servable():
        raise AppTooOld(f"records cannot be answered in schema version {to_version}")
    for step in reversed(_steps_from(to_version)):
        cast = step.casts.get(entity)
        if cast is not None and cast.down is not None:
            state = cast.down(state)
    return state


def downcast_json(entity: str, fields_json: str, to_version: int) -> str:
    """``downcast`` of a pull entry's ``fields`` as JSON text (as ``sync_entry`` holds
    it): the very text when the record type needs no converting, else new compact
    JSON text."""
    if not needs_downcast(entity, to_version):
        return fields_json
    state = downcast(entity, json.loads(fields_json), to_version=to_version)
    return json.dumps(state, separators=(",", ":"))
