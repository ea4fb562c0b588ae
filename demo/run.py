"""``fieldsync demo`` (``make demo``): the command.

On the configured database (``FIELDSYNC_DATABASE_URL``; the SQLite ``fieldsync.db``
of the working folder by default): migrate it, make (or reset) the admin
``demo-admin``, serve it with a real ``fieldsync serve`` on a free loopback port,
build the programme over HTTP (``demo.office``, ``demo.field``), count the figures by
SQL (``demo.figures``) and check them against the targets, ask the attendance report
if the server has it, stop the server, and print what was made and how to sign in.
``--url`` uses a server already running on that same database instead (``make run``
in another terminal), signed in as ``--admin``. ``--host`` and ``--port`` say where
``make run`` will serve the data afterwards (``make demo`` passes its ``HOST`` and
``PORT``), for the address printed at the end; with ``--url``, that is the URL's.

The demo is for development: it refuses ``FIELDSYNC_ENV=production``, and a
database that already holds field records, unless ``--force`` (then the figures
include what was there, and are printed, not checked).
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy import make_url
from sqlalchemy.engine import Engine
from sqlmodel import select

from bench.server import ServerFailed, start_server
from demo import office
from demo.field import Fieldwork, Summary, say
from demo.figures import PROGRAMME_YEARS, Figures, figures, holds_field_records
from demo.tablet import DemoFailed, Tablet
from demo.targets import Targets
from schemas import User
from schemas.accounts import UserUpdate
from schemas.enums import Role
from sync.accounts import users
from sync.platform import migrate
from sync.platform.database import create_db_engine, transaction
from sync.platform.settings import Environment, Settings, get_settings

DEFAULT_SEED = "alto-mayo"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
ANY_ADDRESS = ("0.0.0.0", "::", "")  # noqa: S104 (names to recognise, not bound)
HTTP_TIMEOUT = 300.0
REPORT = "/reports/attendance"


class Refused(RuntimeError):
    """The demo will not run here (production, or a database with field records)."""


def parser() -> argparse.ArgumentParser:
    made = argparse.ArgumentParser(
        prog="fieldsync demo",
        description="Build a realistic demo programme through the real sync API (make demo).",
    )
    made.add_argument(
        "--seed",
        default=DEFAULT_SEED,
        help=f"the same seed, the same data (default {DEFAULT_SEED})",
    )
    made.add_argument(
        "--scale", type=float, default=1.0, help="shrink every count (0.05: a twentieth; default 1)"
    )
    made.add_argument(
        "--today",
        type=date.fromisoformat,
        default=None,
        help="the day the history ends (default: today in FIELDSYNC_TIMEZONE)",
    )
    made.add_argument(
        "--url", default=None, help="a running server on the same database (http://127.0.0.1:8000)"
    )
    made.add_argument("--admin", default=None, help="with --url: an admin's username")
    made.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"the host `make run` will serve on, for the address printed (default {DEFAULT_HOST})",
    )
    made.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"the port `make run` will serve on, for the address printed (default {DEFAULT_PORT})",
    )
    made.add_argument(
        "--password-stdin",
        action="store_true",
        help="with --url: read the admin's password from standard input",
    )
    made.add_argument(
        "--force",
        action="store_true",
        help="run even in production, or on a database that holds field records",
    )
    return made


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(list(argv or []))
    if args.url and not args.admin:
        parser().error("--url needs --admin (an admin of that server)")
    try:
        targets = Targets.at(args.scale)
    except ValueError as error:
        parser().error(str(error))
    settings = get_settings()
    try:
        return run(args, settings, targets)
    except Refused as refusal:
        say(f"fieldsync demo: {refusal}")
        return 2
    except (DemoFailed, ServerFailed) as failure:
        say(f"fieldsync demo failed: {failure}")
        return 1
    except httpx.TransportError as error:
        say(f"fieldsync demo failed: the server did not answer ({type(error).__name__}: {error})")
        return 1
    except sa.exc.OperationalError as error:
        say(f"fieldsync demo failed: the database did not answer ({error.orig})")
        return 1


@dataclass
class Built:
    summary: Summary
    staff: office.Staff
    report: list[str]  # what the attendance report said


def run(args: argparse.Namespace, settings: Settings, targets: Targets) -> int:
    started = time.perf_counter()
    if settings.env is Environment.production and not args.force:
        raise Refused(
            "FIELDSYNC_ENV is production (the default): the demo is for development. "
            "Set FIELDSYNC_ENV=development (make demo does), or --force."
        )
    today = args.today or datetime.now(settings.zone).date()
    if today < date(2021, 6, 1):
        raise Refused("--today: the history runs from 2017; end it in mid-2021 or later")
    engine = create_db_engine(settings.database_url)
    try:
        if args.url is None:
            migrate.upgrade(engine)
        elif not migrate.is_at_head(engine):
            raise Refused("the database is not migrated: run `fieldsync db upgrade`")
        held_before = holds_field_records(engine)
        if held_before and not args.force:
            raise Refused(
                f"the database ({_shown(settings.database_url)}) already holds field records; "
                "the demo builds on an empty one. Move it away, point FIELDSYNC_DATABASE_URL "
                "elsewhere, or --force to add to it."
            )
        password = secrets.token_urlsafe(12)
        say(
            f"fieldsync demo: building the Alto Mayo programme on {_shown(settings.database_url)} "
            f"(seed {args.seed!r}, scale {targets.scale:g}, history up to {today})"
        )
        if args.url is None:
            _make_admin(engine, settings, password)
            with _local_server() as api:
                built = build(api, office.ADMIN, password, args.seed, targets, today, password)
                counted = _verify(engine, settings, today, targets, strict=not held_before)
                built.report = _report(api, built.staff, counted, strict=not held_before)
            admin = (office.ADMIN, password)
        else:
            admin_password = (
                sys.stdin.readline().rstrip("\r\n") if args.password_stdin else getpass.getpass()
            )
            api = args.url.rstrip("/")
            api = api if api.endswith("/api/v1") else f"{api}/api/v1"
            built = build(api, args.admin, admin_password, args.seed, targets, today, password)
            counted = _verify(engine, settings, today, targets, strict=not held_before)
            built.report = _report(api, built.staff, counted, strict=not held_before)
            admin = (args.admin, "(yours)")
    finally:
        engine.dispose()
    docs = next_step(args.url, host=args.host, port=args.port)
    _describe(counted, built, targets, today, admin, docs, time.perf_counter() - started)
    return 0


def build(
    api: str,
    admin_username: str,
    admin_password: str,
    seed: str,
    targets: Targets,
    today: date,
    password: str,
) -> Built:
    """The whole programme, over HTTP: the office's set-up, then the field work."""
    with httpx.Client(base_url=api, timeout=HTTP_TIMEOUT) as http:
        admin = office.sign_in(http, admin_username, admin_password)
        sectors, places, categories = office.places(http, admin, seed)
        staff = office.staff(
            http, admin, seed=seed, password=password, sectors=sectors, places=places
        )
        workers = [
            Tablet(m.username, m.role, office.enroll(http, admin, m), http) for m in staff.workers
        ]
        rangers = [
            Tablet(m.username, m.role, office.enroll(http, admin, m), http) for m in staff.rangers
        ]
        rangers[-1].app_version = "2.3.9"  # never updated: the tablets page finds it
        say(
            f"  set up: {len(sectors)} sectors, {len(places)} communities, "
            f"{len(workers) + len(rangers)} tablets enrolled; the field work, year by year:"
        )
        summary = Fieldwork(
            http=http,
            seed=seed,
            targets=targets,
            today=today,
            sectors=sectors,
            places=places,
            categories=categories,
            staff=staff,
            workers=workers,
            rangers=rangers,
        ).run()
    return Built(summary, staff, [])


