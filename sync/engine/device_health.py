"""Devices' sync health: every device the caller manages, with its user, when it last
pushed and pulled, what it reported of itself, how far its pulls are behind its scope
(``sync.engine.lag``), the deferred and rejected changes held for it, and the files
it still owes.

Set-based: one query for the devices and their users, one grouped query for each
figure, and a few index seeks for the lags, whatever the number of devices.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, tzinfo
from typing import Any

from sqlmodel import Session, col, func, or_, select

from schemas import (
    AttachmentOwed,
    Community,
    DeferredChange,
    Device,
    RefusedChange,
    SyncChange,
    User,
    UserCommunity,
    UserSector,
)
from schemas.device_health import DeviceHealth, DeviceHealthPage, DeviceHealthQuery, DeviceUser
from schemas.enums import Role
from schemas.sync import Status
from schemas.types import utcnow
from sync.accounts.contact import version_key
from sync.accounts.devices import _managed_user_ids, _read
from sync.accounts.principal import Principal
from sync.engine import files
from sync.engine.lag import Holder, lags
from sync.platform.csv_files import csv_text, paged

CSV_COLUMNS = (
    "device_id",
    "label",
    "status",
    "username",
    "full_name",
    "role",
    "last_seen_at",
    "last_push_at",
    "last_pull_at",
    "app_version",
    "schema_version",
    "pending_changes",
    "oldest_pending_at",
    "free_storage_mb",
    "reported_at",
    "app_too_old_at",
    "last_seq",
    "pulled_seq",
    "newest_seq",
    "behind_since",
    "lag_seconds",
    "deferred_changes",
    "rejected_changes",
    "attachments_owed",
)


def list_health(
    session: Session, *, principal: Principal, query: DeviceHealthQuery
) -> DeviceHealthPage:
    """A page of the devices of the caller's scope (ranger leads: their sectors'
    rangers), those silent longest first, never heard from first of all."""
    now = utcnow()
    devices = _matching(principal, query, now)
    total = session.scalar(select(func.count()).select_from(devices.subquery())) or 0
    rows = list(session.exec(_ordered(devices).offset(query.offset).limit(query.limit)))
    items = _health(session, rows, now)
    return DeviceHealthPage(items=items, total=total, limit=query.limit, offset=query.offset)


def health_csv(
    session: Session, *, principal: Principal, query: DeviceHealthQuery, zone: tzinfo
) -> Iterator[str]:
    """The devices of ``list_health`` (same filters; every one unless ``limit`` or
    ``offset`` is given) as CSV text, times in ``zone``. Read before the first piece
    is handed on: a fleet is hundreds of tablets, not millions of rows."""
    now = utcnow()
    rows = list(session.exec(paged(_ordered(_matching(principal, query, now)), query)))
    items = _health(session, rows, now)
    return csv_text(CSV_COLUMNS, (_csv_row(item) for item in items), zone=zone)


def _matching(principal: Principal, query: DeviceHealthQuery, now: datetime) -> Any:
    devices = select(Device, User).join(User, col(User.id) == Device.user_id)
    if principal.role is Role.ranger_lead:
        devices = devices.where(col(Device.user_id).in_(_managed_user_ids(principal)))
    if query.silent_days is not None:
        since = now - timedelta(days=query.silent_days)
        devices = devices.where(
            or_(col(Device.last_seen_at).is_(None), col(Device.last_seen_at) < since)
        )
    if query.sector_id is not None:
        in_sector = select(UserSector.user_id).where(UserSector.sector_id == query.sector_id)
        of_its_communities = (
            select(UserCommunity.user_id)
            .join(Community, col(Community.id) == UserCommunity.community_id)
            .where(Community.sector_id == query.sector_id)
        )
        devices = devices.where(col(Device.user_id).in_(in_sector.union(of_its_communities)))
    if query.role is not None:
        devices = devices.where(User.role == query.role)
    if query.app_version is not None:
        devices = devices.where(Device.app_version == query.app_version)
    if query.app_version_below is not None:
        below = version_key(query.app_version_below) or ""
        devices = devices.where(col(Device.app_version_key) < below)
    return devices


def _ordered(devices: Any) -> Any:
    return devices.order_by(
        col(Device.last_seen_at).asc().nulls_first(), col(Device.created_at), col(Device.id)
    )


def _health(
    session: Session, rows: Sequence[tuple[Device, User]], now: datetime
) -> list[DeviceHealth]:
    ids = [device.id for device, _ in rows]
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
    owed = _per_device(
        session,
        select(AttachmentOwed.device_id, func.count()).where(files.still_owed()),
        AttachmentOwed,
        ids,
    )
    lag = lags(
        session,
        (Holder(device.id, user.id, user.role, device.pulled_seq) for device, user in rows),
    )
    items = []
    for device, user in rows:
        behind = lag[device.id].waiting_since
        items.append(
            DeviceHealth(
                device_id=device.id,
                label=device.label,
                status=_read(device, user, now).status,
                user=DeviceUser(
                    user_id=user.id,
                    username=user.username,
                    full_name=user.full_name,
                    role=user.role,
                ),
                enrolled_at=device.enrolled_at,
                last_seen_at=device.last_seen_at,
                last_push_at=device.last_push_at,
                last_pull_at=device.last_pull_at,
                last_seq=device.last_seq,
                app_version=device.app_version,
                schema_version=device.client_schema_version,
                pending_changes=device.pending_changes,
                oldest_pending_at=device.oldest_pending_at,
                free_storage_mb=device.free_storage_mb,
                reported_at=device.reported_at,
                app_too_old_at=device.app_too_old_at,
                pulled_seq=device.pulled_seq,
                newest_seq=lag[device.id].newest_seq,
                behind_since=behind,
                lag_seconds=None if behind is None else max(0, int((now - behind).total_seconds())),
                deferred_changes=int(deferred.get(device.id, 0)),
                rejected_changes=int(rejected.get(device.id, 0)) + int(refused.get(device.id, 0)),
                attachments_owed=int(owed.get(device.id, 0)),
            )
        )
    return items


def _csv_row(item: DeviceHealth) -> list[Any]:
    values = item.model_dump()
    user = values.pop("user")
    values.update(username=user["username"], full_name=user["full_name"], role=user["role"])
    return [values[column] for column in CSV_COLUMNS]


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


__all__ = ["CSV_COLUMNS", "health_csv", "list_health"]
