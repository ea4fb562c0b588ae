"""Dependencies that make route signatures read like sentences.

The session dependency owns the request's one transaction: it commits after the
route returns and *before* the response is sent (``scope="function"``), so nothing
is acknowledged that is not on disk; it rolls back if the route raises, unless the
error says its changes must be kept (a failed login is counted even so).
"""

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.engine import Engine
from sqlmodel import Session

from schemas.enums import Role
from schemas.types import utcnow
from sync.accounts import auth, devices
from sync.accounts.principal import Principal
from sync.platform import addresses
from sync.platform.database import open_session
from sync.platform.errors import Forbidden, Unauthorized
from sync.platform.settings import Settings

READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

bearer = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]


def get_session(request: Request, engine: EngineDep) -> Iterator[Session]:
    writes = request.method not in READ_ONLY_METHODS
    session = open_session(engine, write=writes)
    session.info["writes"] = writes
    try:
        yield session
        session.commit()
    except Exception as error:
        if getattr(error, "keeps_changes", False):
            session.commit()
        else:
            session.rollback()
        raise
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_client_address(request: Request, settings: SettingsDep) -> str | None:
    """The caller's address: the socket peer, or what trusted proxies say it is."""
    peer = request.client.host if request.client else None
    trusted = addresses.trusted_networks(settings.trusted_proxies)
    return addresses.client_address(peer, request.headers.getlist("x-forwarded-for"), trusted)


ClientAddress = Annotated[str | None, Depends(get_client_address)]


def get_principal(
    session: SessionDep, settings: SettingsDep, token: Annotated[str | None, Depends(bearer)]
) -> Principal:
    if not token:
        raise Unauthorized("a bearer token is required", code="not_authenticated")
    principal = auth.authenticate(session, access_token=token, settings=settings)
    if principal.device_id is not None and session.info["writes"]:
        devices.touch(session, device_id=principal.device_id, now=utcnow())
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency that lets only ``roles`` through (403 for the others)."""
    allowed = ", ".join(roles)

    def check(principal: CurrentPrincipal) -> Principal:
        if principal.role not in roles:
            raise Forbidden(f"this needs one of the roles: {allowed}")
        return principal

    return check


# Who may call a route, one alias per set of roles, named for who it lets in; two
# routes letting in the same roles use the same alias.
Admin = Annotated[Principal, Depends(require(Role.admin))]
# The office: admins and coordinators (listing users, merging people).
OfficeStaff = Annotated[Principal, Depends(require(Role.admin, Role.coordinator))]
# Those who answer for sectors: the office and ranger leads. They manage the tablets,
# resolve conflicts and read the patrol reports; rangers read only their own patrols,
# and extension workers hold communities, not sectors.
Supervisor = Annotated[Principal, Depends(require(Role.admin, Role.coordinator, Role.ranger_lead))]
# Families' records (people, households, agreements, training) are the office's and
# the extension workers' (their communities).
PeopleReader = Annotated[
    Principal, Depends(require(Role.admin, Role.coordinator, Role.extension_worker))
]
# Rangers read the patrols of their sectors (their tablets pull them anyway);
# extension workers hold communities, not sectors, and have no business there.
PatrolReader = Annotated[
    Principal, Depends(require(Role.admin, Role.coordinator, Role.ranger_lead, Role.ranger))
]
# Who approves or returns a submitted patrol.
PatrolReviewer = Annotated[Principal, Depends(require(Role.admin, Role.ranger_lead))]
# Who moves a patrol to another sector: the office, and leads of both sectors.
PatrolMover = Annotated[Principal, Depends(require(Role.admin, Role.coordinator, Role.ranger_lead))]
