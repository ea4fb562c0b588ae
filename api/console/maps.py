"""A patrol's map, drawn on the server as SVG: no tile server, no script, so it shows
at a ranger post with no internet and prints as it is.

Positions are projected equirectangularly: a degree of longitude is drawn
``cos(latitude)`` times as wide as a degree of latitude, at the middle latitude of
what is drawn. Over the few kilometres of a patrol this is as true as the GPS; north
is up. What is drawn, bottom to top: the sector's boundary (a GeoJSON Polygon or
MultiPolygon, holes left out), the track (one line per stretch without a gap, a dot
for a lone fix), the observations as numbered circles (the numbers of the list
under the map; observations at one spot share a circle, ``1, 2``), and a scale bar.

The frame fits the track and the observations; the sector is drawn whole when it
is not much larger than them, and cut at the frame's edges otherwise, so that a
short patrol in a large sector is not a speck. With nothing but a boundary, the
frame fits the boundary. Every text in the drawing comes in from the page,
translated; numbers and the scale's ``km`` are the same in every language.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

KM_PER_DEGREE = math.pi / 180 * 6371.0088
"""Km in a degree of latitude, on the sphere ``sync.patrols.geo`` measures with."""

WIDTH = 640
MIN_HEIGHT = 240
MAX_HEIGHT = 520
PADDING = 24
MIN_SPAN_DEGREES = 0.005
"""The least a map shows, about 550 m a side: one point, or a patrol that never moved."""
SECTOR_WHOLE_UP_TO = 3.0
"""The sector is fitted whole when its extent is at most this many times the patrol's."""
SIMPLIFY_PX = 0.75
"""A fix drawn closer than this to the last one kept adds nothing to the line."""
MARKER_RADIUS = 8

LonLat = tuple[float, float]


@dataclass(frozen=True)
class Place:
    """An observation on the map: its number in the list under the map, where it is,
    and what a pointer over it says."""

    number: int
    lat: float
    lon: float
    title: str


@dataclass(frozen=True)
class Extent:
    west: float
    south: float
    east: float
    north: float

    @classmethod
    def around(cls, positions: Iterable[LonLat]) -> Extent | None:
        lons, lats = [], []
        for lon, lat in positions:
            lons.append(lon)
            lats.append(lat)
        if not lons:
            return None
        return cls(min(lons), min(lats), max(lons), max(lats))

    def joined(self, other: Extent) -> Extent:
        return Extent(
            min(self.west, other.west),
            min(self.south, other.south),
            max(self.east, other.east),
            max(self.north, other.north),
        )

    def widened(self, least: float) -> Extent:
        """At least ``least`` degrees each way, about the same middle."""
        grow_x = max(0.0, least - (self.east - self.west)) / 2
        grow_y = max(0.0, least - (self.north - self.south)) / 2
        return Extent(
            self.west - grow_x, self.south - grow_y, self.east + grow_x, self.north + grow_y
        )

    def span(self) -> float:
        return max(self.east - self.west, self.north - self.south)


@dataclass(frozen=True)
class Frame:
    """Where a position is drawn: ``xy(lon, lat)`` in the SVG's pixels."""

    west: float
    north: float
    cos_lat: float
    scale: float  # px per degree of latitude
    left: float
    top: float
    width: int
    height: int

    def xy(self, lon: float, lat: float) -> tuple[float, float]:
        return (
            self.left + (lon - self.west) * self.cos_lat * self.scale,
            self.top + (self.north - lat) * self.scale,
        )

    def km_per_px(self) -> float:
        return KM_PER_DEGREE / self.scale


def frame(
    extent: Extent,
    *,
    width: int = WIDTH,
    min_height: int = MIN_HEIGHT,
    max_height: int = MAX_HEIGHT,
    padding: int = PADDING,
) -> Frame:
    """The frame that draws ``extent`` as large as ``width`` allows, north up, between
    ``min_height`` and ``max_height`` tall, centred, ``padding`` px free around it."""
    extent = extent.widened(MIN_SPAN_DEGREES)
    cos_lat = math.cos(math.radians((extent.north + extent.south) / 2))
    span_x = (extent.east - extent.west) * cos_lat
    span_y = extent.north - extent.south
    inner_w = width - 2 * padding
    scale = inner_w / span_x
    inner_h = span_y * scale
    if inner_h > max_height - 2 * padding:
        scale = (max_height - 2 * padding) / span_y
    height = min(max_height, max(min_height, round(span_y * scale) + 2 * padding))
    return Frame(
        west=extent.west,
        north=extent.north,
        cos_lat=cos_lat,
        scale=scale,
        left=(width - span_x * scale) / 2,
        top=(height - span_y * scale) / 2,
        width=width,
        height=height,
    )


# ---------------------------------------------------------------- GeoJSON


def rings(boundary: Mapping[str, Any] | None) -> list[list[LonLat]]:
    """The outer ring of each polygon of a Polygon or MultiPolygon, as ``(lon, lat)``."""
    if not boundary:
        return []
    kind = boundary.get("type")
    coordinates = boundary.get("coordinates") or []
    polygons = [coordinates] if kind == "Polygon" else coordinates if kind == "MultiPolygon" else []
    return [[(float(p[0]), float(p[1])) for p in polygon[0]] for polygon in polygons if polygon]


def lines(track: Mapping[str, Any] | None) -> list[list[LonLat]]:
    """Each stretch of a track FeatureCollection (LineStrings, and Points for lone
    fixes) as its ``(lon, lat)`` positions."""
    found: list[list[LonLat]] = []
    for feature in (track or {}).get("features") or []:
        geometry = feature.get("geometry") or {}
        if geometry.get("type") == "LineString":
            found.append([(float(p[0]), float(p[1])) for p in geometry["coordinates"]])
        elif geometry.get("type") == "Point":
            lon, lat = geometry["coordinates"][:2]
            found.append([(float(lon), float(lat))])
    return found


