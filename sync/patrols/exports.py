"""Patrol exports, written as they are read: a CSV for spreadsheets, GeoJSON for GIS,
GPX for GPS tools.

Each export is a generator of text pieces that opens its own read-only session, so it
can run after the request's session is gone (an HTTP response streams after its route
returns), and closes it when the export ends or is abandoned. Patrols are read
``CHUNK_SIZE`` at a time in a stable order (``started_at``, then ``id``; patrols not yet
started last), each chunk with one query apiece for its observations, its track
segments, its people and its sectors' codes; a piece of text is handed on per chunk,
so memory holds one chunk, never the whole file.

Decisions a reader of an export should know:

- The filters select *patrols*, as ``GET /patrols`` does: ``category=threat`` exports
  the patrols with a threat observation, with all their observations.
- CSV: one row per observation, its patrol's columns repeated; a patrol with no
  observation still has one row, so its effort is counted. Each attribute declared by
  the categories in the export is a column ``attr_<key>`` (categories by key, each
  one's attributes as declared); attributes an observation holds that its category no
  longer declares go, as JSON, in ``other_attributes``. UTF-8 with a byte order mark
  (Excel reads Spanish right only then); times in RFC 3339 in the service's zone; a
  text cell that a spreadsheet would read as a formula (``= + - @``, tab, CR first)
  gets a leading ``'``; numbers are left as they are.
- GeoJSON: positions ``[lon, lat]``; a patrol's track is one LineString per stretch
  without a gap (``effort.build_track``), a lone fix a Point; a patrol with no track
  has no track feature. Times in RFC 3339 in the service's zone.
- GPX 1.1: one ``trk`` per patrol, one ``trkseg`` per stretch without a gap, times in
  UTC as GPS tools expect.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from xml.sax.saxutils import escape

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from schemas import ObservationCategory, Patrol, Sector
from schemas.patrols import UserRef
from schemas.records import Observation
from sync.patrols import effort, evidence
from sync.patrols import reads as patrols
from sync.platform.csv_files import BOM, CSV_MEDIA_TYPE, Writer, local_time
from sync.platform.database import json_text, transaction

CHUNK_SIZE = 200
"""Patrols read, and written out, at a time."""

GPX_POINTS_PER_PIECE = 1000
"""Track points per piece of a GPX: a long patrol still streams."""

GEOJSON_MEDIA_TYPE = "application/geo+json"
GPX_MEDIA_TYPE = "application/gpx+xml"

PATROL_COLUMNS = (
    "patrol_id",
    "sector_code",
    "status",
    "patrol_type",
    "objective",
    "leader_username",
    "leader_full_name",
    "members",
    "transport",
    "started_at",
    "ended_at",
    "rest_minutes",
    "patrol_hours",
    "field_hours",
    "distance_km",
    "point_count",
    "comment",
    "attachment_urls",
)
OBSERVATION_COLUMNS = (
    "observation_id",
    "category_key",
    "category_name_es",
    "observed_at",
    "lat",
    "lon",
    "accuracy_m",
    "gps_fix",
    "action_taken",
    "notes",
    "observation_attachment_urls",
)
ATTRIBUTE_PREFIX = "attr_"
OTHER_ATTRIBUTES = "other_attributes"


# ---------------------------------------------------------------- reading


@dataclass(frozen=True)
class Category:
    key: str
    name_es: str
    attribute_keys: tuple[str, ...]


@dataclass(frozen=True)
class Chunk:
    """Some patrols and what the exports write of them, read with one query each."""

    patrols: list[Patrol]
    observations: dict[uuid.UUID, list[Observation]]
    segments: dict[uuid.UUID, list[Any]]
    people: dict[uuid.UUID, UserRef]
    sector_codes: dict[uuid.UUID, str]


def categories_in(session: Session, matching: SelectOfScalar[Patrol]) -> dict[str, Category]:
    """The categories of the live observations of the patrols ``matching`` selects."""
    patrol_ids = sa.select(matching.subquery().c.id)
    keys = sa.select(col(Observation.category_key)).where(
        col(Observation.patrol_id).in_(patrol_ids), col(Observation.deleted_at).is_(None)
    )
    rows = session.execute(
        select(ObservationCategory.key, ObservationCategory.name_es, ObservationCategory.attributes)
        .where(col(ObservationCategory.key).in_(keys))
        .order_by(col(ObservationCategory.key))
    )
    return {
        key: Category(key, name_es, tuple(str(attribute["key"]) for attribute in attributes or []))
        for key, name_es, attributes in rows
    }


def attribute_keys(categories: Mapping[str, Category]) -> list[str]:
    """Every declared attribute key once: categories by key, each one's as declared."""
    ordered = sorted(categories.values(), key=lambda category: category.key)
    return list(dict.fromkeys(key for category in ordered for key in category.attribute_keys))


