"""Real test databases: a fresh SQLite file, or a fresh database on the PostgreSQL server.

PostgreSQL is reached at ``FIELDSYNC_TEST_POSTGRES_URL`` (the Makefile sets the
machine's server). Each test run, and each xdist worker, makes its own database and
drops it at the end. An unreachable server fails the run; set
``FIELDSYNC_TEST_BACKENDS=sqlite`` to leave PostgreSQL out on purpose (never in CI).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def backends() -> list[str]:
    chosen = [
        name.strip()
        for name in os.environ.get("FIELDSYNC_TEST_BACKENDS", "sqlite,postgresql").split(",")
        if name.strip()
    ]
    if os.environ.get("CI", "").lower() == "true" and "postgresql" not in chosen:
        raise RuntimeError("CI runs every storage test on PostgreSQL too; it cannot be left out")
    return chosen


def postgres_server_url() -> sa.URL:
    return sa.make_url(os.environ.get("FIELDSYNC_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))


@contextmanager
def fresh_database(backend: str, folder: Path) -> Iterator[str]:
    """The URL of a new, empty database, dropped when the block ends."""
    name = f"fieldsync_test_{uuid.uuid4().hex[:12]}"
    if backend == "sqlite":
        yield f"sqlite:///{folder / (name + '.db')}"
        return
    server = postgres_server_url()
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as error:
        admin.dispose()
        raise RuntimeError(
            f"PostgreSQL is not reachable at {server.render_as_string(hide_password=True)}: "
            "start it, or set FIELDSYNC_TEST_BACKENDS=sqlite to test SQLite alone"
        ) from error
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
