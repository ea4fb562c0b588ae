"""A record's version history: every version with who made it, from which device,
when, and what it changed, field by field (the versions keep the whole state; the
changes are the differences between consecutive ones)."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any

from sqlmodel import Session, col, select

from schemas import Device, RecordVersion, User
from schemas.history import FieldChange, VersionRead

HIDDEN = "***"
"""What a caller who may not see a field's value reads instead of it."""


def history(
    session: Session,
    *,
    entity: str,
    record_id: uuid.UUID,
    hidden: Collection[str] = (),
) -> list[VersionRead]:
    """Every version of the record, oldest first. The values of ``hidden`` fields
    (personal data the caller may not see) read as ``***``; that they changed shows."""
    versions = list(
        session.exec(
            select(RecordVersion)
            .where(RecordVersion.entity == entity, RecordVersion.record_id == record_id)
            .order_by(col(RecordVersion.version))
        )
    )
    user_ids = {v.user_id for v in versions if v.user_id is not None}
    device_ids = {v.device_id for v in versions if v.device_id is not None}
    users: dict[uuid.UUID, str] = {}
    if user_ids:
        query = select(User.id, User.full_name).where(col(User.id).in_(user_ids))
        users = dict(session.exec(query).all())
    devices: dict[uuid.UUID, str] = {}
    if device_ids:
        labels = select(Device.id, Device.label).where(col(Device.id).in_(device_ids))
        devices = dict(session.exec(labels).all())
    before: dict[str, Any] = {}
    read = []
    for version in versions:
        after = version.fields or {}
        names = sorted(set(version.changed or []) | _differences(before, after))
        read.append(
            VersionRead(
                version=version.version,
                op=version.op,
                reason=version.reason,
                at=version.created_at,
                recorded_at=version.recorded_at,
                user_id=version.user_id,
                user_name=users.get(version.user_id) if version.user_id else None,
                device_id=version.device_id,
                device_label=devices.get(version.device_id) if version.device_id else None,
                changes={
                    name: FieldChange(
                        before=_shown(name, before.get(name), hidden),
                        after=_shown(name, after.get(name), hidden),
                    )
                    for name in names
                    if before.get(name) != after.get(name)
                },
            )
        )
        before = after
    return read


def _differences(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    return {name for name in set(before) | set(after) if before.get(name) != after.get(name)}


def _shown(name: str, value: Any, hidden: Collection[str]) -> Any:
    return HIDDEN if name in hidden and value is not None else value
