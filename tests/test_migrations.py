"""The migrations: they go up and down cleanly, match the models, and are named and
chained as the project reviews them. Each test makes its own database on each backend."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

import schemas  # noqa: F401  (registers every table on SQLModel.metadata)
from sync import migrate
from sync.database import create_db_engine
from tests.databases import fresh_database

VERSIONS = Path(migrate.SCRIPT_LOCATION) / "versions"
FILE_NAME = re.compile(r"^(\d{4})_(\d{2})_(\d{2})_(?P<rev>[0-9a-z]+)_(?P<slug>[a-z0-9_]+)\.py$")


@pytest.fixture
def fresh_engine(backend: str, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a new, empty database of its own (not the shared test database)."""
    with fresh_database(backend, tmp_path) as url:
        engine = create_db_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


def _tables(engine: Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_upgrade_to_head_then_downgrade_to_base_then_upgrade_again(fresh_engine: Engine) -> None:
    migrate.upgrade(fresh_engine)
    assert migrate.is_at_head(fresh_engine)
    assert set(SQLModel.metadata.tables) <= _tables(fresh_engine)

    migrate.downgrade(fresh_engine, "base")
    assert _tables(fresh_engine) == {"alembic_version"}
    assert migrate.current_revision(fresh_engine) is None
    if fresh_engine.dialect.name == "postgresql":
        # Nothing of the schema lingers outside tables either (types, sequences).
        inspector = sa.inspect(fresh_engine)
        assert inspector.get_enums() == []  # type: ignore[attr-defined]
        assert inspector.get_sequence_names() == []

    migrate.upgrade(fresh_engine)
    assert migrate.is_at_head(fresh_engine)
    assert set(SQLModel.metadata.tables) | {"alembic_version"} == _tables(fresh_engine)


def test_the_migrated_schema_matches_the_models_with_no_drift(fresh_engine: Engine) -> None:
    migrate.upgrade(fresh_engine)
    with fresh_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == []


def test_every_migration_file_is_named_by_date_revision_and_slug() -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config())
    files = sorted(p.name for p in VERSIONS.glob("*.py") if p.name != "__init__.py")
    assert files, "no migrations found"
    revisions = {rev.revision: Path(rev.path).name for rev in script.walk_revisions()}
    assert sorted(revisions.values()) == files  # every file is a migration, and vice versa
    for revision, name in revisions.items():
        match = FILE_NAME.match(name)
        assert match, f"{name} is not YYYY_MM_DD_<rev>_<slug>.py"
        date(*(int(part) for part in match.groups()[:3]))  # a real calendar date
        assert match["rev"] == revision, f"{name} names revision {match['rev']}, not {revision}"


def test_the_migrations_have_exactly_one_head() -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config())
    heads = script.get_heads()
    assert len(heads) == 1, f"several heads, merge them: {heads}"
    assert migrate.head_revision() == heads[0]
