"""The tablets: each with its user and its last contact, a new tablet's one-time
enrollment code as a QR code to scan or print, and the revocation of a lost one.

For admins, coordinators and ranger leads, as the API allows: a ranger lead sees,
makes and revokes only the tablets of their sectors' rangers (and their own). The
services decide it (``sync.accounts.devices``); a tablet out of the viewer's reach is
the same 404 page as one that does not exist.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import segno
from fastapi import Form, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from markupsafe import Markup
from sqlmodel import Session

from api.console.asked import asked, download
from api.console.i18n import N_
from api.console.pages.form_errors import REFUSALS, form_context, refusal
from api.console.web import PREFIX, CheckedForm, OfficeViewer, console_router, redirect, render
from api.deps import SessionDep, SettingsDep
from schemas.accounts import DeviceCreate, UserRead
from schemas.device_health import DeviceHealthQuery
from schemas.enums import Role
from sync.accounts import devices, users
from sync.accounts.principal import Principal
from sync.engine import device_health
from sync.reference import service as reference

router = console_router()

DEVICES = f"{PREFIX}/devices"
SILENT_DAYS = (1, 3, 7, 14, 30)
PAGE_SIZE = 50
NOTICES = {"revoked": N_("The tablet is revoked: from now on the server refuses it.")}
MESSAGES = {
    "label": N_("Name the tablet (its number or its sticker), up to 200 characters."),
    "user_id": N_("Choose who will carry the tablet."),
    "user_inactive": N_("This user is deactivated: activate them before enrolling a tablet."),
}


@router.get("/devices", response_class=HTMLResponse)
def device_list(request: Request, viewer: OfficeViewer, session: SessionDep) -> HTMLResponse:
    """The tablets the viewer manages, silent longest first: whose, last contact, push
    and pull, the app each runs and what it holds unsent, since when it misses changes,
    and what the server holds for each (deferred, rejected, files owed). Filtered as
    ``GET /devices/health`` is, by the same query."""
    query = asked(request, DeviceHealthQuery, format="json", limit=PAGE_SIZE)
    page = device_health.list_health(session, principal=viewer.principal, query=query)
    context = {
        "page": page,
        "query": query,
        "choices": SILENT_DAYS,
        "roles": list(Role),
        "sectors": reference.list_sectors(session, principal=viewer.principal),
        "notice": NOTICES.get(request.query_params.get("done", "")),
    }
    return render(request, "devices/list.html", context)


@router.get("/devices.csv", response_class=StreamingResponse)
def device_list_csv(
    request: Request, viewer: OfficeViewer, session: SessionDep, settings: SettingsDep
) -> StreamingResponse:
    """The tablets for the filters asked: the API's CSV file."""
    query = asked(request, DeviceHealthQuery, format="csv")
    pieces = device_health.health_csv(
        session, principal=viewer.principal, query=query, zone=settings.zone
    )
    return download(pieces, "devices.csv")


@router.get("/devices/new", response_class=HTMLResponse)
def new_device(request: Request, viewer: OfficeViewer, session: SessionDep) -> HTMLResponse:
    """The form for a new tablet: its label and who will carry it."""
    return _device_form(request, session, viewer.principal)


@router.post("/devices/new", response_class=HTMLResponse, dependencies=[CheckedForm])
def create_device(
    request: Request,
    viewer: OfficeViewer,
    session: SessionDep,
    settings: SettingsDep,
    label: Annotated[str, Form(max_length=1000)] = "",
    user_id: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Make a tablet and its one-time enrollment code, shown once, as a QR code and as
    text, in the answer to this form (never in an address, never cached)."""
    typed = {"label": label, "user_id": user_id}
    try:
        asked = DeviceCreate(label=label, user_id=user_id)
        made = devices.create(
            session,
            label=asked.label,
            user_id=asked.user_id,
            principal=viewer.principal,
            settings=settings,
        )
    except REFUSALS as error:
        errors, status = refusal(request, session, error, MESSAGES)
        return _device_form(request, session, viewer.principal, typed, errors, status=status)
    device = devices.get(session, device_id=made.device_id, principal=viewer.principal)
    context = {
        "device": device,
        "code": made.enrollment_code,
        "expires_at": made.expires_at,
        "qr": enrollment_qr(made.enrollment_code),
    }
    return render(request, "devices/enrollment.html", context)


@router.get("/devices/{device_id}/revoke", response_class=HTMLResponse)
def confirm_revoke(
    request: Request, device_id: uuid.UUID, viewer: OfficeViewer, session: SessionDep
) -> HTMLResponse:
    """Ask before revoking a tablet: which one, whose, and what revoking does."""
    device = devices.get(session, device_id=device_id, principal=viewer.principal)
    return render(request, "devices/revoke.html", {"device": device})


@router.post("/devices/{device_id}/revoke", dependencies=[CheckedForm])
def revoke_device(device_id: uuid.UUID, viewer: OfficeViewer, session: SessionDep) -> Response:
    """Revoke a lost tablet: every token it holds is refused from its next request on."""
    devices.revoke(session, device_id=device_id, principal=viewer.principal)
    return redirect(f"{DEVICES}?done=revoked")


def enrollment_qr(code: str) -> Markup:
    """The QR code a tablet scans: the enrollment code's text alone (the app knows its
    server), as an inline SVG that scales to the page and prints sharp."""
    svg = segno.make_qr(code, error="m").svg_inline(scale=1, border=4, omitsize=True, dark="#000")
    return Markup(svg)  # noqa: S704 (segno's SVG of a code the server made)


def managed_users(session: Session, principal: Principal) -> list[UserRead]:
    """The active users the viewer may make a tablet for. Only the choices offered:
    the service checks the same rule again when the form comes back."""
    return [u for u in users.list_all(session) if u.active and _manages(principal, u)]


def _manages(principal: Principal, user: UserRead) -> bool:
    """The office manages everyone's tablets; a ranger lead their own and their
    sectors' rangers' (``sync.accounts.devices._manages``)."""
    if principal.sees_everything or user.id == principal.user_id:
        return True
    return (
        principal.role is Role.ranger_lead
        and user.role is Role.ranger
        and not principal.sector_ids.isdisjoint(user.sector_ids)
    )


def _device_form(
    request: Request,
    session: Session,
    principal: Principal,
    typed: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    *,
    status: int = 200,
) -> HTMLResponse:
    context = form_context(
        request,
        users=managed_users(session, principal),
        typed=typed or {"label": "", "user_id": request.query_params.get("user_id", "")},
        errors=errors,
    )
    return render(request, "devices/new.html", context, status=status)
