"""Devices: enrollment by one-time code, labels, last seen, and revocation of a lost tablet."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import CompoundSelect
from sqlmodel import Session, col, select, update

from schemas import Device, EnrollmentFailure, RefreshFamily, User, UserSector
from schemas.accounts import DeviceRead, DeviceStatus, Enrollment, EnrollmentCode
from schemas.enums import Role
from schemas.types import utcnow
from sync.accounts import security, throttle
from sync.accounts.auth import revoke_families, start_family
from sync.accounts.principal import Principal
from sync.platform.errors import Conflict, KeepsChanges, NotFound, TooManyRequests, Unauthorized
from sync.platform.settings import Settings

LAST_SEEN_RESOLUTION = timedelta(minutes=1)


class InvalidEnrollmentCode(KeepsChanges, Unauthorized):
    """Kept even though the request fails: the wrong code is counted."""

    code = "invalid_enrollment_code"


def create(
    session: Session, *, label: str, user_id: uuid.UUID, principal: Principal, settings: Settings
) -> EnrollmentCode:
    """A device for ``user_id`` and the one-time code that enrolls it."""
    user = session.get(User, user_id)
    if user is None or not _manages(session, principal, user):
        raise NotFound("no such user")
    if not user.active:
        raise Conflict("this user is deactivated", code="user_inactive")
    code = security.new_enrollment_code()
    now = utcnow()
    device = Device(
        label=label,
        user_id=user.id,
        created_by=principal.user_id,
        created_at=now,
        enrollment_code_hash=security.sha256(code),
        enrollment_expires_at=now + timedelta(hours=settings.enrollment_code_hours),
    )
    session.add(device)
    session.flush()
    assert device.enrollment_expires_at is not None
    return EnrollmentCode(
        device_id=device.id, enrollment_code=code, expires_at=device.enrollment_expires_at
    )


def enroll(session: Session, *, code: str, client_ip: str | None, settings: Settings) -> Enrollment:
    """Trade a one-time code for the device's first tokens; the code dies with it.

    Wrong codes are counted per client address: ``enrollment_max_failures`` of them in
    the window and that address is refused (``429``) even a right code until the oldest
    leaves, so nobody can try codes faster than that from one address. The count is
    taken under a lock on the address, so it is exact across processes.
    """
    now = utcnow()
    window = timedelta(seconds=settings.enrollment_window_seconds)
    throttle.lock(session, f"enroll:{client_ip or ''}")
    wait = throttle.retry_after(
        session,
        failed_at=EnrollmentFailure.failed_at,
        where=throttle.at_address(EnrollmentFailure.client_ip, client_ip),
        limit=settings.enrollment_max_failures,
        window=window,
        now=now,
    )
    if wait is not None:
        raise TooManyRequests(
            "too many wrong enrollment codes from this address; try again later",
            retry_after_seconds=wait,
        )
    code_hash = security.sha256(security.normalize_enrollment_code(code))
    claimed = session.exec(
        update(Device)
        .where(
            col(Device.enrollment_code_hash) == code_hash,
            col(Device.enrollment_expires_at) > now,
            col(Device.revoked_at).is_(None),
            col(Device.enrolled_at).is_(None),
        )
        .values(enrolled_at=now, last_seen_at=now, enrollment_code_hash=None)
        .returning(col(Device.id), col(Device.user_id))
    ).first()
    if claimed is None:
        session.add(EnrollmentFailure(failed_at=now, client_ip=client_ip))
        throttle.forget_before(session, model=EnrollmentFailure, cutoff=now - window)
        raise InvalidEnrollmentCode(
            "this enrollment code is unknown, used or expired; ask for a new one"
        )
    device_id, user_id = claimed
    user = session.get(User, user_id)
    if user is None or not user.active:
        raise Unauthorized("this account is deactivated", code="account_disabled")
    pair = start_family(session, user_id=user_id, device_id=device_id, now=now, settings=settings)
    return Enrollment(device_id=device_id, user_id=user_id, **pair.model_dump())


def list_visible(session: Session, *, principal: Principal) -> list[DeviceRead]:
    query = select(Device, User).join(User, col(User.id) == Device.user_id)
    if principal.role is Role.ranger_lead:
        query = query.where(col(Device.user_id).in_(_managed_user_ids(principal)))
    elif not principal.sees_everything:
        query = query.where(Device.user_id == principal.user_id)
    now = utcnow()
    rows = session.exec(query.order_by(col(Device.created_at).desc()))
    return [_read(device, user, now) for device, user in rows]


def get(session: Session, *, device_id: uuid.UUID, principal: Principal) -> DeviceRead:
    device, user = _visible(session, device_id, principal, own=True)
    return _read(device, user, utcnow())


def relabel(
    session: Session, *, device_id: uuid.UUID, label: str, principal: Principal
) -> DeviceRead:
    device, user = _visible(session, device_id, principal)
    device.label = label
    session.add(device)
    session.flush()
    return _read(device, user, utcnow())


def revoke(session: Session, *, device_id: uuid.UUID, principal: Principal) -> DeviceRead:
    """A lost tablet: every token it holds is refused from the next request on."""
    device, user = _visible(session, device_id, principal)
    now = utcnow()
    if device.revoked_at is None:
        device.revoked_at = now
        device.revoked_by = principal.user_id
        device.enrollment_code_hash = None
        session.add(device)
        revoke_families(
            session, where=col(RefreshFamily.device_id) == device_id, reason="device_revoked"
        )
        session.flush()
    return _read(device, user, now)


def touch(session: Session, *, device_id: uuid.UUID, now: datetime) -> None:
    """Note that the device was seen; written at most once a minute per device."""
    session.exec(
        update(Device)
        .where(
            col(Device.id) == device_id,
            (col(Device.last_seen_at).is_(None))
            | (col(Device.last_seen_at) < now - LAST_SEEN_RESOLUTION),
        )
        .values(last_seen_at=now)
    )


def _visible(
    session: Session, device_id: uuid.UUID, principal: Principal, *, own: bool = False
) -> tuple[Device, User]:
    """The device, if ``principal`` manages it (or, with ``own``, if it is theirs)."""
    row = session.exec(
        select(Device, User)
        .join(User, col(User.id) == Device.user_id)
        .where(Device.id == device_id)
    ).first()
    if row is None:
        raise NotFound("no such device")
    theirs = own and row[1].id == principal.user_id
    if not (theirs or _manages(session, principal, row[1])):
        raise NotFound("no such device")
    return row


def _manages(session: Session, principal: Principal, user: User) -> bool:
    """Whether ``principal`` may make, see and revoke the devices of ``user``."""
    if principal.sees_everything:
        return True
    if principal.role is Role.ranger_lead:
        if user.id == principal.user_id:
            return True
        if user.role is not Role.ranger:
            return False
        shared = session.exec(
            select(UserSector.sector_id).where(
                UserSector.user_id == user.id, col(UserSector.sector_id).in_(principal.sector_ids)
            )
        ).first()
        return shared is not None
    return False


def _managed_user_ids(principal: Principal) -> CompoundSelect[uuid.UUID]:
    return (
        select(UserSector.user_id)
        .join(User, col(User.id) == UserSector.user_id)
        .where(
            col(UserSector.sector_id).in_(principal.sector_ids),
            User.role == Role.ranger,
        )
        .union(select(User.id).where(User.id == principal.user_id))
    )


def _read(device: Device, user: User, now: datetime) -> DeviceRead:
    if device.revoked_at is not None:
        status = DeviceStatus.revoked
    elif device.enrolled_at is not None:
        status = DeviceStatus.active
    elif device.enrollment_expires_at is not None and device.enrollment_expires_at <= now:
        status = DeviceStatus.expired
    else:
        status = DeviceStatus.pending
    return DeviceRead(
        id=device.id,
        label=device.label,
        user_id=device.user_id,
        username=user.username,
        status=status,
        created_at=device.created_at,
        enrollment_expires_at=device.enrollment_expires_at,
        enrolled_at=device.enrolled_at,
        last_seen_at=device.last_seen_at,
        revoked_at=device.revoked_at,
    )
