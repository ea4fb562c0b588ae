"""Patrol effort and quality flags (sync/effort.py), against hand-computed values.

The tracks run north-south along lon -77 near the Alto Mayo, so each 0.01 degree of
latitude is 2*pi*6371.0088/360 * 0.01 = 1.1119508 km.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.patrols.effort import (
    Effort,
    ImplausibleSpeed,
    ObservationFarFromTrack,
    OverlappingPatrol,
    PointsOutsideSector,
    TrackGap,
    Transport,
    normalise_transport,
    patrol_effort,
)

STEP_KM = 1.1119508  # 0.01 degree of latitude
START = datetime(2024, 3, 5, 8, 0, tzinfo=UTC)


def point(minutes: float, lat: float, lon: float = -77.0) -> dict[str, Any]:
    return {"t": START + timedelta(minutes=minutes), "lat": lat, "lon": lon}


def effort(segments: list[list[dict[str, Any]]], **overrides: Any) -> Effort:
    values: dict[str, Any] = {
        "started_at": START,
        "ended_at": START + timedelta(hours=6),
        "rest_minutes": 45,
        "transport": "a pie",
        "patrol_type": "ground",
        "segments": segments,
        **overrides,
    }
    return patrol_effort(**values)


# Three points 0.01 degree apart, 15 minutes apart: 2.2239 km at 4.4478 km/h.
WALK = [point(0, -6.00), point(15, -6.01), point(30, -6.02)]


def test_hours_are_end_minus_start_and_field_hours_leave_out_rest() -> None:
    result = effort([WALK])
    assert result.patrol_hours == pytest.approx(6.0)
    assert result.field_hours == pytest.approx(5.25)


def test_a_walk_of_three_points_is_the_sum_of_its_two_legs() -> None:
    result = effort([WALK])
    assert result.distance_km == pytest.approx(2 * STEP_KM, abs=1e-6)
    assert result.point_count == 3
    assert result.flags == []


def test_rfc_3339_text_is_read_as_time() -> None:
    text = [
        {"t": p["t"].isoformat().replace("+00:00", "Z"), "lat": p["lat"], "lon": p["lon"]}
        for p in WALK
    ]
    result = effort([text], started_at="2024-03-05T03:00:00-05:00", ended_at="2024-03-05T14:00:00Z")
    assert result.patrol_hours == pytest.approx(6.0)
    assert result.distance_km == pytest.approx(2 * STEP_KM, abs=1e-6)


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="offset"):
        effort([WALK], started_at="2024-03-05T08:00:00")


def test_points_out_of_order_are_walked_in_time_order() -> None:
    # Out of order the legs would be 2 + 1 steps; in order they are 1 + 1.
    shuffled = [WALK[2], WALK[0], WALK[1]]
    assert effort([shuffled]).distance_km == pytest.approx(2 * STEP_KM, abs=1e-6)


def test_consecutive_segments_are_joined() -> None:
    # The device opened a new segment at minute 15; the leg 15 -> 30 was still walked.
    result = effort([WALK[:2], WALK[2:]])
    assert result.distance_km == pytest.approx(2 * STEP_KM, abs=1e-6)
    assert result.flags == []


def test_a_45_minute_gap_is_flagged_and_not_counted_as_walked() -> None:
    track = [point(0, -6.00), point(10, -6.01), point(55, -6.05), point(65, -6.06)]
    result = effort([track])
    assert result.distance_km == pytest.approx(2 * STEP_KM, abs=1e-6)
    assert result.flags == [
        TrackGap(
            from_at=START + timedelta(minutes=10), to_at=START + timedelta(minutes=55), minutes=45.0
        )
    ]


def test_a_gap_between_segments_is_a_gap_too() -> None:
    result = effort([[point(0, -6.00), point(10, -6.01)], [point(55, -6.05), point(65, -6.06)]])
    assert result.codes() == ["track_gap"]
    assert result.distance_km == pytest.approx(2 * STEP_KM, abs=1e-6)


def test_exactly_30_minutes_is_not_a_gap() -> None:
    result = effort([[point(0, -6.00), point(30, -6.01)]])
    assert result.codes() == []
    assert result.distance_km == pytest.approx(STEP_KM, abs=1e-6)


# 0.01 degree every 200 s: 1.1119508 km / (200/3600 h) = 20.0151 km/h.
FAST = [point(0, -6.00), point(200 / 60, -6.01), point(400 / 60, -6.02)]


def test_20_km_h_on_foot_is_implausible() -> None:
    result = effort([FAST], transport="A pie")
    assert result.flags == [
        ImplausibleSpeed(
            from_at=START,
            to_at=START + timedelta(seconds=400),
            km=pytest.approx(2 * STEP_KM, abs=1e-6),  # type: ignore[arg-type]
            speed_kmh=pytest.approx(20.0151, abs=1e-4),  # type: ignore[arg-type]
            limit_kmh=15.0,
            transport=Transport.foot,
        )
    ]


def test_20_km_h_on_a_boat_is_fine() -> None:
    assert effort([FAST], transport="bote").flags == []


def test_an_unknown_transport_on_a_water_patrol_has_the_boat_limit() -> None:
    assert effort([FAST], transport="???", patrol_type="water").flags == []
    assert effort([FAST], transport=None, patrol_type="ground").codes() == ["implausible_speed"]


def test_gps_jitter_within_a_minute_is_not_a_sprint() -> None:
    # 0.001 degree (111 m) in 5 s reads as 80 km/h, but the minute around it walks 1 step.
    jitter = [point(0, -6.00), point(5 / 60, -6.001), point(1, -6.00), point(15, -6.01)]
    assert effort([jitter]).codes() == []


@pytest.mark.parametrize(
    ("written", "patrol_type", "expected"),
    [
        pytest.param("a pie", "ground", Transport.foot, id="a-pie"),
        pytest.param("On foot", "ground", Transport.foot, id="on-foot"),
        pytest.param("Caminata", "ground", Transport.foot, id="caminata"),
        pytest.param("bote", "water", Transport.boat, id="bote"),
        pytest.param("Boat", "ground", Transport.boat, id="boat-on-a-ground-patrol"),
        pytest.param("peque-peque", "water", Transport.boat, id="peque-peque"),
        pytest.param("moto", "ground", Transport.motorcycle, id="moto"),
        pytest.param("Camioneta 4x4", "ground", Transport.vehicle, id="camioneta"),
        pytest.param("camión", "ground", Transport.vehicle, id="accents-stripped"),
        pytest.param("a caballo", "ground", Transport.horse, id="caballo"),
        pytest.param("a pie y bote", "ground", Transport.boat, id="fastest-named-wins"),
        pytest.param("remoto", "ground", Transport.foot, id="whole-words-only"),
        pytest.param(None, "ground", Transport.foot, id="none-on-the-ground"),
        pytest.param(None, "water", Transport.boat, id="none-on-the-water"),
        pytest.param("helicóptero", "water", Transport.boat, id="unknown-on-the-water"),
    ],
)
def test_transport_words_are_normalised(
    written: str | None, patrol_type: str, expected: Transport
) -> None:
    assert normalise_transport(written, patrol_type) is expected


SECTOR = {
    "type": "Polygon",
    "coordinates": [[[-77.1, -6.1], [-76.9, -6.1], [-76.9, -5.9], [-77.1, -5.9], [-77.1, -6.1]]],
}


def test_points_outside_the_sector_are_counted_and_the_first_shown() -> None:
    # The sector ends at lat -6.1; the last 7 of 12 points (-6.15 ... -6.21) lie south of it.
    track = [point(10 * i, -6.00 - 0.01 * i if i < 5 else -6.10 - 0.01 * i) for i in range(12)]
    result = effort([track], boundary=SECTOR, transport="camioneta")
    flag = result.flags[-1]
    assert isinstance(flag, PointsOutsideSector)
    assert flag.count == 7
    assert [fix.lat for fix in flag.first] == pytest.approx([-6.15, -6.16, -6.17, -6.18, -6.19])


def test_without_a_boundary_no_point_is_outside() -> None:
    track = [point(0, -8.0), point(10, -8.01)]
    assert effort([track], transport="camioneta").codes() == []


def test_an_observation_more_than_a_km_off_the_track_is_flagged() -> None:
    # East of the middle of WALK at lat -6.01: 0.01 degree of longitude there is
    # 1.1119508 * cos(6.01 deg) = 1.105839 km; 0.005 degree is half that.
    observations = [
        {"id": "far", "lat": -6.01, "lon": -76.99, "observed_at": START},
        {"id": "near", "lat": -6.01, "lon": -76.995, "observed_at": START},
    ]
    result = effort([WALK], observations=observations)
    assert result.flags == [
        ObservationFarFromTrack(observation_id="far", km=pytest.approx(1.105839, abs=1e-5))  # type: ignore[arg-type]
    ]


def test_observations_are_not_judged_without_a_track() -> None:
    observations = [{"id": "x", "lat": 0.0, "lon": 0.0, "observed_at": START}]
    assert effort([], observations=observations).codes() == ["no_track"]


def test_an_end_before_the_start_is_flagged_and_has_no_hours() -> None:
    result = effort([WALK], ended_at=START - timedelta(hours=1))
    assert result.codes() == ["ends_before_start"]
    assert result.patrol_hours is None
    assert result.field_hours is None


def test_a_missing_end_has_no_hours_and_no_flag() -> None:
    result = effort([WALK], ended_at=None)
    assert (result.patrol_hours, result.field_hours, result.codes()) == (None, None, [])


def test_more_rest_than_patrol_leaves_no_field_hours() -> None:
    result = effort([WALK], ended_at=START + timedelta(minutes=30), rest_minutes=45)
    assert result.patrol_hours == pytest.approx(0.5)
    assert result.field_hours == 0.0
    assert result.codes() == ["rest_exceeds_patrol"]


def test_overlapping_patrols_of_the_ranger_are_flagged_but_touching_ones_are_not() -> None:
    # This patrol: 08:00-14:00.
    others = [
        (START + timedelta(hours=5), START + timedelta(hours=9)),  # 13:00-17:00: 60 min shared
        (START + timedelta(hours=6), START + timedelta(hours=8)),  # 14:00-16:00: touches
        (START - timedelta(hours=3), None),  # no end: not judged
    ]
    result = effort([WALK], other_patrols=others)
    assert result.flags == [
        OverlappingPatrol(
            patrol_id=None,
            started_at=START + timedelta(hours=5),
            ended_at=START + timedelta(hours=9),
            overlap_minutes=60.0,
        )
    ]


@pytest.mark.parametrize(
    "segments",
    [
        pytest.param([], id="no-segments"),
        pytest.param([[]], id="an-empty-segment"),
    ],
)
def test_no_track_is_flagged_with_zero_distance(segments: list[list[dict[str, Any]]]) -> None:
    result = effort(segments)
    assert (result.distance_km, result.point_count, result.codes()) == (0.0, 0, ["no_track"])


def test_one_point_walks_nowhere() -> None:
    result = effort([[point(0, -6.0)]])
    assert (result.distance_km, result.point_count, result.codes()) == (0.0, 1, [])


def test_duplicate_timestamps_and_places_divide_by_nothing() -> None:
    same = [point(0, -6.0), point(0, -6.0), point(0, -6.01), point(0, -6.01)]
    result = effort([same])
    assert result.distance_km == pytest.approx(STEP_KM, abs=1e-6)
    assert result.point_count == 4


def test_a_zero_length_segment_adds_nothing() -> None:
    assert effort([WALK, [point(40, -6.02), point(41, -6.02)]]).distance_km == pytest.approx(
        2 * STEP_KM, abs=1e-6
    )


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=30),  # minutes since the last point
            st.floats(min_value=-0.02, max_value=0.02),
            st.floats(min_value=-0.02, max_value=0.02),
        ),
        min_size=2,
        max_size=30,
    ),
    st.data(),
)
def test_the_distance_of_a_track_is_the_sum_of_its_halves(
    steps: list[tuple[int, float, float]], data: st.DataObject
) -> None:
    minutes, track = 0, []
    for step, dlat, dlon in steps:
        minutes += step
        track.append(point(minutes, -6.0 + dlat, -77.0 + dlon))
    split = data.draw(st.integers(min_value=0, max_value=len(track) - 1))
    whole = effort([track]).distance_km
    halves = effort([track[: split + 1]]).distance_km + effort([track[split:]]).distance_km
    assert whole == pytest.approx(halves, abs=1e-9)
    assert whole >= 0


def test_segments_overlapping_in_time_are_measured_apart_not_zig_zagged() -> None:
    # A second tablet 0.01 degree east records from minute 5 to 20: its own 1 step.
    other_tablet = [point(5, -6.00, -76.99), point(20, -6.01, -76.99)]
    result = effort([WALK, other_tablet])
    assert result.distance_km == pytest.approx(3 * STEP_KM, abs=1e-6)
    assert result.point_count == 5
