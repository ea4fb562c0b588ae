"""Conflicts: the review queue, and resolutions that become new versions devices pull.

Coordinators and admins see and resolve every conflict; ranger leads those of the
patrol records of their sectors.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from schemas import Conflict, Device, RecordVersion, SyncChange, User
from schemas.enums import Role
from schemas.records import SyncedColumns
from schemas.sync import (
    ConflictField,
    ConflictPage,
    ConflictQuery,
    ConflictRead,
    ConflictStatus,
    ConflictUser,
    Op,
    Resolution,
    ResolveRequest,
)
from schemas.types import utcnow
from sync.accounts.principal import Principal
from sync.engine import records
from sync.engine.changelog import Changelog
from sync.engine.entities import Catalog, EntitySpec
from sync.engine.rules import Deferred, Rejected, Rules, settable_problems
from sync.engine.workspace import Workspace
from sync.engine.writes import ServerWrites
from sync.platform.errors import Conflict as ConflictError
from sync.platform.errors import FieldProblem, NotFound, Unprocessable


def list_conflicts(session: Session, *, principal: Principal, query: ConflictQuery) -> ConflictPage:
    """A page of conflicts, oldest first, and how many match in all."""
    matching = select(Conflict)
    if query.status is not None:
        matching = matching.where(Conflict.status == query.status)
    if query.entity is not None:
        matching = matching.where(Conflict.entity == query.entity)
    if principal.role is Role.ranger_lead:
        matching = matching.where(col(Conflict.sector_id).in_(principal.sector_ids))
    total = session.scalar(select(func.count()).select_from(matching.subquery())) or 0
    page = session.exec(
        matching.order_by(col(Conflict.created_at), col(Conflict.id))
        .offset(query.offset)
        .limit(query.limit)
    )
    return ConflictPage(
        items=reads(session, list(page)), total=total, limit=query.limit, offset=query.offset
    )


def get(session: Session, *, principal: Principal, conflict_id: uuid.UUID) -> ConflictRead:
    return reads(session, [_visible(session, principal, conflict_id)])[0]


def resolve(
    session: Session,
    *,
    catalog: Catalog,
    principal: Principal,
    conflict_id: uuid.UUID,
    request: ResolveRequest,
) -> ConflictRead:
    """Settle a conflict with a new version of the record."""
    conflict = _visible(session, principal, conflict_id, for_update=True)
    if conflict.status is not ConflictStatus.open:
        raise ConflictError("this conflict was already resolved", code="already_resolved")
    spec = catalog[conflict.entity]
    _check_fields_go_with_custom(request)
    unsettable = settable_problems(spec, request.fields)
    if unsettable:
        raise Unprocessable("these fields cannot be set", errors=unsettable)
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
    current = dict(base)
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
    moved = None
    if request.resolution is not Resolution.keep_server:
        moved = _check_rules(
            session,
            catalog,
            principal,
            spec,
            current=current,
            state=state,
            scope=getattr(row, spec.scope_field),
        )
    before = records.state_of(spec, row) if row.version else {}
    records.write_state(spec, row, state)
    writes = ServerWrites(session, user_id=principal.user_id, now=now)
    if moved is not None:
        setattr(row, spec.scope_field, moved)
    writes.save(
        spec,
        row,
        op="resolve",
        reason=f"resolution:{request.resolution}",
        changed=(n for n in set(before) | set(state) if before.get(n) != state.get(n)),
    )
    if moved is not None:
        writes.move_children(catalog, spec, row)
    conflict.status = ConflictStatus.resolved
    conflict.resolved_at = now
    conflict.resolved_by = principal.user_id
    conflict.resolution = request.resolution
    conflict.resolved_version = row.version
    session.add(conflict)
    writes.publish()  # last: it takes the clock, held until commit
    return reads(session, [conflict])[0]


def _check_rules(
    session: Session,
    catalog: Catalog,
    principal: Principal,
    spec: EntitySpec,
    *,
    current: dict[str, Any],
    state: dict[str, Any],
    scope: uuid.UUID,
) -> uuid.UUID | None:
    """What a push would refuse, a resolution refuses too: a resolver writes fields as a
    device does, so the record moves only where the resolver may see it (and where its
    parent lies), names only what exists and what the resolver may see, and keeps its
    review (``sync.engine.rules``). The scope the record moves to, if it moves."""
    current = records.validate(spec, current) if current else {}
    incoming = {name: value for name, value in state.items() if current.get(name) != value}
    rules = Rules(Workspace(session, Changelog(session), catalog))
    try:
        moved = rules.moved_scope(principal, spec, state, before=scope, changed=incoming)
        spec.policy.check_incoming(incoming)
        spec.policy.check_transition(current, incoming)
        parents = rules.parents(spec, state)
        rules.check_scope_value(principal, spec, rules.derive_scope(spec, state, parents))
        rules.check_references(spec, state)
        return moved
    except Rejected as rejected:
        raise Unprocessable(
            "the resolved record breaks a rule every change meets",
            errors=[FieldProblem(e.field, e.code, e.message) for e in rejected.errors],
        ) from None
    except Deferred as missing:
        field = next(p.field for p in spec.parents if p.entity == missing.entity)
        raise Unprocessable(
            f"no such {missing.entity}",
            errors=[FieldProblem(f"fields.{field}", "unknown_reference", "no such record")],
        ) from None


def _check_fields_go_with_custom(request: ResolveRequest) -> None:
    """``custom`` names what it sets; the other two take a side whole and name nothing.
    A ``custom`` with no fields would be recorded as a choice nobody made."""
    if request.resolution is Resolution.custom and not request.fields:
        raise Unprocessable(
            "a custom resolution names the fields it sets",
            code="custom_without_fields",
            errors=[FieldProblem("fields", "required", "at least one field for custom")],
        )
    if request.resolution is not Resolution.custom and request.fields:
        raise Unprocessable(
            f"{request.resolution} takes one side whole: fields go with custom only",
            code="fields_without_custom",
            errors=[FieldProblem("fields", "unexpected", "only for resolution custom")],
        )


# Push stores a create held back (``create_locked``) whole under this key, as the
# device sent it; answers show it field by field like any other conflict.
CREATE_KEY = "__create__"


def _device_side(conflict: Conflict) -> dict[str, Any]:
    if CREATE_KEY in conflict.fields:
        device: dict[str, Any] = conflict.fields[CREATE_KEY]["device"]
        return dict(device)
    return {name: sides["device"] for name, sides in conflict.fields.items()}


def _shown_fields(conflict: Conflict) -> dict[str, ConflictField]:
    if CREATE_KEY in conflict.fields:
        return {
            name: ConflictField(server=None, device=value)
            for name, value in _device_side(conflict).items()
        }
    return {
        name: ConflictField(server=sides["server"], device=sides["device"])
        for name, sides in conflict.fields.items()
    }


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
    setattr(row, spec.scope_field, getattr(conflict, spec.scope_field))
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


def reads(session: Session, conflicts: list[Conflict]) -> list[ConflictRead]:
    """Conflicts as resolvers read them, with names: whose change and which tablet,
    and who made the server's version. A few queries for a page, not a few per row."""
    if not conflicts:
        return []
    change_ids = [c.change_id for c in conflicts if c.change_id is not None]
    ops = dict(
        session.execute(
            select(SyncChange.change_id, SyncChange.op).where(
                col(SyncChange.change_id).in_(change_ids)
            )
        ).all()
    )
    device_ids = {c.device_id for c in conflicts if c.device_id is not None}
    labels = dict(
        session.execute(select(Device.id, Device.label).where(col(Device.id).in_(device_ids))).all()
    )
    server_authors = _server_authors(session, conflicts)
    people = _users(
        session,
        {c.user_id for c in conflicts if c.user_id} | {u for u in server_authors.values() if u},
    )
    answers = []
    for conflict in conflicts:
        author = server_authors.get(conflict.id)
        answers.append(
            ConflictRead(
                id=conflict.id,
                entity=conflict.entity,
                record_id=conflict.record_id,
                status=conflict.status,
                kind=conflict.kind,
                device_op=_device_op(conflict, ops.get(conflict.change_id)),
                fields=_shown_fields(conflict),
                base_version=conflict.base_version,
                server_version=conflict.server_version,
                change_id=conflict.change_id,
                device_id=conflict.device_id,
                device_label=labels.get(conflict.device_id),
                user_id=conflict.user_id,
                user=_user_ref(people, conflict.user_id),
                server_user=_user_ref(people, author),
                recorded_at=conflict.recorded_at,
                created_at=conflict.created_at,
                resolved_at=conflict.resolved_at,
                resolved_by=conflict.resolved_by,
                resolution=conflict.resolution,
                resolved_version=conflict.resolved_version,
            )
        )
    return answers


