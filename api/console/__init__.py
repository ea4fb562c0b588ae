"""The web console at ``/console/``: the office's pages, served by the same process as
the API and calling the same services, in Spanish first.

- ``web.py`` — what every page shares: the viewer (a session in the database),
  anti-forgery tokens, the language, rendering, errors as pages.
- ``i18n.py`` — the Spanish and English catalogues (``locale/``), read with Babel.
- ``pages/`` — the pages, one module per part of the work.
- ``templates/`` and ``static/`` — Jinja templates and the one style sheet.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from api.console.pages import account, admin, categories, devices, patrols, programme, reference
from api.console.web import console_router
from sync.platform.errors import NotFound

STATIC = Path(__file__).parent / "static"
nowhere = console_router()


@nowhere.get("/{path:path}", include_in_schema=False)
def not_a_page(path: str) -> None:
    """Any other address under /console: the console's own 404 page."""
    raise NotFound(f"no page at {path}")


PAGES = (account, patrols, programme, devices, admin, reference, categories, *programme.PARTS)


def install(app: FastAPI) -> None:
    """The console's pages and its style sheet, under ``/console``."""
    for module in PAGES:
        app.include_router(module.router)
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")
    app.include_router(nowhere)

    @app.get("/console", include_in_schema=False)
    def console_root() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=308)
