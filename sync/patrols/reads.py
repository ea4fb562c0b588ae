"""Patrols as ranger leads read them: the filtered list (the review queue) and one
patrol's detail, with its track, observations, reviews, effort and flags.

Every query here is scoped: ranger leads and rangers see the patrols of their
sectors; coordinators and admins see all. A patrol out of scope reads as absent.
The same filters serve the list, the exports and the reports (``filtered``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, is_dataclass
from datetime import datetime, tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, func, select
from sqlmodel.sql.expression import SelectOfScalar

from schemas import ObservationCategory, Patrol, Sector, TrackSegment, User
from schemas.patrols import (
    EffortRead,
    ObservationRead,
    PatrolDetail,
    PatrolFilters,
    PatrolMember,
    PatrolPage,
    PatrolQuery,
    PatrolReview,
    PatrolSummary,
    ReviewRead,
    UserRef,
)
from schemas.records import Observation, PatrolStatus
from sync.accounts.principal import Principal
from sync.engine.files import held
from sync.patrols import effort, evidence
from sync.patrols.geo import distance_to_polyline_km
from sync.platform.database import json_array_contains
from sync.platform.errors import NotFound
from sync.platform.period import period

# ---------------------------------------------------------------- filters


def in_scope(principal: Principal) -> ColumnElement[bool] | None:
    """The patrols ``principal`` may read; ``None`` means all of them."""
    if principal.sees_everything:
        return None
    return col(Patrol.sector_id).in_(principal.sector_ids)


def with_member(session: Session, user_ids: Iterable[uuid.UUID]) -> ColumnElement[bool]:
    """Patrols led by, or with as a member, any of ``user_ids``.

    Members are a JSON list on the patrol (as the tablet sent them), asked with
    ``json_array_contains``.
    """
    ids = [str(user_id) for user_id in user_ids]
    led = col(Patrol.leader_id).in_([uuid.UUID(i) for i in ids])
    joined = json_array_contains(session, Patrol.members, key="user_id", values=ids)
    return sa.or_(led, joined)


def of_category(key: str) -> ColumnElement[bool]:
    """Observations of the category ``key`` or any below it (``threat`` → ``threat.*``)."""
    escaped = key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return sa.or_(
        col(Observation.category_key) == key,
        col(Observation.category_key).like(f"{escaped}.%", escape="\\"),
    )


def filtered(
    session: Session, *, principal: Principal, filters: PatrolFilters, zone: tzinfo
) -> SelectOfScalar[Patrol]:
    """The live patrols in scope that match ``filters``, unordered."""
    query = select(Patrol).where(col(Patrol.deleted_at).is_(None))
    scope = in_scope(principal)
    if scope is not None:
        query = query.where(scope)
    if filters.sector_id is not None:
        query = query.where(Patrol.sector_id == filters.sector_id)
    if filters.status is not None:
        query = query.where(Patrol.status == filters.status)
    if filters.ranger_id is not None:
        query = query.where(with_member(session, [filters.ranger_id]))
    span = period(filters.from_, filters.to, zone=zone)
    if span.start is not None:
        query = query.where(col(Patrol.started_at) >= span.start)
    if span.end is not None:
        query = query.where(col(Patrol.started_at) < span.end)
    if filters.category is not None:
        query = query.where(
            sa.exists(
                select(1).where(
                    col(Observation.patrol_id) == Patrol.id,
                    col(Observation.deleted_at).is_(None),
                    of_category(filters.category),
                )
            )
        )
    return query


# ---------------------------------------------------------------- the list


def list_patrols(
    session: Session, *, principal: Principal, query: PatrolQuery, zone: tzinfo
) -> PatrolPage:
    """A page of patrols and how many match in all.

    The review queue (``status=submitted``) is oldest first: the patrol that has
    waited longest since the server received it comes first. Any other list is the
    newest patrols first, by when they started.
    """
    matching = filtered(session, principal=principal, filters=query, zone=zone)
    total = session.scalar(select(func.count()).select_from(matching.subquery())) or 0
    if query.status is PatrolStatus.submitted:
        order = [col(Patrol.updated_at).asc(), col(Patrol.id)]
    else:
        order = [col(Patrol.started_at).desc().nulls_last(), col(Patrol.id)]
    patrols = list(session.exec(matching.order_by(*order).offset(query.offset).limit(query.limit)))
    return PatrolPage(
        items=summaries(session, patrols), total=total, limit=query.limit, offset=query.offset
    )


def summaries(session: Session, patrols: Sequence[Patrol]) -> list[PatrolSummary]:
    """Queue rows for ``patrols``, their members named: two grouped queries for their
    counts and one for the names, not one per row."""
    ids = [patrol.id for patrol in patrols]
    people = users(session, {user_id for patrol in patrols for user_id in _member_ids(patrol)})
    observations: dict[uuid.UUID, int] = {}
    points: dict[uuid.UUID, int] = {}
    if ids:
        observations = dict(
            session.execute(
                select(Observation.patrol_id, func.count())
                .where(col(Observation.patrol_id).in_(ids), col(Observation.deleted_at).is_(None))
                .group_by(col(Observation.patrol_id))
            ).all()
        )
        points = dict(
            session.execute(
                select(TrackSegment.patrol_id, func.sum(TrackSegment.point_count))
                .where(col(TrackSegment.patrol_id).in_(ids), col(TrackSegment.deleted_at).is_(None))
                .group_by(col(TrackSegment.patrol_id))
            ).all()
        )
    files = evidence.tallies(session, patrols)
    return [
        summary(
            patrol,
            observations.get(patrol.id, 0),
            int(points.get(patrol.id) or 0),
            people,
            files.get(patrol.id, evidence.Tally()),
        )
        for patrol in patrols
    ]


def _member_ids(patrol: Patrol) -> set[uuid.UUID]:
    return {uuid.UUID(str(m["user_id"])) for m in patrol.members or [] if m.get("user_id")}


def named_members(
    members: Iterable[dict[str, Any]], people: dict[uuid.UUID, UserRef]
) -> list[PatrolMember]:
    """Members as the tablet sent them, each named: as recorded, or the user's full name."""
    named = []
    for member in members:
        read = PatrolMember.model_validate(member)
        if not read.name:
            read.name = _name(people, read.user_id)
        named.append(read)
    return named


