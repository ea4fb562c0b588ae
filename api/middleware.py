"""What the service's own ASGI middlewares share: they see HTTP requests only, and
they wrap the whole app, outside Starlette's error middleware, so that its 500
answers are counted, logged and given their headers like any other."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send


class HTTPMiddleware:
    """A pure ASGI middleware (``BaseHTTPMiddleware`` would hold a streamed export in
    memory) of HTTP requests; other scopes (the lifespan) pass through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.http(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


def wrap_outermost(app: FastAPI, middleware: Callable[[ASGIApp], ASGIApp]) -> None:
    """``middleware`` around the whole app, errors included. ``add_middleware`` would
    put it inside the error middleware; the last one wrapped is the outermost."""
    build = app.build_middleware_stack

    def build_wrapped() -> ASGIApp:
        return middleware(build())

    app.build_middleware_stack = build_wrapped  # type: ignore[method-assign]
