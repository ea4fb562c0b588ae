"""Changes that did not apply: rejected ones with their reasons, deferred ones with
what they wait for — for admins to read."""

from __future__ import annotations

from sqlmodel import Session, col, func, select

from schemas import DeferredChange, RefusedChange, SyncChange
from schemas.sync import (
    ChangeError,
    DeferredPage,
    DeferredRead,
    HeldChangesQuery,
    RejectedChange,
    RejectedPage,
    Status,
)


def list_rejected(session: Session, *, query: HeldChangesQuery) -> RejectedPage:
    """Rejected changes, newest first: those stored under their own id, and those
    refused before they could be (a ``change_id`` reused for other content)."""
    offset, window = query.offset, query.offset + query.limit
    total = (
        session.scalar(
            select(func.count()).select_from(SyncChange).where(SyncChange.status == Status.rejected)
        )
        or 0
    ) + (session.scalar(select(func.count()).select_from(RefusedChange)) or 0)
    stored = session.exec(
        select(SyncChange)
        .where(SyncChange.status == Status.rejected)
        .order_by(col(SyncChange.received_at).desc(), col(SyncChange.seq).desc())
        .limit(window)
    )
    refused = session.exec(
        select(RefusedChange).order_by(col(RefusedChange.received_at).desc()).limit(window)
    )
    listed = [
        RejectedChange(
            change_id=row.change_id,
            device_id=row.device_id,
            user_id=row.user_id,
            entity=row.entity,
            record_id=row.record_id,
            op=row.op,
            seq=row.seq,
            errors=[
                ChangeError.model_validate(e)
                for e in row.result.get("errors") or row.result.get("later_errors") or []
            ],
            change=row.change,
            received_at=row.received_at,
        )
        for row in stored
    ] + [
        RejectedChange(
            change_id=row.change_id,
            device_id=row.device_id,
            user_id=row.user_id,
            entity=row.entity,
            record_id=row.record_id,
            op=row.op,
            seq=row.seq,
            errors=[ChangeError.model_validate(e) for e in row.errors],
            change=row.change,
            received_at=row.received_at,
        )
        for row in refused
    ]
    listed.sort(key=lambda r: (r.received_at, r.seq), reverse=True)
    return RejectedPage(items=listed[offset:window], total=total, limit=query.limit, offset=offset)


def list_deferred(session: Session, *, query: HeldChangesQuery) -> DeferredPage:
    total = session.scalar(select(func.count()).select_from(DeferredChange)) or 0
    rows = session.exec(
        select(SyncChange, DeferredChange)
        .join(DeferredChange, col(DeferredChange.change_id) == SyncChange.change_id)
        .order_by(col(SyncChange.received_at), col(SyncChange.seq))
        .offset(query.offset)
        .limit(query.limit)
    )
    items = [
        DeferredRead(
            change_id=change.change_id,
            device_id=change.device_id,
            user_id=change.user_id,
            entity=change.entity,
            record_id=change.record_id,
            op=change.op,
            seq=change.seq,
            waiting_for_entity=waiting.waiting_entity,
            waiting_for_id=waiting.waiting_id,
            change=change.change,
            received_at=change.received_at,
        )
        for change, waiting in rows
    ]
    return DeferredPage(items=items, total=total, limit=query.limit, offset=query.offset)
