"""``UTCDateTime`` on SQLite: its one-step writer stores every time as the text the
two-step one did (``process_bind_param``, then ``sa.DateTime``'s format string), so
that text order stays time order across the rows written before and after it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Engine

from schemas.types import NAIVE, UTCDateTime

DIALECT = sqlite.dialect()
OFFSETS = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
# Far enough from the ends of the calendar that every offset can be turned to UTC.
TIMES = st.datetimes(
    min_value=datetime(2, 1, 1),  # noqa: DTZ001 (hypothesis's bounds are naive)
    max_value=datetime(9998, 12, 31),  # noqa: DTZ001
    timezones=OFFSETS,
)


def _as_before(value: datetime) -> str:
    column = UTCDateTime()
    utc = column.process_bind_param(value, DIALECT)
    format_string = sa.DateTime().dialect_impl(DIALECT).bind_processor(DIALECT)
    assert format_string is not None
    written: str = format_string(utc)
    return written


@given(TIMES)
def test_a_time_is_stored_as_the_text_it_always_was(value: datetime) -> None:
    process = UTCDateTime().bind_processor(DIALECT)

    assert process(value) == _as_before(value)


def test_no_time_is_stored_as_null_and_a_naive_one_is_refused() -> None:
    process = UTCDateTime().bind_processor(DIALECT)

    assert process(None) is None
    with pytest.raises(ValueError, match=NAIVE):
        process(datetime(2026, 3, 9, 12, 34))  # noqa: DTZ001 (naive on purpose)


def test_a_time_reads_back_as_written(engine: Engine) -> None:
    table = sa.Table("times", sa.MetaData(), sa.Column("at", UTCDateTime()))
    written = datetime(2026, 3, 9, 7, 34, 2, 5, tzinfo=timezone(timedelta(hours=-5)))
    with engine.begin() as connection:
        table.create(connection)
        connection.execute(sa.insert(table), [{"at": written}])
        read = connection.execute(sa.select(table.c.at)).scalar_one()
        table.drop(connection)

    assert read == written
    assert read.tzinfo == UTC
