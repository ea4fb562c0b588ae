"""The whole fleet's sync backlog in three numbers, for ``/metrics``: changes waiting for
a record they refer to, conflicts no one has resolved, and files tablets still owe.

Counted in the database at each scrape, so they are right however many server
processes share it; one statement of three ``COUNT``s, each over an index.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, func, select

from schemas import AttachmentOwed, Conflict, DeferredChange
from schemas.sync import ConflictStatus
from sync.engine import files


@dataclass(frozen=True)
class FleetCounts:
    deferred_changes: int
    open_conflicts: int
    # Files named by a change and not yet held, per device that named them (as each
    # device's health counts them, ``sync.engine.device_health``).
    attachments_owed: int


def count_backlog(session: Session) -> FleetCounts:
    """The fleet's backlog as the session's transaction sees it."""
    deferred = select(func.count()).select_from(DeferredChange)
    conflicts = (
        select(func.count()).select_from(Conflict).where(Conflict.status == ConflictStatus.open)
    )
    owed = select(func.count()).select_from(AttachmentOwed).where(files.still_owed())
    row = session.execute(
        sa.select(deferred.scalar_subquery(), conflicts.scalar_subquery(), owed.scalar_subquery())
    ).one()
    return FleetCounts(
        deferred_changes=int(row[0]), open_conflicts=int(row[1]), attachments_owed=int(row[2])
    )


__all__ = ["FleetCounts", "count_backlog"]
