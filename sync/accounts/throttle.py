"""Throttling guesses (passwords, enrollment codes) by counting failures in the database.

Failures are rows, so a throttle holds across every server process. A caller takes
``lock`` for the thing it counts (an address, say) before reading the count and holds
it until its transaction ends, so two guesses at once cannot both pass the last free
place: SQLite already serialises writers (``BEGIN IMMEDIATE``); PostgreSQL takes a
transaction-scoped advisory lock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, SQLModel, col

from sync.platform.database import transaction_lock, try_transaction_lock


def lock(session: Session, key: str) -> None:
    """Hold ``key`` until the transaction ends (PostgreSQL; SQLite holds the database)."""
    transaction_lock(session, key)


def at_address(column: Any, address: str | None) -> sa.ColumnElement[bool]:
    """Rows of ``address``; those the server knew no address for are counted together."""
    return col(column).is_(None) if address is None else col(column) == address


def retry_after(
    session: Session,
    *,
    failed_at: Any,
    where: sa.ColumnElement[bool],
    limit: int,
    window: timedelta,
    now: datetime,
) -> int | None:
    """Seconds until fewer than ``limit`` failures matching ``where`` are in the window
    (``Retry-After``), or None when there are fewer already."""
    # The limit-th newest failure in the window is the one whose leaving frees a place.
    freeing = session.execute(
        sa.select(col(failed_at))
        .where(where, col(failed_at) > now - window)
        .order_by(col(failed_at).desc())
        .offset(limit - 1)
        .limit(1)
    ).scalar_one_or_none()
    if freeing is None:
        return None
    return int((freeing + window - now).total_seconds()) + 1


def forget_before(session: Session, *, model: type[SQLModel], cutoff: datetime) -> None:
    """Delete ``model``'s failures at or before ``cutoff``: they count for nothing, and
    guesses at made-up names or codes must not grow the table without end."""
    table: sa.Table = model.__table__  # type: ignore[attr-defined]
    # One process sweeps at a time: two sweeping the same rows in different orders
    # could deadlock (on PostgreSQL), and the next failure sweeps what this one skipped.
    if not try_transaction_lock(session, f"forget:{table.name}"):
        return
    session.execute(sa.delete(table).where(table.c.failed_at <= cutoff))
