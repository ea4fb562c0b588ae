"""Distances and containment on the Earth, for patrol tracks (pure; no spatial database).

The service must answer on SQLite and PostgreSQL alike, so the little
geometry a ranger lead needs — how far a patrol walked, whether it stayed in its
sector, how far an observation lies from the track — is computed here in Python.

Conventions:

- Function arguments are ``lat`` and ``lon`` in degrees (the order of the track
  point fields); GeoJSON coordinates, as stored in ``sector.boundary``, are
  ``[lon, lat]`` (RFC 7946) and are read in that order.
- The Earth is a sphere of the mean radius (IUGG, 6371.0088 km). Against the WGS 84
  ellipsoid that errs by up to about 0.5 %, far below what a handheld GPS or a
  patrol log can tell apart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

EARTH_RADIUS_KM = 6371.0088
"""The mean Earth radius (IUGG): the sphere that errs least on average against WGS 84."""

LatLon = tuple[float, float]
"""A position as ``(lat, lon)`` in degrees — the order of track points, not of GeoJSON."""


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km between two positions.

    The central angle is taken by ``atan2`` of its sine and cosine (Vincenty's formula
    on a sphere), which keeps its digits at every distance: the few metres between
    consecutive GPS fixes, where the spherical law of cosines loses them, and nearly
    antipodal points, where haversine's ``asin`` of a value next to 1 loses them (a
    property test found a triangle it broke by a few metres).
    """
    phi1 = math.radians(lat1)
    phi2 = math.radians(lat2)
    dlambda = math.radians(lon2 - lon1)
    sin1, cos1 = math.sin(phi1), math.cos(phi1)
    sin2, cos2 = math.sin(phi2), math.cos(phi2)
    cross = math.hypot(cos2 * math.sin(dlambda), cos1 * sin2 - sin1 * cos2 * math.cos(dlambda))
    dot = sin1 * sin2 + cos1 * cos2 * math.cos(dlambda)
    return EARTH_RADIUS_KM * math.atan2(cross, dot)


# ---------------------------------------------------------------- containment


def _in_ring(lat: float, lon: float, ring: Sequence[Sequence[float]]) -> bool:
    """Ray casting: a ray from the point towards +lon crosses the ring an odd number
    of times iff the point is inside. Planar in degrees, which is what GeoJSON means
    by a polygon edge (RFC 7946 §3.1.1); sectors never straddle the antimeridian.

    The half-open test ``(y1 > lat) != (y2 > lat)`` counts a vertex on the ray once,
    not twice, and skips horizontal edges, so no division by zero.
    """
    inside = False
    count = len(ring)
    for index in range(count):
        x1, y1 = float(ring[index][0]), float(ring[index][1])
        x2, y2 = float(ring[index - 1][0]), float(ring[index - 1][1])
        if (y1 > lat) != (y2 > lat):
            crossing_lon = x1 + (lat - y1) * (x2 - x1) / (y2 - y1)
            if lon < crossing_lon:
                inside = not inside
    return inside


def _in_polygon(lat: float, lon: float, rings: Sequence[Sequence[Sequence[float]]]) -> bool:
    """Inside the outer ring (the first) and inside none of its holes (the rest)."""
    if not rings or not _in_ring(lat, lon, rings[0]):
        return False
    return not any(_in_ring(lat, lon, hole) for hole in rings[1:])


def point_in_boundary(boundary: Mapping[str, Any], *, lat: float, lon: float) -> bool:
    """Whether a position lies in a GeoJSON Polygon or MultiPolygon (holes excluded).

    A point exactly on an edge may fall either way; at GPS accuracy (metres) that
    is noise, not a question a ranger lead asks. Any other geometry type is refused,
    since a sector boundary is validated to be one of these two (schemas/reference.py).
    """
    kind = boundary.get("type")
    coordinates = boundary.get("coordinates") or []
    if kind == "Polygon":
        return _in_polygon(lat, lon, coordinates)
    if kind == "MultiPolygon":
        return any(_in_polygon(lat, lon, polygon) for polygon in coordinates)
    raise ValueError(f"a boundary is a GeoJSON Polygon or MultiPolygon, not {kind!r}")


# ---------------------------------------------------------------- point to line


def _distance_to_leg_km(lat: float, lon: float, start: LatLon, end: LatLon) -> float:
    """Distance from a position to the straight leg ``start``-``end``, in km.

    Approximation: an equirectangular projection centred on the position
    (x = R·Δλ·cos φ₀, y = R·Δφ), then the planar distance to the segment. The
    relative error grows like |tan φ₀ · Δφ| (the east-west scale taken at the
    position's latitude instead of the vertex's) plus (d/R)² terms: at the Alto Mayo
    (~6° S) it is far below 0.1 % for legs within tens of km, and still under 1 % at
    60° latitude for a leg 50 km away. A patrol is a few km; a 1 km threshold only
    needs metres. Longitude differences are wrapped so the antimeridian does not
    turn a short leg into a world-long one.
    """
    scale_x = EARTH_RADIUS_KM * math.cos(math.radians(lat))

    def project(position: LatLon) -> tuple[float, float]:
        dlon = (position[1] - lon + 180.0) % 360.0 - 180.0
        return scale_x * math.radians(dlon), EARTH_RADIUS_KM * math.radians(position[0] - lat)

    ax, ay = project(start)
    bx, by = project(end)
    dx, dy = bx - ax, by - ay
    length_squared = dx * dx + dy * dy
    # A zero-length leg (two fixes at one place) is a point: no projection needed.
    fraction = 0.0
    if length_squared > 0:
        fraction = min(1.0, max(0.0, -(ax * dx + ay * dy) / length_squared))
    return math.hypot(ax + fraction * dx, ay + fraction * dy)


def distance_to_polyline_km(lat: float, lon: float, polyline: Sequence[LatLon]) -> float:
    """Distance in km from a position to the nearest point of a polyline of ``(lat, lon)``.

    A one-point polyline is that point (exact haversine); longer ones use the
    approximation of ``_distance_to_leg_km`` on each leg. An empty polyline has no
    nearest point, so it is refused rather than answered with infinity.
    """
    if not polyline:
        raise ValueError("a polyline needs at least one position")
    if len(polyline) == 1:
        return haversine_km(lat, lon, polyline[0][0], polyline[0][1])
    return min(_distance_to_leg_km(lat, lon, start, end) for start, end in pairwise(polyline))
