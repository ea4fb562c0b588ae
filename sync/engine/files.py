"""The files that records name: what a batch owes, and which live records name a file.

A record that carries files has an ``attachments`` field, a list of
``{sha256, content_type, size, caption}``; to the engine it is one field like any
other (merges and conflicts treat it whole). Two things follow from it, each kept
set-wise, a statement or two per batch:

- **What a device owes.** A change may name files the server does not hold yet (the
  tablet pushes its records first and its photos when the link allows). Its result
  lists them in ``missing_attachments``, and ``attachment_owed`` remembers them for
  the device until the file arrives, from whichever device.
- **Who may read a file.** ``attachment_link`` says which live records name each
  file now; it is rewritten with the records' pull entries (``Changelog.publish``),
  so a file is readable by whoever may see one of those records.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from schemas import Attachment, AttachmentLink, AttachmentOwed
from schemas.sync import Change
from sync.platform.database import insert_new, insert_rows, one_of

FIELD = "attachments"
SHA256 = re.compile(r"[0-9a-f]{64}")


def still_owed() -> sa.ColumnElement[bool]:
    """An ``attachment_owed`` row whose file has not arrived from any device yet: the
    one rule a device's missing list, its health and the fleet's metrics count by."""
    held = select(Attachment.sha256).where(col(Attachment.sha256) == col(AttachmentOwed.sha256))
    return ~sa.exists(held)


def named(fields: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The well-formed file references among ``fields`` (none when it names no files)."""
    refs = fields.get(FIELD)
    if not isinstance(refs, list):
        return []
    return [
        ref
        for ref in refs
        if isinstance(ref, Mapping)
        and isinstance(ref.get("sha256"), str)
        and SHA256.fullmatch(ref["sha256"])
    ]


def held(session: Session, hashes: Iterable[str]) -> set[str]:
    """Which of ``hashes`` the server holds, whole and checked."""
    wanted = sorted(set(hashes))
    if not wanted:
        return set()
    return set(
        session.exec(select(Attachment.sha256).where(col(Attachment.sha256).in_(wanted))).all()
    )


class Owed:
    """The files a batch names that the server does not hold: asked once for the whole
    batch, listed in each change's result, and written as owed with one statement."""

    def __init__(self, session: Session, changes: Iterable[Change]) -> None:
        self.session = session
        self._held = held(session, (ref["sha256"] for c in changes for ref in named(c.fields)))
        self._rows: dict[tuple[uuid.UUID, str], dict[str, Any]] = {}

    def missing(self, change: Change, *, device_id: uuid.UUID, now: datetime) -> list[str] | None:
        """The files ``change`` names that the server lacks (None if none), noted as
        owed by ``device_id``."""
        lacking = [ref for ref in named(change.fields) if ref["sha256"] not in self._held]
        for ref in lacking:
            self._rows.setdefault(
                (device_id, ref["sha256"]),
                {
                    "device_id": device_id,
                    "sha256": ref["sha256"],
                    "content_type": str(ref.get("content_type", ""))[:64],
                    "size": ref["size"] if isinstance(ref.get("size"), int) else 0,
                    "entity": change.entity,
                    "record_id": change.id,
                    "named_at": now,
                },
            )
        return [ref["sha256"] for ref in lacking] or None

    def write(self) -> None:
        """Keep what the batch owes; a file owed already keeps its first naming."""
        if not self._rows:
            return
        self.session.connection().execute(
            insert_new(self.session, AttachmentOwed, key=["device_id", "sha256"]),
            list(self._rows.values()),
        )
        self._rows.clear()


def relink(
    session: Session, entries: Iterable[tuple[str, uuid.UUID, bool, bool, Mapping[str, Any]]]
) -> None:
    """Rewrite the links of the records in ``entries`` (entity, id, deleted, new,
    state): a live record links the files its state names; a deleted one, none.
    Records whose state has no files field are left alone, and the links of records
    made by this transaction (``new``, as ``Changelog.publish`` tells) are not looked
    for: it has written none yet."""
    cleared: dict[str, list[uuid.UUID]] = {}
    links: list[dict[str, Any]] = []
    for entity, record_id, deleted, new, state in entries:
        if not deleted and FIELD not in state:
            continue
        if not new:
            cleared.setdefault(entity, []).append(record_id)
        if not deleted:
            hashes = {ref["sha256"] for ref in named(state)}
            links += [{"entity": entity, "record_id": record_id, "sha256": h} for h in hashes]
    table = AttachmentLink.__table__  # type: ignore[attr-defined]
    connection = session.connection()
    for entity, record_ids in cleared.items():
        connection.execute(
            sa.delete(table).where(
                table.c.entity == entity, one_of(session, table.c.record_id, record_ids)
            )
        )
    insert_rows(connection, table, links)
