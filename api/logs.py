"""Log lines as JSON, each with the id of the request it was written for.

- ``RequestLog``, a pure ASGI middleware around the whole app (errors included): it takes
  the caller's ``X-Request-ID`` when it is sane (at most 64 of ``A-Z a-z 0-9 . _ -``; a
  proxy's or a tablet's id, so one id follows a request through them) or makes one,
  keeps it in a context variable for the request's log records, answers it in
  ``X-Request-ID``, and writes one access line (logger ``fieldsync.access``) per request:
  method, route template, path, status, duration, client address. Never the query
  string (a pull's cursor) nor a header (a token).
- ``log_config``: the ``logging`` configuration ``fieldsync serve`` runs with, for its own
  loggers and uvicorn's: JSON lines on stderr (python-json-logger), or text for a person
  at a terminal (``FIELDSYNC_LOG_FORMAT=text``). Every record carries ``request_id``
  (``RequestIdFilter``); a traceback is in its record's ``exc_info``.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from contextvars import ContextVar
from typing import Any

from fastapi import FastAPI
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import Message, Receive, Scope, Send

from api.headers import route_path
from api.middleware import HTTPMiddleware, wrap_outermost
from api.route_template import route_template

REQUEST_ID_HEADER = "X-Request-ID"
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
access = logging.getLogger("fieldsync.access")


class RequestIdFilter(logging.Filter):
    """Gives a record the id of the request it was written during (on a handler, so
    that every logger's records get it, the libraries' too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = request_id.get()
        if current is not None:
            record.request_id = current
        return True


def json_formatter() -> logging.Formatter:
    """One JSON object a line: time (UTC), level, logger, message, request_id, and the
    record's extra fields (an access line's method, route, status…), ``exc_info``."""
    return JsonFormatter(
        ["levelname", "name", "message", "request_id"],
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",
        # uvicorn repeats its message with terminal colours in an extra field.
        reserved_attrs=[*RESERVED_ATTRS, "color_message"],
        json_ensure_ascii=False,
    )


def text_formatter() -> logging.Formatter:
    return logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
        defaults={"request_id": "-"},
    )


def log_config(log_format: str, level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` configuration: every logger's records to stderr,
    as JSON lines or as text. uvicorn's access log is off (``RequestLog`` writes one)."""
    formatter = json_formatter if log_format == "json" else text_formatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"line": {"()": formatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "line",
                "filters": ["request_id"],
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "uvicorn": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False},
        },
    }


def _request_id(scope: Scope) -> str:
    given = Headers(scope=scope).get(REQUEST_ID_HEADER, "")
    return given if SANE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


class RequestLog(HTTPMiddleware):
    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        this_request = _request_id(scope)
        token = request_id.set(this_request)
        path = route_path(scope)  # before a mount makes its prefix the root path
        started = time.perf_counter()
        # What the error middleware answers when the app raises before answering.
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = this_request
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            milliseconds = round((time.perf_counter() - started) * 1000, 1)
            client = scope.get("client")
            access.info(
                "%s %s %s %.1f ms",
                scope["method"],
                path,
                status,
                milliseconds,
                extra={
                    "method": scope["method"],
                    "route": route_template(scope),
                    "path": path,
                    "status": status,
                    "duration_ms": milliseconds,
                    "client": client[0] if client else None,
                },
            )
            request_id.reset(token)


def install(app: FastAPI) -> None:
    """``RequestLog`` around the whole app, errors included (as ``api.headers``): install
    it last, so that it is outermost and every other layer's records carry the id."""
    wrap_outermost(app, RequestLog)
