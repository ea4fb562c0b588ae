"""The conflict queue: both sides, field by field, and their resolution."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from api.body import JSONRoute
from api.deps import SessionDep, Supervisor
from api.errors import problems
from schemas.sync import ConflictPage, ConflictQuery, ConflictRead, ResolveRequest
from sync.catalog import CATALOG
from sync.engine import conflicts

router = APIRouter(route_class=JSONRoute, prefix="/conflicts", tags=["conflicts"])


@router.get("")
def list_conflicts(
    query: Annotated[ConflictQuery, Query()], principal: Supervisor, session: SessionDep
) -> ConflictPage:
    """Conflicts, oldest first (open ones by default), a page at a time with the total,
    each with whose change it was, which tablet sent it and who made the server's
    version; ranger leads see those of the patrol records of their sectors."""
    return conflicts.list_conflicts(session, principal=principal, query=query)


@router.get("/{conflict_id}")
def get_conflict(
    conflict_id: uuid.UUID, principal: Supervisor, session: SessionDep
) -> ConflictRead:
    """One conflict: both sides field by field, who, which device, and when."""
    return conflicts.get(session, principal=principal, conflict_id=conflict_id)


@router.post("/{conflict_id}/resolve", responses=problems(409))
def resolve_conflict(
    conflict_id: uuid.UUID, body: ResolveRequest, principal: Supervisor, session: SessionDep
) -> ConflictRead:
    """``keep_server``, ``take_device``, or ``custom`` with ``fields`` (custom only, and
    at least one): a new version of the record, which devices receive on their next
    pull."""
    return conflicts.resolve(
        session, catalog=CATALOG, principal=principal, conflict_id=conflict_id, request=body
    )
