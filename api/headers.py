"""Security headers on every answer, and the Content-Security-Policy of each page.

Every answer says ``nosniff`` (a browser never reads JSON or CSV as a page), sends no
referrer (a link out of the docs leaks no URL) and may not be framed. Every answer
carries a Content-Security-Policy: an answer that sets none gets ``API_POLICY`` (load
nothing) or, if it is HTML, ``PAGE_POLICY``; the docs pages set their own, which admits
their inline script by its sha256 hash (``inline_hashes``), never ``'unsafe-inline'``.

Answers that carry a token or a one-time code are ``Cache-Control: no-store``
(RFC 6749 §5.1), whatever they say, errors included.

Pure ASGI, not ``BaseHTTPMiddleware``, which would hold streamed exports in memory.
``install`` puts it outside Starlette's error middleware, so a 500 carries it too.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.types import Message, Receive, Scope, Send

from api.middleware import HTTPMiddleware, wrap_outermost

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
API_POLICY = "default-src 'none'; frame-ancestors 'none'"
PAGE_POLICY = (
    "default-src 'none'; img-src 'self'; style-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

# (method, path) of the answers that carry tokens, or a device's one-time enrollment code.
SECRET_ANSWERS = {
    ("POST", "/api/v1/auth/token"),
    ("POST", "/api/v1/auth/refresh"),
    ("POST", "/api/v1/devices/enroll"),
    ("POST", "/api/v1/devices"),
}


def route_path(scope: Scope) -> str:
    """The path the app routes by: without the ``root_path`` a proxy mounts it under."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


class SecurityHeaders(HTTPMiddleware):
    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        secret = (scope["method"], route_path(scope).rstrip("/")) in SECRET_ANSWERS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                html = headers.get("content-type", "").startswith("text/html")
                headers.setdefault("Content-Security-Policy", PAGE_POLICY if html else API_POLICY)
                if secret:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: FastAPI) -> None:
    """``SecurityHeaders`` around the whole app: Starlette's 500 answers carry them too."""
    wrap_outermost(app, SecurityHeaders)


_INLINE = re.compile(r"<(script|style)(\s[^>]*)?>(.*?)</\1>", re.DOTALL | re.IGNORECASE)


def inline_hashes(html: str, tag: str) -> list[str]:
    """The CSP sources (``'sha256-…'``) of the inline ``<script>`` or ``<style>`` blocks of
    ``html``, hashed exactly as the browser hashes them: the text between the tags."""
    return [
        f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'"
        for name, attributes, body in _INLINE.findall(html)
        if name.lower() == tag and "src=" not in (attributes or "")
    ]


def page_policy(html: str, *, style_attributes: bool = False, extra: Iterable[str] = ()) -> str:
    """A page's policy: its own inline scripts and styles admitted by hash, files from
    this origin, and ``extra`` directives. ``style_attributes`` admits every inline
    style (the docs' renderers set ``style=`` on elements, which no hash can name); a
    browser ignores ``'unsafe-inline'`` beside a hash, so then no style hash is added."""
    scripts = ["'self'", *inline_hashes(html, "script")]
    inline = ["'unsafe-inline'"] if style_attributes else inline_hashes(html, "style")
    styles = ["'self'", *inline]
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {' '.join(scripts)}",
            f"style-src {' '.join(styles)}",
            "img-src 'self' data:",
            "connect-src 'self'",
            *extra,
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )
