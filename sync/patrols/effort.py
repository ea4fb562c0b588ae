"""Patrol effort and quality flags: what a ranger lead weighs before approving a patrol.

Pure: the caller loads the patrol, its track segments, its observations, the sector
boundary and the ranger's other patrols, and hands them over as plain values; this
module computes figures and flags and never touches a database.

How the track is read — the decisions a reviewer should know:

- Points are ordered by time within each segment (devices may send them out of
  order). Segments are ordered by their first point and **joined** into one track
  when the next starts at or after the previous ends: a device that opens a new
  segment (a GPS restart, an upload chunk) while the ranger keeps walking still
  walked the stretch in between.
- A stretch between consecutive points longer than ``GAP`` (30 minutes) is a
  ``track_gap``: it is flagged, and its straight line is **not** counted as
  walked distance nor used to judge speed — nobody knows the way taken.
- Segments that overlap in time (two tablets recording at once) are not joined
  — interleaving them would zig-zag between two paths; each is measured on its
  own, so the distance of two members walking together counts twice.
- Speed is judged over windows of at least ``SPEED_WINDOW`` (60 s) so GPS jitter
  between fixes a second apart does not read as a sprint; consecutive windows
  over the limit are reported as one stretch.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from itertools import pairwise
from typing import Any, Literal

from sync.patrols.geo import distance_to_polyline_km, haversine_km, point_in_boundary

GAP = timedelta(minutes=30)
"""A longer silence between two fixes is a hole in the track, not a walk."""

SPEED_WINDOW = timedelta(seconds=60)
"""The shortest span over which a speed is judged: shorter spans are mostly GPS noise."""

FAR_FROM_TRACK_KM = 1.0
"""An observation farther than this from the track was probably not made on the patrol."""

OUTSIDE_SAMPLE = 5
"""How many points outside the sector to show; the count tells the rest."""

Moment = datetime | str
"""An aware datetime, or its RFC 3339 text as it arrives in JSON."""


# ---------------------------------------------------------------- transport


class Transport(StrEnum):
    foot = "foot"
    horse = "horse"
    bicycle = "bicycle"
    boat = "boat"
    motorcycle = "motorcycle"
    vehicle = "vehicle"


SPEED_LIMIT_KMH: Mapping[Transport, float] = {
    # Brisk walking is 5-6 km/h, jogging on a trail ~10; faster than 15 is not on foot.
    Transport.foot: 15.0,
    # A horse or mule kept up for a patrol trots at 10-15 km/h; short canters allowed.
    Transport.horse: 25.0,
    Transport.bicycle: 40.0,
    # A peque-peque makes ~10 km/h, a deslizador (speedboat) 40-60 on the river.
    Transport.boat: 60.0,
    # Forest tracks and the Fernando Belaúnde highway; faster than this is a data error.
    Transport.motorcycle: 100.0,
    Transport.vehicle: 120.0,
}

# Words as rangers write them (Spanish and English), accents and case removed.
_TRANSPORT_WORDS: Mapping[Transport, tuple[str, ...]] = {
    Transport.foot: ("a pie", "pie", "foot", "on foot", "walk", "walking", "caminando",
                     "caminata", "hike", "hiking", "trekking"),
    Transport.horse: ("caballo", "a caballo", "horse", "horseback", "mula", "mule", "acemila"),
    Transport.bicycle: ("bicicleta", "bici", "bicycle", "bike", "cycling"),
    Transport.boat: ("bote", "boat", "canoa", "canoe", "lancha", "peque peque", "pequepeque",
                     "deslizador", "kayak", "balsa", "raft", "chalupa", "motorboat"),
    Transport.motorcycle: ("moto", "motocicleta", "motorcycle", "motorbike", "mototaxi",
                           "motokar", "cuatrimoto", "quad"),
    Transport.vehicle: ("camioneta", "auto", "carro", "coche", "camion", "vehiculo",
                        "vehicle", "car", "truck", "pickup", "pick up", "4x4", "jeep", "van"),
}  # fmt: skip


def _plain(text: str) -> str:
    """Lower case, accents stripped, punctuation as spaces: ``"Camión/4x4"`` → ``"camion 4x4"``."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^a-z0-9]+", " ", letters).split())