# ---------------------------------------------------------------- around the build


def next_step(url: str | None, *, host: str, port: int) -> str:
    """Where to see the data: the server at ``url`` if the demo used one, else the one
    ``make run`` will start on ``host`` and ``port``."""
    if url is not None:
        base = url.rstrip("/").removesuffix("/api/v1")
        return f"open {base}/docs"
    given = [f"HOST={host}"] if host != DEFAULT_HOST else []
    given += [f"PORT={port}"] if port != DEFAULT_PORT else []
    command = " ".join(["make run", *given])
    browse = DEFAULT_HOST if host in ANY_ADDRESS else host
    browse = f"[{browse}]" if ":" in browse else browse
    return f"`{command}`, open http://{browse}:{port}/docs"


def _make_admin(engine: Engine, settings: Settings, password: str) -> None:
    """``demo-admin``, made as ``fieldsync users create-admin`` makes admins, or given
    a new password if an earlier demo made it."""
    with transaction(engine) as session:
        found = session.exec(select(User).where(User.username == office.ADMIN)).first()
        if found is None:
            users.create_admin(
                session,
                username=office.ADMIN,
                password=password,
                full_name="Demo Admin",
                settings=settings,
            )
        else:
            users.update(
                session,
                user_id=found.id,
                changes=UserUpdate(role=Role.admin, active=True, password=password),
                settings=settings,
            )


