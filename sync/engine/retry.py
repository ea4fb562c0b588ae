"""Changes kept as ``schema_too_new``, decided again once the server reads their version.

A tablet whose app is newer than the server (the app was updated before the server
was) writes changes of a version of the data model the server does not know yet.
Push rejects each with ``schema_too_new`` and keeps it, as it keeps every change
(``sync.engine.store``). After the server is upgraded, ``retry_too_new`` — run by
``fieldsync changes retry``, and by ``fieldsync db upgrade`` after it migrates —
decides them again, oldest first, each in a transaction of its own, for the device and
user that pushed it, with their scope as it is now (as ``sync.engine.wake`` does for a
deferred change). Each gets the answer it would get today — applied, merged, a
conflict, deferred, or rejected for another reason — and that answer replaces the
stored one: the tablet, sending the change again, is answered it (``replayed``).

A change whose version is still unknown stays as it is. Pushes of the change's device
take turns with its retry on the device's row, so a retry and a replay of the same
change never both apply it.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select

from schemas import Device, SyncChange
from schemas.sync import Status
from schemas.types import utcnow
from sync.engine import versions
from sync.engine.entities import Catalog
from sync.engine.push import Batch
from sync.engine.wake import pusher
from sync.engine.workspace import Waiting
from sync.platform.database import transaction, unavailable

log = logging.getLogger("fieldsync")

TOO_NEW = "schema_too_new"


@dataclass
class Retried:
    """What a retry did: the changes decided again, by their new status; those whose
    version the server still does not read; those the database refused this time
    (they stay as they were, for the next retry)."""

    statuses: Counter[str] = field(default_factory=Counter)
    still_too_new: int = 0
    failed: int = 0

    @property
    def decided(self) -> int:
        return sum(self.statuses.values())

    def summary(self) -> str:
        """One line for a person at a terminal."""
        by_status = ", ".join(
            f"{count} {status}" for status, count in sorted(self.statuses.items())
        )
        parts = [f"{self.decided} decided again" + (f" ({by_status})" if by_status else "")]
        if self.still_too_new:
            parts.append(f"{self.still_too_new} still of a version newer than this server's")
        if self.failed:
            parts.append(f"{self.failed} refused by the database (run it again)")
        return "changes kept as schema_too_new: " + "; ".join(parts)


def retry_too_new(engine: Engine, *, catalog: Catalog, now: datetime | None = None) -> Retried:
    """Decide again every change kept as ``schema_too_new`` whose version the server
    reads now, oldest first; what happened, counted."""
    retried = Retried()
    for change_id in _kept_too_new(engine):
        try:
            with transaction(engine) as session:
                outcome = _retry(session, catalog, change_id, now or utcnow())
        except DBAPIError as error:
            if unavailable(error):
                raise
            log.error("the database refused retrying change %s", change_id, exc_info=error)
            retried.failed += 1
            continue
        if outcome == TOO_NEW:
            retried.still_too_new += 1
        elif outcome is not None:
            retried.statuses[outcome] += 1
    return retried


def _kept_too_new(engine: Engine) -> list[uuid.UUID]:
    """The changes kept as rejected ``schema_too_new``, oldest first. The rejected are
    read by the index on (status, received_at), their answers only: the changes
    themselves are read one at a time, as each is retried."""
    table = SyncChange.__table__  # type: ignore[attr-defined]
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(table.c.change_id, table.c.result)
            .where(table.c.status == str(Status.rejected))
            .order_by(table.c.received_at, table.c.seq, table.c.change_id)
        )
        return [change_id for change_id, result in rows if _too_new(result)]


def _too_new(result: Any) -> bool:
    errors = result.get("errors") if isinstance(result, dict) else None
    return any(isinstance(e, dict) and e.get("code") == TOO_NEW for e in errors or ())


def _retry(session: Session, catalog: Catalog, change_id: uuid.UUID, now: datetime) -> str | None:
    """Decide one kept change again: its new status, ``TOO_NEW`` if the server still
    cannot read it, or ``None`` if there is nothing to do (retried meanwhile; its user
    is gone)."""
    found = session.exec(select(SyncChange.device_id).where(SyncChange.change_id == change_id))
    device_id = found.first()
    if device_id is None:
        return None
    # Taking turns with the device's pushes, then reading the change as it stands now.
    session.exec(select(Device.id).where(Device.id == device_id).with_for_update()).one()
    kept = session.exec(select(SyncChange).where(SyncChange.change_id == change_id)).one()
    if kept.status != str(Status.rejected) or not _too_new(kept.result) or kept.change is None:
        return None
    if kept.change.get("schema_version", versions.OLDEST) > versions.CURRENT:
        return TOO_NEW
    principal = pusher(session, kept.user_id, kept.device_id)
    if principal is None:
        return None
    waiting = Waiting(
        change_id=kept.change_id,
        device_id=kept.device_id,
        user_id=kept.user_id,
        seq=kept.seq,
        received_at=kept.received_at,
        change=kept.change,
        result=kept.result,
    )
    with Batch(session, catalog, now=now, batch_id=kept.batch_id) as batch:
        result = batch.decide_again(principal, waiting)
    return str(result.status)


__all__ = ["Retried", "retry_too_new"]
