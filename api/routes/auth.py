"""Signing in: password logins for people, token refresh for everyone."""

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm

from api.body import JSONRoute
from api.deps import ClientAddress, CurrentPrincipal, SessionDep, SettingsDep
from api.errors import problems
from schemas.accounts import RefreshRequest, TokenPair, UserRead
from sync.accounts import auth, users

router = APIRouter(route_class=JSONRoute, prefix="/auth", tags=["auth"])


@router.post("/token", responses=problems(429))
def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    client_address: ClientAddress,
    session: SessionDep,
    settings: SettingsDep,
) -> TokenPair:
    """Sign in with a username and password (OAuth2 password form).

    Failures are throttled per username and client address, and per address across
    usernames: ``429`` with ``Retry-After``. A deactivated account is refused as a wrong
    password is."""
    return auth.login(
        session,
        username=form.username,
        password=form.password,
        client_ip=client_address,
        settings=settings,
    )


@router.post("/refresh")
def refresh(body: RefreshRequest, session: SessionDep, settings: SettingsDep) -> TokenPair:
    """Trade a refresh token for a new pair. The old refresh token dies; presenting it
    again revokes every token of its sign-in."""
    return auth.refresh(session, refresh_token=body.refresh_token, settings=settings)


@router.get("/me")
def me(principal: CurrentPrincipal, session: SessionDep) -> UserRead:
    """The signed-in user, with the role and scope in force now."""
    return users.get(session, user_id=principal.user_id, principal=principal)
