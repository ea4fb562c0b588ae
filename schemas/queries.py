"""What every query string has in common: unknown parameters refused, periods parsed.

``?satus=submitted`` is a 422 naming ``satus``, not a list of everything. ``from`` and
``to`` take a date (a whole day in the service's time zone, ``FIELDSYNC_TIMEZONE``)
or a timestamp with its offset; ``sync/period.py`` turns them into instants.
"""

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

from schemas.wire import has_nul

# No list is paged this deep by offset (a million rows in); the bound keeps the number
# within every column type and database driver, where 2**63 was a 500 on PostgreSQL.
MAX_OFFSET = 1_000_000


def parse_bound(value: Any) -> date | datetime:
    """``2026-03-01`` (a day) or ``2026-03-01T08:00:00-05:00`` (an instant)."""
    if isinstance(value, datetime | date):
        moment = value
    elif isinstance(value, str):
        text = value.strip()
        try:
            moment = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                "expected a date (2026-03-01) or a timestamp with its offset "
                "(2026-03-01T08:00:00-05:00)"
            ) from None
    else:
        raise ValueError("expected a date or a timestamp")
    if isinstance(moment, datetime) and moment.tzinfo is None:
        raise ValueError("a timestamp needs its offset (2026-03-01T08:00:00-05:00)")
    return moment


Bound = Annotated[
    date | datetime,
    PlainValidator(parse_bound),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date"},
                {"type": "string", "format": "date-time"},
            ],
            "description": "A date (a whole day, local time) or an RFC 3339 timestamp.",
            "examples": ["2026-03-01", "2026-03-01T08:00:00-05:00"],
        }
    ),
]


class QueryParams(BaseModel):
    """Query parameters: unknown ones are refused, and so is the NUL character, which
    PostgreSQL cannot compare with text."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        if has_nul(data):
            raise PydanticCustomError(
                "nul_character", "a query parameter must not contain the NUL character"
            )
        return data


Offset = Annotated[int, Field(ge=0, le=MAX_OFFSET, description="Rows to skip.")]


class Paging(QueryParams):
    """A page of a list: ``limit`` rows after ``offset``. Every paged list shares it;
    a list with another default or cap narrows ``limit`` in its own model."""

    limit: int = Field(default=50, ge=1, le=500, description="Rows in the page.")
    offset: Offset = 0


class Format(StrEnum):
    """How a list or a report is answered: JSON, or a CSV file (UTF-8 with a BOM)."""

    json = "json"
    csv = "csv"
