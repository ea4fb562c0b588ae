"""Reference data, managed by admins and pulled by every device in scope."""

import uuid
from datetime import datetime
from typing import Annotated, Any, Self

import sqlalchemy as sa
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StrictBool,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError
from sqlmodel import Field, SQLModel

from schemas.enums import AttributeType, CommunityKind
from schemas.types import JSONDocument, UTCDateTime, new_id, utcnow
from schemas.wire import RequestBody, TrimmedText, lowered

Text = Annotated[TrimmedText, StringConstraints(max_length=200)]


class Sector(SQLModel, table=True):
    """A patrol sector of the protected area; rangers' scope is a set of sectors."""

    __tablename__ = "sector"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    code: str = Field(sa_type=sa.String(32), unique=True)
    name: str = Field(sa_type=sa.String(200))
    zone: str | None = Field(default=None, sa_type=sa.String(64))
    boundary: dict[str, Any] | None = Field(default=None, sa_type=JSONDocument)
    version: int = Field(default=1)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Community(SQLModel, table=True):
    """A settlement, native community or hamlet; extension workers' scope is a set of them."""

    __tablename__ = "community"
    __table_args__ = (sa.UniqueConstraint("sector_id", "name"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    name: str = Field(sa_type=sa.String(200))
    sector_id: uuid.UUID = Field(foreign_key="sector.id", index=True)
    kind: CommunityKind = Field(
        sa_column=sa.Column(
            sa.Enum(CommunityKind, native_enum=False, length=32, validate_strings=True),
            nullable=False,
        )
    )
    inside_protected_area: bool = Field(default=False)
    version: int = Field(default=1)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ObservationCategory(SQLModel, table=True):
    """What a ranger can observe (``threat.logging.timber``), with its typed attributes."""

    __tablename__ = "observation_category"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    key: str = Field(sa_type=sa.String(128), unique=True)
    name_es: str = Field(sa_type=sa.String(200))
    name_en: str = Field(sa_type=sa.String(200))
    attributes: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONDocument)
    active: bool = Field(default=True)
    version: int = Field(default=1)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# ---------------------------------------------------------------- wire models


_POSITION = {
    "type": "array",
    "minItems": 2,
    "prefixItems": [
        {"type": "number", "minimum": -180, "maximum": 180},
        {"type": "number", "minimum": -90, "maximum": 90},
    ],
    "items": {"type": "number"},
}
_RING = {"type": "array", "minItems": 4, "items": _POSITION}
_POLYGON = {"type": "array", "minItems": 1, "items": _RING}
# What JSON Schema can say of a boundary; that a ring closes (its last position is its
# first) it cannot, and that is said in words, with its own code, ``ring_not_closed``.
POLYGON_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {
            "type": "object",
            "required": ["type", "coordinates"],
            "properties": {"type": {"const": "Polygon"}, "coordinates": _POLYGON},
        },
        {
            "type": "object",
            "required": ["type", "coordinates"],
            "properties": {
                "type": {"const": "MultiPolygon"},
                "coordinates": {"type": "array", "minItems": 1, "items": _POLYGON},
            },
        },
    ],
    "description": "A GeoJSON Polygon or MultiPolygon (RFC 7946), positions as [lon, lat] "
    "in degrees; every ring closes (code `ring_not_closed` if not).",
}


