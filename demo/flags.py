"""A few demo patrols with something for a ranger lead to catch: between them they
raise every quality flag of ``sync/effort.py``, so the flags can be tried on the demo.

A patrol story (``bench.generator.patrol_story``) is an honest day's walk; the
functions here spoil one in a way that happens in the field — the GPS off for a
while, a ride on a motorcycle logged as a foot patrol, a track recorded with the
wrong sector chosen, an observation typed in back at the post, a ranger listed on
two patrols at once, a tablet that never recorded a track and a clock set wrong.
Each spoils only its own patrol, after the story is drawn, so the seeded stories
of every other record stay as they were.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from bench import generator
from bench.generator import Box, Record, moment
from sync.patrols.geo import haversine_km

GPS_OFF = timedelta(minutes=45)  # over effort.GAP (30 minutes)
SPURT_DEGREES = 0.02  # 2.2 km in a minute: a vehicle, not a walk
FAR_KM = 1.5  # over effort.FAR_FROM_TRACK_KM (1 km)
OVERLAP_AFTER = timedelta(hours=1)

Categories = list[dict[str, Any]]
Spoiler = Callable[[random.Random, list[Record], dict[str, Any], Box, Categories], list[Record]]


def _patrol(made: list[Record]) -> dict[str, Any]:
    fields: dict[str, Any] = made[0].fields
    return fields


def _segments(made: list[Record]) -> list[Record]:
    return [record for record in made if record.entity == "track_segment"]


def _points(made: list[Record]) -> list[dict[str, Any]]:
    return [point for segment in _segments(made) for point in segment.fields["points"]]


def _later(text: str, by: timedelta) -> str:
    return moment(datetime.fromisoformat(text) + by)


def gps_off(
    rng: random.Random,
    made: list[Record],
    closing: dict[str, Any],
    box: Box,
    categories: Categories,
) -> list[Record]:
    """``track_gap``: no fix for 45 minutes after the first segment."""
    for segment in _segments(made)[1:]:
        for point in segment.fields["points"]:
            point["t"] = _later(point["t"], GPS_OFF)
        segment.recorded_at += GPS_OFF
    closing["ended_at"] = _later(closing["ended_at"], GPS_OFF)
    return made


def motorcycle_ride(
    rng: random.Random,
    made: list[Record],
    closing: dict[str, Any],
    box: Box,
    categories: Categories,
) -> list[Record]:
    """``implausible_speed``: a foot patrol whose track jumps 2.2 km in a minute and
    back (a ride it did not declare), toward the sector's middle so it stays inside."""
    patrol = _patrol(made)
    patrol["transport"], patrol["patrol_type"] = "a pie", "ground"
    points = _segments(made)[0].fields["points"]
    spurt = points[len(points) // 2]
    toward = 1 if spurt["lat"] < (box.south + box.north) / 2 else -1
    spurt["lat"] = round(spurt["lat"] + toward * SPURT_DEGREES, 6)
    return made


def wrong_sector(
    rng: random.Random,
    made: list[Record],
    closing: dict[str, Any],
    box: Box,
    categories: Categories,
) -> list[Record]:
    """``points_outside_sector``: the whole walk lies a sector's height north of the
    sector it was recorded in (the wrong sector chosen on the tablet)."""
    north = box.north - box.south
    for point in _points(made):
        point["lat"] = round(point["lat"] + north, 6)
    for record in made:
        if record.entity == "observation":
            record.fields["lat"] = round(record.fields["lat"] + north, 6)
    return made


def typed_at_the_post(
    rng: random.Random,
    made: list[Record],
    closing: dict[str, Any],
    box: Box,
    categories: Categories,
) -> list[Record]:
    """``observation_far_from_track`` and ``rest_exceeds_patrol``: an observation placed
    where nobody walked (the box corner farthest from the track), and more rest
    declared than the patrol lasted."""
    points = _points(made)
    corners = [
        (lat, lon)
        for lat in (box.south + 0.001, box.north - 0.001)
        for lon in (box.west + 0.001, box.east - 0.001)
    ]

    def nearest_km(place: tuple[float, float]) -> float:
        return min(haversine_km(place[0], place[1], p["lat"], p["lon"]) for p in points)

    corner = max(corners, key=nearest_km)
    if nearest_km(corner) <= FAR_KM:
        raise ValueError("the track covers the whole sector: no place far from it")
    observations = [record for record in made if record.entity == "observation"]
    if not observations:  # a story may have met nothing: the ranger notes something
        observations = [_observation(rng, made, points[len(points) // 2], box, categories)]
        made.append(observations[0])
    observations[0].fields["lat"], observations[0].fields["lon"] = (
        round(corner[0], 6),
        round(corner[1], 6),
    )
    started = datetime.fromisoformat(_patrol(made)["started_at"])
    lasted = datetime.fromisoformat(closing["ended_at"]) - started
    closing["rest_minutes"] = int(lasted.total_seconds() // 60) + 60
    return made


def _observation(
    rng: random.Random, made: list[Record], point: dict[str, Any], box: Box, categories: Categories
) -> Record:
    patrol = made[0]
    where = generator.Walker(box, point["lat"], point["lon"], datetime.fromisoformat(point["t"]))
    fields = generator.observation_fields(rng, patrol.id, rng.choice(categories), where)
    return Record("observation", generator.new_id(rng), fields, patrol.scope, where.clock)


def no_gps_and_a_wrong_clock(
    rng: random.Random,
    made: list[Record],
    closing: dict[str, Any],
    box: Box,
    categories: Categories,
) -> list[Record]:
    """``no_track`` and ``ends_before_start``: the tablet recorded no track, and its
    clock gave an end half an hour before the start."""
    started = datetime.fromisoformat(_patrol(made)["started_at"])
    closing["ended_at"] = moment(started - timedelta(minutes=30))
    return [record for record in made if record.entity != "track_segment"]


def shifted(made: list[Record], closing: dict[str, Any], by: timedelta) -> None:
    """Every time of a patrol story moved by ``by``: the same walk on another day."""
    patrol = _patrol(made)
    patrol["started_at"] = _later(patrol["started_at"], by)
    closing["ended_at"] = _later(closing["ended_at"], by)
    for record in made:
        record.recorded_at += by
        if record.entity == "track_segment":
            for point in record.fields["points"]:
                point["t"] = _later(point["t"], by)
        if record.entity == "observation":
            record.fields["observed_at"] = _later(record.fields["observed_at"], by)


def alongside(
    made: list[Record], closing: dict[str, Any], other_start: datetime, other_ranger: uuid.UUID
) -> None:
    """``overlapping_patrol``: this patrol moved to an hour after another ranger's patrol
    began, and that ranger listed as a member, as if in two places at once."""
    started = datetime.fromisoformat(_patrol(made)["started_at"])
    shifted(made, closing, other_start + OVERLAP_AFTER - started)
    patrol = _patrol(made)
    if patrol["leader_id"] != str(other_ranger):
        patrol["members"].append({"user_id": str(other_ranger), "role": "guardaparque"})


SPOILERS: tuple[Spoiler | None, ...] = (
    gps_off,
    None,  # the second patrol overlaps the first (``alongside``)
    motorcycle_ride,
    wrong_sector,
    typed_at_the_post,
    no_gps_and_a_wrong_clock,
)
"""How the first patrols planned are spoiled, in the order they are planned."""

FLAGS = (
    "track_gap",
    "overlapping_patrol",
    "implausible_speed",
    "points_outside_sector",
    "observation_far_from_track",
    "rest_exceeds_patrol",
    "no_track",
    "ends_before_start",
)
"""Every flag the demo raises: each of ``sync/effort.py``'s."""
