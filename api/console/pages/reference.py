"""Reference data, for admins: patrol sectors, communities, and the observation
categories rangers record with. Each list has its form for a new one, each record its
form to change what the API lets change; every change reaches the tablets by pull.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from api.console.i18n import N_
from api.console.pages.form_errors import field_errors, refused, service_errors, summary
from api.console.web import (
    PREFIX,
    AdminViewer,
    CheckedForm,
    console_router,
    gettext,
    redirect,
    render,
)
from api.deps import SessionDep
from schemas.enums import AttributeType, CommunityKind
from schemas.reference import (
    CommunityCreate,
    CommunityUpdate,
    ObservationCategoryCreate,
    ObservationCategoryUpdate,
    SectorCreate,
    SectorUpdate,
)
from sync.accounts.principal import Principal
from sync.platform.errors import Conflict, Unprocessable
from sync.reference import service as reference

router = console_router()

ADMIN = f"{PREFIX}/admin"
# Blank rows for new attributes under a category's own: more are had by saving.
NEW_ATTRIBUTE_ROWS = 3
NOTICES = {
    "created": N_("Saved. Tablets receive it on their next sync."),
    "saved": N_("The changes are saved. Tablets receive them on their next sync."),
}
FIELD_MESSAGES = {
    "code": N_("Write the sector's code, up to 32 characters."),
    "name": N_("Write the name, up to 200 characters."),
    "zone": N_("The zone has up to 200 characters."),
    "boundary": N_(
        "The boundary is a GeoJSON Polygon or MultiPolygon, in longitude and latitude, "
        "each ring closed (its last point is its first); or leave it empty."
    ),
    "sector_id": N_("Choose the sector."),
    "kind": N_("Choose the kind of community."),
    "key": N_(
        "The key is lowercase letters without accents, digits and underscores, in parts "
        "separated by dots, each starting with a letter: threat.logging.timber."
    ),
    "name_es": N_("Write the name in Spanish, up to 200 characters."),
    "name_en": N_("Write the name in English, up to 200 characters."),
    "attributes": N_(
        "Each attribute has a key (lowercase letters, digits, underscores, starting with "
        "a letter; each key once) and a type; a list has its options, separated by "
        "commas, and only a list has options."
    ),
}
SECTOR_MESSAGES = {"already_exists": N_("A sector with this code exists: choose another code.")}
COMMUNITY_MESSAGES = {
    "already_exists": N_("This sector already has a community of this name."),
    "unknown_reference": N_("The sector chosen no longer exists: reload the form."),
}
CATEGORY_MESSAGES = {"already_exists": N_("A category with this key exists: choose another key.")}


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
        request, session, viewer.principal, _blank("code", "name", "zone", "boundary"), done
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
    except (ValidationError, ValueError, Conflict, Unprocessable) as error:
        errors, status = _refusal(request, session, error, SECTOR_MESSAGES)
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
    return render(request, "admin/sector.html", _form(request, sector=sector, typed=typed))


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
    except (ValidationError, ValueError, Conflict, Unprocessable) as error:
        errors, status = _refusal(request, session, error, SECTOR_MESSAGES)
        context = _form(request, sector=sector, typed=typed, errors=errors)
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
        **_form(request, typed=typed, errors=errors),
    }
    return render(request, "admin/sectors.html", context, status=status)


def _geojson(text: str) -> dict[str, Any] | None:
    """A boundary typed as GeoJSON text; empty is none. Not JSON: a ``ValueError``."""
    if not text.strip():
        return None
    document = json.loads(text)
    if not isinstance(document, dict):
        raise ValueError("a boundary is a GeoJSON object")
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
    typed = {**_blank("name", "sector_id", "kind"), "inside_protected_area": False}
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
    except (ValidationError, Conflict, Unprocessable) as error:
        errors, status = _refusal(request, session, error, COMMUNITY_MESSAGES)
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
    context = _form(request, community=community, typed=typed, **choices)
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
    except (ValidationError, Conflict, Unprocessable) as error:
        errors, status = _refusal(request, session, error, COMMUNITY_MESSAGES)
        context = _form(
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
        **_form(request, typed=typed, errors=errors),
    }
    return render(request, "admin/communities.html", context, status=status)


def _sector_choices(session: Session, principal: Principal) -> dict[str, Any]:
    sectors = reference.list_sectors(session, principal=principal)
    return {
        "sectors": sectors,
        "sector_codes": {s.id: s.code for s in sectors},
        "kinds": list(CommunityKind),
    }


# ---------------------------------------------------------------- observation categories


@router.get("/admin/categories", response_class=HTMLResponse)
def category_list(
    request: Request,
    viewer: AdminViewer,
    session: SessionDep,
    done: Annotated[str, Query(max_length=16)] = "",
) -> HTMLResponse:
    """Every observation category, by key, with its attributes; and the form for a new one."""
    typed = {**_blank("key", "name_es", "name_en"), "active": True, "attributes": []}
    return _categories_page(request, session, typed, done)


@router.post("/admin/categories", response_class=HTMLResponse, dependencies=[CheckedForm])
def create_category(
    request: Request,
    viewer: AdminViewer,
    session: SessionDep,
    key: Annotated[str, Form(max_length=1000)] = "",
    name_es: Annotated[str, Form(max_length=1000)] = "",
    name_en: Annotated[str, Form(max_length=1000)] = "",
    active: Annotated[bool, Form()] = False,
    attribute_key: Annotated[list[str], Form()] = [],  # noqa: B006 (FastAPI copies it)
    attribute_type: Annotated[list[str], Form()] = [],  # noqa: B006
    attribute_options: Annotated[list[str], Form()] = [],  # noqa: B006
    attribute_required: Annotated[list[str], Form()] = [],  # noqa: B006
) -> Response:
    """Make an observation category with its typed attributes; a taken key shows the
    form again, saying so."""
    rows = _attribute_rows(attribute_key, attribute_type, attribute_options, attribute_required)
    typed = {"key": key, "name_es": name_es, "name_en": name_en, "active": active}
    try:
        asked = ObservationCategoryCreate(**typed, attributes=_attributes(rows))
        reference.create_category(session, category=asked)
    except (ValidationError, Conflict, Unprocessable) as error:
        errors, status = _refusal(request, session, error, CATEGORY_MESSAGES)
        typed["attributes"] = rows
        return _categories_page(request, session, typed, "", errors, status)
    return redirect(f"{ADMIN}/categories?done=created")


@router.get("/admin/categories/{category_id}", response_class=HTMLResponse)
def edit_category(
    request: Request, category_id: uuid.UUID, viewer: AdminViewer, session: SessionDep
) -> HTMLResponse:
    """One category's form: its names, attributes, and whether tablets still offer it
    (its key stays)."""
    category = reference.get_category(session, category_id=category_id)
    typed = category.model_dump(mode="json", exclude={"attributes"})
    typed["attributes"] = [_row(a.model_dump(mode="json")) for a in category.attributes]
    context = _category_form(request, category=category, typed=typed)
    return render(request, "admin/category.html", context)


@router.post(
    "/admin/categories/{category_id}", response_class=HTMLResponse, dependencies=[CheckedForm]
)
def update_category(
    request: Request,
    category_id: uuid.UUID,
    viewer: AdminViewer,
    session: SessionDep,
    name_es: Annotated[str, Form(max_length=1000)] = "",
    name_en: Annotated[str, Form(max_length=1000)] = "",
    active: Annotated[bool, Form()] = False,
    attribute_key: Annotated[list[str], Form()] = [],  # noqa: B006 (FastAPI copies it)
    attribute_type: Annotated[list[str], Form()] = [],  # noqa: B006
    attribute_options: Annotated[list[str], Form()] = [],  # noqa: B006
    attribute_required: Annotated[list[str], Form()] = [],  # noqa: B006
) -> Response:
    """Change a category; its version goes up and tablets receive it."""
    category = reference.get_category(session, category_id=category_id)
    rows = _attribute_rows(attribute_key, attribute_type, attribute_options, attribute_required)
    typed = {"name_es": name_es, "name_en": name_en, "active": active}
    try:
        changes = ObservationCategoryUpdate(**typed, attributes=_attributes(rows))
        reference.update_category(session, category_id=category_id, changes=changes)
    except (ValidationError, Conflict, Unprocessable) as error:
        errors, status = _refusal(request, session, error, CATEGORY_MESSAGES)
        typed["attributes"] = rows
        context = _category_form(request, category=category, typed=typed, errors=errors)
        return render(request, "admin/category.html", context, status=status)
    return redirect(f"{ADMIN}/categories?done=saved")


def _categories_page(
    request: Request,
    session: Session,
    typed: dict[str, Any],
    done: str,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    context = {
        "categories": reference.list_categories(session),
        "notice": NOTICES.get(done),
        **_category_form(request, typed=typed, errors=errors),
    }
    return render(request, "admin/categories.html", context, status=status)


def _category_form(request: Request, **context: Any) -> dict[str, Any]:
    """A category's form, with blank rows for new attributes under its own."""
    typed = context.pop("typed")
    rows = typed["attributes"] + [_row({})] * NEW_ATTRIBUTE_ROWS
    typed = {**typed, "attributes": rows}
    return {**_form(request, typed=typed, **context), "types": list(AttributeType)}


