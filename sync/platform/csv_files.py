"""CSV files for spreadsheets, written as they are read.

Every CSV the service hands out is UTF-8 with a byte order mark (Excel reads Spanish
right only then: *señal débil*, *Núñez*), times in RFC 3339 in the service's zone,
and text safe from formula injection: a cell a spreadsheet would run as a formula
(starting ``= + - @``, tab or CR) gets a leading ``'``. Numbers are left as they are.
Rows are handed on a few hundred at a time, so a file of any size streams.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, tzinfo
from enum import Enum
from typing import Any

from sync.platform.database import json_text

BOM = "\ufeff"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ROWS_PER_PIECE = 500
"""Rows per piece of text handed on: big enough to amortise, small enough to stream."""


def paged(query: Any, paging: Any) -> Any:
    """A CSV is every row, unless the caller gave ``limit`` or ``offset``: then that page.

    ``paging`` is the request's query model; only what the caller set counts."""
    if "offset" in paging.model_fields_set:
        query = query.offset(paging.offset)
    if "limit" in paging.model_fields_set:
        query = query.limit(paging.limit)
    return query


def local_time(moment: datetime | None, zone: tzinfo) -> str | None:
    """RFC 3339 in ``zone``: ``2026-03-02T08:00:00-05:00``."""
    return moment.astimezone(zone).isoformat() if moment is not None else None


def cell(value: Any, zone: tzinfo) -> str:
    """A CSV cell: numbers as they are, times local, text safe from formula injection."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime):
        return local_time(value, zone) or ""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Enum):
        value = value.value
    text = value if isinstance(value, str) else json_text(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


class Writer:
    """CSV rows into pieces of text: ``row()`` them, ``drained()`` hands on what is written."""

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone
        self.buffer = io.StringIO()
        self.writer = csv.writer(self.buffer)

    def row(self, values: Sequence[Any]) -> None:
        self.writer.writerow([cell(value, self.zone) for value in values])

    def drained(self) -> str:
        text = self.buffer.getvalue()
        self.buffer.seek(0)
        self.buffer.truncate()
        return text


def csv_text(
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    zone: tzinfo,
    rows_per_piece: int = ROWS_PER_PIECE,
) -> Iterator[str]:
    """The BOM and header first, then the rows, ``rows_per_piece`` at a time."""
    writer = Writer(zone)
    writer.row(header)
    yield BOM + writer.drained()
    for count, values in enumerate(rows, start=1):
        writer.row(values)
        if count % rows_per_piece == 0:
            yield writer.drained()
    rest = writer.drained()
    if rest:
        yield rest
