"""Reading a request body within a size limit, gzip or not, and parsing it as JSON.

The limit holds for the bytes on the wire *and* after inflating, so a small gzip
bomb is refused as soon as it inflates past the limit, never held whole in memory.

Every JSON body, push's and the rest, is read by ``parse_json``: UTF-8 only, no NaN or
Infinity, no number too large for a float, and at most ``MAX_JSON_DEPTH`` levels of
nesting. A body of 100,000 ``[`` is a ``400 malformed_json``, not a ``RecursionError``.
"""

import json
import math
import zlib
from collections.abc import Callable, Coroutine
from email.message import Message
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute

from sync.platform.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

CHUNK = 64 * 1024


def check_json_media_type(request: Request) -> None:
    """The body is declared JSON (``application/json``, or ``…+json``), in UTF-8 if a
    charset is named: a form, text or UTF-16 body is refused before it is read. The
    header is read by the standard library's MIME parser (quoting, case, spaces)."""
    declared = request.headers.get("content-type")
    header = Message()
    header["content-type"] = declared or ""
    media_type = header.get_content_type()
    charset = header.get_content_charset("utf-8")
    if (
        declared is None
        or not (media_type == "application/json" or media_type.endswith("+json"))
        or charset not in ("utf-8", "utf8")
    ):
        raise UnsupportedMediaType(
            f"the body must be sent as application/json in UTF-8, not {declared or 'untyped'}",
            code="unsupported_media_type",
        )


async def read_body(request: Request, limit: int) -> bytes:
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise UnsupportedMediaType(f"Content-Encoding {encoding!r} is not accepted; use gzip")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS) if encoding == "gzip" else None
    parts: list[bytes] = []
    received = inflated = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise _too_large(limit)
        if inflater is None:
            parts.append(chunk)
            continue
        try:
            out = inflater.decompress(chunk, limit + 1 - inflated)
        except zlib.error as error:
            raise BadRequest("the body is not valid gzip", code="bad_gzip") from error
        inflated += len(out)
        if inflated > limit or inflater.unconsumed_tail:
            raise _too_large(limit)
        parts.append(out)
    if inflater is not None and not inflater.eof:
        raise BadRequest("the gzip body ends early", code="bad_gzip")
    if inflater is not None and inflater.unused_data:
        raise BadRequest("bytes follow the end of the gzip stream", code="bad_gzip")
    return b"".join(parts)


# The deepest record a tablet sends is a few levels (a batch, a change, its fields, a
# list of attachments or a track's points); 64 leaves room and stays far below what the
# parsers and writers of the stack can recurse through (orjson writes 254 levels).
MAX_JSON_DEPTH = 64


# A run of 20 digits may be an integer beyond 64 bits, which orjson reads as a float.
# Found by mapping every digit to 0 and everything else to a space (both in C, at
# memory speed, where a regular expression took longer than the parse).
DIGITS_AS_ZERO = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))
LONG_NUMBER = b"0" * 20


def parse_json(raw: bytes, *, reading: Callable[[Any], None] | None = None) -> Any:
    """The document in ``raw``; ``json.JSONDecodeError`` if it is not JSON as the
    protocol defines it (FastAPI and push answer that as ``400 malformed_json``):
    NaN, Infinity, a number too large for a float (1e999), a lone surrogate, bytes that
    are not UTF-8, or more than ``MAX_JSON_DEPTH`` levels. ``reading`` is given the
    document before its depth is checked (a push's track points, read as they are
    parsed: ``schemas.track.read_sent_points``).

    orjson reads it, in C: the standard library's parser, and a walk of every value to
    refuse what it lets through, were a third of a push's CPU. A body with a run of 20
    digits is read by the standard library instead, so that an integer beyond 64 bits
    stays exact rather than become a float."""
    if raw.translate(DIGITS_AS_ZERO).find(LONG_NUMBER) >= 0:
        document = _parse_exactly(raw)
    else:
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            text = raw[:64].decode("utf-8", "replace")
            if "depth limit" in str(error):
                raise _too_deep(text) from None
            raise json.JSONDecodeError(str(error).split(":")[0], text, error.pos) from None
    if reading is not None:
        reading(document)
    if nested_deeper_than(document, MAX_JSON_DEPTH):
        raise _too_deep(raw[:64].decode("utf-8", "replace"))
    return document


def _parse_exactly(raw: bytes) -> Any:
    """``parse_json`` by the standard library's parser, integers of any size exact."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise json.JSONDecodeError("the body is not UTF-8", "", error.start) from None
    try:
        document = json.loads(text, parse_constant=_not_json, parse_float=_finite)
    except json.JSONDecodeError:
        raise
    except ValueError as error:  # NaN, 1e999
        raise json.JSONDecodeError(str(error), text[:64], 0) from None
    except RecursionError:
        raise _too_deep(text) from None
    return document


def nested_deeper_than(document: Any, limit: int) -> bool:
    """Whether ``document`` has more than ``limit`` levels of arrays and objects. Level
    by level, with no recursion; ``type() is`` because JSON makes exact dicts and lists.
    A track's points read already (``schemas.track.ReadPoints``, a list of flat objects
    by its reader's word) are not walked."""
    level = [document] if type(document) is dict or type(document) is list else []
    for _ in range(limit):
        below = []
        for node in level:
            for child in node.values() if type(node) is dict else node:
                if type(child) is list or type(child) is dict:
                    below.append(child)
        if not below:
            return False
        level = below
    return bool(level)


def _too_deep(text: str) -> json.JSONDecodeError:
    return json.JSONDecodeError(f"nested more than {MAX_JSON_DEPTH} levels deep", text[:64], 0)


def _not_json(constant: str) -> Any:
    """NaN and Infinity: Python reads them, JSON has no such thing."""
    raise ValueError(f"{constant} is not JSON")


def _finite(text: str) -> float:
    """A number too large for a float (1e999) is refused, not read as infinity."""
    value = float(text)
    if value in (math.inf, -math.inf):
        raise ValueError(f"{text} is too large")
    return value


class JSONRequest(Request):
    """A request whose ``json()`` is ``parse_json``: what FastAPI reads every JSON body
    with, on the routes of ``JSONRoute``."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json(await self.body())
        return self._json


class JSONRoute(APIRoute):
    """The routes of the API: bodies parsed by ``parse_json``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def parse_with_limits(request: Request) -> Response:
            return await handler(JSONRequest(request.scope, request.receive))

        return parse_with_limits


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the body is over {limit} bytes (after gunzip); send smaller batches",
        code="payload_too_large",
    )
