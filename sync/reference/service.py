"""Reference data: sectors, communities and observation categories, managed by admins.

Each change bumps the record's ``version``; devices pull reference data like any
other record (see ``docs/protocol.md``).
"""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlmodel import Session, col, select

from schemas import Community, ObservationCategory, Sector
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
from schemas.types import utcnow
from sync.accounts.principal import Principal
from sync.accounts.scope import visible_community_filter, visible_sector_ids
from sync.engine.changelog import PendingEntry
from sync.engine.writes import ServerWrites
from sync.platform.errors import Conflict, FieldProblem, NotFound, Unprocessable

Record = TypeVar("Record", Sector, Community, ObservationCategory)

# ---------------------------------------------------------------- sectors


def create_sector(session: Session, *, sector: SectorCreate) -> SectorRead:
    if session.exec(select(Sector.id).where(Sector.code == sector.code)).first():
        raise Conflict(f"a sector with code {sector.code!r} exists", code="already_exists")
    record = Sector(**sector.model_dump())
    session.add(record)
    session.flush()
    return _published(session, "sector", record, SectorRead)


def update_sector(session: Session, *, sector_id: uuid.UUID, changes: SectorUpdate) -> SectorRead:
    record = _get(session, Sector, sector_id, "sector")
    if _apply(session, record, changes, nullable={"zone", "boundary"}):
        return _published(session, "sector", record, SectorRead)
    return SectorRead.model_validate(record, from_attributes=True)


def list_sectors(session: Session, *, principal: Principal) -> list[SectorRead]:
    query = select(Sector).order_by(Sector.code)
    visible = visible_sector_ids(session, principal)
    if visible is not None:
        query = query.where(col(Sector.id).in_(visible))
    return [SectorRead.model_validate(s, from_attributes=True) for s in session.exec(query)]


def get_sector(session: Session, *, sector_id: uuid.UUID, principal: Principal) -> SectorRead:
    visible = visible_sector_ids(session, principal)
    record = session.get(Sector, sector_id)
    if record is None or (visible is not None and sector_id not in visible):
        raise NotFound("no such sector")
    return SectorRead.model_validate(record, from_attributes=True)


# ---------------------------------------------------------------- communities


def create_community(session: Session, *, community: CommunityCreate) -> CommunityRead:
    _check_sector(session, community.sector_id)
    _check_community_name_free(session, community.sector_id, community.name)
    record = Community(**community.model_dump())
    session.add(record)
    session.flush()
    return _published(session, "community", record, CommunityRead)


def update_community(
    session: Session, *, community_id: uuid.UUID, changes: CommunityUpdate
) -> CommunityRead:
    record = _get(session, Community, community_id, "community")
    if changes.sector_id is not None:
        _check_sector(session, changes.sector_id)
    if changes.sector_id is not None or changes.name is not None:
        sector_id = changes.sector_id or record.sector_id
        name = changes.name or record.name
        if (sector_id, name) != (record.sector_id, record.name):
            _check_community_name_free(session, sector_id, name)
    if _apply(session, record, changes, nullable=set()):
        return _published(session, "community", record, CommunityRead)
    return CommunityRead.model_validate(record, from_attributes=True)


def list_communities(
    session: Session, *, principal: Principal, sector_id: uuid.UUID | None = None
) -> list[CommunityRead]:
    query = select(Community).order_by(Community.name)
    visible = visible_community_filter(principal)
    if visible is not None:
        query = query.where(visible)  # type: ignore[arg-type]
    if sector_id is not None:
        query = query.where(Community.sector_id == sector_id)
    return [CommunityRead.model_validate(c, from_attributes=True) for c in session.exec(query)]


def get_community(
    session: Session, *, community_id: uuid.UUID, principal: Principal
) -> CommunityRead:
    query = select(Community).where(Community.id == community_id)
    visible = visible_community_filter(principal)
    if visible is not None:
        query = query.where(visible)  # type: ignore[arg-type]
    record = session.exec(query).first()
    if record is None:
        raise NotFound("no such community")
    return CommunityRead.model_validate(record, from_attributes=True)


