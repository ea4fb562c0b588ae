"""The patrol map, a pure function: the projection (a degree of longitude drawn
cos(latitude) as wide), the frame, what is drawn and how it is numbered; table-driven."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

from api.console import maps
from api.console.maps import Extent, Place

KM_PER_DEGREE = maps.KM_PER_DEGREE


def feature(geometry: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": {}}


def track(*stretches: list[tuple[float, float]]) -> dict[str, Any]:
    """A track FeatureCollection from stretches of (lon, lat); one fix is a Point."""
    features = [
        feature({"type": "Point", "coordinates": list(s[0])})
        if len(s) == 1
        else feature({"type": "LineString", "coordinates": [list(p) for p in s]})
        for s in stretches
    ]
    return {"type": "FeatureCollection", "features": features}


def square(lon: float, lat: float, half: float) -> dict[str, Any]:
    w, e, s, n = lon - half, lon + half, lat - half, lat + half
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


@pytest.mark.parametrize(
    ("extent", "size", "corners"),
    [
        # A degree square on the equator: as tall as wide, so held to the tallest map.
        (Extent(0, 0, 1, 1), (640, 520), {(0, 1): (84, 24), (1, 0): (556, 496)}),
        # At 60° a degree of longitude is half a degree of latitude wide.
        (Extent(0, 59.9, 0.2, 60.1), (640, 520), {(0, 60.1): (202, 24), (0.2, 59.9): (438, 496)}),
        # A long east-west strip: full width, the least height, centred.
        (Extent(0, 0, 1, 0.01), (640, 240), {(0, 0.01): (24, 117.04), (1, 0): (616, 122.96)}),
        # One point: widened to the least span, in the middle.
        (Extent(-77.3, -5.8, -77.3, -5.8), (640, 520), {(-77.3, -5.8): (320, 260)}),
    ],
)
def test_the_frame_fits_the_extent_north_up_and_centred(
    extent: Extent, size: tuple[int, int], corners: dict[tuple[float, float], tuple[float, float]]
) -> None:
    shape = maps.frame(extent)

    assert (shape.width, shape.height) == size
    for (lon, lat), (x, y) in corners.items():
        assert shape.xy(lon, lat) == pytest.approx((x, y), abs=0.01)


@pytest.mark.parametrize("lat", [-5.8, 0.0, 45.0, -60.0])
def test_a_km_east_is_drawn_as_long_as_a_km_north(lat: float) -> None:
    lon = -77.3
    east = 1 / (KM_PER_DEGREE * math.cos(math.radians(lat)))
    north = 1 / KM_PER_DEGREE
    shape = maps.frame(Extent(lon, lat, lon + east, lat + north))

    x0, y0 = shape.xy(lon, lat)
    x1, _ = shape.xy(lon + east, lat)
    _, y1 = shape.xy(lon, lat + north)

    assert x1 - x0 == pytest.approx(y0 - y1, rel=0.005)
    assert shape.km_per_px() * (x1 - x0) == pytest.approx(1.0, rel=0.005)


@pytest.mark.parametrize(
    ("most", "nice"),
    [(0.03, 0.02), (0.3, 0.2), (1.0, 1.0), (3.7, 2.0), (7.0, 5.0), (12.0, 10.0), (99.0, 50.0)],
)
def test_the_scale_bar_takes_a_round_length(most: float, nice: float) -> None:
    assert maps.nice_km(most) == pytest.approx(nice)


@pytest.mark.parametrize(
    ("points", "kept"),
    [
        ([], []),
        ([(0, 0), (0.1, 0)], [(0, 0), (0.1, 0)]),
        ([(0, 0), (0.2, 0), (0.5, 0), (1, 0), (1.1, 0)], [(0, 0), (1, 0), (1.1, 0)]),
        ([(0, 0), (3, 4), (3, 4.5), (6, 8)], [(0, 0), (3, 4), (6, 8)]),
    ],
)
def test_fixes_closer_than_a_pixel_are_left_out_but_the_last_is_kept(
    points: list[tuple[float, float]], kept: list[tuple[float, float]]
) -> None:
    assert maps.simplified(points) == kept


@pytest.mark.parametrize(
    ("boundary", "outer_rings"),
    [
        (None, []),
        ({}, []),
        ({"type": "Point", "coordinates": [0, 0]}, []),
        (square(0, 0, 1), [[(-1, -1), (1, -1), (1, 1), (-1, 1), (-1, -1)]]),
        (
            {
                "type": "MultiPolygon",
                "coordinates": [
                    square(0, 0, 1)["coordinates"]
                    + [[[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, -0.5]]],  # a hole
                    square(5, 5, 1)["coordinates"],
                ],
            },
            [
                [(-1, -1), (1, -1), (1, 1), (-1, 1), (-1, -1)],
                [(4, 4), (6, 4), (6, 6), (4, 6), (4, 4)],
            ],
        ),
    ],
)
def test_a_boundary_is_drawn_by_the_outer_ring_of_each_polygon(
    boundary: dict[str, Any] | None, outer_rings: list[list[tuple[float, float]]]
) -> None:
    assert maps.rings(boundary) == outer_rings


def test_a_track_is_read_stretch_by_stretch_a_lone_fix_as_a_point() -> None:
    read = maps.lines(track([(0, 0), (0, 1)], [(2, 2)]))

    assert read == [[(0.0, 0.0), (0.0, 1.0)], [(2.0, 2.0)]]
    assert maps.lines(None) == []
    assert maps.lines({"type": "FeatureCollection", "features": []}) == []


def drawn(svg: str, element: str) -> int:
    return svg.count(f"<{element}")


@pytest.mark.parametrize(
    ("stretches", "places", "boundary", "lines", "dots", "markers", "outlines"),
    [
        ([[(-77.3, -5.8), (-77.3, -5.79)]], [], None, 1, 0, 0, 0),
        ([[(-77.3, -5.8), (-77.3, -5.79)], [(-77.29, -5.78)]], [], None, 1, 1, 0, 0),
        ([], [Place(1, -5.8, -77.3, "uno")], None, 0, 0, 1, 0),
        ([], [], square(-77.3, -5.8, 0.05), 0, 0, 0, 1),
        (
            [[(-77.3, -5.8), (-77.3, -5.79)], [(-77.3, -5.78), (-77.3, -5.77)]],
            [Place(1, -5.79, -77.3, "uno"), Place(2, -5.8, -77.28, "dos")],
            square(-77.3, -5.8, 0.05),
            2,
            0,
            2,
            1,
        ),
    ],
)
def test_the_map_draws_the_sector_the_track_and_the_numbered_observations(
    stretches: list[list[tuple[float, float]]],
    places: list[Place],
    boundary: dict[str, Any] | None,
    lines: int,
    dots: int,
    markers: int,
    outlines: int,
) -> None:
    svg = maps.patrol_map(title="Mapa", track=track(*stretches), places=places, boundary=boundary)

    assert svg is not None
    assert svg.startswith('<svg class="map"')
    assert drawn(svg, 'polyline class="track"') == lines
    assert drawn(svg, 'circle class="track"') == dots
    assert drawn(svg, 'circle class="observation"') == markers
    assert drawn(svg, 'path class="boundary"') == outlines
    numbers = re.findall(r'<text class="label"[^>]*>(\d+)</text>', svg)
    assert numbers == [str(place.number) for place in places]
    assert "<title>Mapa</title>" in svg
    assert 'class="scale"' in svg


def test_nothing_to_draw_is_no_map() -> None:
    assert maps.patrol_map(title="Mapa", track=None) is None
    assert maps.patrol_map(title="Mapa", track=track(), places=[], boundary=None) is None


def test_texts_in_the_map_are_escaped() -> None:
    place = Place(1, -5.8, -77.3, '<script>alert("x")</script>')

    svg = maps.patrol_map(title="Mapa & <b>", track=None, places=[place])

    assert svg is not None
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert "Mapa &amp; &lt;b&gt;" in svg


def boundary_xs(svg: str) -> list[float]:
    path = re.search(r'<path class="boundary" d="([^"]+)"', svg)
    assert path
    return [float(x) for x in re.findall(r"[ML]([-\d.]+) ", path.group(1))]


@pytest.mark.parametrize(
    ("half", "whole"),
    # The patrol spans 0.01° each way; the sector is fitted whole up to 0.03°.
    [(0.01, True), (0.014, True), (0.02, False), (0.5, False)],
)
def test_a_sector_not_much_larger_than_the_patrol_is_drawn_whole_else_cut(
    half: float, whole: bool
) -> None:
    patrol = track([(-77.3, -5.8), (-77.29, -5.79)])

    svg = maps.patrol_map(title="Mapa", track=patrol, boundary=square(-77.3, -5.8, half))

    assert svg is not None
    xs = boundary_xs(svg)
    inside = all(0 <= x <= maps.WIDTH for x in xs)
    assert inside is whole


@pytest.mark.parametrize(
    ("places", "labels"),
    [
        ([Place(1, -5.8, -77.3, "a"), Place(2, -5.8, -77.3, "b")], ["1, 2"]),
        ([Place(1, -5.8, -77.3, "a"), Place(2, -5.8001, -77.3, "b")], ["1, 2"]),
        ([Place(1, -5.8, -77.3, "a"), Place(2, -5.79, -77.3, "b")], ["1", "2"]),
        (
            [Place(1, -5.8, -77.3, "a"), Place(2, -5.79, -77.3, "b"), Place(3, -5.8, -77.3, "c")],
            ["1, 3", "2"],
        ),
    ],
)
def test_observations_at_one_spot_share_a_circle_and_keep_every_number(
    places: list[Place], labels: list[str]
) -> None:
    svg = maps.patrol_map(title="Mapa", track=None, places=places)

    assert svg is not None
    assert re.findall(r'<text class="label"[^>]*>([^<]+)</text>', svg)[: len(labels)] == labels
    assert drawn(svg, 'circle class="observation"') == len(labels)
