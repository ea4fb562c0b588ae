"""Patrols, as ranger leads see them: the queue, the detail, the review, a move."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from api.body import JSONRoute
from api.deps import PatrolMover, PatrolReader, PatrolReviewer, SessionDep, SettingsDep
from api.errors import problems
from schemas.moves import PatrolMove, PatrolMoved
from schemas.patrols import PatrolDetail, PatrolPage, PatrolQuery
from sync.catalog import CATALOG
from sync.engine import moves
from sync.patrols import reads as patrols
from sync.patrols import review

router = APIRouter(route_class=JSONRoute, prefix="/patrols", tags=["patrols"])


@router.get("")
def list_patrols(
    query: Annotated[PatrolQuery, Query()],
    principal: PatrolReader,
    session: SessionDep,
    settings: SettingsDep,
) -> PatrolPage:
    """Patrols in the caller's sectors that match every filter given, a page at a time,
    with the total. ``status=submitted`` is the review queue, the longest waiting first;
    otherwise the newest patrols come first. Unknown parameters are refused (422)."""
    return patrols.list_patrols(session, principal=principal, query=query, zone=settings.zone)


@router.get("/{patrol_id}")
def get_patrol(patrol_id: uuid.UUID, principal: PatrolReader, session: SessionDep) -> PatrolDetail:
    """One patrol: members, observations, the track as GeoJSON, every review, and the
    effort figures and quality flags a reviewer weighs (docs/protocol.md lists them)."""
    return patrols.detail(session, principal=principal, patrol_id=patrol_id)


@router.post("/{patrol_id}/review", responses=problems(409))
def review_patrol(
    patrol_id: uuid.UUID, body: review.ReviewRequest, principal: PatrolReviewer, session: SessionDep
) -> review.Reviewed:
    """Approve a submitted patrol (it is then locked: later device edits are conflicts)
    or return it with a comment. Devices receive the new version by pull."""
    return review.review(session, principal=principal, patrol_id=patrol_id, request=body)


@router.post("/{patrol_id}/move")
def move_patrol(
    patrol_id: uuid.UUID, body: PatrolMove, principal: PatrolMover, session: SessionDep
) -> PatrolMoved:
    """File a patrol under another sector, with its track and observations: a new
    version of each. The old sector's tablets pull them as deletes, the new one's as
    records. The caller must hold both sectors (``422 out_of_scope`` otherwise)."""
    moved = moves.move(
        session,
        catalog=CATALOG,
        principal=principal,
        entity="patrol",
        record_id=patrol_id,
        to=body.sector_id,
    )
    return PatrolMoved(id=moved.id, version=moved.version, sector_id=moved.scope)