# ---------------------------------------------------------------- drawing


def _n(value: float) -> str:
    """A coordinate to a tenth of a pixel, without a trailing ``.0``."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def simplified(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """``points`` without those closer than ``SIMPLIFY_PX`` to the last one kept; the
    last point is always kept, so a line ends where the patrol did."""
    if len(points) <= 2:
        return list(points)
    kept = [points[0]]
    for point in points[1:-1]:
        last = kept[-1]
        if math.hypot(point[0] - last[0], point[1] - last[1]) >= SIMPLIFY_PX:
            kept.append(point)
    kept.append(points[-1])
    return kept


def nice_km(most: float) -> float:
    """The longest of 1, 2 or 5 times a power of ten that is at most ``most`` km."""
    power = 10.0 ** math.floor(math.log10(most))
    return max(step * power for step in (1, 2, 5) if step * power <= most)


def _km_text(km: float) -> str:
    return f"{round(km * 1000)} m" if km < 1 else f"{km:g} km"


def _boundary(shape: Frame, outlines: list[list[LonLat]]) -> Iterator[str]:
    if not outlines:
        return
    parts = []
    for ring in outlines:
        drawn = [shape.xy(lon, lat) for lon, lat in ring]
        parts.append("M" + " L".join(f"{_n(x)} {_n(y)}" for x, y in drawn) + " Z")
    yield f'<path class="boundary" d="{" ".join(parts)}"/>'


def _track(shape: Frame, stretches: list[list[LonLat]]) -> Iterator[str]:
    for stretch in stretches:
        drawn = simplified([shape.xy(lon, lat) for lon, lat in stretch])
        if len(stretch) == 1:
            x, y = drawn[0]
            yield f'<circle class="track" cx="{_n(x)}" cy="{_n(y)}" r="2"/>'
        else:
            points = " ".join(f"{_n(x)},{_n(y)}" for x, y in drawn)
            yield f'<polyline class="track" points="{points}"/>'


def clustered(
    shape: Frame, places: Sequence[Place], apart: float = MARKER_RADIUS * 1.5
) -> list[list[Place]]:
    """``places`` in groups drawn as one marker: each place joins the first group whose
    first place is drawn within ``apart`` px of it (two observations at one spot would
    hide each other's number otherwise)."""
    groups: list[tuple[tuple[float, float], list[Place]]] = []
    for place in places:
        x, y = shape.xy(place.lon, place.lat)
        for (gx, gy), members in groups:
            if math.hypot(x - gx, y - gy) < apart:
                members.append(place)
                break
        else:
            groups.append(((x, y), [place]))
    return [members for _, members in groups]


def _places(shape: Frame, places: Sequence[Place]) -> Iterator[str]:
    for group in clustered(shape, places):
        x, y = shape.xy(group[0].lon, group[0].lat)
        numbers = ", ".join(str(place.number) for place in group)
        titles = "; ".join(place.title for place in group)
        yield (
            f"<g><title>{escape(titles)}</title>"
            f'<circle class="observation" cx="{_n(x)}" cy="{_n(y)}" r="{MARKER_RADIUS}"/>'
            f'<text class="label" x="{_n(x + MARKER_RADIUS + 3)}" y="{_n(y + 5)}">'
            f"{numbers}</text></g>"
        )


def _scale_bar(shape: Frame) -> Iterator[str]:
    km = nice_km(shape.km_per_px() * shape.width / 4)
    length = km / shape.km_per_px()
    x, y = PADDING / 2, shape.height - PADDING / 2
    yield (
        f'<g class="scale"><path d="M{_n(x)} {_n(y - 5)} V{_n(y)} H{_n(x + length)} V{_n(y - 5)}"/>'
        f'<text class="label" x="{_n(x + length + 4)}" y="{_n(y)}">{_km_text(km)}</text></g>'
    )


def patrol_map(
    *,
    title: str,
    track: Mapping[str, Any] | None,
    places: Sequence[Place] = (),
    boundary: Mapping[str, Any] | None = None,
    width: int = WIDTH,
) -> Markup | None:
    """The map of a patrol as an inline ``<svg>``; ``None`` when there is nothing to
    draw (no track, no observation, no boundary)."""
    stretches = lines(track)
    outlines = rings(boundary)
    patrol = Extent.around([*(p for s in stretches for p in s), *((p.lon, p.lat) for p in places)])
    sector = Extent.around(p for ring in outlines for p in ring)
    if patrol is None and sector is None:
        return None
    if patrol is None:
        assert sector is not None
        fitted = sector
    elif sector is not None and sector.span() <= SECTOR_WHOLE_UP_TO * max(
        patrol.span(), MIN_SPAN_DEGREES
    ):
        fitted = patrol.joined(sector)
    else:
        fitted = patrol
    shape = frame(fitted, width=width)
    body = [
        *_boundary(shape, outlines),
        *_track(shape, stretches),
        *_places(shape, places),
        *_scale_bar(shape),
    ]
    # Every text in it went through escape(); the rest is numbers and fixed markup.
    return Markup(  # noqa: S704
        f'<svg class="map" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'viewBox="0 0 {shape.width} {shape.height}" width="{shape.width}" '
        f'height="{shape.height}"><title>{escape(title)}</title>{"".join(body)}</svg>'
    )


__all__ = [
    "Extent",
    "Frame",
    "Place",
    "clustered",
    "frame",
    "lines",
    "nice_km",
    "patrol_map",
    "rings",
]
