"""The application factory: ``create_app()`` wires settings, the engine, errors and routes."""

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

import httpx
from fastapi import APIRouter, FastAPI
from fastapi.middleware.asyncexitstack import AsyncExitStackMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from sqlalchemy.engine import Engine
from starlette.types import Receive, Scope, Send

from api import console, errors, headers, logs, metrics, openapi
from api.limits import RequestLimits
from api.routes import (
    agreements,
    attachments,
    audit,
    auth,
    conflicts,
    devices,
    health,
    home,
    patrol_exports,
    patrols,
    people,
    reference,
    reports,
    sync,
    trainings,
    users,
)
from api.routes import metrics as metrics_route
from sync.platform.database import create_db_engine
from sync.platform.settings import Settings, get_settings

API_PREFIX = "/api/v1"
# Collect the youngest objects after this many allocations, not Python's 700.
GC_YOUNG_THRESHOLD = 50_000


def tune_garbage_collector() -> None:
    """A push of 500 changes makes about a million short-lived objects. With Python's
    default thresholds the collector ran full collections over everything the process
    holds several times per batch: a third of a push's CPU (docs/performance.md).
    What the server holds from its start (modules, the app) is frozen out of the
    collector's reach, and the young generation is collected less often."""
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 10)


async def warm_up(app: FastAPI) -> None:
    """One request through the app's routes before the process serves any, past the
    middleware (it is neither logged nor counted). FastAPI builds every route's state
    on the first request a process routes, and anyio its thread pool: 100 to 400 ms with
    the event loop held, in which a new worker would answer nothing and accept no
    connection (``api/accept.py``). Done here, it is also frozen out of the garbage
    collector's reach with the rest of the start."""

    routes = AsyncExitStackMiddleware(app.router)  # what FastAPI puts before its routes

    async def routes_only(scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = app
        await routes(scope, receive, send)

    transport = httpx.ASGITransport(app=routes_only)
    async with httpx.AsyncClient(transport=transport, base_url="http://warm-up") as client:
        answer = await client.get("/healthz")
    answer.raise_for_status()


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    """The fieldsync API. Refuses to build without a safe signing key."""
    settings = settings or get_settings()
    settings.signing_key()
    owns_engine = engine is None
    engine = engine or create_db_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if owns_engine:  # a server process, not a test's app
            await warm_up(_app)
            tune_garbage_collector()
        yield
        if owns_engine:
            engine.dispose()

    app = FastAPI(
        title="fieldsync",
        version=version("fieldsync"),
        summary="Offline-first sync for rangers and extension workers of the Alto Mayo forest.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # api/routes/home.py serves the docs, with no CDN
        redoc_url=None,
        lifespan=lifespan,
        responses=errors.PROBLEM_RESPONSES,
    )
    app.openapi = lambda: openapi.document(app)  # type: ignore[method-assign]
    app.state.settings = settings
    app.state.engine = engine
    errors.install(app)
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=settings.gzip_level)
    # Outside the others: no body is read, nor inflated, before its limits are checked.
    app.add_middleware(RequestLimits, settings=settings)
    headers.install(app)
    # Outermost: the 500s of the error middleware are counted and logged, and every
    # record written inside carries the request's id.
    metrics.install(app)
    logs.install(app)

    api = APIRouter(prefix=API_PREFIX)
    # The exports before the patrols: ``/patrols/export.csv`` is not ``/patrols/{patrol_id}``.
    for module in (
        auth,
        users,
        devices,
        reference,
        sync,
        conflicts,
        patrol_exports,
        patrols,
        reports,
        trainings,
        agreements,
        people,
        attachments,
        audit,
    ):
        api.include_router(module.router)
    api.include_router(health.router, include_in_schema=False)
    app.include_router(api)
    app.include_router(health.router)
    app.include_router(metrics_route.router)
    app.include_router(home.router)
    app.mount(home.ASSETS_PATH, home.ASSETS, name="docs-assets")
    console.install(app)
    return app
