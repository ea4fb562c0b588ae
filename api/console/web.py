"""What every console page shares: who is looking (``Viewer``), the anti-forgery
check of every form, the language, and ``render``.

A page is a route of a ``ConsoleRouter``: it resolves ``Viewer`` (or a role alias,
``LeadViewer``…), calls the same services as the API with the viewer's
``principal``, and answers ``render(...)``. The route class turns the services'
errors into pages — a record out of scope is the same 404 page as one that does not
exist, as in the API — and a viewer who is not signed in into a redirect to the
sign-in page.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import jinja2
from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal, format_percent
from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute

from api.console.i18n import N_, language_of, translations
from api.deps import EngineDep, SessionDep, SettingsDep
from schemas import User
from schemas.enums import Role
from schemas.types import utcnow
from sync.accounts import auth, console_sessions
from sync.accounts.principal import Principal
from sync.platform.database import transaction
from sync.platform.errors import FieldsyncError, Forbidden, NotFound

TEMPLATES = Path(__file__).parent / "templates"
SESSION_COOKIE = "fieldsync_console"
LANGUAGE_COOKIE = "fieldsync_lang"
PREFIX = "/console"
# The console loads only its own style sheet and images, and posts only to itself;
# its pages hold personal data, so no browser or proxy keeps them.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; img-src 'self'; style-src 'self'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "Cache-Control": "no-store",
}


class SignInRequired(Exception):
    """The page needs a signed-in person: the browser is sent to sign in."""


class FormForged(Forbidden):
    code = "csrf_failed"


# ---------------------------------------------------------------- language


def language(request: Request) -> str:
    """The viewer's language: ``?lang=`` (then kept in a cookie), the cookie, or Spanish."""
    return language_of(request.query_params.get("lang") or request.cookies.get(LANGUAGE_COOKIE))


@cache
def environment(lang: str) -> jinja2.Environment:
    """The templates, speaking ``lang``."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html", "svg"], default_for_string=True),
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.globals["lang"] = lang
    env.filters["number"] = lambda value, digits=0: _number(value, digits, lang)
    env.filters["share"] = lambda value: _share(value, lang)
    env.filters["day"] = lambda value, zone: _day(value, zone, lang)
    env.filters["moment"] = lambda value, zone, width="medium": _moment(value, zone, lang, width)
    env.filters["query"] = _query
    return env


def _number(value: float | int | Decimal | None, digits: int, lang: str) -> str:
    if value is None:
        return "—"
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(value, format=pattern, locale=lang)


def _share(value: float | None, lang: str) -> str:
    return "—" if value is None else format_percent(value, format="#,##0.0 %", locale=lang)


def _day(value: datetime | None, zone: tzinfo, lang: str) -> str:
    if value is None:
        return "—"
    moment = value.astimezone(zone) if isinstance(value, datetime) else value
    return format_date(moment, format="medium", locale=lang)


def _moment(value: datetime | None, zone: tzinfo, lang: str, width: str = "medium") -> str:
    """A moment in the service's zone: ``medium`` (6 dic 2026, 8:15:58) or, in a dense
    table, ``short`` (6/12/26, 8:15)."""
    if value is None:
        return "—"
    return format_datetime(value, format=width, tzinfo=zone, locale=lang)


def _query(params: Mapping[str, Any], **changes: Any) -> str:
    """``params`` with ``changes`` as a query string (None drops a key)."""
    merged = {**params, **changes}
    return urlencode({k: v for k, v in merged.items() if v not in (None, "")})


def gettext(request: Request, message: str, **values: Any) -> str:
    """``message`` in the viewer's language, with ``values`` put in."""
    text: str = translations(language(request)).gettext(message)
    return text % values if values else text


# ---------------------------------------------------------------- who is looking


@dataclass(frozen=True)
class Viewer:
    """The signed-in person looking at a page, with the role and scope the database
    holds now, and the session's anti-forgery token for its forms."""

    principal: Principal
    user: User
    session_id: object
    csrf_token: str

    @property
    def role(self) -> Role:
        return self.principal.role


def get_viewer(
    request: Request, session: SessionDep, settings: SettingsDep, engine: EngineDep
) -> Viewer:
    now = utcnow()
    secret = request.cookies.get(SESSION_COOKIE, "")
    found = console_sessions.current(session, secret=secret, settings=settings, now=now)
    if found is None:
        raise SignInRequired
    console_session, user = found
    if console_sessions.needs_touch(console_session, now):
        if session.info.get("writes"):
            # A form's transaction holds SQLite's one write lock already: touch in it.
            console_sessions.touch(session, session_id=console_session.id, now=now)
        else:
            # A page's transaction is a reader's: touch in a short one of its own.
            with transaction(engine) as writer:
                console_sessions.touch(writer, session_id=console_session.id, now=now)
    principal = auth.principal_of(session, user, family_id=None, device_id=None)
    viewer = Viewer(principal, user, console_session.id, console_session.csrf_token)
    request.state.viewer = viewer
    return viewer