def _check_sector(session: Session, sector_id: uuid.UUID) -> None:
    if session.get(Sector, sector_id) is None:
        raise Unprocessable(
            "the sector does not exist",
            errors=[FieldProblem("sector_id", "unknown_reference", f"no sector {sector_id}")],
        )


def _check_community_name_free(session: Session, sector_id: uuid.UUID, name: str) -> None:
    taken = session.exec(
        select(Community.id).where(Community.sector_id == sector_id, Community.name == name)
    ).first()
    if taken:
        raise Conflict(f"the sector already has a community {name!r}", code="already_exists")


# ---------------------------------------------------------------- observation categories


def create_category(
    session: Session, *, category: ObservationCategoryCreate
) -> ObservationCategoryRead:
    if session.exec(
        select(ObservationCategory.id).where(ObservationCategory.key == category.key)
    ).first():
        raise Conflict(f"a category with key {category.key!r} exists", code="already_exists")
    record = ObservationCategory(**category.model_dump())
    session.add(record)
    session.flush()
    return _published(session, "observation_category", record, ObservationCategoryRead)


def update_category(
    session: Session, *, category_id: uuid.UUID, changes: ObservationCategoryUpdate
) -> ObservationCategoryRead:
    record = _get(session, ObservationCategory, category_id, "observation category")
    if _apply(session, record, changes, nullable=set()):
        return _published(session, "observation_category", record, ObservationCategoryRead)
    return ObservationCategoryRead.model_validate(record, from_attributes=True)


def list_categories(
    session: Session, *, active: bool | None = None
) -> list[ObservationCategoryRead]:
    query = select(ObservationCategory).order_by(ObservationCategory.key)
    if active is not None:
        query = query.where(ObservationCategory.active == active)
    return [
        ObservationCategoryRead.model_validate(c, from_attributes=True) for c in session.exec(query)
    ]


def get_category(session: Session, *, category_id: uuid.UUID) -> ObservationCategoryRead:
    record = _get(session, ObservationCategory, category_id, "observation category")
    return ObservationCategoryRead.model_validate(record, from_attributes=True)


# ---------------------------------------------------------------- shared


def _get(session: Session, table: type[Record], record_id: uuid.UUID, name: str) -> Record:
    record = session.get(table, record_id)
    if record is None:
        raise NotFound(f"no such {name}")
    return record


def _apply(
    session: Session,
    record: Sector | Community | ObservationCategory,
    changes: BaseModel,
    *,
    nullable: set[str],
) -> bool:
    """Set the fields a PATCH named; a new version if anything changed (then True)."""
    given: dict[str, Any] = changes.model_dump(exclude_unset=True)
    cleared = [name for name, value in given.items() if value is None and name not in nullable]
    if cleared:
        raise Unprocessable(
            "these fields cannot be emptied",
            errors=[
                FieldProblem(name, "required", "this field cannot be null") for name in cleared
            ],
        )
    changed = False
    for name, value in given.items():
        if getattr(record, name) != value:
            setattr(record, name, value)
            changed = True
    if changed:
        record.version += 1
        record.updated_at = utcnow()
        session.add(record)
        session.flush()
    return changed


Read = TypeVar("Read", SectorRead, CommunityRead, ObservationCategoryRead)
SERVER_FIELDS = {"id", "version", "created_at", "updated_at"}


def _published(
    session: Session,
    entity: str,
    record: Sector | Community | ObservationCategory,
    read: type[Read],
) -> Read:
    """The record as read, after queueing it for devices' pulls."""
    shown = read.model_validate(record, from_attributes=True)
    sector_id = record.id if isinstance(record, Sector) else getattr(record, "sector_id", None)
    writes = ServerWrites(session)
    writes.touch(
        PendingEntry(
            entity=entity,
            record_id=record.id,
            version=record.version,
            deleted=False,
            sector_id=sector_id,
            community_id=record.id if isinstance(record, Community) else None,
            fields=shown.model_dump(mode="json", exclude=SERVER_FIELDS),
            updated_at=record.updated_at,
        )
    )
    writes.publish()
    return shown
