"""A JSON value written once and spliced into every document that holds it.

A track segment's hundred points are one value in several documents a push writes:
the record's version, the version's hash for the audit chain, the record's pull
entry. ``Spliced`` carries the value with its JSON text, made once (keys sorted, as
the chain hashes them); ``orjson_default`` hands that text to orjson as it writes
any of those documents (``orjson.Fragment``), and ``stdlib_default`` gives the value
itself to the standard library's writer, which some documents fall back to.

A point's keys are sorted in its JSON form already (``schemas.track.TrackPointJSON``),
so the text is the same wherever the points are written: in the record's own column,
written without it, and in what the bench's seeder writes byte for byte as push does.
"""

from __future__ import annotations

from typing import Any

import orjson

from schemas.track import PointsJSON


class Spliced:
    """``value`` (JSON: a list or a dict of plain values) with its JSON text."""

    __slots__ = ("text", "value")

    def __init__(self, value: Any) -> None:
        self.value = value
        # A push's points come with their text, written as the push was parsed.
        if type(value) is PointsJSON:
            self.text = value.json_text
        else:
            self.text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def orjson_default(value: Any) -> Any:
    """orjson's ``default``: a ``Spliced`` value as its text."""
    if type(value) is Spliced:
        return orjson.Fragment(value.text)
    raise TypeError(f"{type(value).__name__} is not JSON")


def stdlib_default(value: Any) -> Any:
    """``json.dumps``'s ``default``: a ``Spliced`` value as itself."""
    if type(value) is Spliced:
        return value.value
    raise TypeError(f"{type(value).__name__} is not JSON")
