"""A record's version history as people read it: who, which device, when, what changed."""

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from pydantic import Field as PydanticField


class FieldChange(BaseModel):
    before: Any = PydanticField(description="The value before this version; null on create.")
    after: Any


class VersionRead(BaseModel):
    version: int
    op: str = PydanticField(description="`create`, `update`, `delete`, `review`, `resolve`, …")
    reason: str | None = PydanticField(
        description="Why the server made it, when not a device's change: `review:approve`, "
        "`merge`, a conflict's resolution."
    )
    at: datetime = PydanticField(description="When the server made the version.")
    recorded_at: datetime | None = PydanticField(
        description="The device's clock when the change was made in the field, if it came "
        "from a device (kept, never trusted for order)."
    )
    user_id: uuid.UUID | None
    user_name: str | None
    device_id: uuid.UUID | None
    device_label: str | None
    changes: dict[str, FieldChange] = PydanticField(
        description="Each field this version changed, before and after. Personal data is "
        'shown as `"***"` to callers who may not see it.'
    )
