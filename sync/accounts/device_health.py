"""Devices' sync health: every device the caller manages, with its user, when it was
last heard from and pushed, the deferred and rejected changes held for it, and the
files it still owes.

Set-based: one query for the devices and their users, one grouped query for each
figure, whatever the number of devices.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, or_, select

from schemas import (
    Attachment,
    AttachmentOwed,
    DeferredChange,
    Device,
    RefusedChange,
    SyncChange,
    User,
)
from schemas.device_health import DeviceHealth, DeviceHealthPage, DeviceHealthQuery, DeviceUser
from schemas.enums import Role
from schemas.sync import Status
from schemas.types import utcnow
from sync.accounts.devices import _managed_user_ids, _read
from sync.accounts.principal import Principal


def list_health(
    session: Session, *, principal: Principal, query: DeviceHealthQuery
) -> DeviceHealthPage:
    """A page of the devices of the caller's scope (ranger leads: their sectors'
    rangers), those silent longest first, never heard from first of all."""
    now = utcnow()
    devices = select(Device, User).join(User, col(User.id) == Device.user_id)
    if principal.role is Role.ranger_lead:
        devices = devices.where(col(Device.user_id).in_(_managed_user_ids(principal)))
    if query.silent_days is not None:
        since = now - timedelta(days=query.silent_days)
        devices = devices.where(
            or_(col(Device.last_seen_at).is_(None), col(Device.last_seen_at) < since)
        )
    total = session.scalar(select(func.count()).select_from(devices.subquery())) or 0
    rows = list(
        session.exec(
            devices.order_by(
                col(Device.last_seen_at).asc().nulls_first(), col(Device.created_at), col(Device.id)
            )
            .offset(query.offset)
            .limit(query.limit)
        )
    )
    ids = [device.id for device, _ in rows]
    last_push = _per_device(
        session, select(SyncChange.device_id, func.max(SyncChange.received_at)), SyncChange, ids
    )
    rejected = _per_device(
        session,
        select(SyncChange.device_id, func.count()).where(SyncChange.status == Status.rejected),
        SyncChange,
        ids,
    )
    refused = _per_device(
        session, select(RefusedChange.device_id, func.count()), RefusedChange, ids
    )
    deferred = _per_device(
        session,
        select(SyncChange.device_id, func.count()).join(
            DeferredChange, col(DeferredChange.change_id) == col(SyncChange.change_id)
        ),
        SyncChange,
        ids,
    )
    still_owed = ~sa.exists(
        select(Attachment.sha256).where(col(Attachment.sha256) == col(AttachmentOwed.sha256))
    )
    owed = _per_device(
        session,
        select(AttachmentOwed.device_id, func.count()).where(still_owed),
        AttachmentOwed,
        ids,
    )
    items = [
        DeviceHealth(
            device_id=device.id,
            label=device.label,
            status=_read(device, user, now).status,
            user=DeviceUser(user_id=user.id, username=user.username, full_name=user.full_name),
            enrolled_at=device.enrolled_at,
            last_seen_at=device.last_seen_at,
            last_push_at=last_push.get(device.id),
            last_seq=device.last_seq,
            deferred_changes=int(deferred.get(device.id, 0)),
            rejected_changes=int(rejected.get(device.id, 0)) + int(refused.get(device.id, 0)),
            attachments_owed=int(owed.get(device.id, 0)),
        )
        for device, user in rows
    ]
    return DeviceHealthPage(items=items, total=total, limit=query.limit, offset=query.offset)


def _per_device(
    session: Session, figure: Any, table: Any, device_ids: list[uuid.UUID]
) -> dict[uuid.UUID, Any]:
    """``figure`` (``select(table.device_id, aggregate)``) grouped by device."""
    if not device_ids:
        return {}
    rows = session.execute(
        figure.where(col(table.device_id).in_(device_ids)).group_by(col(table.device_id))
    )
    return {row[0]: row[1] for row in rows}


__all__ = ["list_health"]
