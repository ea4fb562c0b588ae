"""What a caller may see of the reference data: the sectors and communities in scope.

Rangers and ranger leads hold sectors and see the communities in them; extension
workers hold communities and see the sectors those lie in; admins and coordinators
see everything. Out of scope reads as absent (404), so existence does not leak.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from schemas import Community, Sector
from schemas.enums import Role
from sync.accounts.principal import Principal
from sync.platform.errors import NotFound


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


def in_communities(
    principal: Principal,
    column: Any,
    *,
    community_id: uuid.UUID | None = None,
    sector_id: uuid.UUID | None = None,
) -> list[ColumnElement[bool]]:
    """Conditions that ``column`` (a community id) is in ``principal``'s scope, and in
    the community or the sector asked: the place filter of every people-side list."""
    where: list[ColumnElement[bool]] = []
    if not principal.sees_everything:
        where.append(col(column).in_(principal.community_ids))
    if community_id is not None:
        where.append(col(column) == community_id)
    if sector_id is not None:
        where.append(col(column).in_(select(Community.id).where(Community.sector_id == sector_id)))
    return where


def check_places(
    session: Session,
    principal: Principal,
    *,
    community_id: uuid.UUID | None = None,
    sector_id: uuid.UUID | None = None,
) -> None:
    """A 404 for a community or a sector asked for that the caller cannot see (or that
    does not exist): an empty answer would read as "nobody there"."""
    if community_id is not None:
        community = session.get(Community, community_id)
        if community is None or (
            not principal.sees_everything and community_id not in principal.community_ids
        ):
            raise NotFound("no such community")
    if sector_id is not None:
        visible = visible_sector_ids(session, principal)
        if session.get(Sector, sector_id) is None or (
            visible is not None and sector_id not in visible
        ):
            raise NotFound("no such sector")
