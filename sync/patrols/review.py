"""Ranger leads review patrols: approve (which locks the patrol) or return with a comment.

Every review is kept (``patrol_review``): a patrol returned, fixed and approved shows
both reviews in its detail; the patrol itself holds only the latest.
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from schemas import Patrol
from schemas.enums import Role
from schemas.patrols import PatrolReview
from schemas.patrols import ReviewDecision as Decision
from schemas.records import PatrolStatus
from schemas.wire import RequestBody
from sync.accounts.principal import Principal
from sync.engine.writes import ServerWrites
from sync.patrols.entities import PATROL
from sync.platform.errors import Conflict, FieldProblem, NotFound, Unprocessable


class ReviewRequest(RequestBody):
    decision: Decision
    comment: str | None = Field(default=None, max_length=2000)


class Reviewed(BaseModel):
    id: uuid.UUID
    version: int
    status: PatrolStatus
    reviewed_by: uuid.UUID
    reviewed_at: str
    review_comment: str | None


def review(
    session: Session, *, principal: Principal, patrol_id: uuid.UUID, request: ReviewRequest
) -> Reviewed:
    """A new version of the patrol, ``approved`` or ``returned``, that devices pull."""
    patrol = session.exec(
        select(Patrol).where(col(Patrol.id) == patrol_id).with_for_update()
    ).first()
    if patrol is None or patrol.deleted_at is not None:
        raise NotFound("no such patrol")
    if principal.role is Role.ranger_lead and patrol.sector_id not in principal.sector_ids:
        raise NotFound("no such patrol")
    if patrol.status is PatrolStatus.approved:
        raise Conflict("this patrol is already approved", code="already_approved")
    if patrol.status is not PatrolStatus.submitted:
        raise Conflict(
            f"only a submitted patrol is reviewed; this one is {patrol.status}",
            code="not_submitted",
        )
    comment = (request.comment or "").strip() or None
    if request.decision is Decision.return_ and comment is None:
        raise Unprocessable(
            "returning a patrol needs a comment for the ranger",
            errors=[FieldProblem("comment", "missing", "say what to fix")],
        )
    writes = ServerWrites(session, user_id=principal.user_id)
    now = writes.now
    patrol.status = (
        PatrolStatus.approved if request.decision is Decision.approve else PatrolStatus.returned
    )
    patrol.reviewed_by = principal.user_id
    patrol.reviewed_at = now
    patrol.review_comment = comment
    writes.save(
        PATROL, patrol, op="review", reason=f"review:{request.decision}", changed=["status"]
    )
    session.add(
        PatrolReview(
            id=uuid.uuid4(),
            patrol_id=patrol.id,
            version=patrol.version,
            decision=request.decision,
            comment=comment,
            reviewed_by=principal.user_id,
            reviewed_at=now,
        )
    )
    writes.publish()
    return Reviewed(
        id=patrol.id,
        version=patrol.version,
        status=patrol.status,
        reviewed_by=principal.user_id,
        reviewed_at=now.isoformat().replace("+00:00", "Z"),
        review_comment=comment,
    )
