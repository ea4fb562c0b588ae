"""Reference data, for admins: the patrol sectors and the communities. Each list has
its form for a new one, each record its form to change what the API lets change; every
change reaches the tablets by pull. Observation categories are ``categories.py``'s.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from api.console.i18n import N_
from api.console.pages.form_errors import REFUSALS, Unreadable, form_context, refusal
from api.console.web import PREFIX, AdminViewer, CheckedForm, console_router, redirect, render
from api.deps import SessionDep
from schemas.enums import CommunityKind
from schemas.reference import CommunityCreate, CommunityUpdate, SectorCreate, SectorUpdate
from sync.accounts.principal import Principal
from sync.reference import service as reference

router = console_router()

ADMIN = f"{PREFIX}/admin"
NOTICES = {
    "created": N_("Saved. Tablets receive it on their next sync."),
    "saved": N_("The changes are saved. Tablets receive them on their next sync."),
}
SECTOR_MESSAGES = {
    "code": N_("Write the sector's code, up to 32 characters."),
    "name": N_("Write the name, up to 200 characters."),
    "zone": N_("The zone has up to 200 characters."),
    "boundary": N_(
        "The boundary is a GeoJSON Polygon or MultiPolygon, in longitude and latitude, "
        "each ring closed (its last point is its first); or leave it empty."
    ),
    "already_exists": N_("A sector with this code exists: choose another code."),
}
COMMUNITY_MESSAGES = {
    "name": N_("Write the name, up to 200 characters."),
    "sector_id": N_("Choose the sector."),
    "kind": N_("Choose the kind of community."),
    "already_exists": N_("This sector already has a community of this name."),
    "unknown_reference": N_("The sector chosen no longer exists: reload the form."),
}


# ---------------------------------------------------------------- sectors


@router.get("/admin/sectors", response_class=HTMLResponse)
def sector_list(
    request: Request,
    viewer: AdminViewer,
    session: SessionDep,
    done: Annotated[str, Query(max_length=16)] = "",
) -> HTMLResponse:
    """Every patrol sector, by code, and the form for a new one."""
    return _sectors_page(
        request,
        session,
        viewer.principal,
        dict.fromkeys(("code", "name", "zone", "boundary"), ""),
        done,
    )


@router.post("/admin/sectors", response_class=HTMLResponse, dependencies=[CheckedForm])
def create_sector(
    request: Request,
    viewer: AdminViewer,
    session: SessionDep,
    code: Annotated[str, Form(max_length=1000)] = "",
    name: Annotated[str, Form(max_length=1000)] = "",
    zone: Annotated[str, Form(max_length=1000)] = "",
    boundary: Annotated[str, Form(max_length=5_000_000)] = "",
) -> Response:
    """Make a patrol sector; a taken code shows the form again, saying so."""
    typed = {"code": code, "name": name, "zone": zone, "boundary": boundary}
    try:
        fields = {"code": code, "name": name, "zone": zone.strip() or None}
        asked = SectorCreate(**fields, boundary=_geojson(boundary))
        reference.create_sector(session, sector=asked)
    except REFUSALS as error:
        errors, status = refusal(request, session, error, SECTOR_MESSAGES)
        return _sectors_page(request, session, viewer.principal, typed, "", errors, status)
    return redirect(f"{ADMIN}/sectors?done=created")


@router.get("/admin/sectors/{sector_id}", response_class=HTMLResponse)
def edit_sector(
    request: Request, sector_id: uuid.UUID, viewer: AdminViewer, session: SessionDep
) -> HTMLResponse:
    """One sector's form: its name, zone and boundary (its code stays)."""
    sector = reference.get_sector(session, sector_id=sector_id, principal=viewer.principal)
    typed = {
        "name": sector.name,
        "zone": sector.zone or "",
        "boundary": json.dumps(sector.boundary) if sector.boundary else "",
    }
    return render(request, "admin/sector.html", form_context(request, sector=sector, typed=typed))


@router.post("/admin/sectors/{sector_id}", response_class=HTMLResponse, dependencies=[CheckedForm])
def update_sector(
    request: Request,
    sector_id: uuid.UUID,
    viewer: AdminViewer,
    session: SessionDep,
    name: Annotated[str, Form(max_length=1000)] = "",
    zone: Annotated[str, Form(max_length=1000)] = "",
    boundary: Annotated[str, Form(max_length=5_000_000)] = "",
) -> Response:
    """Change a sector; its version goes up and tablets receive it."""
    sector = reference.get_sector(session, sector_id=sector_id, principal=viewer.principal)
    typed = {"name": name, "zone": zone, "boundary": boundary}
    try:
        changes = SectorUpdate(name=name, zone=zone.strip() or None, boundary=_geojson(boundary))
        reference.update_sector(session, sector_id=sector_id, changes=changes)
    except REFUSALS as error:
        errors, status = refusal(request, session, error, SECTOR_MESSAGES)
        context = form_context(request, sector=sector, typed=typed, errors=errors)
        return render(request, "admin/sector.html", context, status=status)
    return redirect(f"{ADMIN}/sectors?done=saved")


