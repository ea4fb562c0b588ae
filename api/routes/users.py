"""Users and their scope, managed by admins."""

import uuid

from fastapi import APIRouter, status

from api.body import JSONRoute
from api.deps import Admin, CurrentPrincipal, OfficeStaff, SessionDep, SettingsDep
from api.errors import problems
from schemas.accounts import UserCreate, UserRead, UserUpdate
from sync.accounts import users

router = APIRouter(route_class=JSONRoute, prefix="/users", tags=["users"])


@router.post("", status_code=status.HTTP_201_CREATED, responses=problems(409))
def create_user(
    body: UserCreate, _admin: Admin, session: SessionDep, settings: SettingsDep
) -> UserRead:
    """Make a user with a role and a scope (sectors for rangers, communities for
    extension workers)."""
    return users.create(session, user=body, settings=settings)


@router.get("")
def list_users(_staff: OfficeStaff, session: SessionDep) -> list[UserRead]:
    """Every user, by username."""
    return users.list_all(session)


@router.get("/{user_id}")
def get_user(user_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep) -> UserRead:
    """One user: admins and coordinators see anyone, others only themselves."""
    return users.get(session, user_id=user_id, principal=principal)


@router.patch("/{user_id}", responses=problems(409))
def update_user(
    user_id: uuid.UUID,
    body: UserUpdate,
    _admin: Admin,
    session: SessionDep,
    settings: SettingsDep,
) -> UserRead:
    """Change a user's role, scope, name, password or ``active``. It takes effect on the
    user's very next request; deactivating or a new password also ends their sign-ins."""
    return users.update(session, user_id=user_id, changes=body, settings=settings)
