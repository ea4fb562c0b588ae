"""Patrols, as ranger leads see them."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends

from api.deps import SessionDep, require
from schemas.enums import Role
from sync import review
from sync.principal import Principal

router = APIRouter(prefix="/patrols", tags=["patrols"])

Reviewer = Annotated[Principal, Depends(require(Role.admin, Role.ranger_lead))]


@router.post("/{patrol_id}/review")
def review_patrol(
    patrol_id: uuid.UUID, body: review.ReviewRequest, principal: Reviewer, session: SessionDep
) -> review.Reviewed:
    """Approve a submitted patrol (it is then locked: later device edits are conflicts)
    or return it with a comment. Devices receive the new version by pull."""
    return review.review(session, principal=principal, patrol_id=patrol_id, request=body)