def _sectors_page(
    request: Request,
    session: Session,
    principal: Principal,
    typed: dict[str, Any],
    done: str,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    context = {
        "sectors": reference.list_sectors(session, principal=principal),
        "notice": NOTICES.get(done),
        **form_context(request, typed=typed, errors=errors),
    }
    return render(request, "admin/sectors.html", context, status=status)


def _geojson(text: str) -> dict[str, Any] | None:
    """A boundary typed as GeoJSON text; empty is none."""
    if not text.strip():
        return None
    try:
        document = json.loads(text)
    except ValueError:
        raise Unreadable("boundary") from None
    if not isinstance(document, dict):
        raise Unreadable("boundary")
    return document


# ---------------------------------------------------------------- communities


@router.get("/admin/communities", response_class=HTMLResponse)
def community_list(
    request: Request,
    viewer: AdminViewer,
    session: SessionDep,
    done: Annotated[str, Query(max_length=16)] = "",
) -> HTMLResponse:
    """Every community, by name, with its sector and kind; and the form for a new one."""
    typed = {"name": "", "sector_id": "", "kind": "", "inside_protected_area": False}
    return _communities_page(request, session, viewer.principal, typed, done)


@router.post("/admin/communities", response_class=HTMLResponse, dependencies=[CheckedForm])
def create_community(
    request: Request,
    viewer: AdminViewer,
    session: SessionDep,
    name: Annotated[str, Form(max_length=1000)] = "",
    sector_id: Annotated[str, Form(max_length=64)] = "",
    kind: Annotated[str, Form(max_length=64)] = "",
    inside_protected_area: Annotated[bool, Form()] = False,
) -> Response:
    """Make a community in a sector; a name its sector already has shows the form again."""
    typed = {
        "name": name,
        "sector_id": sector_id,
        "kind": kind,
        "inside_protected_area": inside_protected_area,
    }
    try:
        reference.create_community(session, community=CommunityCreate(**typed))
    except REFUSALS as error:
        errors, status = refusal(request, session, error, COMMUNITY_MESSAGES)
        return _communities_page(request, session, viewer.principal, typed, "", errors, status)
    return redirect(f"{ADMIN}/communities?done=created")


@router.get("/admin/communities/{community_id}", response_class=HTMLResponse)
def edit_community(
    request: Request, community_id: uuid.UUID, viewer: AdminViewer, session: SessionDep
) -> HTMLResponse:
    """One community's form: its name, sector, kind, and whether it lies inside the
    protected area."""
    community = reference.get_community(
        session, community_id=community_id, principal=viewer.principal
    )
    typed = community.model_dump(mode="json")
    choices = _sector_choices(session, viewer.principal)
    context = form_context(request, community=community, typed=typed, **choices)
    return render(request, "admin/community.html", context)


@router.post(
    "/admin/communities/{community_id}", response_class=HTMLResponse, dependencies=[CheckedForm]
)
def update_community(
    request: Request,
    community_id: uuid.UUID,
    viewer: AdminViewer,
    session: SessionDep,
    name: Annotated[str, Form(max_length=1000)] = "",
    sector_id: Annotated[str, Form(max_length=64)] = "",
    kind: Annotated[str, Form(max_length=64)] = "",
    inside_protected_area: Annotated[bool, Form()] = False,
) -> Response:
    """Change a community; its version goes up and tablets receive it."""
    community = reference.get_community(
        session, community_id=community_id, principal=viewer.principal
    )
    typed = {
        "name": name,
        "sector_id": sector_id,
        "kind": kind,
        "inside_protected_area": inside_protected_area,
    }
    try:
        changes = CommunityUpdate(**typed)
        reference.update_community(session, community_id=community_id, changes=changes)
    except REFUSALS as error:
        errors, status = refusal(request, session, error, COMMUNITY_MESSAGES)
        context = form_context(
            request,
            community=community,
            typed=typed,
            errors=errors,
            **_sector_choices(session, viewer.principal),
        )
        return render(request, "admin/community.html", context, status=status)
    return redirect(f"{ADMIN}/communities?done=saved")


def _communities_page(
    request: Request,
    session: Session,
    principal: Principal,
    typed: dict[str, Any],
    done: str,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    context = {
        "communities": reference.list_communities(session, principal=principal),
        "notice": NOTICES.get(done),
        **_sector_choices(session, principal),
        **form_context(request, typed=typed, errors=errors),
    }
    return render(request, "admin/communities.html", context, status=status)


def _sector_choices(session: Session, principal: Principal) -> dict[str, Any]:
    sectors = reference.list_sectors(session, principal=principal)
    return {
        "sectors": sectors,
        "sector_codes": {s.id: s.code for s in sectors},
        "kinds": list(CommunityKind),
    }