def hours(patrol: Patrol) -> tuple[float | None, float | None]:
    """Patrol hours and field hours, as ``effort.patrol_effort`` counts them."""
    if patrol.started_at is None or patrol.ended_at is None:
        return None, None
    if patrol.ended_at < patrol.started_at:
        return None, None
    minutes = (patrol.ended_at - patrol.started_at).total_seconds() / 60
    return minutes / 60, max(0.0, minutes - (patrol.rest_minutes or 0)) / 60


def summary(
    patrol: Patrol,
    observation_count: int,
    point_count: int,
    people: dict[uuid.UUID, UserRef],
    files: evidence.Tally,
) -> PatrolSummary:
    patrol_hours, field_hours = hours(patrol)
    return PatrolSummary(
        id=patrol.id,
        version=patrol.version,
        sector_id=patrol.sector_id,
        patrol_type=patrol.patrol_type,
        objective=patrol.objective,
        leader_id=patrol.leader_id,
        members=named_members(patrol.members or [], people),
        transport=patrol.transport,
        started_at=patrol.started_at,
        ended_at=patrol.ended_at,
        rest_minutes=patrol.rest_minutes,
        comment=patrol.comment,
        status=patrol.status,
        reviewed_by=patrol.reviewed_by,
        reviewed_at=patrol.reviewed_at,
        review_comment=patrol.review_comment,
        created_by=patrol.created_by,
        device_id=patrol.device_id,
        recorded_at=patrol.recorded_at,
        created_at=patrol.created_at,
        updated_at=patrol.updated_at,
        patrol_hours=patrol_hours,
        field_hours=field_hours,
        observation_count=observation_count,
        point_count=point_count,
        attachment_count=files.named,
        attachments_missing=files.missing,
    )


# ---------------------------------------------------------------- one patrol


