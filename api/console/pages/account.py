"""Signing in and out, the start page each role lands on, and one's own account."""

from __future__ import annotations

import secrets
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.console.i18n import N_
from api.console.web import (
    CSRF_COOKIE,
    PREFIX,
    SESSION_COOKIE,
    AnyViewer,
    CheckedForm,
    CheckedSignInForm,
    console_router,
    gettext,
    redirect,
    render,
)
from api.deps import ClientAddress, SessionDep, SettingsDep
from schemas.enums import Role
from schemas.types import utcnow
from sync.accounts import auth, console_sessions
from sync.platform.errors import TooManyRequests, Unauthorized

router = console_router()

# Where each role starts: the work it comes to the console for.
START = {
    Role.admin: f"{PREFIX}/admin/users",
    Role.coordinator: f"{PREFIX}/programme",
    Role.ranger_lead: f"{PREFIX}/patrols",
}


def _safe_next(target: str | None) -> str | None:
    """Only a page of the console: never another site (an open redirect)."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith(f"{PREFIX}/"):
        return None
    return target


def _sign_in_page(
    request: Request, *, status: int = 200, error: str | None = None, username: str = ""
) -> HTMLResponse:
    token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
    answer = render(
        request,
        "sign_in.html",
        {
            "csrf_token": token,
            "error": error,
            "username": username,
            "next": _safe_next(request.query_params.get("next")) or "",
        },
        status=status,
    )
    settings = request.app.state.settings
    answer.set_cookie(
        CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=settings.secure_cookies,
        path=PREFIX,
    )
    return answer


@router.get("/", response_class=RedirectResponse)
def start(viewer: AnyViewer) -> RedirectResponse:
    """The page the viewer's role starts on; field roles see their account."""
    return RedirectResponse(START.get(viewer.role, f"{PREFIX}/account"), status_code=303)


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_form(request: Request) -> HTMLResponse:
    """The sign-in form."""
    return _sign_in_page(request)


@router.post("/sign-in", response_class=HTMLResponse, dependencies=[CheckedSignInForm])
def sign_in(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    address: ClientAddress,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1024)],
    next_page: Annotated[str, Form(alias="next", max_length=2000)] = "",
) -> Response:
    """Sign in with a username and password, throttled as the API's sign-in is."""
    try:
        user = auth.signed_in(
            session, username=username, password=password, client_ip=address, settings=settings
        )
    except TooManyRequests:
        message = gettext(request, N_("Too many failed attempts. Wait a few minutes."))
        return _sign_in_page(request, status=429, error=message, username=username)
    except Unauthorized:
        # The failure is counted (and kept) even though the page answers normally.
        session.commit()
        message = gettext(request, N_("Wrong username or password."))
        return _sign_in_page(request, status=401, error=message, username=username)
    began = console_sessions.begin(session, user=user, settings=settings, now=utcnow())
    answer = redirect(_safe_next(next_page) or f"{PREFIX}/")
    answer.set_cookie(
        SESSION_COOKIE,
        began.secret,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        path=PREFIX,
    )
    answer.delete_cookie(CSRF_COOKIE, path=PREFIX)
    return answer


@router.post("/sign-out", dependencies=[CheckedForm])
def sign_out(viewer: AnyViewer, session: SessionDep) -> Response:
    """End the session, on every server process at once."""
    console_sessions.end(session, session_id=viewer.session_id, now=utcnow())
    answer = redirect(f"{PREFIX}/sign-in")
    answer.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return answer


@router.get("/account", response_class=HTMLResponse)
def account(request: Request, viewer: AnyViewer) -> HTMLResponse:
    """The viewer's own account: who they are, their role and scope."""
    return render(request, "account.html")
