"""Running Alembic from the service: upgrade, downgrade, and whether a database is at head."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

import migrations
from sync.platform.database import WRITE, transaction_lock

SCRIPT_LOCATION = str(Path(migrations.__file__).parent)


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    return config


# Several replicas may start at once and each run the migrations: on PostgreSQL they
# queue on this lock (held to the end of the transaction) and the later ones find
# nothing left to do. SQLite's single writer serialises them by itself.
MIGRATION_LOCK_KEY = 0x6669656C6473796E  # "fieldsyn"


def upgrade(engine: Engine, revision: str = "head") -> None:
    with _migrating(engine) as config:
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str) -> None:
    with _migrating(engine) as config:
        command.downgrade(config, revision)


@contextmanager
def _migrating(engine: Engine) -> Iterator[Config]:
    """An Alembic config bound to one locked transaction: all of it applies, or none."""
    with engine.connect().execution_options(**{WRITE: True}) as connection, connection.begin():
        transaction_lock(connection, MIGRATION_LOCK_KEY)
        config = alembic_config()
        config.attributes["connection"] = connection
        yield config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def is_at_head(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()