def visible(session: Session, principal: Principal, patrol_id: uuid.UUID) -> Patrol:
    """The live patrol ``patrol_id`` if ``principal`` may read it; 404 otherwise."""
    patrol = session.get(Patrol, patrol_id)
    if patrol is None or patrol.deleted_at is not None:
        raise NotFound("no such patrol")
    if not principal.sees_everything and patrol.sector_id not in principal.sector_ids:
        raise NotFound("no such patrol")
    return patrol


def segments_of(session: Session, patrol_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[Any]]:
    """The points of each patrol's live track segments, segment by segment."""
    found: dict[uuid.UUID, list[Any]] = {}
    rows = session.execute(
        select(TrackSegment.patrol_id, TrackSegment.points).where(
            col(TrackSegment.patrol_id).in_(list(patrol_ids)),
            col(TrackSegment.deleted_at).is_(None),
        )
    )
    for patrol_id, points in rows:
        found.setdefault(patrol_id, []).append(points)
    return found


def others_of_the_rangers(
    session: Session, principal: Principal, patrol: Patrol
) -> list[effort.PatrolInterval]:
    """Other live, not cancelled patrols in scope that share a ranger with ``patrol``
    and time with it: the candidates for ``overlapping_patrol``."""
    people = {patrol.leader_id} if patrol.leader_id else set()
    people |= {
        uuid.UUID(str(member["user_id"]))
        for member in patrol.members or []
        if member.get("user_id")
    }
    if not people or patrol.started_at is None or patrol.ended_at is None:
        return []
    query = select(Patrol.id, Patrol.started_at, Patrol.ended_at).where(
        col(Patrol.id) != patrol.id,
        col(Patrol.deleted_at).is_(None),
        col(Patrol.status) != PatrolStatus.cancelled,
        col(Patrol.started_at) < patrol.ended_at,
        col(Patrol.ended_at) > patrol.started_at,
        with_member(session, people),
    )
    scope = in_scope(principal)
    if scope is not None:
        query = query.where(scope)
    return [
        effort.PatrolInterval(started_at=start, ended_at=end, patrol_id=other_id)
        for other_id, start, end in session.execute(query.order_by(col(Patrol.started_at)))
    ]


def detail(session: Session, *, principal: Principal, patrol_id: uuid.UUID) -> PatrolDetail:
    """Everything a ranger lead weighs before approving a patrol."""
    patrol = visible(session, principal, patrol_id)
    observations = list(
        session.scalars(
            select(Observation)
            .where(col(Observation.patrol_id) == patrol.id, col(Observation.deleted_at).is_(None))
            .order_by(col(Observation.observed_at), col(Observation.id))
        )
    )
    segments = segments_of(session, [patrol.id]).get(patrol.id, [])
    boundary = session.scalar(select(Sector.boundary).where(Sector.id == patrol.sector_id))
    figures = effort.patrol_effort(
        started_at=patrol.started_at,
        ended_at=patrol.ended_at,
        rest_minutes=patrol.rest_minutes,
        transport=patrol.transport,
        patrol_type=patrol.patrol_type,
        segments=segments,
        observations=[
            effort.ObservationPlace(id=o.id, lat=o.lat, lon=o.lon, observed_at=o.observed_at)
            for o in observations
        ],
        boundary=boundary,
        other_patrols=others_of_the_rangers(session, principal, patrol),
    )
    track = effort.build_track(segments)
    reviews = list(
        session.scalars(
            select(PatrolReview)
            .where(PatrolReview.patrol_id == patrol.id)
            .order_by(col(PatrolReview.reviewed_at), col(PatrolReview.version))
        )
    )
    user_ids = {r.reviewed_by for r in reviews}
    user_ids |= {patrol.leader_id} if patrol.leader_id else set()
    user_ids |= _member_ids(patrol)
    people = users(session, user_ids)
    categories = {
        key: (name_es, name_en)
        for key, name_es, name_en in session.execute(
            select(
                ObservationCategory.key, ObservationCategory.name_es, ObservationCategory.name_en
            ).where(col(ObservationCategory.key).in_({o.category_key for o in observations}))
        )
    }
    files = [*(patrol.attachments or []), *(a for o in observations for a in o.attachments or [])]
    present = held(session, (ref["sha256"] for ref in files))
    named = {ref["sha256"] for ref in files}
    tally = evidence.Tally(named=len(named), missing=len(named - present))
    head = summary(patrol, len(observations), figures.point_count, people, tally)
    polylines = [[(fix.lat, fix.lon) for fix in run] for run in track.runs if run]
    return PatrolDetail(
        patrol=head,
        leader=people.get(patrol.leader_id) if patrol.leader_id else None,
        attachments=evidence.reads(patrol.attachments or [], present),
        observations=[
            ObservationRead(
                id=o.id,
                version=o.version,
                category_key=o.category_key,
                category_name_es=categories.get(o.category_key, (None, None))[0],
                category_name_en=categories.get(o.category_key, (None, None))[1],
                observed_at=o.observed_at,
                lat=o.lat,
                lon=o.lon,
                gps=o.gps,
                attributes=o.attributes or {},
                notes=o.notes,
                action_taken=o.action_taken,
                distance_to_track_km=min(
                    (distance_to_polyline_km(o.lat, o.lon, line) for line in polylines),
                    default=None,
                ),
                attachments=evidence.reads(o.attachments or [], present),
            )
            for o in observations
        ],
        track=track_geojson(track),
        reviews=[
            ReviewRead(
                decision=r.decision,
                comment=r.comment,
                reviewed_by=people.get(r.reviewed_by) or UserRef(user_id=r.reviewed_by),
                reviewed_at=r.reviewed_at,
                version=r.version,
            )
            for r in reviews
        ],
        effort=effort_read(figures),
    )