def _device_op(conflict: Conflict, sent_op: str | None) -> Op:
    if conflict.kind == "create_locked" or CREATE_KEY in conflict.fields:
        return Op.create
    return Op(sent_op) if sent_op in set(Op) else Op.update


def _server_authors(
    session: Session, conflicts: list[Conflict]
) -> dict[uuid.UUID, uuid.UUID | None]:
    """Per conflict, the user of the server's version the change met: the newest version
    up to ``server_version`` that this change did not make (push may have applied the
    change's other fields in the version it names)."""
    wanted = {(c.entity, c.record_id) for c in conflicts if c.server_version > 0}
    if not wanted:
        return {}
    versions: dict[tuple[str, uuid.UUID], list[tuple[int, uuid.UUID | None, uuid.UUID | None]]]
    versions = {}
    rows = session.execute(
        sa.select(
            col(RecordVersion.entity),
            col(RecordVersion.record_id),
            col(RecordVersion.version),
            col(RecordVersion.user_id),
            col(RecordVersion.change_id),
        ).where(col(RecordVersion.record_id).in_({record_id for _, record_id in wanted}))
    )
    for entity, record_id, version, user_id, change_id in rows:
        if (entity, record_id) in wanted:
            versions.setdefault((entity, record_id), []).append((version, user_id, change_id))
    authors: dict[uuid.UUID, uuid.UUID | None] = {}
    for conflict in conflicts:
        met = [
            (version, user_id)
            for version, user_id, change_id in versions.get(
                (conflict.entity, conflict.record_id), []
            )
            if version <= conflict.server_version
            and (conflict.change_id is None or change_id != conflict.change_id)
        ]
        if met:
            authors[conflict.id] = max(met, key=lambda pair: pair[0])[1]
    return authors


def _users(session: Session, user_ids: set[uuid.UUID]) -> dict[uuid.UUID, ConflictUser]:
    rows = session.execute(
        select(User.id, User.username, User.full_name).where(col(User.id).in_(user_ids))
    )
    return {
        user_id: ConflictUser(user_id=user_id, username=username, full_name=full_name)
        for user_id, username, full_name in rows
    }


def _user_ref(
    people: dict[uuid.UUID, ConflictUser], user_id: uuid.UUID | None
) -> ConflictUser | None:
    if user_id is None:
        return None
    return people.get(user_id) or ConflictUser(user_id=user_id)
