"""Rejected changes, kept with their reasons for admins to read."""

from __future__ import annotations

from sqlmodel import Session, col, select

from schemas import SyncChange
from schemas.sync import ChangeError, RejectedChange, Status


def list_rejected(session: Session, *, limit: int, offset: int) -> list[RejectedChange]:
    rows = session.exec(
        select(SyncChange)
        .where(SyncChange.status == Status.rejected)
        .order_by(col(SyncChange.received_at).desc(), col(SyncChange.seq).desc())
        .offset(offset)
        .limit(limit)
    )
    return [
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
        for row in rows
    ]
