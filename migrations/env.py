"""Alembic environment: runs migrations on a connection handed in, or on the configured URL."""

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import schemas  # noqa: F401  (registers every table on SQLModel.metadata)
from sync.platform.database import create_db_engine
from sync.platform.settings import get_settings

target_metadata = SQLModel.metadata


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url") or get_settings().database_url
    engine = create_db_engine(url)
    try:
        with engine.connect() as connection:
            run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run them on a database")
main()
