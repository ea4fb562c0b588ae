"""Whether the service can serve: its database answers and is migrated to head."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sync.platform import migrate
from sync.platform.errors import ServiceUnavailable


@dataclass(frozen=True)
class Readiness:
    database: str
    revision: str | None


def check_ready(engine: Engine) -> Readiness:
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        revision = migrate.current_revision(engine)
    except sa.exc.SQLAlchemyError as error:
        raise ServiceUnavailable(
            f"the database does not answer: {type(error).__name__}", code="database_unavailable"
        ) from error
    head = migrate.head_revision()
    if revision != head:
        raise ServiceUnavailable(
            f"the database is at migration {revision}, the code needs {head}; "
            "run `fieldsync db upgrade`",
            code="migrations_pending",
        )
    return Readiness(database=engine.dialect.name, revision=revision)