def _after(started_at: datetime | None, patrol_id: uuid.UUID) -> ColumnElement[bool]:
    """The patrols after (``started_at``, ``patrol_id``) in export order (unstarted last)."""
    if started_at is None:
        return sa.and_(col(Patrol.started_at).is_(None), col(Patrol.id) > patrol_id)
    return sa.or_(
        col(Patrol.started_at) > started_at,
        sa.and_(col(Patrol.started_at) == started_at, col(Patrol.id) > patrol_id),
        col(Patrol.started_at).is_(None),
    )


def patrol_chunks(session: Session, matching: SelectOfScalar[Patrol]) -> Iterator[list[Patrol]]:
    """The patrols ``matching`` selects, ``CHUNK_SIZE`` at a time.

    Each chunk starts after the previous one's last key rather than at an offset:
    every chunk costs the same, and a patrol received meanwhile cannot make another
    one repeated or skipped.
    """
    order = (col(Patrol.started_at).asc().nulls_last(), col(Patrol.id).asc())
    size = CHUNK_SIZE
    last: tuple[datetime | None, uuid.UUID] | None = None
    while True:
        page = matching if last is None else matching.where(_after(*last))
        found = list(session.exec(page.order_by(*order).limit(size)))
        if not found:
            return
        yield found
        if len(found) < size:
            return
        last = (found[-1].started_at, found[-1].id)


def read_chunks(session: Session, matching: SelectOfScalar[Patrol]) -> Iterator[Chunk]:
    """Chunks of patrols with their observations, segments, people and sector codes."""
    for found in patrol_chunks(session, matching):
        ids = [patrol.id for patrol in found]
        observations: dict[uuid.UUID, list[Observation]] = {}
        for observation in session.scalars(
            select(Observation)
            .where(col(Observation.patrol_id).in_(ids), col(Observation.deleted_at).is_(None))
            .order_by(col(Observation.observed_at), col(Observation.id))
        ):
            if observation.patrol_id is not None:
                observations.setdefault(observation.patrol_id, []).append(observation)
        people_ids = {patrol.leader_id for patrol in found if patrol.leader_id}
        people_ids |= {
            user_id for patrol in found for user_id in _member_ids(patrol) if user_id is not None
        }
        sector_codes = dict(
            session.execute(
                select(Sector.id, Sector.code).where(
                    col(Sector.id).in_({patrol.sector_id for patrol in found})
                )
            ).all()
        )
        yield Chunk(
            patrols=found,
            observations=observations,
            segments=patrols.segments_of(session, ids),
            people=patrols.users(session, people_ids),
            sector_codes=sector_codes,
        )
        # What was read is written out: keep the session from holding every chunk.
        session.expunge_all()


def _member_ids(patrol: Patrol) -> list[uuid.UUID | None]:
    return [
        uuid.UUID(str(member["user_id"])) if member.get("user_id") else None
        for member in patrol.members or []
    ]


# ---------------------------------------------------------------- values


def utc_time(moment: datetime) -> str:
    """RFC 3339 in UTC with ``Z``: ``2026-03-02T13:00:00Z``."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def distance_km(track: effort.Track) -> float:
    """The walked length of a track, as the patrol detail counts it."""
    return math.fsum(effort.run_distance_km(run) for run in track.runs)


def _member_names(patrol: Patrol, people: Mapping[uuid.UUID, UserRef]) -> str:
    names = []
    for member, user_id in zip(patrol.members or [], _member_ids(patrol), strict=True):
        person = people.get(user_id) if user_id else None
        name = member.get("name") or (person.full_name if person else None) or user_id
        if name:
            names.append(str(name))
    return "; ".join(names)


# ---------------------------------------------------------------- CSV


def csv_header(keys: Sequence[str]) -> list[str]:
    return [
        *PATROL_COLUMNS,
        *OBSERVATION_COLUMNS,
        *(f"{ATTRIBUTE_PREFIX}{key}" for key in keys),
        OTHER_ATTRIBUTES,
    ]


def _cell(urls: list[str]) -> str | None:
    """Several URLs in one cell, a space between each (no URL holds one)."""
    return " ".join(urls) or None


def patrol_cells(patrol: Patrol, chunk: Chunk, *, base_url: str) -> list[Any]:
    patrol_hours, field_hours = patrols.hours(patrol)
    track = effort.build_track(chunk.segments.get(patrol.id, []))
    leader = chunk.people.get(patrol.leader_id) if patrol.leader_id else None
    return [
        patrol.id,
        chunk.sector_codes.get(patrol.sector_id),
        patrol.status,
        patrol.patrol_type,
        patrol.objective,
        leader.username if leader else None,
        leader.full_name if leader else None,
        _member_names(patrol, chunk.people),
        patrol.transport,
        patrol.started_at,
        patrol.ended_at,
        patrol.rest_minutes,
        round(patrol_hours, 4) if patrol_hours is not None else None,
        round(field_hours, 4) if field_hours is not None else None,
        round(distance_km(track), 3),
        track.point_count,
        patrol.comment,
        _cell(evidence.urls(patrol.attachments or [], base=base_url)),
    ]


def _gps(observation: Observation) -> tuple[Any, Any]:
    """An observation's ``gps`` as two flat columns, ``accuracy_m`` and ``gps_fix``:
    spreadsheets and GIS tools read columns, not objects."""
    gps = observation.gps or {}
    return gps.get("accuracy_m"), gps.get("fix")


def observation_cells(
    observation: Observation,
    categories: Mapping[str, Category],
    keys: Sequence[str],
    *,
    base_url: str,
) -> list[Any]:
    category = categories.get(observation.category_key)
    attributes = observation.attributes or {}
    declared = set(keys)
    others = {key: value for key, value in attributes.items() if key not in declared}
    return [
        observation.id,
        observation.category_key,
        category.name_es if category else None,
        observation.observed_at,
        observation.lat,
        observation.lon,
        *_gps(observation),
        observation.action_taken,
        observation.notes,
        _cell(evidence.urls(observation.attachments or [], base=base_url)),
        *(attributes.get(key) for key in keys),
        others or None,
    ]


def patrols_csv(
    engine: Engine, matching: SelectOfScalar[Patrol], *, zone: tzinfo, base_url: str
) -> Iterator[str]:
    """The CSV export of the patrols ``matching`` selects, a chunk of rows at a time;
    files as URLs under ``base_url``, the server's."""
    with transaction(engine, write=False) as session:
        categories = categories_in(session, matching)
        keys = attribute_keys(categories)
        writer = Writer(zone)
        row, drained = writer.row, writer.drained
        row(csv_header(keys))
        yield BOM + drained()
        empty = [None] * (len(OBSERVATION_COLUMNS) + len(keys) + 1)
        for chunk in read_chunks(session, matching):
            for patrol in chunk.patrols:
                head = patrol_cells(patrol, chunk, base_url=base_url)
                observations = chunk.observations.get(patrol.id, [])
                if not observations:
                    row([*head, *empty])
                for observation in observations:
                    cells = observation_cells(observation, categories, keys, base_url=base_url)
                    row([*head, *cells])
            yield drained()


# ---------------------------------------------------------------- GeoJSON


def track_features(
    patrol: Patrol, track: effort.Track, sector_code: str | None, zone: tzinfo, *, base_url: str
) -> Iterator[dict[str, Any]]:
    """One feature per stretch of the track without a gap: a LineString, or a Point."""
    for number, run in enumerate((run for run in track.runs if run), start=1):
        yield {
            "type": "Feature",
            "geometry": patrols.run_geometry(run),
            "properties": {
                "kind": "track",
                "patrol_id": str(patrol.id),
                "sector_id": str(patrol.sector_id),
                "sector_code": sector_code,
                "status": str(patrol.status),
                "patrol_type": str(patrol.patrol_type),
                "started_at": local_time(patrol.started_at, zone),
                "ended_at": local_time(patrol.ended_at, zone),
                "leader_id": str(patrol.leader_id) if patrol.leader_id else None,
                "stretch": number,
                "stretch_started_at": local_time(run[0].t, zone),
                "stretch_ended_at": local_time(run[-1].t, zone),
                "point_count": len(run),
                "distance_km": effort.run_distance_km(run),
                "coordTimes": [local_time(fix.t, zone) for fix in run],
                "attachment_urls": evidence.urls(patrol.attachments or [], base=base_url),
            },
        }


def observation_feature(
    observation: Observation, categories: Mapping[str, Category], zone: tzinfo, *, base_url: str
) -> dict[str, Any]:
    category = categories.get(observation.category_key)
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [observation.lon, observation.lat]},
        "properties": {
            "kind": "observation",
            "observation_id": str(observation.id),
            "patrol_id": str(observation.patrol_id) if observation.patrol_id else None,
            "sector_id": str(observation.sector_id),
            "category_key": observation.category_key,
            "category_name_es": category.name_es if category else None,
            "observed_at": local_time(observation.observed_at, zone),
            **dict(zip(("accuracy_m", "gps_fix"), _gps(observation), strict=True)),
            "action_taken": str(observation.action_taken),
            "notes": observation.notes,
            "attributes": observation.attributes or {},
            "attachment_urls": evidence.urls(observation.attachments or [], base=base_url),
        },
    }


