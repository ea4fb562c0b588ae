"""The audit chain, on both databases: every kind of history it covers is chained as
it is written, and a row edited, deleted, moved or slipped in behind the service's
back, or a block re-ordered, is caught by ``verify`` and named."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sync.audit.verify import Report, verify
from sync.platform import chain
from tests.conftest import Caller, World
from tests.patrol_support import PatrolTablet, at, walk
from tests.people_support import Recorder
from tests.sync_support import change, push
from tests.test_migrations import fresh_engine  # noqa: F401  (a fixture)


def check(engine: Engine) -> Report:
    with engine.connect() as connection:
        return verify(connection)


def breaks(engine: Engine) -> list[str]:
    """Each break ``verify`` finds, as it prints it."""
    return [str(found) for found in check(engine).breaks]


def sql(engine: Engine, text: str, **params: Any) -> list[Any]:
    with engine.begin() as connection:
        result = connection.execute(sa.text(text), params)
        return list(result) if result.returns_rows else []


@pytest.fixture
def history(world: World) -> dict[str, Any]:
    """A patrol pushed with its track, edited and reviewed; families pushed, two people merged; a
    coordinator who took personal data out."""
    sector = world.sector("AM-01")["id"]
    community = world.community(sector, "Nueva Alianza")["id"]
    lead = world.user("ranger_lead", sector_ids=[sector])
    tablet = PatrolTablet(world.device(world.user("ranger", sector_ids=[sector])))
    patrol = tablet.patrol(
        sector_id=sector,
        started_at=at("2026-03-02T08:00:00-05:00"),
        ended_at=None,
        segments=[walk(at("2026-03-02T08:05:00-05:00"), -5.9, -77.3, minutes=10, step_m=40)],
    )
    tablet.seq += 1
    push(tablet.device, change("patrol", patrol, "update", tablet.seq, {"comment": "lluvia"},
                               base_version=1))  # fmt: skip
    assert lead.post(f"/patrols/{patrol}/review", json={"decision": "approve"}).status_code == 200
    coordinator = world.user("coordinator")
    recorder = Recorder(world.device(world.user("extension_worker", community_ids=[community])))
    jose = recorder.person(community, "José", "Núñez", "male", birth_year=1980)
    double = recorder.person(community, "Jose", "Nunez", "male", birth_year=1980)
    assert {r["status"] for r in recorder.sync()} == {"applied"}
    merged = coordinator.post("/people/merge", json={"keep_id": jose, "merge_id": double})
    assert merged.status_code == 200, merged.text
    assert coordinator.get("/people", params={"pii": "true"}).status_code == 200
    return {"patrol": patrol, "lead": lead, "coordinator": coordinator, "jose": jose}


def test_every_kind_of_history_is_chained_in_contiguous_blocks(
    history: dict[str, Any], engine: Engine
) -> None:
    report = check(engine)

    assert report.intact, report.summary()
    counts = {name: _count(engine, table) for name, table in chain.TABLES.items()}
    assert all(counts.values()), counts  # versions, reviews, merges, access: all written
    assert report.entries == sum(counts.values())
    blocks = sql(engine, "SELECT number, prev_hash, hash FROM audit_block ORDER BY number")
    assert [b.number for b in blocks] == list(range(1, len(blocks) + 1))
    assert [b.prev_hash for b in blocks] == [chain.GENESIS] + [b.hash for b in blocks[:-1]]
    assert report.head == blocks[-1].hash
    assert not sql(
        engine,
        "SELECT 1 FROM record_version WHERE chain_tx IS NULL OR chain_hash IS NULL "
        "UNION ALL SELECT 1 FROM patrol_review WHERE chain_tx IS NULL",
    )


def test_a_version_edited_behind_the_services_back_is_named(
    history: dict[str, Any], engine: Engine
) -> None:
    patrol = history["patrol"]
    sql(
        engine,
        "UPDATE record_version SET fields = :fields WHERE entity = 'patrol' AND version = 2",
        fields='{"comment": "sol", "sector_id": "x"}',
    )

    report = check(engine)

    assert not report.intact
    named = [str(b) for b in report.breaks]
    assert any(f"patrol {patrol} version 2: its content changed" in b for b in named), named
    assert any("do not hash to what it sealed" in b for b in named), named


def test_a_version_edited_with_its_hash_recomputed_still_breaks_its_block(
    history: dict[str, Any], engine: Engine
) -> None:
    """Whoever knows the row's form can hash the edit too: the block still knows."""
    table = chain.TABLES["record_version"]
    with engine.begin() as connection:
        row = dict(
            connection.execute(
                sa.select(table).where(table.c.entity == "patrol", table.c.version == 2)
            )
            .mappings()
            .one()
        )
        row["fields"] = {**row["fields"], "comment": "sol"}
        connection.execute(
            sa.update(table)
            .where(table.c.entity == "patrol", table.c.version == 2)
            .values(fields=row["fields"], chain_hash=chain.row_hash(table, row))
        )

    named = breaks(engine)

    assert len(named) == 1, named
    assert "do not hash to what it sealed" in named[0]


