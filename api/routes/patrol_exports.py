"""Patrol exports: CSV for spreadsheets, GeoJSON for GIS, GPX for GPS tools.

Role, scope and filters are checked here with the request's session, so a bad request
fails before anything streams; the body is then written by ``sync.patrols.exports`` with its
own read-only session, since the request's is closed when the route returns.
"""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from api.answers import attachment, file_only
from api.body import JSONRoute
from api.deps import EngineDep, PatrolReader, SessionDep, SettingsDep
from schemas.patrols import PatrolFilters
from sync.patrols import exports
from sync.patrols import reads as patrols

router = APIRouter(route_class=JSONRoute, prefix="/patrols", tags=["patrols"])


@router.get(
    "/export.csv",
    response_class=StreamingResponse,
    responses=file_only("text/csv", "One row per observation, UTF-8 with a byte order mark."),
)
def export_csv(
    filters: Annotated[PatrolFilters, Query()],
    principal: PatrolReader,
    session: SessionDep,
    engine: EngineDep,
    settings: SettingsDep,
    request: Request,
) -> StreamingResponse:
    """The patrols of ``GET /patrols`` (same filters, no paging) as a spreadsheet: one
    row per observation with its patrol's columns, each attribute its own ``attr_<key>``
    column; a patrol with no observation has one row. Times in the service's zone."""
    matching = patrols.filtered(session, principal=principal, filters=filters, zone=settings.zone)
    rows = exports.patrols_csv(engine, matching, zone=settings.zone, base_url=str(request.base_url))
    return attachment(rows, "patrols.csv")


@router.get(
    "/export.geojson",
    response_class=StreamingResponse,
    responses=file_only(exports.GEOJSON_MEDIA_TYPE, "A GeoJSON FeatureCollection."),
)
def export_geojson(
    filters: Annotated[PatrolFilters, Query()],
    principal: PatrolReader,
    session: SessionDep,
    engine: EngineDep,
    settings: SettingsDep,
    request: Request,
) -> StreamingResponse:
    """The patrols of ``GET /patrols`` (same filters, no paging) for a GIS: each track
    as LineStrings (one per stretch without a gap; ``kind: "track"``) and each
    observation as a Point (``kind: "observation"``), positions ``[lon, lat]``."""
    matching = patrols.filtered(session, principal=principal, filters=filters, zone=settings.zone)
    return attachment(
        exports.patrols_geojson(
            engine, matching, zone=settings.zone, base_url=str(request.base_url)
        ),
        "patrols.geojson",
        media_type=exports.GEOJSON_MEDIA_TYPE,
    )


@router.get(
    "/{patrol_id}/track.gpx",
    response_class=StreamingResponse,
    responses=file_only(exports.GPX_MEDIA_TYPE, "GPX 1.1: one track, a segment per stretch."),
)
def export_gpx(
    patrol_id: uuid.UUID,
    principal: PatrolReader,
    session: SessionDep,
    engine: EngineDep,
    settings: SettingsDep,
) -> StreamingResponse:
    """One patrol's track as GPX 1.1 for GPS tools: a ``trkseg`` per stretch without a
    gap over 30 minutes, each point with its time (UTC) and altitude when recorded."""
    patrol = patrols.visible(session, principal, patrol_id)
    return attachment(
        exports.patrol_gpx(engine, patrol.id, zone=settings.zone),
        f"patrol-{patrol.id}.gpx",
        media_type=exports.GPX_MEDIA_TYPE,
    )
