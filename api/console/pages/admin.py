"""The admin's people and what the server holds for them to read: users (made, given a
role and a scope, deactivated), the changes devices sent that were rejected or wait,
and the log of who took personal data out. For admins only, as in the API.

Sectors and communities are ``reference.py``'s, observation categories ``categories.py``'s.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any, Literal

from fastapi import Form, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from api.console.i18n import N_
from api.console.pages.form_errors import REFUSALS, form_context, refusal
from api.console.web import PREFIX, AdminViewer, CheckedForm, console_router, redirect, render
from api.deps import SessionDep, SettingsDep
from schemas.accounts import UserCreate, UserRead, UserUpdate
from schemas.enums import Role
from schemas.queries import MAX_OFFSET
from schemas.registry import AccessLogQuery
from schemas.sync import HeldChangesQuery
from sync.accounts import devices, users
from sync.accounts.principal import Principal
from sync.engine import rejected
from sync.people import privacy
from sync.platform.errors import Conflict
from sync.reference import service as reference

router = console_router()

USERS = f"{PREFIX}/admin/users"
PAGE_SIZE = 50
NOTICES = {
    "created": N_("The user is made. They can sign in now."),
    "saved": N_("The changes are saved; they count from the user's next request."),
    "deactivated": N_("The user is deactivated: their sessions and tablets are refused."),
    "activated": N_("The user is active again."),
}
MESSAGES = {
    "username": N_(
        "A username has 3 to 64 characters: lowercase letters without accents, digits, "
        "dots, dashes or underscores, starting with a letter or a digit."
    ),
    "password": N_("The password has 10 to 256 characters."),
    "full_name": N_("Write the person's full name, up to 200 characters."),
    "role": N_("Choose a role."),
    "sector_ids": N_("A sector chosen does not exist: reload the form."),
    "community_ids": N_("A community chosen does not exist: reload the form."),
    "already_exists": N_("This username is taken: choose another."),
    "last_admin": N_(
        "This is the last active administrator: make another administrator first, "
        "so that someone can still manage the console."
    ),
    "scope_mismatch": N_(
        "Rangers and ranger leads hold sectors; extension workers hold communities; "
        "administrators and coordinators hold neither. Untick what does not go with the role."
    ),
    "unknown_reference": N_("A sector or community chosen no longer exists: reload the form."),
}


# ---------------------------------------------------------------- users


@router.get("/admin/users", response_class=HTMLResponse)
def user_list(
    request: Request,
    viewer: AdminViewer,
    session: SessionDep,
    done: Annotated[str, Query(max_length=16)] = "",
) -> HTMLResponse:
    """Every user, by username: name, role, scope, and whether they may sign in."""
    context = {
        "users": users.list_all(session),
        **_places(session, viewer.principal),
        "notice": NOTICES.get(done),
    }
    return render(request, "admin/users.html", context)


@router.get("/admin/users/new", response_class=HTMLResponse)
def new_user(request: Request, viewer: AdminViewer, session: SessionDep) -> HTMLResponse:
    """The form for a new user: username, name, first password, role and scope."""
    return _user_form(request, session, viewer.principal, None, _blank_user())


@router.post("/admin/users/new", response_class=HTMLResponse, dependencies=[CheckedForm])
def create_user(
    request: Request,
    viewer: AdminViewer,
    session: SessionDep,
    settings: SettingsDep,
    username: Annotated[str, Form(max_length=1000)] = "",
    full_name: Annotated[str, Form(max_length=1000)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    role: Annotated[str, Form(max_length=32)] = "",
    sector_ids: Annotated[list[str], Form()] = [],  # noqa: B006 (FastAPI copies it)
    community_ids: Annotated[list[str], Form()] = [],  # noqa: B006
) -> Response:
    """Make a user; a taken username or a scope that does not fit the role shows the
    form again, saying why."""
    typed: dict[str, Any] = {
        "username": username,
        "full_name": full_name,
        "role": role,
        "sector_ids": sector_ids,
        "community_ids": community_ids,
    }
    try:
        asked = UserCreate(password=password, **typed)
        users.create(session, user=asked, settings=settings)
    except REFUSALS as error:
        errors, status = refusal(request, session, error, MESSAGES)
        if isinstance(error, Conflict):  # the username is taken
            errors.setdefault("username", errors.get("", ""))
        return _user_form(request, session, viewer.principal, None, typed, errors, status=status)
    return redirect(f"{USERS}?done=created")


@router.get("/admin/users/{user_id}", response_class=HTMLResponse)
def edit_user(
    request: Request, user_id: uuid.UUID, viewer: AdminViewer, session: SessionDep
) -> HTMLResponse:
    """One user's form: name, role, scope, a new password; and deactivating them."""
    user = users.get(session, user_id=user_id, principal=viewer.principal)
    return _user_form(request, session, viewer.principal, user, _typed(user))


