"""Observation categories, for admins: what rangers can record on patrol, each with
the typed attributes the tablet asks for. A list with the form for a new category, and
each category's form for what the API lets change (its key stays); every change
reaches the tablets by pull.

Attributes are rows of the form (key, type, options, required), each row sending its
four fields in order, so that a browser without JavaScript posts them as lists.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from api.console.i18n import N_
from api.console.pages.form_errors import REFUSALS, form_context, refusal
from api.console.pages.reference import NOTICES
from api.console.web import PREFIX, AdminViewer, CheckedForm, console_router, redirect, render
from api.deps import SessionDep
from schemas.enums import AttributeType
from schemas.reference import ObservationCategoryCreate, ObservationCategoryUpdate
from sync.reference import service as reference

router = console_router()

CATEGORIES = f"{PREFIX}/admin/categories"
# Blank rows for new attributes under a category's own: more are had by saving.
NEW_ATTRIBUTE_ROWS = 3
MESSAGES = {
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
    "already_exists": N_("A category with this key exists: choose another key."),
}
Rows = Annotated[list[str], Form()]


@router.get("/admin/categories", response_class=HTMLResponse)
def category_list(
    request: Request,
    viewer: AdminViewer,
    session: SessionDep,
    done: Annotated[str, Query(max_length=16)] = "",
) -> HTMLResponse:
    """Every observation category, by key, with its attributes; and the form for a new one."""
    typed = {"key": "", "name_es": "", "name_en": "", "active": True, "attributes": []}
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
    attribute_key: Rows = [],  # noqa: B006 (FastAPI copies a default)
    attribute_type: Rows = [],  # noqa: B006
    attribute_options: Rows = [],  # noqa: B006
    attribute_required: Rows = [],  # noqa: B006
) -> Response:
    """Make an observation category with its typed attributes; a taken key shows the
    form again, saying so."""
    rows = _attribute_rows(attribute_key, attribute_type, attribute_options, attribute_required)
    typed: dict[str, Any] = {"key": key, "name_es": name_es, "name_en": name_en, "active": active}
    try:
        asked = ObservationCategoryCreate(**typed, attributes=_attributes(rows))
        reference.create_category(session, category=asked)
    except REFUSALS as error:
        errors, status = refusal(request, session, error, MESSAGES)
        typed["attributes"] = rows
        return _categories_page(request, session, typed, "", errors, status)
    return redirect(f"{CATEGORIES}?done=created")


@router.get("/admin/categories/{category_id}", response_class=HTMLResponse)
def edit_category(
    request: Request, category_id: uuid.UUID, viewer: AdminViewer, session: SessionDep
) -> HTMLResponse:
    """One category's form: its names, attributes, and whether tablets still offer it."""
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
    attribute_key: Rows = [],  # noqa: B006 (FastAPI copies a default)
    attribute_type: Rows = [],  # noqa: B006
    attribute_options: Rows = [],  # noqa: B006
    attribute_required: Rows = [],  # noqa: B006
) -> Response:
    """Change a category; its version goes up and tablets receive it."""
    category = reference.get_category(session, category_id=category_id)
    rows = _attribute_rows(attribute_key, attribute_type, attribute_options, attribute_required)
    typed: dict[str, Any] = {"name_es": name_es, "name_en": name_en, "active": active}
    try:
        changes = ObservationCategoryUpdate(**typed, attributes=_attributes(rows))
        reference.update_category(session, category_id=category_id, changes=changes)
    except REFUSALS as error:
        errors, status = refusal(request, session, error, MESSAGES)
        typed["attributes"] = rows
        context = _category_form(request, category=category, typed=typed, errors=errors)
        return render(request, "admin/category.html", context, status=status)
    return redirect(f"{CATEGORIES}?done=saved")


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
    typed = {**typed, "attributes": typed["attributes"] + [_row({})] * NEW_ATTRIBUTE_ROWS}
    return form_context(request, typed=typed, types=list(AttributeType), **context)


def _attribute_rows(
    keys: list[str], types: list[str], options: list[str], required: list[str]
) -> list[dict[str, str]]:
    """The rows of attributes as typed; rows left blank are dropped."""
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
