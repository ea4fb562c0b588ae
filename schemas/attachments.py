"""Attachments: the files the server holds, named by their SHA-256, and the uploads in
progress (tus), whose state is kept here so that any server process can continue one."""

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, get_args

import sqlalchemy as sa
from pydantic import BaseModel
from pydantic import Field as PydanticField
from sqlmodel import Field, SQLModel

from schemas.types import JSONDocument, UTCDateTime, utcnow

# What a tablet may send: photos, scanned agreements, voice notes.
AttachmentType = Literal[
    "image/jpeg", "image/png", "image/webp", "application/pdf", "audio/mp4", "audio/ogg"
]
ALLOWED_TYPES: tuple[str, ...] = get_args(AttachmentType)


class Attachment(SQLModel, table=True):
    """A file the server holds, whole and checked: its bytes hash to ``sha256`` and
    are of ``content_type``. Stored once, however often it was sent."""

    __tablename__ = "attachment"

    sha256: str = Field(sa_type=sa.String(64), primary_key=True)
    content_type: str = Field(sa_type=sa.String(64))
    size: int = Field(sa_type=sa.BigInteger)
    uploaded_by: uuid.UUID = Field(foreign_key="user.id", index=True)
    device_id: uuid.UUID | None = Field(default=None, foreign_key="device.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AttachmentUpload(SQLModel, table=True):
    """An upload in progress: how long it is, how much has arrived, and where each part
    the storage holds begins (``parts``). Removed when it completes or expires."""

    __tablename__ = "attachment_upload"

    id: uuid.UUID = Field(primary_key=True)
    sha256: str = Field(sa_type=sa.String(64), index=True)
    content_type: str = Field(sa_type=sa.String(64))
    length: int = Field(sa_type=sa.BigInteger)
    received: int = Field(default=0, sa_type=sa.BigInteger)
    parts: list[int] = Field(default_factory=list, sa_type=JSONDocument)
    user_id: uuid.UUID = Field(foreign_key="user.id", index=True)
    device_id: uuid.UUID | None = Field(default=None, foreign_key="device.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class AttachmentLink(SQLModel, table=True):
    """A live record that names a file: who may read a file is who may see one of
    them. Written by the change log with the record's pull entry, so it always says
    what the records say now (a record's links go with it when it is deleted)."""

    __tablename__ = "attachment_link"

    entity: str = Field(sa_type=sa.String(32), primary_key=True)
    record_id: uuid.UUID = Field(primary_key=True)
    sha256: str = Field(sa_type=sa.String(64), primary_key=True, index=True)


class AttachmentOwed(SQLModel, table=True):
    """A file a device named in a change before the server held it: what that device
    still owes (``GET /sync/missing-attachments``). Gone when the file arrives, from
    whichever device."""

    __tablename__ = "attachment_owed"

    device_id: uuid.UUID = Field(foreign_key="device.id", primary_key=True)
    sha256: str = Field(sa_type=sa.String(64), primary_key=True, index=True)
    content_type: str = Field(sa_type=sa.String(64))
    size: int = Field(sa_type=sa.BigInteger)
    entity: str = Field(sa_type=sa.String(32))
    record_id: uuid.UUID
    named_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# ---------------------------------------------------------------- wire


class MissingAttachment(BaseModel):
    """A file the device named in a change and has not sent: upload it."""

    sha256: str
    content_type: str
    size: int
    entity: str = PydanticField(description="A record that names it (the first change to).")
    record_id: uuid.UUID
    named_at: datetime = PydanticField(description="When the server first saw it named.")


class MissingAttachmentPage(BaseModel):
    items: list[MissingAttachment]
    total: int
    limit: int
    offset: int


ATTACHMENTS_PATH = "/api/v1/attachments"
THUMBNAIL_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})


def attachment_url(sha256: str, *, base: str = "", variant: str | None = None) -> str:
    """Where a file is downloaded: a path, or a whole URL given the server's ``base``."""
    url = f"{base.rstrip('/')}{ATTACHMENTS_PATH}/{sha256}"
    return f"{url}?variant={variant}" if variant else url


class AttachmentRead(BaseModel):
    """A file a record names, as the office reads it: whether the server holds it yet,
    and where to download it and its thumbnail (images only)."""

    sha256: str
    content_type: str
    size: int
    caption: str | None = None
    held: bool = PydanticField(
        description="False while the tablet has not uploaded it: the links answer 404 until then."
    )
    url: str
    thumbnail_url: str | None = PydanticField(description="A JPEG ≤ 320 px; null if no image.")

    @classmethod
    def of(cls, ref: Mapping[str, Any], *, held: bool) -> "AttachmentRead":
        sha256 = str(ref["sha256"])
        content_type = str(ref["content_type"])
        return cls(
            sha256=sha256,
            content_type=content_type,
            size=int(ref["size"]),
            caption=ref.get("caption"),
            held=held,
            url=attachment_url(sha256),
            thumbnail_url=(
                attachment_url(sha256, variant="thumbnail")
                if content_type in THUMBNAIL_TYPES
                else None
            ),
        )