@router.post("/admin/users/{user_id}", response_class=HTMLResponse, dependencies=[CheckedForm])
def update_user(
    request: Request,
    user_id: uuid.UUID,
    viewer: AdminViewer,
    session: SessionDep,
    settings: SettingsDep,
    full_name: Annotated[str, Form(max_length=1000)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    role: Annotated[str, Form(max_length=32)] = "",
    sector_ids: Annotated[list[str], Form()] = [],  # noqa: B006 (FastAPI copies it)
    community_ids: Annotated[list[str], Form()] = [],  # noqa: B006
) -> Response:
    """Change a user's name, role, scope or password; it counts from their next request."""
    user = users.get(session, user_id=user_id, principal=viewer.principal)
    typed: dict[str, Any] = {
        "username": user.username,
        "full_name": full_name,
        "role": role,
        "sector_ids": sector_ids,
        "community_ids": community_ids,
    }
    changes = {k: v for k, v in typed.items() if k != "username"}
    try:
        asked = UserUpdate(**changes, password=password or None)
        users.update(session, user_id=user_id, changes=asked, settings=settings)
    except REFUSALS as error:
        errors, status = refusal(request, session, error, MESSAGES)
        return _user_form(request, session, viewer.principal, user, typed, errors, status=status)
    return redirect(f"{USERS}?done=saved")


@router.post(
    "/admin/users/{user_id}/{change}", response_class=HTMLResponse, dependencies=[CheckedForm]
)
def set_user_active(
    request: Request,
    user_id: uuid.UUID,
    change: Literal["deactivate", "activate"],
    viewer: AdminViewer,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    """Deactivate a user (their console sessions, sign-ins and tablets are refused at
    once), or let them in again. The last active administrator stays."""
    user = users.get(session, user_id=user_id, principal=viewer.principal)
    active = change == "activate"
    try:
        users.update(session, user_id=user_id, changes=UserUpdate(active=active), settings=settings)
    except Conflict as error:  # the last active admin
        errors, _ = refusal(request, session, error, MESSAGES)
        return _user_form(
            request, session, viewer.principal, user, _typed(user), errors, status=409
        )
    return redirect(f"{USERS}?done={'activated' if active else 'deactivated'}")


def _user_form(
    request: Request,
    session: Session,
    principal: Principal,
    user: UserRead | None,
    typed: dict[str, Any],
    errors: dict[str, str] | None = None,
    *,
    status: int = 200,
) -> HTMLResponse:
    context = form_context(
        request,
        user=user,
        typed=typed,
        roles=list(Role),
        errors=errors,
        **_places(session, principal),
    )
    return render(request, "admin/user_form.html", context, status=status)


def _blank_user() -> dict[str, Any]:
    return {"username": "", "full_name": "", "role": "", "sector_ids": [], "community_ids": []}


def _typed(user: UserRead) -> dict[str, Any]:
    return {
        "username": user.username,
        "full_name": user.full_name,
        "role": user.role.value,
        "sector_ids": [str(s) for s in user.sector_ids],
        "community_ids": [str(c) for c in user.community_ids],
    }


def _places(session: Session, principal: Principal) -> dict[str, Any]:
    """The sectors and communities a scope is chosen from, and named by."""
    sectors = reference.list_sectors(session, principal=principal)
    communities = reference.list_communities(session, principal=principal)
    return {
        "sectors": sectors,
        "communities": communities,
        "sector_codes": {s.id: s.code for s in sectors},
        "community_names": {c.id: c.name for c in communities},
    }


# ---------------------------------------------------------------- held changes


@router.get("/admin/held", response_class=HTMLResponse)
def held_changes(
    request: Request,
    viewer: AdminViewer,
    session: SessionDep,
    kind: Literal["rejected", "deferred"] = "rejected",
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> HTMLResponse:
    """The changes devices sent that did not apply: rejected (with their reasons,
    newest first) or deferred (with what each waits for, oldest first)."""
    shown = HeldChangesQuery(limit=PAGE_SIZE, offset=offset)
    counted = HeldChangesQuery(limit=1)  # the other list: only its total, for its tab
    rejected_page = rejected.list_rejected(session, query=shown if kind == "rejected" else counted)
    deferred_page = rejected.list_deferred(session, query=shown if kind == "deferred" else counted)
    tablets = {d.id: d for d in devices.list_visible(session, principal=viewer.principal)}
    context = {
        "kind": kind,
        "page": rejected_page if kind == "rejected" else deferred_page,
        "totals": {"rejected": rejected_page.total, "deferred": deferred_page.total},
        "tablets": tablets,
        "as_json": lambda change: json.dumps(change, indent=2, ensure_ascii=False, sort_keys=True),
    }
    return render(request, "admin/held.html", context)


# ---------------------------------------------------------------- personal data


@router.get("/admin/personal-data-log", response_class=HTMLResponse)
def personal_data_log(
    request: Request,
    viewer: AdminViewer,
    session: SessionDep,
    user_id: Annotated[str, Query(max_length=64)] = "",
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> HTMLResponse:
    """Who took personal data out (document numbers, phones, homes' places), in which
    list or file and with which filters; newest first, of everyone or one user."""
    try:
        chosen = uuid.UUID(user_id) if user_id else None
    except ValueError:
        raise RequestValidationError([{"loc": ("query", "user_id"), "type": "uuid"}]) from None
    query = AccessLogQuery(user_id=chosen, limit=PAGE_SIZE, offset=offset)
    context = {
        "page": privacy.access_log(session, query=query),
        "users": users.list_all(session),
        "chosen": user_id,
    }
    return render(request, "admin/personal_data_log.html", context)
