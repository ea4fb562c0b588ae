"""Users: made and changed by admins; the first admin from the command line."""

from __future__ import annotations

import uuid

from sqlmodel import Session, col, delete, select

from schemas import Community, RefreshFamily, Sector, User, UserCommunity, UserSector
from schemas.accounts import UserCreate, UserRead, UserUpdate
from schemas.enums import Role
from schemas.types import utcnow
from sync.accounts import security
from sync.accounts.auth import revoke_families
from sync.accounts.principal import Principal
from sync.platform.errors import Conflict, FieldProblem, NotFound, Unprocessable
from sync.platform.settings import Settings

# Which scope each role holds: sectors for rangers and their leads, communities for
# extension workers. Admins and coordinators see everything and hold none.
SECTOR_ROLES = frozenset({Role.ranger, Role.ranger_lead})
COMMUNITY_ROLES = frozenset({Role.extension_worker})


def create(session: Session, *, user: UserCreate, settings: Settings) -> UserRead:
    if session.exec(select(User.id).where(User.username == user.username)).first():
        raise Conflict(f"the username {user.username!r} is taken", code="already_exists")
    _check_scope_fits_role(user.role, user.sector_ids, user.community_ids)
    _check_scope_exists(session, user.sector_ids, user.community_ids)
    record = User(
        username=user.username,
        full_name=user.full_name,
        role=user.role,
        password_hash=security.hash_password(user.password, settings),
    )
    session.add(record)
    session.flush()
    _set_scope(session, record.id, sector_ids=user.sector_ids, community_ids=user.community_ids)
    return _read(session, record)


def create_admin(
    session: Session, *, username: str, password: str, full_name: str, settings: Settings
) -> UserRead:
    return create(
        session,
        user=UserCreate(username=username, password=password, full_name=full_name, role=Role.admin),
        settings=settings,
    )


def update(
    session: Session, *, user_id: uuid.UUID, changes: UserUpdate, settings: Settings
) -> UserRead:
    record = session.get(User, user_id)
    if record is None:
        raise NotFound("no such user")
    role = changes.role or record.role
    _check_scope_fits_role(role, changes.sector_ids or [], changes.community_ids or [])
    _check_scope_exists(session, changes.sector_ids or [], changes.community_ids or [])
    if (
        record.role is Role.admin
        and record.active
        and (role is not Role.admin or changes.active is False)
    ):
        _keep_one_admin(session, user_id)
    # A new role drops the scope it does not hold: a ranger made coordinator keeps no sectors.
    sector_ids = changes.sector_ids if role in SECTOR_ROLES else []
    community_ids = changes.community_ids if role in COMMUNITY_ROLES else []
    if changes.full_name is not None:
        record.full_name = changes.full_name
    if changes.role is not None:
        record.role = changes.role
    if changes.active is not None:
        record.active = changes.active
    if changes.password is not None:
        record.password_hash = security.hash_password(changes.password, settings)
    if changes.active is False or changes.password is not None:
        # Checked on every request anyway; revoking the sign-ins makes it final.
        revoke_families(
            session,
            where=col(RefreshFamily.user_id) == user_id,
            reason="deactivated" if changes.active is False else "password_changed",
        )
    _set_scope(session, user_id, sector_ids=sector_ids, community_ids=community_ids)
    record.updated_at = utcnow()
    session.add(record)
    session.flush()
    return _read(session, record)


def get(session: Session, *, user_id: uuid.UUID, principal: Principal) -> UserRead:
    record = session.get(User, user_id)
    if record is None or not (principal.sees_everything or principal.user_id == user_id):
        raise NotFound("no such user")
    return _read(session, record)


def list_all(session: Session) -> list[UserRead]:
    """Every user with their scope: three statements, whatever the number of users."""
    people = list(session.exec(select(User).order_by(User.username)))
    sectors: dict[uuid.UUID, list[uuid.UUID]] = {}
    for user_id, sector_id in session.exec(select(UserSector.user_id, UserSector.sector_id)):
        sectors.setdefault(user_id, []).append(sector_id)
    communities: dict[uuid.UUID, list[uuid.UUID]] = {}
    for user_id, community_id in session.exec(
        select(UserCommunity.user_id, UserCommunity.community_id)
    ):
        communities.setdefault(user_id, []).append(community_id)
    return [
        _as_read(user, sectors.get(user.id, []), communities.get(user.id, [])) for user in people
    ]