def _attribute_rows(
    keys: list[str], types: list[str], options: list[str], required: list[str]
) -> list[dict[str, str]]:
    """The rows of attributes as typed (each row sends its four fields, in order);
    rows left blank are dropped."""
    rows = [
        {"key": k.strip(), "type": t, "options": o.strip(), "required": r}
        for k, t, o, r in zip(keys, types, options, required, strict=False)
    ]
    return [row for row in rows if row["key"] or row["options"]]


def _attributes(rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    """The rows as the API's attributes: options for a list, split at commas."""
    return [
        {
            "key": row["key"],
            "type": row["type"],
            "options": [o.strip() for o in row["options"].split(",") if o.strip()] or None,
            "required": row["required"] == "yes",
        }
        for row in rows
    ]


def _row(attribute: dict[str, Any]) -> dict[str, str]:
    """An attribute of a category as a row of its form."""
    return {
        "key": attribute.get("key", ""),
        "type": attribute.get("type", "text"),
        "options": ", ".join(attribute.get("options") or []),
        "required": "yes" if attribute.get("required") else "no",
    }


# ---------------------------------------------------------------- shared


def _blank(*fields: str) -> dict[str, Any]:
    return dict.fromkeys(fields, "")


def _form(request: Request, **context: Any) -> dict[str, Any]:
    """A form's context: what was typed, each field's problem, and the sentence at the top."""
    errors = context.pop("errors", None) or {}
    return {"errors": errors, "alert": summary(request, errors) if errors else None, **context}


def _refusal(
    request: Request,
    session: Session,
    error: ValidationError | ValueError | Conflict | Unprocessable,
    messages: dict[str, str],
) -> tuple[dict[str, str], int]:
    """What a refused form says of each field, and the page's status."""
    if isinstance(error, ValidationError):
        return field_errors(request, error, FIELD_MESSAGES), 422
    if isinstance(error, ValueError):  # the boundary is not JSON
        return {"boundary": gettext(request, FIELD_MESSAGES["boundary"])}, 422
    refused(session)
    status = 409 if isinstance(error, Conflict) else 422
    return service_errors(request, error, {**FIELD_MESSAGES, **messages}), status