def test_a_deleted_review_and_a_re_ordered_block_are_caught(
    history: dict[str, Any], engine: Engine
) -> None:
    sql(engine, "DELETE FROM patrol_review")
    last = sql(engine, "SELECT max(number) FROM audit_block")[0][0]
    # The last two blocks swap places.
    sql(engine, "UPDATE audit_block SET number = -1 WHERE number = :n", n=last)
    sql(engine, "UPDATE audit_block SET number = :n WHERE number = :m", n=last, m=last - 1)
    sql(engine, "UPDATE audit_block SET number = :m WHERE number = -1", m=last - 1)

    named = breaks(engine)

    assert any("sealed 2 entries and 1 are left" in b or "sealed 1 entries and 0" in b
               for b in named), named  # fmt: skip
    assert any("does not follow the block before it" in b for b in named), named


def test_a_row_slipped_in_and_a_row_moved_to_another_block_are_caught(
    history: dict[str, Any], engine: Engine
) -> None:
    jose = history["jose"]
    sql(
        engine,
        "INSERT INTO record_version (entity, record_id, version, op, fields, changed, "
        "created_at) VALUES ('person', :id, 99, 'update', '{}', '[]', :now)",
        id=uuid.UUID(jose).hex if engine.dialect.name == "sqlite" else jose,
        now="2026-12-06 12:00:00.000000" if engine.dialect.name == "sqlite" else "2026-12-06Z",
    )
    first_tx = sql(engine, "SELECT tx FROM audit_block WHERE number = 1")[0][0]
    sql(
        engine,
        "UPDATE personal_data_access SET chain_tx = :tx",
        tx=first_tx,
    )

    named = breaks(engine)

    assert any(f"person {jose} version 99: it is in no block" in b for b in named), named
    assert any(b.startswith("block 1:") and "sealed" in b for b in named), named


