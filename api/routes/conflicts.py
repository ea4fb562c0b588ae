"""The conflict queue: both sides, field by field, and their resolution."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.deps import SessionDep, require
from schemas.enums import Role
from schemas.sync import ConflictRead, ConflictStatus, ResolveRequest
from sync import conflicts
from sync.principal import Principal

router = APIRouter(prefix="/conflicts", tags=["conflicts"])

Resolver = Annotated[Principal, Depends(require(Role.admin, Role.coordinator, Role.ranger_lead))]


@router.get("")
def list_conflicts(
    principal: Resolver,
    session: SessionDep,
    status: ConflictStatus | None = ConflictStatus.open,
    entity: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[ConflictRead]:
    """Conflicts, oldest first (open ones by default); ranger leads see those of the
    patrol records of their sectors."""
    return conflicts.list_conflicts(
        session, principal=principal, status=status, entity=entity, limit=limit, offset=offset
    )


@router.get("/{conflict_id}")
def get_conflict(conflict_id: uuid.UUID, principal: Resolver, session: SessionDep) -> ConflictRead:
    """One conflict: both sides field by field, who, which device, and when."""
    return conflicts.get(session, principal=principal, conflict_id=conflict_id)


@router.post("/{conflict_id}/resolve")
def resolve_conflict(
    conflict_id: uuid.UUID, body: ResolveRequest, principal: Resolver, session: SessionDep
) -> ConflictRead:
    """``keep_server``, ``take_device``, or ``custom`` with ``fields``: a new version of
    the record, which devices receive on their next pull."""
    return conflicts.resolve(session, principal=principal, conflict_id=conflict_id, request=body)
