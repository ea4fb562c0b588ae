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
from sync.platform import migrate
from sync.platform.database import create_db_engine
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


def test_reviews_made_before_0006_are_recovered_from_the_version_history(
    fresh_engine: Engine,
) -> None:
    """Review a patrol three times through the API, drop ``patrol_review`` (back to
    0005), upgrade again: the reviews are rebuilt from the patrol's versions. Only the
    latest comment was kept (on the patrol) before 0006; earlier ones are lost."""
    from api.app import create_app
    from tests.asgi import TestClient
    from tests.conftest import World, make_settings
    from tests.patrol_support import PatrolTablet, at
    from tests.sync_support import change, push

    migrate.upgrade(fresh_engine)
    settings = make_settings(fresh_engine.url.render_as_string(hide_password=False))
    with TestClient(create_app(settings, fresh_engine), base_url="http://t/api/v1") as client:
        world = World(client, fresh_engine, settings)
        sector = world.sector("AM-01")
        lead = world.user("ranger_lead", sector_ids=[sector["id"]])
        tablet = PatrolTablet(world.device(world.user("ranger", sector_ids=[sector["id"]])))
        patrol = tablet.patrol(
            sector_id=sector["id"], started_at=at("2026-03-02T08:00:00-05:00"), ended_at=None
        )
        back = {"decision": "return", "comment": "falta track"}
        assert lead.post(f"/patrols/{patrol}/review", json=back).status_code == 200
        tablet.seq += 1
        again = change("patrol", patrol, "update", tablet.seq, {"status": "submitted"})
        push(tablet.device, {**again, "base_version": 2})
        back = {"decision": "return", "comment": "la hora final"}
        assert lead.post(f"/patrols/{patrol}/review", json=back).status_code == 200
        before = client.get(f"/patrols/{patrol}", headers=lead.headers).json()["reviews"]

        migrate.downgrade(fresh_engine, "0005")
        migrate.upgrade(fresh_engine)

        after = client.get(f"/patrols/{patrol}", headers=lead.headers).json()["reviews"]
    assert [(r["decision"], r["comment"], r["version"]) for r in before] == [
        ("return", "falta track", 2),
        ("return", "la hora final", 4),
    ]
    assert [(r["decision"], r["comment"], r["version"]) for r in after] == [
        ("return", None, 2),
        ("return", "la hora final", 4),
    ]
    assert [r["reviewed_at"] for r in after] == [r["reviewed_at"] for r in before]
