"""Devices' sync health as the office reads it: who holds each tablet, when it last
pushed and pulled, what it says of itself (app version, changes it has not sent,
free storage), how far its pulls are behind its scope, and what the server holds for
it that is not settled."""

import uuid
from datetime import datetime

from pydantic import BaseModel
from pydantic import Field as PydanticField

from schemas.accounts import DeviceStatus
from schemas.enums import Role
from schemas.queries import Format, Paging


class DeviceHealthQuery(Paging):
    silent_days: int | None = PydanticField(
        default=None,
        ge=1,
        le=3650,
        description="Only the devices not heard from in this many days (never heard "
        "from included).",
    )
    sector_id: uuid.UUID | None = PydanticField(
        default=None,
        description="Only the devices of users working in this sector (rangers and leads "
        "of it; extension workers of its communities).",
    )
    role: Role | None = PydanticField(default=None, description="Only the devices of this role.")
    app_version: str | None = PydanticField(
        default=None, max_length=64, description="Only the devices that reported this version."
    )
    app_version_below: str | None = PydanticField(
        default=None,
        max_length=64,
        pattern=r"^v?\d",
        description="Only the devices that reported a version older than this one "
        "(`2.4` lists 2.3.9 and 2.4.0-beta, not 2.4.0); those that never reported one "
        "are left out.",
    )
    format: Format = Format.json


class DeviceUser(BaseModel):
    user_id: uuid.UUID
    username: str
    full_name: str
    role: Role


class DeviceHealth(BaseModel):
    device_id: uuid.UUID
    label: str
    status: DeviceStatus
    user: DeviceUser
    enrolled_at: datetime | None
    last_seen_at: datetime | None = PydanticField(
        description="Its last contact: enrolling, refreshing its tokens, a push or a pull "
        "(to the minute)."
    )
    last_push_at: datetime | None = PydanticField(
        description="When the server last received a change from it."
    )
    last_pull_at: datetime | None = PydanticField(
        description="When it last pulled (to the minute; the page that caught it up is "
        "always noted)."
    )
    last_seq: int | None = PydanticField(description="The highest change `seq` it sent.")
    app_version: str | None = PydanticField(description="As its last push reported.")
    schema_version: int | None = PydanticField(description="As its last push reported.")
    pending_changes: int | None = PydanticField(
        description="Changes it held unsent, as its last push reported."
    )
    oldest_pending_at: datetime | None = PydanticField(
        description="When the oldest of those was made, by its clock."
    )
    free_storage_mb: int | None = PydanticField(description="As its last push reported.")
    reported_at: datetime | None = PydanticField(
        description="When it last reported (the push that carried the report)."
    )
    app_too_old_at: datetime | None = PydanticField(
        default=None,
        description="When a push of its app was last refused as too old for the data model "
        "(`426 app_too_old`: nothing of it was kept; the tablet must be updated); null "
        "once a push is taken again.",
    )
    pulled_seq: int | None = PydanticField(
        description="The change number its pulls have everything up to."
    )
    newest_seq: int | None = PydanticField(description="The newest change number in its scope now.")
    behind_since: datetime | None = PydanticField(
        description="When the oldest change in its scope that it has not pulled was made; "
        "null when it has everything."
    )
    lag_seconds: int | None = PydanticField(
        description="How long it has been missing changes (now minus `behind_since`); "
        "null when it has everything."
    )
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