def users(session: Session, user_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, UserRef]:
    ids = list(user_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(User.id, User.username, User.full_name).where(col(User.id).in_(ids))
    )
    return {
        user_id: UserRef(user_id=user_id, username=username, full_name=full_name)
        for user_id, username, full_name in rows
    }


def _name(people: dict[uuid.UUID, UserRef], user_id: uuid.UUID | None) -> str | None:
    person = people.get(user_id) if user_id else None
    return person.full_name if person else None


# ---------------------------------------------------------------- rendering


def _plain(value: Any) -> Any:
    """A flag's particulars as JSON values: times in RFC 3339, fixes as objects."""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def effort_read(figures: effort.Effort) -> EffortRead:
    return EffortRead(
        patrol_hours=figures.patrol_hours,
        field_hours=figures.field_hours,
        distance_km=figures.distance_km,
        point_count=figures.point_count,
        transport=str(figures.transport),
        flags=[_plain(asdict(flag)) for flag in figures.flags if is_dataclass(flag)],
    )


def run_geometry(run: Sequence[effort.Fix]) -> dict[str, Any]:
    """A stretch of track without a gap as GeoJSON: a LineString of ``[lon, lat]``
    positions, or a Point for a lone fix (a LineString needs two)."""
    positions = [[fix.lon, fix.lat] for fix in run]
    if len(positions) > 1:
        return {"type": "LineString", "coordinates": positions}
    return {"type": "Point", "coordinates": positions[0]}


def track_geojson(track: effort.Track) -> dict[str, Any]:
    """The track as a GeoJSON FeatureCollection: one LineString per stretch without a
    gap (a lone fix between two gaps is a Point), positions ``[lon, lat]``, with the
    fixes' times in ``coordTimes`` as GPS tools read them."""
    features = []
    for run in track.runs:
        if not run:
            continue
        features.append(
            {
                "type": "Feature",
                "geometry": run_geometry(run),
                "properties": {
                    "started_at": _plain(run[0].t),
                    "ended_at": _plain(run[-1].t),
                    "point_count": len(run),
                    "distance_km": effort.run_distance_km(run),
                    "coordTimes": [_plain(fix.t) for fix in run],
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


__all__ = [
    "detail",
    "filtered",
    "in_scope",
    "list_patrols",
    "of_category",
    "segments_of",
    "summaries",
    "with_member",
]
