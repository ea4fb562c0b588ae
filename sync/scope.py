"""What a caller may see of the reference data: the sectors and communities in scope.

Rangers and ranger leads hold sectors and see the communities in them; extension
workers hold communities and see the sectors those lie in; admins and coordinators
see everything. Out of scope reads as absent (404), so existence does not leak.
"""

from __future__ import annotations

import uuid

from sqlmodel import Session, col, select

from schemas import Community
from schemas.enums import Role
from sync.principal import Principal


def visible_sector_ids(session: Session, principal: Principal) -> frozenset[uuid.UUID] | None:
    """The sectors ``principal`` sees; ``None`` means all of them."""
    if principal.sees_everything:
        return None
    if principal.role is Role.extension_worker:
        if not principal.community_ids:
            return frozenset()
        return frozenset(
            session.exec(
                select(Community.sector_id).where(col(Community.id).in_(principal.community_ids))
            ).all()
        )
    return principal.sector_ids


def visible_community_filter(principal: Principal) -> object | None:
    """A WHERE clause on ``community`` for what ``principal`` sees; ``None`` means all."""
    if principal.sees_everything:
        return None
    if principal.role is Role.extension_worker:
        return col(Community.id).in_(principal.community_ids)
    return col(Community.sector_id).in_(principal.sector_ids)
