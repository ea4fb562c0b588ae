"""Spans of time asked for in filters and reports, and the local calendar they use.

A date means a whole day where the work happens (``Settings.timezone``, Peru time by
default): ``from=2026-03-01&to=2026-03-31`` is March as the rangers lived it, not
March in UTC, which would drop the evening patrols of the 31st. A timestamp means
that instant. Both ends are inclusive as asked; internally the end is exclusive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from sync.platform.errors import FieldProblem, Unprocessable


@dataclass(frozen=True)
class Period:
    """``[start, end)`` in UTC; ``None`` is open on that side."""

    start: datetime | None = None
    end: datetime | None = None


def _start_of(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def period(start: date | datetime | None, end: date | datetime | None, *, zone: tzinfo) -> Period:
    """The span from ``start`` to ``end``, both inclusive; a 422 if it runs backwards."""
    begins = None
    if isinstance(start, datetime):
        begins = start.astimezone(UTC)
    elif isinstance(start, date):
        begins = _start_of(start, zone)
    ends = None
    if isinstance(end, datetime):
        ends = end.astimezone(UTC) + timedelta(microseconds=1)
    elif isinstance(end, date):
        ends = _start_of(end + timedelta(days=1), zone)
    if begins is not None and ends is not None and ends <= begins:
        raise Unprocessable(
            "`to` is before `from`",
            errors=[FieldProblem("to", "before_from", "the period ends before it starts")],
        )
    return Period(begins, ends)


def local_day(moment: datetime, zone: tzinfo) -> date:
    return moment.astimezone(zone).date()


def local_month(moment: datetime, zone: tzinfo) -> str:
    """``2026-03``: the month ``moment`` falls in where the work happens."""
    return moment.astimezone(zone).strftime("%Y-%m")


def days_spanned(started_at: datetime, ended_at: datetime, zone: tzinfo) -> int:
    """Calendar days a patrol touches, locally: out at 16:00, back next day at 10:00 is 2."""
    return (local_day(ended_at, zone) - local_day(started_at, zone)).days + 1