@contextlib.contextmanager
def _local_server() -> Iterator[str]:
    """``fieldsync serve`` on a free loopback port, with this process's settings and
    working folder (so the same database and development key); its log in a
    temporary folder, shown if it fails."""
    with tempfile.TemporaryDirectory(prefix="fieldsync-demo-") as folder:
        server = start_server(
            env=dict(os.environ), folder=Path.cwd(), log_name=str(Path(folder) / "server.log")
        )
        try:
            yield server.api
        except DemoFailed as failure:
            raise DemoFailed(
                f"{failure}\n--- the server's log, last lines:\n{server.output()}"
            ) from None
        finally:
            server.stop()


def _verify(
    engine: Engine, settings: Settings, today: date, targets: Targets, *, strict: bool
) -> Figures:
    """The figures by SQL; on a database that was empty, exactly the targets."""
    counted = figures(engine, today=today, zone=settings.zone)
    if not strict:
        return counted
    coffee = counted.programmes["coffee_production"]
    school = counted.programmes["school_environmental_education"]
    wrong = [
        f"{what}: {got} counted, {wanted} made"
        for what, got, wanted in (
            ("households", counted.households, targets.households),
            ("agreements in force", counted.agreements_in_force, targets.agreements),
            ("coffee participants", coffee.participants, targets.participants),
            ("coffee participants, women", coffee.women, targets.women),
            ("coffee participants, men", coffee.men, targets.men),
            ("school sessions by headcount", school.headcount_sessions, targets.school_sessions),
            ("young people at school sessions", school.young_people, targets.young_people),
            ("people registered twice", counted.registered_twice, targets.duplicates),
            ("attendance folded", counted.folded_attendance, targets.double_attendance),
            ("open conflicts", counted.open_conflicts, targets.conflicts),
            ("patrols", sum(counted.patrols.values()), targets.patrols),
        )
        if got != wanted
    ]
    if wrong:
        hint = (
            "\n(none of it: is the server at --url serving FIELDSYNC_DATABASE_URL?)"
            if counted.households == 0
            else ""
        )
        raise DemoFailed(
            "the database does not hold what the demo made:\n  " + "\n  ".join(wrong) + hint
        )
    return counted


