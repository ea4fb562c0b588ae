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
from schemas.types import utcnow
from schemas.wire import RequestBody
from sync.accounts.principal import Principal
from sync.engine import records
from sync.engine.changelog import Changelog
from sync.engine.entities import ENTITIES
from sync.engine.push import publish
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
    now = utcnow()
    spec = ENTITIES["patrol"]
    patrol.status = (
        PatrolStatus.approved if request.decision is Decision.approve else PatrolStatus.returned
    )
    patrol.reviewed_by = principal.user_id
    patrol.reviewed_at = now
    patrol.review_comment = comment
    patrol.version += 1
    patrol.updated_at = now
    session.add(patrol)
    session.flush()
    state = records.state_of(spec, patrol)
    log = Changelog(session)
    log.version(
        entity="patrol",
        record_id=patrol.id,
        version=patrol.version,
        op="review",
        fields=state,
        changed=["status"],
        user_id=principal.user_id,
        device_id=None,
        change_id=None,
        reason=f"review:{request.decision}",
        recorded_at=None,
        now=now,
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
    publish(log, spec, patrol, state)
    log.publish()
    return Reviewed(
        id=patrol.id,
        version=patrol.version,
        status=patrol.status,
        reviewed_by=principal.user_id,
        reviewed_at=now.isoformat().replace("+00:00", "Z"),
        review_comment=comment,
    )
