"""Column types that behave the same on SQLite and PostgreSQL."""

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlmodel import SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


NAIVE = "naive datetime given to a UTC column; attach a timezone"


def sqlite_time(value: datetime) -> str:
    """An aware time as SQLite holds a ``UTCDateTime``: naive UTC text of fixed width,
    to the microsecond (``2026-03-09 12:34:02.000000``), so text order is time order."""
    # The first 26 characters, without "+00:00": quicker than a naive copy.
    return value.astimezone(UTC).isoformat(" ", "microseconds")[:26]


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A point in time, stored as UTC and always read back timezone-aware.

    PostgreSQL keeps it as ``timestamptz``. SQLite has no time type: it is stored as
    naive UTC text of fixed width, so text order is time order.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(NAIVE)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect: Dialect) -> Any:
        """On SQLite, the time as the text ``sa.DateTime`` stores (``2026-03-09
        12:34:02.000000``) in one step: through ``process_bind_param`` and then the
        dialect's format string, it took 2.4 µs, and 1.2 so; a push writes about ten a
        change, under SQLite's write lock."""
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is None:
                raise ValueError(NAIVE)
            return sqlite_time(value)

        return process

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# JSON documents: JSONB on PostgreSQL (indexable), JSON text on SQLite.
JSONDocument: sa.types.TypeEngine[Any] = sa.JSON().with_variant(JSONB(), "postgresql")

# Documents only ever written and read whole (a record's pull snapshot, its versions,
# the changes devices sent): JSON text on both. PostgreSQL keeps JSON as given, where
# JSONB would parse every document written, and a pull reads it back as it is.
JSONText: sa.types.TypeEngine[Any] = sa.JSON()


# Constraint names the same on SQLite and PostgreSQL, so later migrations can name
# them (SQLite's batch mode needs names to drop or alter a constraint).
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
