"""Reading a request body within a size limit, gzip or not.

The limit holds for the bytes on the wire *and* after inflating, so a small gzip
bomb is refused as soon as it inflates past the limit, never held whole in memory.
"""

import zlib

from fastapi import Request

from sync.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

CHUNK = 64 * 1024


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
    return b"".join(parts)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the body is over {limit} bytes (after gunzip); send smaller batches",
        code="payload_too_large",
    )
