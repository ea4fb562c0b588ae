"""Conflicts: the review queue, and resolutions that become new versions devices pull.

Coordinators and admins see and resolve every conflict; ranger leads those of the
patrol records of their sectors.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel import Session, col, select

from schemas import Conflict, SyncChange
from schemas.enums import Role
from schemas.records import SyncedColumns
from schemas.sync import ConflictRead, ConflictStatus, Resolution, ResolveRequest
from schemas.types import utcnow
from sync import records
from sync.changelog import Changelog
from sync.entities import ENTITIES, Domain, EntitySpec
from sync.errors import Conflict as ConflictError
from sync.errors import FieldProblem, NotFound, Unprocessable
from sync.principal import Principal
from sync.push import publish


def list_conflicts(
    session: Session,
    *,
    principal: Principal,
    status: ConflictStatus | None,
    entity: str | None,
    limit: int,
    offset: int,
) -> list[ConflictRead]:
    query = select(Conflict).order_by(col(Conflict.created_at), col(Conflict.id))
    if status is not None:
        query = query.where(Conflict.status == status)
    if entity is not None:
        query = query.where(Conflict.entity == entity)
    if principal.role is Role.ranger_lead:
        query = query.where(col(Conflict.sector_id).in_(principal.sector_ids))
    return [_read(c) for c in session.exec(query.offset(offset).limit(limit))]


def get(session: Session, *, principal: Principal, conflict_id: uuid.UUID) -> ConflictRead:
    return _read(_visible(session, principal, conflict_id))


def resolve(
    session: Session, *, principal: Principal, conflict_id: uuid.UUID, request: ResolveRequest
) -> ConflictRead:
    """Settle a conflict with a new version of the record."""
    conflict = _visible(session, principal, conflict_id, for_update=True)
    if conflict.status is not ConflictStatus.open:
        raise ConflictError("this conflict was already resolved", code="already_resolved")
    spec = ENTITIES[conflict.entity]
    if request.resolution is not Resolution.custom and request.fields:
        raise Unprocessable(
            "fields go with the custom resolution only",
            errors=[FieldProblem("fields", "unexpected", "only for resolution custom")],
        )
    unknown = sorted(set(request.fields) - spec.settable)
    if unknown:
        raise Unprocessable(
            "these are not fields of the record",
            errors=[FieldProblem(f"fields.{n}", "unknown_field", "no such field") for n in unknown],
        )
    now = utcnow()
    row = records.load(session, spec, conflict.record_id, for_update=True)
    device_side = _device_side(conflict)
    if row is None:  # a create the server held back (an observation of an approved patrol)
        row = _made_from(spec, conflict, device_side, now)
        base: dict[str, Any] = dict(device_side)
        if spec.scope_field in spec.settable and base.get(spec.scope_field) is None:
            base[spec.scope_field] = str(getattr(row, spec.scope_field))
        keep = request.resolution is Resolution.keep_server
        row.deleted_at = now if keep else None
    else:
        base = records.state_of(spec, row)
        sent = session.get(SyncChange, conflict.change_id) if conflict.change_id else None
        if sent is not None and sent.op == "delete":
            # The device wanted it gone: its side is the delete, the server's is the record.
            if request.resolution is Resolution.take_device:
                row.deleted_at = row.deleted_at or now
        elif request.resolution is not Resolution.keep_server:
            row.deleted_at = None  # taking the device's edit of a deleted record restores it
    if request.resolution is Resolution.take_device:
        base.update(device_side)
    elif request.resolution is Resolution.custom:
        base.update(request.fields)
    try:
        state = records.validate(spec, base)
    except records.InvalidFields as invalid:
        raise Unprocessable(
            "the resolved record does not validate", errors=invalid.problems
        ) from None
    before = records.state_of(spec, row) if row.version else {}
    records.write_state(spec, row, state)
    row.version += 1
    row.updated_at = now
    session.add(row)
    session.flush()
    log = Changelog(session)
    log.version(
        entity=spec.name,
        record_id=row.id,
        version=row.version,
        op="resolve",
        fields=state,
        changed=sorted(n for n in set(before) | set(state) if before.get(n) != state.get(n)),
        user_id=principal.user_id,
        device_id=None,
        change_id=None,
        reason=f"resolution:{request.resolution}",
        recorded_at=None,
        now=now,
    )
    conflict.status = ConflictStatus.resolved
    conflict.resolved_at = now
    conflict.resolved_by = principal.user_id
    conflict.resolution = request.resolution
    conflict.resolved_version = row.version
    session.add(conflict)
    publish(log, spec, row, state)
    log.publish()  # last: it takes the clock, held until commit
    return _read(conflict)


def _device_side(conflict: Conflict) -> dict[str, Any]:
    if "__create__" in conflict.fields:
        device: dict[str, Any] = conflict.fields["__create__"]["device"]
        return dict(device)
    return {name: sides["device"] for name, sides in conflict.fields.items()}


def _made_from(
    spec: EntitySpec, conflict: Conflict, fields: dict[str, Any], now: Any
) -> SyncedColumns:
    row = spec.table(
        id=conflict.record_id,
        version=0,
        created_at=now,
        updated_at=now,
        recorded_at=conflict.recorded_at,
        created_by=conflict.user_id,
        device_id=conflict.device_id,
    )
    scope = conflict.sector_id if spec.domain is Domain.patrol else conflict.community_id
    setattr(row, spec.scope_field, scope)
    return row


def _visible(
    session: Session, principal: Principal, conflict_id: uuid.UUID, *, for_update: bool = False
) -> Conflict:
    query = select(Conflict).where(Conflict.id == conflict_id)
    if for_update:
        query = query.with_for_update()
    conflict = session.exec(query).first()
    if conflict is None:
        raise NotFound("no such conflict")
    if principal.role is Role.ranger_lead and conflict.sector_id not in principal.sector_ids:
        raise NotFound("no such conflict")
    return conflict


def _read(conflict: Conflict) -> ConflictRead:
    return ConflictRead.model_validate(conflict, from_attributes=True)
