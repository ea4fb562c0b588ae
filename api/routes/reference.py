"""Reference data: sectors, communities and observation categories.

Admins make and change them; everyone reads what is in their scope.
"""

import uuid

from fastapi import APIRouter, status

from api.body import JSONRoute
from api.deps import Admin, CurrentPrincipal, SessionDep
from api.errors import problems
from schemas.reference import (
    CommunityCreate,
    CommunityRead,
    CommunityUpdate,
    ObservationCategoryCreate,
    ObservationCategoryRead,
    ObservationCategoryUpdate,
    SectorCreate,
    SectorRead,
    SectorUpdate,
)
from sync.reference import service as reference

router = APIRouter(route_class=JSONRoute, tags=["reference data"])


@router.post("/sectors", status_code=status.HTTP_201_CREATED, responses=problems(409))
def create_sector(body: SectorCreate, _admin: Admin, session: SessionDep) -> SectorRead:
    """Make a patrol sector."""
    return reference.create_sector(session, sector=body)


@router.get("/sectors")
def list_sectors(principal: CurrentPrincipal, session: SessionDep) -> list[SectorRead]:
    """The sectors in the caller's scope, by code."""
    return reference.list_sectors(session, principal=principal)


@router.get("/sectors/{sector_id}")
def get_sector(
    sector_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep
) -> SectorRead:
    """One sector in the caller's scope."""
    return reference.get_sector(session, sector_id=sector_id, principal=principal)


@router.patch("/sectors/{sector_id}", responses=problems(409))
def update_sector(
    sector_id: uuid.UUID, body: SectorUpdate, _admin: Admin, session: SessionDep
) -> SectorRead:
    """Change a sector; its version goes up."""
    return reference.update_sector(session, sector_id=sector_id, changes=body)


@router.post("/communities", status_code=status.HTTP_201_CREATED, responses=problems(409))
def create_community(body: CommunityCreate, _admin: Admin, session: SessionDep) -> CommunityRead:
    """Make a community in a sector."""
    return reference.create_community(session, community=body)


@router.get("/communities")
def list_communities(
    principal: CurrentPrincipal, session: SessionDep, sector_id: uuid.UUID | None = None
) -> list[CommunityRead]:
    """The communities in the caller's scope, by name; optionally of one sector."""
    return reference.list_communities(session, principal=principal, sector_id=sector_id)


@router.get("/communities/{community_id}")
def get_community(
    community_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep
) -> CommunityRead:
    """One community in the caller's scope."""
    return reference.get_community(session, community_id=community_id, principal=principal)


@router.patch("/communities/{community_id}", responses=problems(409))
def update_community(
    community_id: uuid.UUID, body: CommunityUpdate, _admin: Admin, session: SessionDep
) -> CommunityRead:
    """Change a community; its version goes up."""
    return reference.update_community(session, community_id=community_id, changes=body)


@router.post(
    "/observation-categories", status_code=status.HTTP_201_CREATED, responses=problems(409)
)
def create_category(
    body: ObservationCategoryCreate, _admin: Admin, session: SessionDep
) -> ObservationCategoryRead:
    """Make an observation category with its typed attributes."""
    return reference.create_category(session, category=body)


@router.get("/observation-categories")
def list_categories(
    _principal: CurrentPrincipal, session: SessionDep, active: bool | None = None
) -> list[ObservationCategoryRead]:
    """Every observation category, by key; ``active=true`` for those still in use."""
    return reference.list_categories(session, active=active)


@router.get("/observation-categories/{category_id}")
def get_category(
    category_id: uuid.UUID, _principal: CurrentPrincipal, session: SessionDep
) -> ObservationCategoryRead:
    """One observation category."""
    return reference.get_category(session, category_id=category_id)


@router.patch("/observation-categories/{category_id}", responses=problems(409))
def update_category(
    category_id: uuid.UUID, body: ObservationCategoryUpdate, _admin: Admin, session: SessionDep
) -> ObservationCategoryRead:
    """Change an observation category; its version goes up."""
    return reference.update_category(session, category_id=category_id, changes=body)
