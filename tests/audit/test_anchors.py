"""Anchors of the audit chain, on both databases: the head signed with the office's
key, kept in a file and the database, listed to the office; and a chain rewritten
from before an anchor — every hash recomputed, so that it links and verifies on its
own — caught by the anchor."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from schemas.audit import AuditBlock
from sync.audit import anchors
from sync.audit.verify import verify
from sync.platform import chain
from tests.audit.test_chain import (
    history,  # noqa: F401  (a fixture)
    sql,
)
from tests.conftest import World


@pytest.fixture
def office(monkeypatch: pytest.MonkeyPatch, engine: Engine, tmp_path: Path) -> Iterator[Path]:
    """The settings ``fieldsync audit`` reads: the test database, a new key, a file."""
    from sync.platform.settings import get_settings

    seed, _ = anchors.keygen()
    file = tmp_path / "anclas.jsonl"
    monkeypatch.setenv("FIELDSYNC_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("FIELDSYNC_ENV", "development")
    monkeypatch.setenv("FIELDSYNC_AUDIT_SIGNING_KEY", seed)
    monkeypatch.setenv("FIELDSYNC_AUDIT_ANCHOR_FILE", str(file))
    get_settings.cache_clear()
    yield file
    get_settings.cache_clear()


def fieldsync(*args: str, capsys: Any) -> tuple[int, str]:
    from api import cli

    code = cli.main(list(args))
    return code, capsys.readouterr().out


def rewrite_from(engine: Engine, first: int) -> None:
    """What someone with the database could do: edit a version sealed in block
    ``first``, then hash it, its block and every block after it again."""
    rows = chain.TABLES["record_version"]
    blocks = chain.table_of(AuditBlock)
    with engine.begin() as connection:
        tx = connection.execute(sa.select(blocks.c.tx).where(blocks.c.number == first)).scalar()
        row = dict(connection.execute(
            sa.select(rows).where(rows.c.chain_tx == tx).limit(1)
        ).mappings().one())  # fmt: skip
        row["op"] = "update" if row["op"] != "update" else "create"
        pseudonym_key = chain.key_read(connection)
        key = [rows.c[name] == row[name] for name in ("entity", "record_id", "version")]
        connection.execute(
            sa.update(rows)
            .where(*key)
            .values(op=row["op"], chain_hash=chain.row_hash(rows, row, key=pseudonym_key))
        )
        prev = (
            connection.execute(
                sa.select(blocks.c.hash).where(blocks.c.number == first - 1)
            ).scalar()
            or chain.GENESIS
        )
        for block in connection.execute(
            sa.select(blocks).where(blocks.c.number >= first).order_by(blocks.c.number)
        ).all():
            hashes = []
            for table in chain.TABLES.values():
                for found in connection.execute(
                    sa.select(table).where(table.c.chain_tx == block.tx)
                ).mappings():
                    hashes.append(chain.row_hash(table, dict(found), key=pseudonym_key))
            new = chain.block_hash(block.number, prev, block.tx, len(hashes),
                                   chain.digest_of(hashes), form=block.form)  # fmt: skip
            connection.execute(
                sa.update(blocks).where(blocks.c.number == block.number)
                .values(prev_hash=prev, hash=new)
            )  # fmt: skip
            prev = new
        connection.execute(sa.text("UPDATE sync_clock SET chain_hash = :h"), {"h": prev})


def test_an_anchor_is_signed_kept_and_listed_to_the_office(
    history: dict[str, Any],  # noqa: F811
    office: Path,
    world: World,
    engine: Engine,
    capsys: Any,
) -> None:
    code, printed = fieldsync("audit", "anchor", capsys=capsys)

    assert code == 0
    line = json.loads(printed)
    head = sql(engine, "SELECT chain_number, chain_hash FROM sync_clock")[0]
    assert (line["block"], line["hash"]) == (head.chain_number, head.chain_hash)
    assert [json.loads(kept) for kept in office.read_text().splitlines()] == [line]
    [made] = anchors.read_file(office)
    assert anchors.signed(made)
    listed = history["coordinator"].get("/audit/anchors")
    assert listed.status_code == 200
    assert [a["signature"] for a in listed.json()] == [line["signature"]]
    ranger = world.user("ranger")
    assert ranger.get("/audit/anchors").status_code == 403
    assert world.client.get("/audit/anchors").status_code == 401


def test_a_chain_rewritten_from_before_an_anchor_verifies_alone_but_not_against_it(
    history: dict[str, Any],  # noqa: F811
    office: Path,
    engine: Engine,
    capsys: Any,
) -> None:
    assert fieldsync("audit", "anchor", capsys=capsys)[0] == 0
    sql(engine, "DELETE FROM audit_anchor")  # whoever rewrites it drops the anchors kept
    rewrite_from(engine, 2)

    with engine.connect() as connection:
        alone = verify(connection)
        against = verify(connection, anchors.read_file(office))
    code, printed = fieldsync("audit", "verify", "--anchors", str(office), capsys=capsys)

    assert alone.intact, alone.summary()  # the rewrite links and hashes
    assert not against.intact
    assert "was rewritten from before it" in str(against.breaks[0])
    assert code == 1
    assert "rewritten from before it" in printed


def test_an_altered_anchor_and_a_missing_key_are_refused(
    history: dict[str, Any],  # noqa: F811
    office: Path,
    engine: Engine,
    capsys: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sync.platform.settings import get_settings

    assert fieldsync("audit", "anchor", capsys=capsys)[0] == 0
    sql(engine, "UPDATE audit_anchor SET block = block - 1")
    with engine.connect() as connection:
        breaks = [str(b) for b in verify(connection).breaks]
    assert any("its signature is not its key's" in b for b in breaks), breaks

    monkeypatch.setenv("FIELDSYNC_AUDIT_SIGNING_KEY", "not-a-key")
    get_settings.cache_clear()
    assert fieldsync("audit", "anchor", capsys=capsys)[0] == 1
    monkeypatch.delenv("FIELDSYNC_AUDIT_SIGNING_KEY")
    get_settings.cache_clear()
    assert fieldsync("audit", "anchor", capsys=capsys)[0] == 1


def test_keygen_makes_a_key_anchor_can_use(capsys: Any) -> None:
    code, printed = fieldsync("audit", "keygen", capsys=capsys)

    assert code == 0
    seed = printed.splitlines()[0].removeprefix("FIELDSYNC_AUDIT_SIGNING_KEY=")
    public = printed.splitlines()[1].rsplit(" ", 1)[1]
    assert anchors.public_key_of(anchors.signing_key(seed)) == public