def test_fieldsync_audit_verify_says_intact_or_where_it_breaks(
    history: dict[str, Any], engine: Engine, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from api import cli

    monkeypatch.setenv("FIELDSYNC_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("FIELDSYNC_ENV", "development")
    from sync.platform.settings import get_settings

    get_settings.cache_clear()
    try:
        assert cli.main(["audit", "verify"]) == 0
        assert "the audit chain is intact" in capsys.readouterr().out
        sql(engine, "DELETE FROM person_merge")
        assert cli.main(["audit", "verify"]) == 1
        assert "BROKEN" in capsys.readouterr().out
    finally:
        get_settings.cache_clear()


def test_a_transaction_that_writes_no_history_seals_no_block(world: World, engine: Engine) -> None:
    before = sql(engine, "SELECT count(*) FROM audit_block")[0][0]
    world.sector("AM-09")  # reference data: not chained history
    lead: Caller = world.user("ranger_lead")
    assert lead.get("/patrols").status_code == 200

    assert sql(engine, "SELECT count(*) FROM audit_block")[0][0] == before


def _count(engine: Engine, table: sa.Table) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def test_history_held_before_the_chain_is_chained_into_a_first_block(
    fresh_engine: Engine,  # noqa: F811
) -> None:
    """Migration 0017 on a database with history: downgraded past it (the chain gone)
    and upgraded again, all that is held is block 1, and the chain is intact."""
    from api.app import create_app
    from sync.platform import migrate
    from tests.asgi import TestClient
    from tests.conftest import make_settings

    migrate.upgrade(fresh_engine)
    settings = make_settings(fresh_engine.url.render_as_string(hide_password=False))
    with TestClient(create_app(settings, fresh_engine), base_url="http://t/api/v1") as client:
        world = World(client, fresh_engine, settings)
        sector = world.sector("AM-01")["id"]
        tablet = PatrolTablet(world.device(world.user("ranger", sector_ids=[sector])))
        for hour in (8, 9):
            tablet.patrol(sector_id=sector, started_at=at(f"2026-03-02T0{hour}:00:00-05:00"),
                          ended_at=None)  # fmt: skip
    held = _count(fresh_engine, chain.TABLES["record_version"])

    migrate.downgrade(fresh_engine, "0016")
    migrate.upgrade(fresh_engine)
    report = check(fresh_engine)

    assert report.intact, report.summary()
    assert (report.blocks, report.entries) == (1, held)


def test_rows_a_savepoint_rolled_back_are_not_sealed(world: World, engine: Engine) -> None:
    """A push retries a lost race in a savepoint: what the savepoint wrote and lost
    must not be counted in the block."""
    from schemas import PersonalDataAccess
    from schemas.types import utcnow
    from sync.platform.database import transaction

    world.user("coordinator")
    user_id = sql(engine, 'SELECT id FROM "user" LIMIT 1')[0][0]
    if isinstance(user_id, str):
        user_id = uuid.UUID(user_id)

    def access(path: str) -> PersonalDataAccess:
        return PersonalDataAccess(
            id=uuid.uuid4(), user_id=user_id, at=utcnow(), path=path, format="json"
        )

    with transaction(engine) as session:
        session.add(access("/kept/1"))
        session.flush()
        try:
            with session.begin_nested():
                session.add(access("/lost"))
                session.flush()
                raise RuntimeError("lost a race")
        except RuntimeError:
            pass
        session.add(access("/kept/2"))

    report = check(engine)
    last = sql(engine, "SELECT entries FROM audit_block ORDER BY number DESC LIMIT 1")[0][0]

    assert report.intact, report.summary()
    assert last == 2


def test_the_last_blocks_taken_off_the_end_are_missed(
    history: dict[str, Any], engine: Engine
) -> None:
    """Deleting the newest blocks and their rows leaves a chain that links: the head
    the clock's row keeps still names the block that was last."""
    last = sql(engine, "SELECT max(number) FROM audit_block")[0][0]
    tx = sql(engine, "SELECT tx FROM audit_block WHERE number = :n", n=last)[0][0]
    for table in chain.TABLES:
        sql(engine, f"DELETE FROM {table} WHERE chain_tx = :tx", tx=tx)  # noqa: S608
    sql(engine, "DELETE FROM audit_block WHERE number = :n", n=last)

    named = breaks(engine)

    assert named == [
        f"block {last}: the chain's head is block {last} and the last block found is "
        f"{last - 1}: blocks were removed from its end, or rewritten"
    ]


def _edit_fields(engine: Engine, record_id: str, version: int, **changes: Any) -> None:
    """Change fields of a version in place, as someone with the database would."""
    table = chain.TABLES["record_version"]
    where = (table.c.record_id == uuid.UUID(record_id), table.c.version == version)
    with engine.begin() as connection:
        row = connection.execute(sa.select(table.c.fields).where(*where)).one()
        connection.execute(sa.update(table).where(*where).values(fields={**row.fields, **changes}))


def test_verify_says_what_was_changed_where_the_rest_of_the_history_tells(
    history: dict[str, Any], engine: Engine
) -> None:
    """Version 2 of the patrol wrote its comment; version 3 (the review) left it."""
    _edit_fields(engine, history["patrol"], 2, comment="sol")

    named = breaks(engine)

    assert any(
        f"patrol {history['patrol']} version 2: its content changed since it was chained "
        "(changed: comment reads 'sol'; version 3, which did not change it, reads 'lluvia')" in b
        for b in named
    ), named


def test_an_edited_last_version_is_compared_with_what_tablets_pull(
    history: dict[str, Any], engine: Engine
) -> None:
    _edit_fields(engine, history["patrol"], 3, comment="sol")

    named = breaks(engine)

    assert any(
        "version 3: its content changed since it was chained (changed: comment reads "
        "'sol'; the record as tablets pull it reads 'lluvia')" in b
        for b in named
    ), named


def test_a_personal_value_edited_is_named_and_never_shown(
    history: dict[str, Any], engine: Engine
) -> None:
    _edit_fields(engine, history["jose"], 1, phone="999 000 111")

    named = "\n".join(breaks(engine))

    assert "(changed: phone (personal data, not shown))" in named, named
    assert "999 000 111" not in named


def test_an_edit_its_history_cannot_place_is_still_named(
    history: dict[str, Any], engine: Engine
) -> None:
    sql(engine, "UPDATE record_version SET op = 'delete' WHERE entity = 'patrol' AND version = 1")

    named = breaks(engine)

    assert any(
        "version 1: its content changed since it was chained "
        "(which column, its history does not tell)" in b
        for b in named
    ), named
