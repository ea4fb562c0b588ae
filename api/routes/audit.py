"""The audit chain's anchors, for the office and the verifiers they answer to."""

from typing import Annotated

from fastapi import APIRouter, Query

from api.body import JSONRoute
from api.deps import OfficeStaff, SessionDep
from schemas.audit import AnchorRead
from sync.audit import anchors

router = APIRouter(route_class=JSONRoute, prefix="/audit", tags=["audit"])


@router.get("/anchors")
def list_anchors(
    _principal: OfficeStaff,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many.")] = 100,
) -> list[AnchorRead]:
    """The audit chain's anchors, newest first: its head each day, signed with the
    office's Ed25519 key (``fieldsync audit anchor``; docs/audit.md). Admins and
    coordinators."""
    return anchors.held(session, limit=limit)
