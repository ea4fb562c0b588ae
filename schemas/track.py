"""A track's points read fast: the most numerous values a push carries.

A ranger's tablet sends a fix a minute, so a day's patrol is hundreds of points, each
a time, a position and two optional measures. Read by pydantic (``TrackPoint`` in
``schemas.records``: a time parsed, kept as a datetime, turned to UTC, and written
back as text), a point cost about 3.3 µs; a batch of the benchmark's workload spent a
quarter of the server's CPU there. ``read_points`` reads them with msgspec's
validator, in C, straight to their JSON form (times in UTC, all five keys), in about a
third of that.

It is a shortcut, never a second rulebook: it only vouches for points it reads exactly
as pydantic would, and answers ``None`` for anything else — a point it refuses, a time
with more than six digits of fraction (pydantic truncates them where msgspec rounds),
one it cannot turn to UTC — which pydantic then reads, accepting what it accepts and
refusing the rest with its own errors. ``tests/test_track_points.py`` holds the two
readers to the same answers.

A push's points are read as its body is parsed (``read_sent_points``), before the
body's depth is checked, and each segment's list kept as it was sent, with its reading
(``ReadPoints``): points vouched for are a list of flat objects, so the depth check
need not walk them, and they are not read twice. That walk over a ranger's batch of
20,000 points was a fifth of its parsing.
"""

import re
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
import orjson
from typing_extensions import TypedDict

MAX_POINTS = 10_000
# A fraction of a second longer than microseconds.
_LONG_FRACTION = re.compile(r"\.\d{7}")


class TrackPointJSON(TypedDict):
    """A point as it is stored and pulled: its time in UTC (RFC 3339, ``Z``), its keys
    in sorted order. A segment's points are one JSON text in every document a push
    writes of it, the audit chain's hash among them, which sorts keys
    (``sync.platform.spliced``): in this order, the record's own column is that text too."""

    accuracy_m: float | None
    alt_m: float | None
    lat: float
    lon: float
    t: str


# A point's keys, as its JSON form holds them.
POINT_KEYS = tuple(TrackPointJSON.__annotations__)


# Untracked by the garbage collector (it holds no container, so it can be in no
# cycle): a batch makes tens of thousands, and each tracked one made collections of
# a server's heap longer (1.5 → 1.2 µs a point with half a million objects live).
# Its fields in ``TrackPointJSON``'s order, which ``to_builtins`` keeps.
class _Point(msgspec.Struct, forbid_unknown_fields=True, gc=False, kw_only=True):
    accuracy_m: Annotated[float, msgspec.Meta(ge=0)] | None = None
    alt_m: float | None = None
    lat: Annotated[float, msgspec.Meta(ge=-90, le=90)]
    lon: Annotated[float, msgspec.Meta(ge=-180, le=180)]
    t: Annotated[datetime, msgspec.Meta(tz=True)]


_POINTS = list[_Point]


class PointsJSON(list[TrackPointJSON]):
    """Points in their JSON form, with that form's text (``json_text``: keys sorted, no
    spaces), written once as the push is parsed: the segment's own column, its version,
    the version's hash and its pull entry all take this text (``sync.platform.spliced``,
    ``sync.platform.database.json_text``) rather than write the points again, on
    SQLite while its write lock is held."""

    __slots__ = ("json_text",)

    def __init__(self, points: list[TrackPointJSON]) -> None:
        super().__init__(points)
        self.json_text = orjson.dumps(points, option=orjson.OPT_SORT_KEYS)


class ReadPoints(list[Any]):
    """A track's points as the device sent them (the list's items, hashed and kept as
    they came), and ``read``, what ``read_points`` read them as. Only ``read_sent_points``
    makes them, of a list ``read_points`` vouched for; nothing changes either after."""

    __slots__ = ("read",)

    def __init__(self, sent: list[Any], read: PointsJSON) -> None:
        super().__init__(sent)
        self.read = read


def read_sent_points(document: Any) -> None:
    """Read the points of every track segment a push body (``document``, parsed JSON of
    any shape) holds, where ``read_points`` vouches for them, and put them back as
    ``ReadPoints``. Only the changes' ``fields.points`` are looked at, and nothing is
    walked deeper than a point: this runs before the body's depth is checked."""
    changes = document.get("changes") if type(document) is dict else None
    if type(changes) is not list:
        return
    for change in changes:
        if type(change) is not dict or change.get("entity") != "track_segment":
            continue
        fields = change.get("fields")
        if type(fields) is not dict or type(points := fields.get("points")) is not list:
            continue
        read = read_points(points)
        if read is not None:
            fields["points"] = ReadPoints(points, PointsJSON(read))


def read_points(value: Any) -> list[TrackPointJSON] | None:
    """``value`` read as a track's points, in their JSON form; ``None`` if this reader
    cannot vouch for it (pydantic's reading decides)."""
    if type(value) is ReadPoints:
        return value.read
    if type(value) is not list or not 1 <= len(value) <= MAX_POINTS:
        return None
    try:
        points = msgspec.convert(value, _POINTS)
    except msgspec.ValidationError:
        return None
    for sent, point in zip(value, points, strict=True):
        t = sent["t"]
        # The shortest time with seven digits of fraction: 2026-03-09T07:34:02.1234567Z
        if type(t) is not str or (len(t) >= 28 and _LONG_FRACTION.search(t)):
            return None
        try:
            point.t = point.t.astimezone(UTC)
        except OverflowError:  # year 1 with an offset east of Greenwich
            return None
    # Each point as a dictionary of all five keys in sorted order, its time written as
    # pydantic writes one in UTC (``2026-03-09T12:34:02Z``, microseconds as six digits).
    read: list[TrackPointJSON] = msgspec.to_builtins(points)
    return read