def _report(api: str, staff: office.Staff, counted: Figures, *, strict: bool) -> list[str]:
    """What the coordinator's attendance report says of the coffee training and of
    the school sessions, 2018-2020, if the server has the route (``[]`` if not): it
    must say what SQL says."""
    lines = []
    with httpx.Client(base_url=api, timeout=HTTP_TIMEOUT) as http:
        headers = office.sign_in(http, staff.coordinator.username, staff.password)
        for program in ("coffee_production", "school_environmental_education"):
            period = f"from={PROGRAMME_YEARS[0]}&to={PROGRAMME_YEARS[1]}&program={program}"
            answer = http.get(f"{REPORT}?{period}", headers=headers)
            if answer.status_code == 404:
                return []
            report = office.checked(answer)
            trained = counted.programmes[program]
            if program == "coffee_production":
                said = {name: report.get(name) for name in ("participants", "women", "men")}
                counts = {"participants": trained.participants, "women": trained.women}
                counts["men"] = trained.men
            else:
                headcount = report.get("headcount") or {}
                said = {name: headcount.get(name) for name in ("sessions", "people")}
                counts = {"sessions": trained.headcount_sessions, "people": trained.young_people}
            if strict and said != counts:
                raise DemoFailed(f"GET /api/v1{REPORT}?{period} says {said}; SQL counts {counts}")
            lines.append(f"  report      GET /api/v1{REPORT}?{period}")
            lines.append(f"              {said}")
    return lines


def _describe(
    counted: Figures,
    built: Built,
    targets: Targets,
    today: date,
    admin: tuple[str, str],
    docs: str,
    seconds: float,
) -> None:
    made = built.summary
    coffee = counted.programmes["coffee_production"]
    finance = counted.programmes["financial_skills"]
    school = counted.programmes["school_environmental_education"]
    patrols = sum(counted.patrols.values())
    lines = [
        "",
        f"Built in {seconds:.0f} s: {made.pushed:,} changes pushed by {made.syncs:,} syncs of "
        f"{len(built.staff.workers) + len(built.staff.rangers)} tablets, {made.pulled:,} pulled "
        f"({_statuses(made)}). In the database, counted by SQL:",
        f"  places      {counted.sectors} sectors, {counted.communities} communities",
        f"  families    {counted.households:,} households, {counted.people:,} people "
        f"({counted.registered_twice} registered twice, on two tablets)",
        f"  agreements  {counted.agreements_in_force:,} in force (active, valid past {today}), "
        f"{counted.agreements:,} signed since 2017 with renewals",
        f"  coffee      2018-2020: {coffee.participants:,} participants, {coffee.women:,} women "
        f"({coffee.women_share:.1%}), {coffee.men:,} men; {coffee.attendances:,} attendances "
        f"at {_sessions(coffee.sessions)} (and {counted.folded_attendance} taken twice, folded)",
        f"  finance     2018-2020: {finance.participants:,} participants "
        f"at {_sessions(finance.sessions)}",
        f"  schools     2018-2020: {_sessions(school.headcount_sessions)}, {school.young_people:,} "
        f"young people ({school.girls:,} girls, {school.boys:,} boys), by headcount",
        f"  patrols     {patrols} in the last six months ("
        + ", ".join(f"{n} {status}" for status, n in sorted(counted.patrols.items()))
        + f"), {counted.track_segments:,} track segments ({counted.track_points:,} points), "
        f"{counted.observations:,} observations",
        f"  conflicts   {counted.open_conflicts} open, for a coordinator at GET /api/v1/conflicts",
    ]
    lines += built.report
    staff = built.staff
    lines += [
        "",
        "Sign in (development data; these passwords are new each run):",
        f"  coordinator  {staff.coordinator.username}  {staff.password}",
        f"  ranger lead  {staff.ranger_lead.username}  {staff.password}",
        f"  admin        {admin[0]}  {admin[1]}",
        "",
        f"Next: {docs}, Authorize as the coordinator, and ask",
        f"  GET /api/v1{REPORT}?from=2018-01-01&to=2020-12-31&program=coffee_production",
        "  GET /api/v1/conflicts; and as the ranger lead, the review queue:",
        "  GET /api/v1/patrols?status=submitted",
    ]
    say("\n".join(lines))
    if targets.scale != 1:
        say(f"(scale {targets.scale:g}: every count is the programme's times {targets.scale:g})")


def _sessions(count: int) -> str:
    return f"{count:,} session" + ("" if count == 1 else "s")


def _statuses(summary: Summary) -> str:
    return ", ".join(f"{n:,} {status}" for status, n in sorted(summary.statuses.items()))


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)
