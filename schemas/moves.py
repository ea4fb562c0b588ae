"""Moving a record to another sector or community, on the wire (``sync.engine.moves``)."""

from __future__ import annotations

import uuid

from pydantic import BaseModel

from schemas.wire import RequestBody


class PatrolMove(RequestBody):
    """Where the patrol goes: the sector it should have been filed under."""

    sector_id: uuid.UUID


class PatrolMoved(BaseModel):
    id: uuid.UUID
    version: int
    sector_id: uuid.UUID


class SessionMove(RequestBody):
    """Where the training session was held: the community it should be filed under."""

    community_id: uuid.UUID


class SessionMoved(BaseModel):
    id: uuid.UUID
    version: int
    community_id: uuid.UUID
