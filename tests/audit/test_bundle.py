"""The verifier's bundle, on both databases: an honest export verifies with the
standalone script alone and gives the office's figures; nothing personal is in it;
a bundle tampered with in any of its parts, or a database edited before the export,
fails; and history hashed before pseudonyms is sealed but withheld."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Callable
from contextlib import redirect_stdout
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.engine import Engine

from schemas.records import Program
from sync.audit import anchors, bundle, verify_bundle
from sync.audit.verify import verify
from sync.platform import chain
from tests.audit.test_anchors import fieldsync, office  # noqa: F401  (a fixture)
from tests.conftest import World
from tests.patrol_support import PatrolTablet, at, walk
from tests.people_support import Recorder
from tests.test_migrations import fresh_engine  # noqa: F401  (a fixture)

LIMA = ZoneInfo("America/Lima")
MARCH = {"start": date(2026, 3, 1), "end": date(2026, 3, 31), "zone": LIMA}
DOCUMENT, PHONE = "40718833", "942 555 013"
PERSONAL = ("María", "Quispe", "José", "Núñez", DOCUMENT, PHONE, "-5.9231")


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def field(world: World) -> dict[str, Any]:
    """March 2026 in one community: a patrol walked and approved; María and José
    trained in coffee, José also in finance and registered twice (merged); a family
    with its home and an agreement in force; personal data taken out once."""
    sector = world.sector("AM-01")["id"]
    community = world.community(sector, "Nueva Alianza")["id"]
    lead = world.user("ranger_lead", sector_ids=[sector])
    tablet = PatrolTablet(world.device(world.user("ranger", sector_ids=[sector])))
    patrol = tablet.patrol(
        sector_id=sector,
        started_at=at("2026-03-02T08:00:00-05:00"),
        ended_at=at("2026-03-02T11:30:00-05:00"),
        segments=[walk(at("2026-03-02T08:00:00-05:00"), -5.9, -77.3, minutes=60, step_m=50)],
    )
    assert lead.post(f"/patrols/{patrol}/review", json={"decision": "approve"}).status_code == 200
    recorder = Recorder(world.device(world.user("extension_worker", community_ids=[community])))
    maria = recorder.person(community, "María", "Quispe", "female", doc_type="dni",
                            doc_number="12345678", phone=PHONE)  # fmt: skip
    jose = recorder.person(community, "José", "Núñez", "male", doc_type="dni",
                           doc_number=DOCUMENT)  # fmt: skip
    again = recorder.person(community, "Jose", "Nunez", "male", doc_type="dni",
                            doc_number=DOCUMENT)  # fmt: skip
    place = {"community_id": community, "location": {"lat": -5.9231, "lon": -77.3012}}
    home = recorder.record("household", {**place, "head_person_id": maria})
    recorder.record("agreement", {"household_id": home, "community_id": community,
                                  "status": "active", "valid_from": "2026-01-01",
                                  "valid_until": "2028-12-31"})  # fmt: skip
    coffee = recorder.session(community, "coffee_production", "2026-03-05T09:00:00-05:00")
    finance = recorder.session(community, "financial_skills", "2026-03-06T09:00:00-05:00")
    for session, person in ((coffee, maria), (coffee, jose), (coffee, again), (finance, jose)):
        recorder.attend(session, person)
    assert {r["status"] for r in recorder.sync()} == {"applied"}
    coordinator = world.user("coordinator")
    merged = coordinator.post("/people/merge", json={"keep_id": jose, "merge_id": again})
    assert merged.status_code == 200, merged.text
    assert coordinator.get("/people", params={"pii": "true", "q": "Quispe"}).status_code == 200
    return {"maria": maria, "jose": jose, "again": again, "coffee": coffee, "finance": finance}


def export(engine: Engine, out: Path, key: Ed25519PrivateKey | None, **more: Any) -> Path:
    bundle.export(engine, out, **{**MARCH, **more}, signing_key=key,
                  anchor_file=out.parent / "anchors.jsonl")  # fmt: skip
    return out


def check(folder: Path, *args: str) -> tuple[int, str]:
    """The standalone script's exit code and what it printed."""
    printed = io.StringIO()
    with redirect_stdout(printed):
        code = verify_bundle.main([str(folder), *args])
    return code, printed.getvalue()


def figures(printed: str) -> dict[str, Any]:
    text = printed.split("counted from the records:\n", 1)[1]
    found: dict[str, Any] = json.JSONDecoder().raw_decode(text)[0]
    return found


def public(key: Ed25519PrivateKey) -> str:
    return anchors.public_key_of(key)


