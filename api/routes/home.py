"""The root page and the API's documentation, served with no internet at all.

Swagger UI and ReDoc come from the files of the installed ``fastapi-offline`` package
(``ASSETS``, mounted at ``ASSETS_PATH``), not a CDN: a field office on a bad link still
has its docs. Each page's Content-Security-Policy admits its own inline script by hash.

``/`` is what someone who types the server's address sees: where the docs, the OpenAPI
document and the health checks are, in Spanish first (the office staff read Spanish)
and English. The web console is not built yet, so it has no link here.
"""

from __future__ import annotations

import html
from functools import lru_cache
from importlib.resources import files

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from api.headers import page_policy

ASSETS_PATH = "/docs/assets"
ASSETS = StaticFiles(directory=str(files("fastapi_offline") / "static"))

router = APIRouter(include_in_schema=False)


class Link(BaseModel):
    href: str
    title: str


class Home(BaseModel):
    name: str
    version: str
    links: dict[str, Link]


@router.get("/")
def home(request: Request) -> Response:
    """Links to the docs, the OpenAPI document and the health checks: a page, or JSON
    for ``Accept: application/json``."""
    root = request.scope.get("root_path", "").rstrip("/")
    page = Home(
        name=request.app.title,
        version=request.app.version,
        links={
            name: Link(href=root + path, title=title)
            for name, path, title in [
                ("docs", "/docs", "Documentación de la API (Swagger UI) · API docs"),
                ("redoc", "/redoc", "Referencia de la API (ReDoc) · API reference"),
                ("openapi", request.app.openapi_url, "Documento OpenAPI · OpenAPI document"),
                ("healthz", "/healthz", "El servicio está en marcha · Liveness"),
                ("readyz", "/readyz", "Listo: base de datos al día · Readiness"),
            ]
        },
    )
    if _wants_json(request.headers.get("accept", "")):
        return JSONResponse(page.model_dump())
    body = _home_page(page)
    return HTMLResponse(body, headers={"Content-Security-Policy": page_policy(body)})


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI over the OpenAPI document."""
    body = _swagger_ui(request.scope.get("root_path", "").rstrip("/"), request.app.openapi_url)
    return HTMLResponse(body, headers={"Content-Security-Policy": _docs_policy(body)})


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    """ReDoc over the OpenAPI document."""
    body = _redoc(request.scope.get("root_path", "").rstrip("/"), request.app.openapi_url)
    return HTMLResponse(body, headers={"Content-Security-Policy": _docs_policy(body)})


@lru_cache(maxsize=8)
def _swagger_ui(root: str, openapi_url: str) -> str:
    return bytes(
        get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title="fieldsync · Swagger UI",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            # The password flow needs no redirect page; the validator is on the internet.
            oauth2_redirect_url=None,
            swagger_ui_parameters={"validatorUrl": None},
        ).body
    ).decode()


@lru_cache(maxsize=8)
def _redoc(root: str, openapi_url: str) -> str:
    return bytes(
        get_redoc_html(
            openapi_url=root + openapi_url,
            title="fieldsync · ReDoc",
            redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            with_google_fonts=False,
        ).body
    ).decode()


@lru_cache(maxsize=16)
def _docs_policy(body: str) -> str:
    # Both renderers set style attributes; ReDoc searches in a worker made from a blob.
    return page_policy(body, style_attributes=True, extra=["worker-src blob:"])


def _wants_json(accept: str) -> bool:
    """Whether ``accept`` prefers JSON to a page; a browser's and ``*/*`` get the page."""
    quality = {}
    for part in accept.split(","):
        kind, _, parameters = part.strip().partition(";")
        q = 1.0
        for parameter in parameters.split(";"):
            name, _, value = parameter.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        quality[kind.strip().lower()] = q
    json_q = quality.get("application/json", quality.get("application/*", 0.0))
    page_q = quality.get("text/html", quality.get("text/*", quality.get("*/*", 0.0)))
    return json_q > page_q


_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.5; color: #1b2a1b; }
h1 { color: #2e5d2e; margin-bottom: 0; }
li { margin: 0.4rem 0; }
small { color: #555; }
"""


def _home_page(page: Home) -> str:
    items = "\n".join(
        f'<li><a href="{html.escape(link.href)}">{html.escape(link.title)}</a></li>'
        for link in page.links.values()
    )
    return f"""<!doctype html>
<html lang="es">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(page.name)}</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>{html.escape(page.name)}</h1>
<p>Sincronización para guardaparques y extensionistas del Alto Mayo.<br>
<small>Sync for the rangers and extension workers of the Alto Mayo forest.</small></p>
<ul>
{items}
</ul>
<p><small>Versión · version {html.escape(page.version)}</small></p>
</body>
</html>
"""