class Polygon(BaseModel):
    """A GeoJSON Polygon or MultiPolygon (RFC 7946), coordinates as [lon, lat]."""

    model_config = ConfigDict(extra="allow", json_schema_extra=POLYGON_SCHEMA)

    type: str
    coordinates: list[Any]

    @model_validator(mode="after")
    def _is_polygon(self) -> Self:
        if self.type not in ("Polygon", "MultiPolygon"):
            raise ValueError("boundary must be a GeoJSON Polygon or MultiPolygon")
        polygons = [self.coordinates] if self.type == "Polygon" else self.coordinates
        if not polygons or not all(isinstance(polygon, list) and polygon for polygon in polygons):
            raise ValueError("a MultiPolygon is a list of polygons, each a list of rings")
        for ring in (ring for polygon in polygons for ring in polygon):
            if not isinstance(ring, list) or len(ring) < 4:
                raise ValueError("each ring needs at least 4 positions")
            if ring[0] != ring[-1]:
                raise PydanticCustomError(
                    "ring_not_closed", "a ring must close: its last position is its first"
                )
            for position in ring:
                if (
                    not isinstance(position, list)
                    or len(position) < 2
                    or not all(
                        isinstance(c, int | float) and not isinstance(c, bool) for c in position[:2]
                    )
                    or not -180 <= position[0] <= 180
                    or not -90 <= position[1] <= 90
                ):
                    raise ValueError("positions are [lon, lat] in degrees")
        return self


class SectorCreate(RequestBody):
    code: Annotated[TrimmedText, StringConstraints(max_length=32)]
    name: Text
    zone: Text | None = None
    boundary: Polygon | None = None


class SectorUpdate(RequestBody):
    name: Text | None = None
    zone: Text | None = None
    boundary: Polygon | None = None


class SectorRead(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    zone: str | None
    boundary: dict[str, Any] | None
    version: int
    created_at: datetime
    updated_at: datetime


class CommunityCreate(RequestBody):
    name: Text
    sector_id: uuid.UUID
    kind: CommunityKind
    inside_protected_area: StrictBool = False


class CommunityUpdate(RequestBody):
    name: Text | None = None
    sector_id: uuid.UUID | None = None
    kind: CommunityKind | None = None
    inside_protected_area: StrictBool | None = None


class CommunityRead(BaseModel):
    id: uuid.UUID
    name: str
    sector_id: uuid.UUID
    kind: CommunityKind
    inside_protected_area: bool
    version: int
    created_at: datetime
    updated_at: datetime


CategoryKey = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=128, pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$"
    ),
    BeforeValidator(lowered),
]
AttributeKey = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
]


class CategoryAttribute(
    RequestBody,
    json_schema_extra={
        "if": {"properties": {"type": {"const": "list"}}},
        "then": {
            "required": ["options"],
            "properties": {"options": {"type": "array", "minItems": 1}},
        },
        "else": {"properties": {"options": {"type": "null"}}},
    },
):
    """One typed attribute an observation of the category carries: a ``list`` has its
    options, and only a ``list`` has options."""

    key: AttributeKey
    type: AttributeType
    options: list[str] | None = None
    required: StrictBool = False

    @model_validator(mode="after")
    def _options_go_with_lists(self) -> Self:
        if self.type is AttributeType.list and not self.options:
            raise ValueError("an attribute of type list needs its options")
        if self.type is not AttributeType.list and self.options is not None:
            raise ValueError("only attributes of type list take options")
        return self


def _unique_attribute_keys(attributes: list[CategoryAttribute]) -> list[CategoryAttribute]:
    keys = [attribute.key for attribute in attributes]
    if len(keys) != len(set(keys)):
        raise PydanticCustomError("duplicate_key", "attribute keys must be unique")
    return attributes


# Checked as a field, so that an error names ``attributes`` rather than the whole body.
# JSON Schema cannot say "unique by key", so the document says it in words.
CategoryAttributes = Annotated[
    list[CategoryAttribute],
    AfterValidator(_unique_attribute_keys),
    Field(description="Each attribute's key is unique (code `duplicate_key` if not)."),
]


class ObservationCategoryCreate(RequestBody):
    key: CategoryKey
    name_es: Text
    name_en: Text
    attributes: CategoryAttributes = []
    active: StrictBool = True


class ObservationCategoryUpdate(RequestBody):
    name_es: Text | None = None
    name_en: Text | None = None
    attributes: CategoryAttributes | None = None
    active: StrictBool | None = None


class ObservationCategoryRead(BaseModel):
    id: uuid.UUID
    key: str
    name_es: str
    name_en: str
    attributes: list[CategoryAttribute]
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime
