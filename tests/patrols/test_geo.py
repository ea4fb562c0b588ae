"""Distances and containment on the sphere (sync/geo.py), against hand-computed values.

One degree of a great circle is 2*pi*6371.0088/360 = 111.19508 km, so 0.01 degree of
latitude (or of longitude on the equator) is 1.1119508 km.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.patrols.geo import (
    EARTH_RADIUS_KM,
    distance_to_polyline_km,
    haversine_km,
    point_in_boundary,
)

KM_PER_DEGREE = 2 * math.pi * EARTH_RADIUS_KM / 360  # 111.19508...

latitudes = st.floats(min_value=-90, max_value=90, allow_nan=False)
longitudes = st.floats(min_value=-180, max_value=180, allow_nan=False)
positions = st.tuples(latitudes, longitudes)


def square(west: float, south: float, east: float, north: float) -> list[list[float]]:
    """A closed GeoJSON ring, [lon, lat], counter-clockwise."""
    return [[west, south], [east, south], [east, north], [west, north], [west, south]]


SQUARE_WITH_HOLE: dict[str, Any] = {
    "type": "Polygon",
    "coordinates": [square(0, 0, 10, 10), square(4, 4, 6, 6)],
}


# ---------------------------------------------------------------- haversine


def test_a_hundredth_of_a_degree_of_latitude_is_1_11195_km() -> None:
    assert haversine_km(-6.00, -77.0, -6.01, -77.0) == pytest.approx(1.1119508, abs=1e-6)


def test_a_degree_of_longitude_on_the_equator_is_111_195_km() -> None:
    assert haversine_km(0, 0, 0, 1) == pytest.approx(111.19508, abs=1e-4)


def test_a_degree_of_longitude_at_60_degrees_is_half_as_long() -> None:
    # Great circle, not the parallel: 2R*asin(cos 60 * sin 0.5 deg) = 55.59701 km
    # (the parallel itself is 111.19508 * cos 60 = 55.59754 km).
    assert haversine_km(60, 0, 60, 1) == pytest.approx(55.59701, abs=1e-4)


def test_pole_to_pole_is_half_the_circumference() -> None:
    assert haversine_km(90, 0, -90, 0) == pytest.approx(math.pi * EARTH_RADIUS_KM)


def test_nashville_to_los_angeles_matches_the_textbook_pair() -> None:
    # The classic (Sinnott 1984 / Rosetta Code) pair: 2887.2600 km on R = 6372.8 km,
    # scaled to the mean radius used here.
    expected = 2887.2600 * EARTH_RADIUS_KM / 6372.8
    assert haversine_km(36.12, -86.67, 33.94, -118.40) == pytest.approx(expected, rel=1e-6)


def test_the_same_place_is_zero_km_away() -> None:
    assert haversine_km(-5.9, -77.3, -5.9, -77.3) == 0.0


@given(positions, positions)
def test_distance_is_symmetric_and_never_negative(
    a: tuple[float, float], b: tuple[float, float]
) -> None:
    there = haversine_km(*a, *b)
    back = haversine_km(*b, *a)
    assert there == pytest.approx(back, abs=1e-9)
    assert 0 <= there <= math.pi * EARTH_RADIUS_KM + 1e-9


@given(positions, positions, positions)
def test_distance_keeps_the_triangle_inequality(
    a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]
) -> None:
    assert haversine_km(*a, *c) <= haversine_km(*a, *b) + haversine_km(*b, *c) + 1e-6


# ---------------------------------------------------------------- containment


@pytest.mark.parametrize(
    ("lat", "lon", "inside"),
    [
        pytest.param(2, 2, True, id="in-the-square"),
        pytest.param(5, 5, False, id="in-the-hole"),
        pytest.param(5, 3, True, id="beside-the-hole"),
        pytest.param(5, 11, False, id="east-of-the-square"),
        pytest.param(-1, 5, False, id="south-of-the-square"),
        pytest.param(9.999, 0.001, True, id="just-inside-a-corner"),
    ],
)
def test_a_polygon_holds_what_is_in_its_outer_ring_and_not_in_its_holes(
    lat: float, lon: float, inside: bool
) -> None:
    assert point_in_boundary(SQUARE_WITH_HOLE, lat=lat, lon=lon) is inside


def test_coordinates_are_read_as_lon_lat() -> None:
    # A tall thin rectangle: lon 0..1, lat 0..10. (lat 5, lon 0.5) is in; swapped, it is not.
    rectangle = {"type": "Polygon", "coordinates": [square(0, 0, 1, 10)]}
    assert point_in_boundary(rectangle, lat=5, lon=0.5)
    assert not point_in_boundary(rectangle, lat=0.5, lon=5)


def test_a_multipolygon_holds_what_any_of_its_polygons_holds() -> None:
    islands = {
        "type": "MultiPolygon",
        "coordinates": [SQUARE_WITH_HOLE["coordinates"], [square(20, 20, 30, 30)]],
    }
    assert point_in_boundary(islands, lat=2, lon=2)
    assert point_in_boundary(islands, lat=25, lon=25)
    assert not point_in_boundary(islands, lat=5, lon=5)
    assert not point_in_boundary(islands, lat=15, lon=15)


def test_a_concave_ring_is_not_filled_in() -> None:
    # A "U": the notch between its arms is outside.
    u_shape = [[0, 0], [3, 0], [3, 3], [2, 3], [2, 1], [1, 1], [1, 3], [0, 3], [0, 0]]
    boundary = {"type": "Polygon", "coordinates": [u_shape]}
    assert point_in_boundary(boundary, lat=2, lon=0.5)
    assert not point_in_boundary(boundary, lat=2, lon=1.5)


def test_a_geometry_that_is_not_a_polygon_is_refused() -> None:
    with pytest.raises(ValueError, match="Polygon"):
        point_in_boundary({"type": "Point", "coordinates": [0, 0]}, lat=0, lon=0)


coordinates = st.floats(min_value=-1, max_value=11, allow_nan=False)


@given(coordinates, coordinates)
def test_a_point_in_the_hole_is_never_in_the_polygon(lat: float, lon: float) -> None:
    in_outer = point_in_boundary(
        {"type": "Polygon", "coordinates": [square(0, 0, 10, 10)]}, lat=lat, lon=lon
    )
    in_hole = point_in_boundary(
        {"type": "Polygon", "coordinates": [square(4, 4, 6, 6)]}, lat=lat, lon=lon
    )
    in_polygon = point_in_boundary(SQUARE_WITH_HOLE, lat=lat, lon=lon)
    assert in_polygon == (in_outer and not in_hole)
    assert not (in_polygon and in_hole)


# ---------------------------------------------------------------- point to polyline


def test_the_distance_to_a_line_is_measured_square_to_it() -> None:
    # The line runs along the equator; the point is 0.01 degree north of its middle.
    line = [(0.0, -0.01), (0.0, 0.01)]
    assert distance_to_polyline_km(0.01, 0.0, line) == pytest.approx(1.1119508, abs=1e-6)


def test_past_the_end_of_a_line_the_distance_is_to_its_end() -> None:
    line = [(0.0, -0.01), (0.0, 0.01)]
    assert distance_to_polyline_km(0.0, 0.02, line) == pytest.approx(1.1119508, abs=1e-6)


def test_the_nearest_leg_of_a_polyline_counts() -> None:
    # An "L" at the Alto Mayo: north along lon -77, then east along lat -5.99.
    polyline = [(-6.01, -77.0), (-5.99, -77.0), (-5.99, -76.98)]
    # 0.01 degree south of the second leg's middle: 1.11195 km (the first leg is ~1.1 km too,
    # east-west at cos 6 deg: 0.01 * 111.195 * cos(6.0) = 1.10586 km, which is nearer).
    assert distance_to_polyline_km(-6.00, -76.99, polyline) == pytest.approx(1.10586, abs=1e-4)


def test_a_one_point_polyline_is_that_point() -> None:
    assert distance_to_polyline_km(-6.01, -77.0, [(-6.0, -77.0)]) == pytest.approx(
        1.1119508, abs=1e-6
    )


def test_a_zero_length_leg_is_a_point() -> None:
    leg = [(-6.0, -77.0), (-6.0, -77.0)]
    assert distance_to_polyline_km(-6.01, -77.0, leg) == pytest.approx(1.1119508, abs=1e-6)


def test_an_empty_polyline_has_no_distance() -> None:
    with pytest.raises(ValueError, match="at least one"):
        distance_to_polyline_km(0, 0, [])


small = st.floats(min_value=-0.05, max_value=0.05, allow_nan=False)


@given(small, small, st.lists(st.tuples(small, small), min_size=1, max_size=6))
def test_a_polyline_is_never_farther_than_its_nearest_vertex(
    dlat: float, dlon: float, offsets: list[tuple[float, float]]
) -> None:
    lat, lon = -6.0 + dlat, -77.0 + dlon
    polyline = [(-6.0 + a, -77.0 + b) for a, b in offsets]
    nearest_vertex = min(haversine_km(lat, lon, a, b) for a, b in polyline)
    # Patrol scale (a few km): the projection errs by far less than a metre.
    assert distance_to_polyline_km(lat, lon, polyline) <= nearest_vertex + 1e-3
