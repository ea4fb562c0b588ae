"""``fieldsync demo``: a small programme built over HTTP on each backend, its figures
exact by SQL — the rules of the attendance report, counted here by hand-written
queries, not the demo's own — with its duplicates, folded attendance and conflicts.

At ``--scale 0.02`` the targets are: 32 households, 26 agreements in force, 56 coffee
participants of whom 13 women (round(661 * 0.02) = 13) and 43 men, 2 school sessions
with 66 young people, 6 patrols, and 2 each of duplicates, folded attendances and
conflicts (never fewer than 2).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from api.app import create_app
from bench.server import clean_environment, run_command
from demo import flags
from demo.figures import table
from demo.run import main as demo_main
from demo.run import next_step
from demo.targets import Targets
from schemas import (
    Agreement,
    Attendance,
    Conflict,
    Household,
    Observation,
    Patrol,
    Person,
    SyncChange,
    TrackSegment,
    TrainingSession,
)
from sync.accounts import users
from sync.audit import anchors
from sync.platform.database import create_db_engine, transaction
from sync.platform.settings import get_settings
from tests.asgi import TestClient
from tests.conftest import PASSWORD, SECRET_KEY, login, make_settings
from tests.databases import fresh_database

SCALE = "0.02"
TODAY = date(2026, 11, 24)
RECORDS = (Person, Household, Agreement, TrainingSession, Attendance, Patrol, TrackSegment)


def environment(url: str, **more: str) -> dict[str, str]:
    return {
        **clean_environment(),
        "FIELDSYNC_DATABASE_URL": url,
        "FIELDSYNC_ENV": "development",
        "FIELDSYNC_SECRET_KEY": SECRET_KEY,
        "FIELDSYNC_ARGON2_MEMORY_KIB": "64",
        "FIELDSYNC_ARGON2_TIME_COST": "1",
        **more,
    }


def build(url: str, folder: Path, *extra: str) -> str:
    command = ("demo", "--scale", SCALE, "--today", TODAY.isoformat(), *extra)
    answer = run_command(*command, env=environment(url), folder=folder)
    assert answer.returncode == 0, answer.stdout + answer.stderr
    return answer.stdout


def rows(connection: Connection, model: Any, *where: Any) -> list[Any]:
    return list(connection.execute(sa.select(table(model)).where(*where)).all())


def test_the_targets_scale_every_count_and_keep_a_few_of_each_kind() -> None:
    small = Targets.at(0.02)
    assert (small.households, small.agreements) == (32, 26)
    assert (small.participants, small.women, small.men) == (56, 13, 43)
    assert (small.school_sessions, small.young_people) == (2, 66)
    assert (small.duplicates, small.double_attendance, small.conflicts) == (2, 2, 2)
    full = Targets.at(1)
    assert (full.participants, full.women, full.men) == (2800, 661, 2139)
    assert round(full.women / full.participants, 3) == 0.236
    assert (full.school_sessions, full.young_people, full.agreements) == (80, 3300, 1300)
    with pytest.raises(ValueError, match="fewer households"):
        Targets.at(0.01)


@pytest.mark.slow
def test_the_demo_builds_the_programme_with_its_figures_exact(backend: str, tmp_path: Path) -> None:
    targets = Targets.at(float(SCALE))
    with fresh_database(backend, tmp_path) as url:
        said = build(url, tmp_path)
        engine = create_db_engine(url)
        try:
            with engine.connect() as connection:
                check_families(connection, targets)
                check_trainings(connection, targets)
                check_two_tablets(connection, targets)
                check_patrols_and_pushes(connection, targets)
            check_every_flag_is_on_some_patrol(url, engine)
        finally:
            engine.dispose()
        assert "2018-2020: 56 participants, 13 women (23.2%), 43 men" in said
        assert "demo-coordinadora" in said
        assert "demo-jefe" in said
        check_the_verifiers_bundle_gives_the_demos_figures(url, tmp_path)

        # Again on the same database: refused, it holds field records now.
        again = run_command("demo", "--scale", SCALE, env=environment(url), folder=tmp_path)
        assert again.returncode == 2
        assert "already holds field records" in again.stdout


def check_the_verifiers_bundle_gives_the_demos_figures(url: str, folder: Path) -> None:
    """``fieldsync audit export`` of the programme's years, signed; its script, run by
    a Python that sees nothing of this project, checks it and prints the figures."""
    seed, public_key = anchors.keygen()
    signing = {"FIELDSYNC_AUDIT_SIGNING_KEY": seed,
               "FIELDSYNC_AUDIT_ANCHOR_FILE": str(folder / "anchors.jsonl")}  # fmt: skip
    command = ("audit", "export", "--from", "2018-01-01", "--to", TODAY.isoformat(),
               "--out", str(folder / "bundle"))  # fmt: skip
    exported = run_command(*command, env=environment(url, **signing), folder=folder)
    assert exported.returncode == 0, exported.stdout + exported.stderr

    checked = subprocess.run(
        [sys.executable, "-I", "-S", "verify_bundle.py", "--key", public_key],
        cwd=folder / "bundle", capture_output=True, text=True, timeout=120, check=False,
        env={"PATH": os.environ.get("PATH", "")},
    )  # fmt: skip

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "VERIFIED: every hash checks" in checked.stdout
    text = checked.stdout.split("counted from the records:\n", 1)[1]
    found = json.JSONDecoder().raw_decode(text)[0]
    coffee = found["training"]["coffee_production"]
    assert (coffee["participants"], coffee["women"], coffee["men"]) == (56, 13, 43)
    assert coffee["women_share"] == 0.232
    assert found["agreements"]["agreements_in_force"] == 26
    assert found["training"]["school_environmental_education"]["headcount_people"] == 66
    assert found["patrols"]["patrols"] == 6
    assert found["people"]["registered_twice"] == 2


def check_families(connection: Connection, targets: Targets) -> None:
    household = table(Household)
    assert len(rows(connection, Household, household.c.deleted_at.is_(None))) == 32
    agreement = table(Agreement)
    in_force = rows(
        connection,
        Agreement,
        agreement.c.deleted_at.is_(None),
        agreement.c.status == "active",
        agreement.c.valid_until > TODAY,
    )
    assert len(in_force) == targets.agreements == 26
    assert len({row.household_id for row in in_force}) == 26  # one in force a household
    renewed = rows(connection, Agreement, agreement.c.renews_agreement_id.is_not(None))
    expired = {row.id: row for row in rows(connection, Agreement, agreement.c.status == "expired")}
    for row in renewed:  # the one renewed expired the day before its renewal began
        assert expired[row.renews_agreement_id].valid_until < row.valid_from


def check_trainings(connection: Connection, targets: Targets) -> None:
    session = table(TrainingSession)
    coffee = rows(connection, TrainingSession, session.c.program == "coffee_production")
    assert coffee
    assert all(row.status == "held" and row.headcount is None for row in coffee)
    assert all(2018 <= row.starts_at.astimezone(UTC).year <= 2020 for row in coffee)
    # Unique people (a merged person as the one kept), live attendance, by sex.
    kept = table(Person).alias("kept")
    person = table(Person)
    attendance = table(Attendance)
    by_sex: dict[Any, int] = dict(
        connection.execute(
            sa.select(kept.c.sex, sa.func.count(sa.distinct(kept.c.id)))
            .select_from(
                attendance.join(session, session.c.id == attendance.c.session_id)
                .join(person, person.c.id == attendance.c.person_id)
                .join(kept, kept.c.id == sa.func.coalesce(person.c.merged_into, person.c.id))
            )
            .where(
                session.c.program == "coffee_production",
                session.c.deleted_at.is_(None),
                attendance.c.deleted_at.is_(None),
                attendance.c.merged_into.is_(None),
            )
            .group_by(kept.c.sex)
        ).all()
    )
    assert {str(sex): count for sex, count in by_sex.items()} == {"female": 13, "male": 43}
    assert targets.participants == 56
    live = rows(
        connection,
        Attendance,
        attendance.c.session_id.in_([row.id for row in coffee]),
        attendance.c.deleted_at.is_(None),
    )
    assert len(live) > 56  # some come back to a second session
    school = rows(
        connection, TrainingSession, session.c.program == "school_environmental_education"
    )
    assert len(school) == 2
    assert sum(row.headcount["female"] + row.headcount["male"] for row in school) == 66
    at_school = rows(connection, Attendance, attendance.c.session_id.in_([r.id for r in school]))
    assert at_school == []


def check_two_tablets(connection: Connection, targets: Targets) -> None:
    person = table(Person)
    people = rows(connection, Person, person.c.doc_number.is_not(None))
    by_document: dict[str, list[Any]] = {}
    for row in people:
        by_document.setdefault(row.doc_number, []).append(row)
    twice = [pair for pair in by_document.values() if len(pair) > 1]
    assert len(twice) == targets.duplicates == 2
    attendance = table(Attendance)
    for first, second in twice:
        same = ("given_names", "paternal_surname", "maternal_surname", "sex", "birth_year")
        assert [getattr(first, k) for k in same] == [getattr(second, k) for k in same]
        assert first.id != second.id
        assert first.device_id != second.device_id  # two tablets that never met
        attended = [
            bool(rows(connection, Attendance, attendance.c.person_id == row.id))
            for row in (first, second)
        ]
        assert attended.count(True) <= 1  # the duplicate adds no participant

    folded = rows(connection, Attendance, attendance.c.merged_into.is_not(None))
    assert len(folded) == targets.double_attendance == 2
    for row in folded:
        [kept] = rows(connection, Attendance, attendance.c.id == row.merged_into)
        assert row.deleted_at is not None
        assert kept.deleted_at is None
        assert (kept.session_id, kept.person_id) == (row.session_id, row.person_id)
        assert kept.device_id != row.device_id

    conflict = table(Conflict)
    open_ones = rows(connection, Conflict, conflict.c.status == "open")
    assert len(open_ones) == targets.conflicts == 2
    assert len({row.record_id for row in open_ones}) == 2
    for row in open_ones:
        [(name, sides)] = row.fields.items()
        assert (row.entity, name) in {("person", "phone"), ("household", "code")}
        assert sides["server"] != sides["device"]


def check_patrols_and_pushes(connection: Connection, targets: Targets) -> None:
    assert len(rows(connection, Patrol)) == targets.patrols == 6
    assert rows(connection, TrackSegment)
    assert rows(connection, Observation)
    statuses = Counter(row.status for row in rows(connection, SyncChange))
    assert statuses["rejected"] == statuses["deferred"] == 0
    assert statuses["merged"] == 2
    assert statuses["conflict"] == 2


def check_every_flag_is_on_some_patrol(url: str, engine: Engine) -> None:
    """Each quality flag a reviewer is shown, on at least one demo patrol's detail."""
    settings = make_settings(url)
    with transaction(engine) as session:
        users.create_admin(
            session, username="flag-reader", password=PASSWORD, full_name="F", settings=settings
        )
    with TestClient(create_app(settings, engine), base_url="http://testserver/api/v1") as client:
        token = login(client, "flag-reader").json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        listed = client.get("/patrols", params={"limit": 500}, headers=headers).json()
        seen: set[str] = set()
        for patrol in listed["items"]:
            detail = client.get(f"/patrols/{patrol['id']}", headers=headers)
            assert detail.status_code == 200, detail.text
            seen |= {flag["code"] for flag in detail.json()["effort"]["flags"]}
    assert seen >= set(flags.FLAGS), set(flags.FLAGS) - seen


