"""Devices' sync health as the office reads it: who holds each tablet, when it was
last heard from, and what the server holds for it that is not settled.

The minimal list of ``GET /devices/health``: only what the service already records.
The client's own report (app version, pending changes, free storage), the last pull
and the cursor's lag are not recorded yet.
"""

import uuid
from datetime import datetime

from pydantic import BaseModel
from pydantic import Field as PydanticField

from schemas.accounts import DeviceStatus
from schemas.queries import Paging


class DeviceHealthQuery(Paging):
    silent_days: int | None = PydanticField(
        default=None,
        ge=1,
        le=3650,
        description="Only the devices not heard from in this many days (never heard "
        "from included).",
    )


class DeviceUser(BaseModel):
    user_id: uuid.UUID
    username: str
    full_name: str


class DeviceHealth(BaseModel):
    device_id: uuid.UUID
    label: str
    status: DeviceStatus
    user: DeviceUser
    enrolled_at: datetime | None
    last_seen_at: datetime | None = PydanticField(
        description="When it last enrolled, refreshed its tokens or pushed (to the minute)."
    )
    last_push_at: datetime | None = PydanticField(
        description="When the server last received a change from it."
    )
    last_seq: int | None = PydanticField(description="The highest change `seq` it sent.")
    deferred_changes: int = PydanticField(
        description="Its changes still waiting for a record the server has not received."
    )
    rejected_changes: int = PydanticField(
        description="Its changes kept as rejected (listed at `GET /sync/rejected`)."
    )
    attachments_owed: int = PydanticField(
        description="Files its changes name that it has not uploaded yet."
    )


class DeviceHealthPage(BaseModel):
    items: list[DeviceHealth]
    total: int = PydanticField(description="How many devices match, over every page.")
    limit: int
    offset: int