def test_an_honest_bundle_verifies_with_the_standard_library_alone(
    field: dict[str, Any], engine: Engine, key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    folder = export(engine, tmp_path / "bundle", key)

    # Run as an auditor would: a plain Python, isolated from this project and its venv.
    shown = subprocess.run(
        [sys.executable, "-I", "-S", "verify_bundle.py", "--key", public(key)],
        cwd=folder, capture_output=True, text=True, timeout=60,
        env={"PATH": os.environ.get("PATH", "")},
    )  # fmt: skip

    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "VERIFIED: every hash checks" in shown.stdout
    found = figures(shown.stdout)
    assert found["training"]["coffee_production"] == {
        "participants": 2,  # María, and José once: his second registration was merged
        "women": 1,
        "men": 1,
        "women_share": 0.5,
        "headcount_sessions": 0,
        "headcount_people": 0,
    }
    assert found["training"]["financial_skills"]["participants"] == 1
    assert found["agreements"] == {
        "households": 1,
        "agreements_in_force": 1,
        "households_with_agreement_in_force": 1,
    }
    assert found["patrols"]["patrols"] == 1
    assert found["patrols"]["by_status"] == {"approved": 1}
    assert found["patrols"]["hours"] == 3.5
    assert found["patrols"]["km_walked"] == 3.0  # 60 minutes, 50 m a minute
    assert found["people"] == {"people": 2, "registered_twice": 0}


def test_the_office_figures_in_the_bundle_are_its_reports(
    field: dict[str, Any], engine: Engine, key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    folder = export(engine, tmp_path / "bundle", key)

    claims = json.loads((folder / "bundle.json").read_text())["office_figures"]

    assert claims["training"]["coffee_production"]["participants"] == 2
    assert claims["training"]["coffee_production"]["women_share"] == 0.5
    assert claims["agreements"]["households_with_agreement_in_force"] == 1
    assert claims["patrols"] == {"patrols": 1, "by_status": {"approved": 1}, "hours": 3.5}


def test_nothing_personal_leaves_in_the_bundle_and_pseudonyms_link_one_document(
    field: dict[str, Any], engine: Engine, key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    folder = export(engine, tmp_path / "bundle", key)

    held = b"".join(path.read_bytes() for path in folder.iterdir() if path.suffix != ".py")
    for value in PERSONAL:
        assert value.encode() not in held, value
    people = [
        json.loads(row["content"])
        for row in map(json.loads, (folder / "rows.jsonl").read_text().splitlines())
        if '"entity":"person"' in row.get("content", "")
    ]
    by_id = {person["record_id"]: person["pseudonyms"] for person in people}
    jose, again, maria = (by_id[field[name]] for name in ("jose", "again", "maria"))
    assert jose["doc_number"] == again["doc_number"]  # one document, one pseudonym
    assert jose["doc_number"] != maria["doc_number"]
    assert jose["given_names"] != again["given_names"]  # names are keyed by record
    assert set(maria) == {"given_names", "paternal_surname", "doc_number", "phone"}
    assert "doc_number" not in people[0]["fields"]


@pytest.mark.parametrize(
    ("tamper", "named"),
    [
        pytest.param(
            lambda rows, blocks, anchors, manifest: _edit_row(rows, '"female"', '"male"'),
            "is not what was hashed: person",
            id="a-row-edited",
        ),
        pytest.param(
            lambda rows, blocks, anchors, manifest: rows.pop(len(rows) // 2),
            "rows and the bundle has",
            id="a-row-removed",
        ),
        pytest.param(
            lambda rows, blocks, anchors, manifest: blocks.insert(1, blocks.pop(2)),
            "does not follow the block before it",
            id="blocks-re-ordered",
        ),
        pytest.param(
            lambda rows, blocks, anchors, manifest: blocks.pop(),
            "is signed by no anchor",
            id="the-signed-end-cut-off",
        ),
        pytest.param(
            lambda rows, blocks, anchors, manifest: _edit_json(anchors, 0, "block", 1),
            "its signature is not its key's",
            id="an-anchor-altered",
        ),
        pytest.param(
            lambda rows, blocks, anchors, manifest: _edit_claim(manifest),
            "the office reports 3, the records give 2",
            id="a-figure-claimed-that-the-records-do-not-give",
        ),
    ],
)
def test_a_tampered_bundle_fails_and_says_where(
    field: dict[str, Any],
    engine: Engine,
    key: Ed25519PrivateKey,
    tmp_path: Path,
    tamper: Callable[[list[str], list[str], list[str], dict[str, Any]], Any],
    named: str,
) -> None:
    folder = export(engine, tmp_path / "bundle", key)
    files = {name: (folder / name).read_text().splitlines() for name in
             ("rows.jsonl", "blocks.jsonl", "anchors.jsonl")}  # fmt: skip
    manifest = json.loads((folder / "bundle.json").read_text())

    tamper(files["rows.jsonl"], files["blocks.jsonl"], files["anchors.jsonl"], manifest)
    for name, lines in files.items():
        (folder / name).write_text("".join(line + "\n" for line in lines))
    (folder / "bundle.json").write_text(json.dumps(manifest))
    code, printed = check(folder, "--key", public(key))

    assert code == 1
    assert "NOT VERIFIED" in printed
    assert named in printed, printed


def _edit_row(rows: list[str], old: str, new: str) -> None:
    for index, line in enumerate(rows):
        row = json.loads(line)
        if old in row.get("content", ""):
            row["content"] = row["content"].replace(old, new)
            rows[index] = json.dumps(row, ensure_ascii=False)
            return
    raise AssertionError(old)


def _edit_json(lines: list[str], index: int, name: str, value: Any) -> None:
    document = json.loads(lines[index])
    document[name] = value
    lines[index] = json.dumps(document)


def _edit_claim(manifest: dict[str, Any]) -> None:
    manifest["office_figures"]["training"]["coffee_production"]["participants"] = 3


def test_a_row_edited_in_the_database_before_the_export_is_caught_by_the_script(
    field: dict[str, Any], engine: Engine, key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    """María made a man behind the service's back, then exported."""
    table = chain.TABLES["record_version"]
    version = (table.c.record_id == uuid.UUID(field["maria"]), table.c.version == 1)
    with engine.begin() as connection:
        row = connection.execute(sa.select(table).where(*version)).mappings().one()
        connection.execute(
            sa.update(table).where(*version).values(fields={**row["fields"], "sex": "male"})
        )
    folder = export(engine, tmp_path / "bundle", key)

    code, printed = check(folder, "--key", public(key))

    assert code == 1
    assert f"is not what was hashed: person {field['maria']} version 1" in printed
    assert "its rows do not hash to what it sealed" in printed


def test_only_the_anchors_of_the_key_given_count(
    field: dict[str, Any], engine: Engine, key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    folder = export(engine, tmp_path / "bundle", key)
    stranger = public(Ed25519PrivateKey.generate())

    code, printed = check(folder, "--key", stranger)

    assert code == 1
    assert "is signed by no anchor of the key given" in printed
    assert check(folder, "--key", public(key))[0] == 0


def test_a_bundle_the_office_did_not_sign_does_not_verify(
    field: dict[str, Any], engine: Engine, tmp_path: Path
) -> None:
    folder = export(engine, tmp_path / "bundle", None)

    code, printed = check(folder)

    assert code == 1
    assert "is signed by no anchor: nothing shows the office stands by this chain" in printed


def test_with_a_programme_the_others_trainings_are_sealed_but_withheld(
    field: dict[str, Any], engine: Engine, key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    folder = export(engine, tmp_path / "bundle", key, program=Program.coffee_production)

    code, printed = check(folder, "--key", public(key))

    assert code == 0, printed
    assert "2 rows withheld (another programme)" in printed  # the session and José there
    assert field["finance"] not in (folder / "rows.jsonl").read_text()
    assert list(figures(printed)["training"]) == ["coffee_production"]


def test_a_zip_is_written_whole_and_an_existing_bundle_is_never_overwritten(
    field: dict[str, Any], engine: Engine, key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    out = export(engine, tmp_path / "marzo.zip", key)
    with zipfile.ZipFile(out) as archive:
        archive.extractall(tmp_path / "opened")

    assert check(tmp_path / "opened" / "marzo", "--key", public(key))[0] == 0
    with pytest.raises(bundle.ExportRefused, match="exists already"):
        export(engine, out, key)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["anchors.jsonl", "marzo.zip", "opened"]


def test_history_hashed_before_pseudonyms_is_sealed_and_withheld_and_verifies(
    fresh_engine: Engine,  # noqa: F811
    key: Ed25519PrivateKey,
    tmp_path: Path,
) -> None:
    """Migration 0017 chains people in the first form, values as held; 0019 keeps that
    block as it is. The office still verifies it; a bundle shows it only as hashes."""
    from api.app import create_app
    from sync.platform import migrate
    from tests.asgi import TestClient
    from tests.conftest import make_settings

    migrate.upgrade(fresh_engine)
    settings = make_settings(fresh_engine.url.render_as_string(hide_password=False))
    with TestClient(create_app(settings, fresh_engine), base_url="http://t/api/v1") as client:
        world = World(client, fresh_engine, settings)
        community = world.community(world.sector("AM-01")["id"], "Nueva Alianza")["id"]
        worker = world.device(world.user("extension_worker", community_ids=[community]))
        recorder = Recorder(worker)
        recorder.person(community, "María", "Quispe", "female", doc_number=DOCUMENT)
        recorder.sync()
        migrate.downgrade(fresh_engine, "0016")
        migrate.upgrade(fresh_engine)  # block 1, the first form
        recorder.person(community, "José", "Núñez", "male", doc_number=DOCUMENT)
        recorder.sync()  # block 2, pseudonyms
    with fresh_engine.connect() as connection:
        report = verify(connection)
        forms = connection.execute(sa.text("SELECT form FROM audit_block ORDER BY number"))
        assert [form for (form,) in forms] == [chain.FORM_1, chain.FORM]
    assert report.intact, report.summary()

    folder = export(fresh_engine, tmp_path / "bundle", key)
    code, printed = check(folder, "--key", public(key))

    assert code == 0, printed
    assert "1 rows withheld (personal data hashed before pseudonyms)" in printed
    assert figures(printed)["people"] == {"people": 2, "registered_twice": 1}
    held = b"".join(path.read_bytes() for path in folder.iterdir() if path.suffix != ".py")
    assert DOCUMENT.encode() not in held
    assert b"Quispe" not in held


def test_fieldsync_audit_export_signs_the_end_and_refuses_what_it_cannot_do(
    field: dict[str, Any],
    office: Path,  # noqa: F811
    tmp_path: Path,
    capsys: Any,
) -> None:
    from api import cli

    out = tmp_path / "marzo"
    args = ("audit", "export", "--from", "2026-03-01", "--to", "2026-03-31")

    code, printed = fieldsync(*args, "--out", str(out), capsys=capsys)

    assert code == 0
    [made] = anchors.read_file(office)  # the bundle's end, signed and kept
    assert f"signed: {anchors.line_of(made)}" in printed
    assert check(out, "--key", made.public_key)[0] == 0
    assert cli.main([*args, "--out", str(out)]) == 1
    assert "exists already" in capsys.readouterr().err
    backwards = ("audit", "export", "--from", "2026-03-31", "--to", "2026-03-01")
    assert fieldsync(*backwards, "--out", str(tmp_path / "b"), capsys=capsys)[0] == 1
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("action", ["verify", "anchor", "export"])
def test_fieldsync_audit_on_a_database_not_migrated_says_so(
    action: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any
) -> None:
    from api import cli
    from sync.platform.settings import get_settings

    monkeypatch.setenv("FIELDSYNC_DATABASE_URL", f"sqlite:///{tmp_path / 'nueva.db'}")
    monkeypatch.setenv("FIELDSYNC_ENV", "development")
    get_settings.cache_clear()
    more = ["--from", "2026-03-01", "--to", "2026-03-31", "--out", str(tmp_path / "b")]
    try:
        code = cli.main(["audit", action, *(more if action == "export" else [])])
    finally:
        get_settings.cache_clear()

    assert code == 1
    assert "the database is not migrated; run `fieldsync db upgrade`" in capsys.readouterr().err


def test_a_bundle_missing_a_file_or_not_json_cannot_be_read_and_says_so(
    field: dict[str, Any], engine: Engine, key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    folder = export(engine, tmp_path / "bundle", key)
    (folder / "blocks.jsonl").write_text("{not json\n")

    code, printed = check(folder, "--key", public(key))

    assert code == 2
    assert "NOT VERIFIED: the bundle cannot be read (JSONDecodeError" in printed
    (folder / "blocks.jsonl").unlink()
    assert check(folder)[0] == 2


def test_a_patrol_never_started_is_in_no_period(
    world: World, engine: Engine, key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    sector = world.sector("AM-01")["id"]
    tablet = PatrolTablet(world.device(world.user("ranger", sector_ids=[sector])))
    tablet.patrol(sector_id=sector, started_at=None, ended_at=None, status="draft")

    code, printed = check(export(engine, tmp_path / "bundle", key), "--key", public(key))

    assert code == 0, printed
    assert figures(printed)["patrols"]["patrols"] == 0


def test_an_export_into_a_folder_that_is_not_there_is_refused(
    field: dict[str, Any], engine: Engine, tmp_path: Path
) -> None:
    with pytest.raises(bundle.ExportRefused, match="is not a folder"):
        export(engine, tmp_path / "no" / "bundle", None)


def test_every_field_the_console_hides_as_personal_leaves_only_as_a_pseudonym() -> None:
    """The chain's list may be longer (names, facilitators), never shorter."""
    from schemas.audit import PSEUDONYMISED
    from sync.people.privacy import PERSONAL_FIELDS

    for entity, personal in PERSONAL_FIELDS.items():
        assert personal <= PSEUDONYMISED.get(entity, frozenset()), entity
