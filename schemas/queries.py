"""What every query string has in common: unknown parameters refused, periods parsed.

``?satus=submitted`` is a 422 naming ``satus``, not a list of everything. ``from`` and
``to`` take a date (a whole day in the service's time zone, ``FIELDSYNC_TIMEZONE``)
or a timestamp with its offset; ``sync/period.py`` turns them into instants.
"""

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainValidator, WithJsonSchema


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
            "type": "string",
            "description": "A date (a whole day, local time) or an RFC 3339 timestamp.",
            "examples": ["2026-03-01", "2026-03-01T08:00:00-05:00"],
        }
    ),
]


class QueryParams(BaseModel):
    """Query parameters: unknown ones are refused."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Format(StrEnum):
    """How a list or a report is answered: JSON, or a CSV file (UTF-8 with a BOM)."""

    json = "json"
    csv = "csv"