def normalise_transport(transport: str | None, patrol_type: str) -> Transport:
    """The transport class of a patrol's free-text ``transport``.

    Words are matched whole (``"moto"`` in ``"en moto"``, not in ``"remoto"``). When
    several are named (``"a pie y bote"``) the fastest wins: legs in either mode
    happened, and flagging the boat legs as a sprinting ranger would be a false alarm.
    Nothing recognised falls back on the patrol type: a water patrol is on a boat,
    a ground patrol on foot.
    """
    words = f" {_plain(transport or '')} "
    named = [
        mode
        for mode, spellings in _TRANSPORT_WORDS.items()
        if any(f" {spelling} " in words for spelling in spellings)
    ]
    if named:
        return max(named, key=lambda mode: SPEED_LIMIT_KMH[mode])
    return Transport.boat if str(patrol_type) == "water" else Transport.foot


# ---------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Fix:
    """One track point, parsed: a time in UTC and a position."""

    t: datetime
    lat: float
    lon: float


@dataclass(frozen=True)
class ObservationPlace:
    """Where and when an observation was made, as far as effort cares."""

    id: Any
    lat: float
    lon: float
    observed_at: datetime | None = None


@dataclass(frozen=True)
class PatrolInterval:
    """Another patrol of the same ranger, to check for overlap."""

    started_at: Moment | None
    ended_at: Moment | None
    patrol_id: Any = None


def parse_moment(value: Moment) -> datetime:
    """An aware datetime in UTC; text is RFC 3339 (``Z`` allowed).

    A naive time is refused: guessing its zone would shift a patrol by hours.
    """
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        raise ValueError("a timestamp needs its offset (RFC 3339)")
    return moment.astimezone(UTC)


def _fix(point: Mapping[str, Any] | Fix) -> Fix:
    if isinstance(point, Fix):
        return point
    return Fix(t=parse_moment(point["t"]), lat=float(point["lat"]), lon=float(point["lon"]))


# ---------------------------------------------------------------- flags


@dataclass(frozen=True, kw_only=True)
class NoTrack:
    """The patrol has no track point: distance and place cannot be checked."""

    code: Literal["no_track"] = "no_track"


@dataclass(frozen=True, kw_only=True)
class TrackGap:
    """No fix for more than 30 minutes: the GPS was off, or the tablet was."""

    from_at: datetime
    to_at: datetime
    minutes: float
    code: Literal["track_gap"] = "track_gap"


@dataclass(frozen=True, kw_only=True)
class ImplausibleSpeed:
    """A stretch covered faster than the transport allows (e.g. a car on a foot patrol)."""

    from_at: datetime
    to_at: datetime
    km: float
    speed_kmh: float
    limit_kmh: float
    transport: Transport
    code: Literal["implausible_speed"] = "implausible_speed"


@dataclass(frozen=True, kw_only=True)
class PointsOutsideSector:
    """Track points outside the sector boundary: ``count`` of them, the first few shown."""

    count: int
    first: tuple[Fix, ...]
    code: Literal["points_outside_sector"] = "points_outside_sector"


@dataclass(frozen=True, kw_only=True)
class ObservationFarFromTrack:
    """An observation more than 1 km from the nearest point of the track."""

    observation_id: Any
    km: float
    code: Literal["observation_far_from_track"] = "observation_far_from_track"


@dataclass(frozen=True, kw_only=True)
class EndsBeforeStart:
    """``ended_at`` precedes ``started_at``: the hours cannot be counted."""

    started_at: datetime
    ended_at: datetime
    code: Literal["ends_before_start"] = "ends_before_start"


@dataclass(frozen=True, kw_only=True)
class RestExceedsPatrol:
    """More rest declared than the patrol lasted; field hours are counted as zero."""

    rest_minutes: int
    patrol_minutes: float
    code: Literal["rest_exceeds_patrol"] = "rest_exceeds_patrol"


@dataclass(frozen=True, kw_only=True)
class OverlappingPatrol:
    """Another patrol of the same ranger overlaps this one in time."""

    patrol_id: Any
    started_at: datetime
    ended_at: datetime
    overlap_minutes: float
    code: Literal["overlapping_patrol"] = "overlapping_patrol"


Flag = (
    NoTrack
    | TrackGap
    | ImplausibleSpeed
    | PointsOutsideSector
    | ObservationFarFromTrack
    | EndsBeforeStart
    | RestExceedsPatrol
    | OverlappingPatrol
)


@dataclass(frozen=True)
class Effort:
    """The derived figures of one patrol, and what looks wrong with it.

    ``patrol_hours`` and ``field_hours`` are ``None`` when they cannot be known
    (no start, no end, or an end before the start) — a zero would be counted in
    the effort reports as a real, empty patrol.
    """

    patrol_hours: float | None
    field_hours: float | None
    distance_km: float
    point_count: int
    transport: Transport
    flags: list[Flag] = field(default_factory=list)

    def codes(self) -> list[str]:
        """The flag codes in order, for a queue column or a test."""
        return [flag.code for flag in self.flags]


# ---------------------------------------------------------------- the track


@dataclass(frozen=True)
class Track:
    """A patrol's track cut into runs: stretches with no gap, whose legs were walked."""

    runs: list[list[Fix]]
    gaps: list[TrackGap]

    @property
    def point_count(self) -> int:
        return sum(len(run) for run in self.runs)


def build_track(segments: Iterable[Iterable[Mapping[str, Any] | Fix]]) -> Track:
    """Order, join and cut the segments as the module docstring describes."""
    ordered = sorted(
        (sorted((_fix(point) for point in segment), key=lambda fix: fix.t) for segment in segments),
        key=lambda fixes: fixes[0].t if fixes else datetime.max.replace(tzinfo=UTC),
    )
    runs: list[list[Fix]] = []
    gaps: list[TrackGap] = []
    for fixes in ordered:
        if not fixes:
            continue
        previous = runs[-1][-1] if runs else None
        # Join onto the last run unless the segments overlap in time.
        current: list[Fix] = runs[-1] if previous and fixes[0].t >= previous.t else []
        if not current:
            runs.append(current)
        for fix in fixes:
            if current and fix.t - current[-1].t > GAP:
                gaps.append(_gap(current[-1].t, fix.t))
                current = []
                runs.append(current)
            current.append(fix)
    gaps.sort(key=lambda gap: gap.from_at)
    return Track(runs=runs, gaps=gaps)


def _gap(from_at: datetime, to_at: datetime) -> TrackGap:
    return TrackGap(from_at=from_at, to_at=to_at, minutes=(to_at - from_at).total_seconds() / 60)


def run_distance_km(run: Sequence[Fix]) -> float:
    """The length of one run: the sum of great-circle legs between consecutive fixes."""
    return sum(haversine_km(a.lat, a.lon, b.lat, b.lon) for a, b in pairwise(run))


def _speed_windows(run: Sequence[Fix]) -> list[tuple[datetime, datetime, float]]:
    """Cut a run into windows of at least ``SPEED_WINDOW``: ``(from, to, km)``.

    A tail shorter than the window is too short to judge and is left out.
    """
    windows: list[tuple[datetime, datetime, float]] = []
    if not run:
        return windows
    start = run[0]
    km = 0.0
    for a, b in pairwise(run):
        km += haversine_km(a.lat, a.lon, b.lat, b.lon)
        if b.t - start.t >= SPEED_WINDOW:
            windows.append((start.t, b.t, km))
            start, km = b, 0.0
    return windows


def speeding(track: Track, transport: Transport) -> list[ImplausibleSpeed]:
    """Stretches of the track faster than the transport's limit, adjacent windows merged."""
    limit = SPEED_LIMIT_KMH[transport]
    found: list[ImplausibleSpeed] = []
    for run in track.runs:
        stretches: list[list[tuple[datetime, datetime, float]]] = []
        previous_fast = False
        for window in _speed_windows(run):
            from_at, to_at, km = window
            # Windows are at least SPEED_WINDOW long, so the hours are never zero.
            fast = km / ((to_at - from_at).total_seconds() / 3600) > limit
            if fast and previous_fast:
                stretches[-1].append(window)
            elif fast:
                stretches.append([window])
            previous_fast = fast
        for stretch in stretches:
            from_at, to_at = stretch[0][0], stretch[-1][1]
            km = sum(window[2] for window in stretch)
            speed = km / ((to_at - from_at).total_seconds() / 3600)
            found.append(
                ImplausibleSpeed(
                    from_at=from_at,
                    to_at=to_at,
                    km=km,
                    speed_kmh=speed,
                    limit_kmh=limit,
                    transport=transport,
                )
            )
    return found


# ---------------------------------------------------------------- the patrol


def _observation(observation: Mapping[str, Any] | ObservationPlace) -> ObservationPlace | None:
    """The observation's place, or ``None`` when it has none to compare."""
    if isinstance(observation, ObservationPlace):
        return observation
    lat, lon = observation.get("lat"), observation.get("lon")
    if lat is None or lon is None:
        return None
    observed_at = observation.get("observed_at")
    return ObservationPlace(
        id=observation.get("id"),
        lat=float(lat),
        lon=float(lon),
        observed_at=parse_moment(observed_at) if observed_at is not None else None,
    )


def _interval(other: PatrolInterval | tuple[Moment | None, Moment | None]) -> PatrolInterval:
    if isinstance(other, PatrolInterval):
        return other
    return PatrolInterval(started_at=other[0], ended_at=other[1])


def overlaps(
    started_at: datetime, ended_at: datetime, others: Iterable[PatrolInterval]
) -> list[OverlappingPatrol]:
    """Other patrols sharing time with ``[started_at, ended_at)``.

    Intervals are half-open, so a patrol that starts as the last one ends is not an
    overlap. Another patrol without both ends, or ending before it starts, is left
    out: it has its own ``ends_before_start`` flag, and guessing its end would
    invent overlaps.
    """
    found: list[OverlappingPatrol] = []
    for other in others:
        if other.started_at is None or other.ended_at is None:
            continue
        other_start, other_end = parse_moment(other.started_at), parse_moment(other.ended_at)
        shared = min(ended_at, other_end) - max(started_at, other_start)
        if other_end > other_start and shared > timedelta(0):
            found.append(
                OverlappingPatrol(
                    patrol_id=other.patrol_id,
                    started_at=other_start,
                    ended_at=other_end,
                    overlap_minutes=shared.total_seconds() / 60,
                )
            )
    return found


def patrol_effort(
    *,
    started_at: Moment | None,
    ended_at: Moment | None,
    rest_minutes: int | None,
    transport: str | None,
    patrol_type: str,
    segments: Iterable[Iterable[Mapping[str, Any] | Fix]],
    observations: Iterable[Mapping[str, Any] | ObservationPlace] = (),
    boundary: Mapping[str, Any] | None = None,
    other_patrols: Iterable[PatrolInterval | tuple[Moment | None, Moment | None]] = (),
) -> Effort:
    """The effort figures and quality flags of one patrol, as the patrol detail shows them.

    - patrol hours = ``ended_at - started_at``; field hours = patrol hours - rest,
      never below zero (``rest_exceeds_patrol`` says when rest was cut);
    - distance = the walked length of the track (module docstring: joins and gaps);
    - point count = every track point received, duplicates included;
    - flags in a stable order: ``ends_before_start``, ``rest_exceeds_patrol``,
      ``overlapping_patrol``, ``no_track``, ``track_gap``, ``implausible_speed``,
      ``points_outside_sector``, ``observation_far_from_track``.
    """
    flags: list[Flag] = []
    start = parse_moment(started_at) if started_at is not None else None
    end = parse_moment(ended_at) if ended_at is not None else None

    patrol_hours: float | None = None
    field_hours: float | None = None
    if start is not None and end is not None:
        if end < start:
            flags.append(EndsBeforeStart(started_at=start, ended_at=end))
        else:
            patrol_minutes = (end - start).total_seconds() / 60
            rest = rest_minutes or 0
            patrol_hours = patrol_minutes / 60
            field_hours = max(0.0, patrol_minutes - rest) / 60
            if rest > patrol_minutes:
                flags.append(RestExceedsPatrol(rest_minutes=rest, patrol_minutes=patrol_minutes))
            flags.extend(overlaps(start, end, (_interval(other) for other in other_patrols)))

    mode = normalise_transport(transport, patrol_type)
    track = build_track(segments)
    fixes = [fix for run in track.runs for fix in run]
    if not fixes:
        flags.append(NoTrack())
    flags.extend(track.gaps)
    flags.extend(speeding(track, mode))

    if boundary is not None and fixes:
        outside = [
            fix for fix in fixes if not point_in_boundary(boundary, lat=fix.lat, lon=fix.lon)
        ]
        if outside:
            flags.append(
                PointsOutsideSector(count=len(outside), first=tuple(outside[:OUTSIDE_SAMPLE]))
            )

    if fixes:
        polylines = [[(fix.lat, fix.lon) for fix in run] for run in track.runs if run]
        for observation in filter(None, map(_observation, observations)):
            km = min(
                distance_to_polyline_km(observation.lat, observation.lon, polyline)
                for polyline in polylines
            )
            if km > FAR_FROM_TRACK_KM:
                flags.append(ObservationFarFromTrack(observation_id=observation.id, km=km))

    return Effort(
        patrol_hours=patrol_hours,
        field_hours=field_hours,
        distance_km=math.fsum(run_distance_km(run) for run in track.runs),
        point_count=track.point_count,
        transport=mode,
        flags=flags,
    )
