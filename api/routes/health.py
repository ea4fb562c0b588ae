"""Liveness and readiness, for load balancers and orchestrators."""

from fastapi import APIRouter
from pydantic import BaseModel

from api.body import JSONRoute
from api.deps import EngineDep
from sync.platform import health

router = APIRouter(route_class=JSONRoute, tags=["health"])


class Health(BaseModel):
    status: str
    database: str | None = None
    revision: str | None = None


@router.get("/healthz")
def healthz() -> Health:
    """The process is up. Touches nothing else."""
    return Health(status="ok")


@router.get("/readyz")
def readyz(engine: EngineDep) -> Health:
    """The database answers and its schema is at the newest migration (503 otherwise)."""
    report = health.check_ready(engine)
    return Health(status="ready", database=report.database, revision=report.revision)
