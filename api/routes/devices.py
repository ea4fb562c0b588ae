"""Devices: enrollment codes, enrollment, labels, and revocation of lost tablets."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from api.answers import attachment, json_or_csv
from api.body import JSONRoute
from api.deps import ClientAddress, CurrentPrincipal, SessionDep, SettingsDep, Supervisor
from api.errors import problems
from schemas.accounts import (
    DeviceCreate,
    DeviceRead,
    DeviceUpdate,
    Enrollment,
    EnrollmentCode,
    EnrollRequest,
)
from schemas.device_health import DeviceHealthPage, DeviceHealthQuery
from schemas.queries import Format
from sync.accounts import devices
from sync.engine import device_health

router = APIRouter(route_class=JSONRoute, prefix="/devices", tags=["devices"])


@router.post("", status_code=status.HTTP_201_CREATED, responses=problems(409))
def create_device(
    body: DeviceCreate, principal: Supervisor, session: SessionDep, settings: SettingsDep
) -> EnrollmentCode:
    """Make a device for a user and a one-time enrollment code to show as a QR code.

    Ranger leads make devices for the rangers of their sectors."""
    return devices.create(
        session, label=body.label, user_id=body.user_id, principal=principal, settings=settings
    )


@router.post("/enroll", responses=problems(429))
def enroll(
    body: EnrollRequest, client_address: ClientAddress, session: SessionDep, settings: SettingsDep
) -> Enrollment:
    """A tablet trades its one-time code for its tokens; they name the user and the device.

    Wrong codes are throttled per client address: ``429`` with ``Retry-After``."""
    return devices.enroll(
        session, code=body.enrollment_code, client_ip=client_address, settings=settings
    )


@router.get("")
def list_devices(principal: CurrentPrincipal, session: SessionDep) -> list[DeviceRead]:
    """Devices the caller manages (their own, for rangers and extension workers), newest
    first, with their status and when each was last seen."""
    return devices.list_visible(session, principal=principal)


# Before ``/{device_id}``, which would read ``health`` as a device id.
@router.get("/health", response_model=DeviceHealthPage, responses=json_or_csv())
def devices_health(
    query: Annotated[DeviceHealthQuery, Query()],
    principal: Supervisor,
    session: SessionDep,
    settings: SettingsDep,
) -> Any:
    """A page of the devices the caller manages (ranger leads: their sectors' rangers),
    silent longest first: its user, its last contact, push and pull, what it reported
    of itself with its last push (app version, changes not yet sent, free storage), how
    long it has been missing changes of its scope (``behind_since``, ``lag_seconds``),
    and the deferred and rejected changes and the files held for it.

    ``silent_days=N``: only those not heard from in N days; ``sector_id``, ``role``,
    ``app_version`` and ``app_version_below`` narrow it further. ``format=csv``: every
    matching device as a spreadsheet."""
    if query.format is Format.csv:
        rows = device_health.health_csv(
            session, principal=principal, query=query, zone=settings.zone
        )
        return attachment(rows, "devices.csv")
    return device_health.list_health(session, principal=principal, query=query)


@router.get("/{device_id}")
def get_device(
    device_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep
) -> DeviceRead:
    """One device: of a user the caller manages, or the caller's own."""
    return devices.get(session, device_id=device_id, principal=principal)


@router.patch("/{device_id}")
def relabel_device(
    device_id: uuid.UUID, body: DeviceUpdate, principal: Supervisor, session: SessionDep
) -> DeviceRead:
    """Change a device's label."""
    return devices.relabel(session, device_id=device_id, label=body.label, principal=principal)


@router.post("/{device_id}/revoke")
def revoke_device(device_id: uuid.UUID, principal: Supervisor, session: SessionDep) -> DeviceRead:
    """A lost tablet: from now on every token of this device is refused, refresh included."""
    return devices.revoke(session, device_id=device_id, principal=principal)
