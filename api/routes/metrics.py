"""``GET /metrics``: the service's metrics for Prometheus (``api/metrics.py``).

Never open to the world: without ``FIELDSYNC_METRICS_TOKEN`` it is answered as an
address that does not exist (404); with it, a scraper sends the token as a bearer token.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response
from prometheus_client import CONTENT_TYPE_LATEST

from api import metrics as figures
from api.deps import EngineDep, SettingsDep
from sync.platform.errors import NotFound, Unauthorized

router = APIRouter(tags=["metrics"])


def check_scraper(
    settings: SettingsDep, authorization: Annotated[str | None, Header()] = None
) -> None:
    """A 404 unless a metrics token is set; a 401 unless the request bears it."""
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else ""
    if not token:
        raise NotFound("Not Found")  # word for word what an unknown address answers
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise Unauthorized("the metrics token is required", code="not_authenticated")
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise Unauthorized("not the metrics token", code="invalid_token")


@router.get("/metrics", include_in_schema=False, dependencies=[Depends(check_scraper)])
def metrics(engine: EngineDep) -> Response:
    """Every metric in Prometheus's text format, the fleet's backlog read just now."""
    return Response(figures.exposition(engine), media_type=CONTENT_TYPE_LATEST)