def require(*roles: Role) -> Callable[[Viewer], Viewer]:
    """Only ``roles`` may see the page; anyone else gets the 403 page."""

    def check(viewer: Annotated[Viewer, Depends(get_viewer)]) -> Viewer:
        if viewer.role not in roles:
            raise Forbidden("this page is for another role")
        return viewer

    return check


AnyViewer = Annotated[Viewer, Depends(get_viewer)]
OfficeViewer = Annotated[Viewer, Depends(require(Role.admin, Role.coordinator, Role.ranger_lead))]
LeadViewer = Annotated[Viewer, Depends(require(Role.admin, Role.ranger_lead, Role.coordinator))]
ReviewerViewer = Annotated[Viewer, Depends(require(Role.admin, Role.ranger_lead))]
CoordinatorViewer = Annotated[Viewer, Depends(require(Role.admin, Role.coordinator))]
AdminViewer = Annotated[Viewer, Depends(require(Role.admin))]


async def _form_token(request: Request) -> str:
    form = await request.form()
    sent = form.get("csrf_token")
    return sent if isinstance(sent, str) else ""


def _same(sent: str, expected: str) -> bool:
    return bool(sent) and bool(expected) and hmac.compare_digest(sent, expected)


async def check_form(request: Request, viewer: Annotated[Viewer, Depends(get_viewer)]) -> None:
    """Every form a signed-in page posts carries its session's anti-forgery token; a
    post without the right one is refused and changes nothing."""
    if not _same(await _form_token(request), viewer.csrf_token):
        raise FormForged("the form's anti-forgery token is wrong")


async def check_sign_in_form(request: Request) -> None:
    """The sign-in form, posted before any session, carries the token its page put in
    a cookie of the browser (a login forged from another site carries neither)."""
    if not _same(await _form_token(request), request.cookies.get(CSRF_COOKIE, "")):
        raise FormForged("the form's anti-forgery token is wrong")


CSRF_COOKIE = "fieldsync_csrf"
CheckedForm = Depends(check_form)
CheckedSignInForm = Depends(check_sign_in_form)


# ---------------------------------------------------------------- answers


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    settings: Any = None,
) -> HTMLResponse:
    """The page ``template`` in the viewer's language."""
    lang = language(request)
    app_settings = settings or request.app.state.settings
    page = environment(lang).get_template(template)
    html = page.render(
        request=request,
        viewer=getattr(request.state, "viewer", None),
        zone=app_settings.zone,
        here=request.url.path,
        params=dict(request.query_params),
        **(context or {}),
    )
    answer = HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)
    if request.query_params.get("lang") in ("es", "en"):
        answer.set_cookie(
            LANGUAGE_COOKIE,
            lang,
            max_age=365 * 24 * 3600,
            httponly=True,
            samesite="lax",
            secure=app_settings.secure_cookies,
            path=PREFIX,
        )
    return answer


def redirect(url: str) -> RedirectResponse:
    """After a form: see the result (303, so a reload does not post again)."""
    return RedirectResponse(url, status_code=303)


def sign_in_url(request: Request) -> str:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"{PREFIX}/sign-in?next={quote(here, safe='')}"


class ConsoleRoute(APIRoute):
    """A console page: errors answer as pages, never as problem+json."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                return RedirectResponse(sign_in_url(request), status_code=303)
            except RequestValidationError:
                return error_page(request, 422, N_("This address asks for what no page shows."))
            except NotFound:
                return error_page(request, 404, N_("Not found, or not yours to see."))
            except FormForged:
                return error_page(
                    request, 403, N_("This form is out of date: go back, reload it, send it again.")
                )
            except Forbidden:
                return error_page(request, 403, N_("This page is for another role."))
            except FieldsyncError as error:
                return error_page(request, error.status, N_("This could not be done."), error.code)

        return page


def error_page(
    request: Request, status: int, message: str, code: str | None = None
) -> HTMLResponse:
    """The page of an error, in the viewer's language; ``code`` for the office's IT."""
    context = {"status": status, "message": gettext(request, message), "code": code}
    return render(request, "error.html", context, status=status)


def console_router() -> APIRouter:
    return APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)