def _read(session: Session, user: User) -> UserRead:
    sector_ids = session.exec(select(UserSector.sector_id).where(UserSector.user_id == user.id))
    community_ids = session.exec(
        select(UserCommunity.community_id).where(UserCommunity.user_id == user.id)
    )
    return _as_read(user, list(sector_ids.all()), list(community_ids.all()))


def _as_read(user: User, sector_ids: list[uuid.UUID], community_ids: list[uuid.UUID]) -> UserRead:
    return UserRead(
        id=user.id,
        username=user.username,
        full_name=user.full_name,
        role=user.role,
        active=user.active,
        sector_ids=sorted(sector_ids),
        community_ids=sorted(community_ids),
        created_at=user.created_at,
        updated_at=user.updated_at,
    )


def _check_scope_fits_role(
    role: Role, sector_ids: list[uuid.UUID], community_ids: list[uuid.UUID]
) -> None:
    problems = []
    if sector_ids and role not in SECTOR_ROLES:
        problems.append(FieldProblem("sector_ids", "scope_mismatch", f"a {role} holds no sectors"))
    if community_ids and role not in COMMUNITY_ROLES:
        problems.append(
            FieldProblem("community_ids", "scope_mismatch", f"a {role} holds no communities")
        )
    if problems:
        raise Unprocessable("this scope does not go with the role", errors=problems)


def _keep_one_admin(session: Session, leaving: uuid.UUID) -> None:
    others = session.exec(
        select(User.id).where(User.role == Role.admin, col(User.active), User.id != leaving)
    ).first()
    if others is None:
        raise Conflict("this is the last active admin; make another first", code="last_admin")


def _check_scope_exists(
    session: Session, sector_ids: list[uuid.UUID], community_ids: list[uuid.UUID]
) -> None:
    problems = []
    known = set(session.exec(select(Sector.id).where(col(Sector.id).in_(sector_ids))).all())
    problems += [
        FieldProblem(f"sector_ids.{i}", "unknown_reference", f"no sector {sector_id}")
        for i, sector_id in enumerate(sector_ids)
        if sector_id not in known
    ]
    known = set(
        session.exec(select(Community.id).where(col(Community.id).in_(community_ids))).all()
    )
    problems += [
        FieldProblem(f"community_ids.{i}", "unknown_reference", f"no community {community_id}")
        for i, community_id in enumerate(community_ids)
        if community_id not in known
    ]
    if problems:
        raise Unprocessable("the scope names records that do not exist", errors=problems)


def _set_scope(
    session: Session,
    user_id: uuid.UUID,
    *,
    sector_ids: list[uuid.UUID] | None,
    community_ids: list[uuid.UUID] | None,
) -> None:
    if sector_ids is not None:
        session.exec(delete(UserSector).where(col(UserSector.user_id) == user_id))
        session.add_all(UserSector(user_id=user_id, sector_id=s) for s in set(sector_ids))
    if community_ids is not None:
        session.exec(delete(UserCommunity).where(col(UserCommunity.user_id) == user_id))
        session.add_all(UserCommunity(user_id=user_id, community_id=c) for c in set(community_ids))
    session.flush()


def rangers_in_scope(session: Session, *, principal: Principal) -> list[User]:
    """The active rangers and ranger leads of the caller's sectors (all of them for the
    office), by name: whom a lead filters the patrols by."""
    query = select(User).where(col(User.role).in_(SECTOR_ROLES), col(User.active).is_(True))
    if not principal.sees_everything:
        in_my_sectors = select(UserSector.user_id).where(
            col(UserSector.sector_id).in_(principal.sector_ids)
        )
        query = query.where(col(User.id).in_(in_my_sectors))
    return list(session.exec(query.order_by(col(User.full_name), col(User.username))))