@pytest.mark.slow
def test_the_same_seed_makes_the_same_records(tmp_path: Path) -> None:
    made = []
    for name in ("first", "second"):
        folder = tmp_path / name
        folder.mkdir()
        with fresh_database("sqlite", folder) as url:
            # Smaller than the other builds: the same code draws the records at any scale.
            build(url, folder, "--seed", "mismo", "--scale", "0.0125")
            engine = create_db_engine(url)
            try:
                with engine.connect() as connection:
                    made.append(
                        {
                            model.__name__: sorted(
                                (str(row.id), str(row.version)) for row in rows(connection, model)
                            )
                            for model in RECORDS
                        }
                    )
            finally:
                engine.dispose()
    assert made[0] == made[1]
    assert len(made[0]["Person"]) > 50


def test_the_demo_refuses_production_without_force(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FIELDSYNC_ENV", "production")
    monkeypatch.setenv("FIELDSYNC_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    get_settings.cache_clear()
    try:
        assert demo_main(["--scale", SCALE]) == 2
    finally:
        get_settings.cache_clear()
    assert "production" in capsys.readouterr().out
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize(
    ("url", "host", "port", "said"),
    [
        (None, "127.0.0.1", 8000, "`make run`, open http://127.0.0.1:8000/docs"),
        (None, "127.0.0.1", 9000, "`make run PORT=9000`, open http://127.0.0.1:9000/docs"),
        (
            None,
            "0.0.0.0",  # noqa: S104 (a name in a table)
            8080,
            "`make run HOST=0.0.0.0 PORT=8080`, open http://127.0.0.1:8080/docs",
        ),
        ("http://10.0.0.5:9000", "127.0.0.1", 8000, "open http://10.0.0.5:9000/docs"),
        ("http://10.0.0.5:9000/api/v1/", "127.0.0.1", 8000, "open http://10.0.0.5:9000/docs"),
    ],
)
def test_the_address_printed_at_the_end_is_where_the_data_is_served(
    url: str | None, host: str, port: int, said: str
) -> None:
    assert next_step(url, host=host, port=port) == said


def test_make_demo_tells_the_demo_its_host_and_port() -> None:
    root = Path(__file__).resolve().parent.parent
    planned = subprocess.run(
        ["make", "-n", "-C", str(root), "demo", "HOST=0.0.0.0", "PORT=9000"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    [command] = [line for line in planned.splitlines() if "fieldsync demo" in line]
    assert "fieldsync demo --host 0.0.0.0 --port 9000" in command