def patrols_geojson(
    engine: Engine, matching: SelectOfScalar[Patrol], *, zone: tzinfo, base_url: str
) -> Iterator[str]:
    """A GeoJSON FeatureCollection of the patrols' tracks and observations, streamed;
    files as URLs under ``base_url``, the server's."""
    with transaction(engine, write=False) as session:
        categories = categories_in(session, matching)
        yield '{"type":"FeatureCollection","features":['
        separator = ""
        for chunk in read_chunks(session, matching):
            features: list[str] = []
            for patrol in chunk.patrols:
                track = effort.build_track(chunk.segments.get(patrol.id, []))
                code = chunk.sector_codes.get(patrol.sector_id)
                stretches = track_features(patrol, track, code, zone, base_url=base_url)
                features.extend(map(json_text, stretches))
                features.extend(
                    json_text(observation_feature(observation, categories, zone, base_url=base_url))
                    for observation in chunk.observations.get(patrol.id, [])
                )
            if features:
                yield separator + ",".join(features)
                separator = ","
        yield "]}"


# ---------------------------------------------------------------- GPX


@dataclass(frozen=True)
class ElevatedFix(effort.Fix):
    """A track fix with its altitude, which GPX carries and effort does not need."""

    alt_m: float | None = None


def _elevated(point: Mapping[str, Any]) -> ElevatedFix:
    alt = point.get("alt_m")
    return ElevatedFix(
        t=effort.parse_moment(point["t"]),
        lat=float(point["lat"]),
        lon=float(point["lon"]),
        alt_m=float(alt) if alt is not None else None,
    )


def _trkpt(fix: effort.Fix) -> str:
    alt = fix.alt_m if isinstance(fix, ElevatedFix) else None
    ele = f"<ele>{alt!r}</ele>" if alt is not None else ""
    return (
        f'<trkpt lat="{fix.lat!r}" lon="{fix.lon!r}">{ele}'
        f"<time>{escape(utc_time(fix.t))}</time></trkpt>\n"
    )


def gpx_name(patrol: Patrol, sector_code: str | None, zone: tzinfo) -> str:
    """``S-NORTE 2026-03-02``: the sector and the local day the patrol started."""
    day = patrol.started_at.astimezone(zone).date().isoformat() if patrol.started_at else None
    return " ".join(part for part in (sector_code, day) if part) or f"patrol {patrol.id}"


def patrol_gpx(engine: Engine, patrol_id: uuid.UUID, *, zone: tzinfo) -> Iterator[str]:
    """One patrol's track as GPX 1.1: a ``trkseg`` per stretch without a gap."""
    with transaction(engine, write=False) as session:
        yield (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<gpx version="1.1" creator="fieldsync" xmlns="http://www.topografix.com/GPX/1/1">\n'
        )
        patrol = session.get(Patrol, patrol_id)
        track = effort.Track(runs=[], gaps=[])
        if patrol is not None and patrol.deleted_at is None:
            code = session.scalar(select(Sector.code).where(Sector.id == patrol.sector_id))
            yield (
                f"<trk><name>{escape(gpx_name(patrol, code, zone))}</name>"
                f"<desc>{escape(f'patrol {patrol.id}')}</desc>"
                f"<type>{escape(str(patrol.patrol_type))}</type>\n"
            )
            segments = patrols.segments_of(session, [patrol.id]).get(patrol.id, [])
            track = effort.build_track(
                [_elevated(point) for point in segment] for segment in segments
            )
        else:
            yield f"<trk><name>{escape(f'patrol {patrol_id}')}</name>\n"
        for run in track.runs:
            if not run:
                continue
            yield "<trkseg>\n"
            for start in range(0, len(run), GPX_POINTS_PER_PIECE):
                yield "".join(_trkpt(fix) for fix in run[start : start + GPX_POINTS_PER_PIECE])
            yield "</trkseg>\n"
        yield "</trk>\n</gpx>\n"


__all__ = [
    "CHUNK_SIZE",
    "CSV_MEDIA_TYPE",
    "GEOJSON_MEDIA_TYPE",
    "GPX_MEDIA_TYPE",
    "attribute_keys",
    "categories_in",
    "patrol_gpx",
    "patrols_csv",
    "patrols_geojson",
    "read_chunks",
]
