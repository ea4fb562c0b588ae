"""``fieldsync bench``: one run on each backend, in order, printed and written as JSON.

For each backend, twice on a fresh database (the second time for the scale runs):
create the database, ``fieldsync db upgrade``, ``fieldsync users create-admin``,
``fieldsync serve --workers W`` as its own process, then set the programme up over
HTTP (``bench.fleet``) and hand the tablets to the load process (``bench.load``).

1. **Push**: every tablet's warm-up batch, the office's edits of those records, then
   the timed batches (as many as fit in ``--push-seconds``, at most ``--batches``).
2. **Floor**: the same records by a plain ``INSERT`` (``bench.floor``); then the
   **peer**: the same changes as CouchDB documents, the same batches from as many
   clients, to express-pouchdb's ``_bulk_docs`` (``bench.peer``, installed from npm by
   the bench itself; ``--no-peer`` leaves it out). The server's, PostgreSQL's and the
   peer's CPU are read from ``/proc`` around the timed pushes.
3. **Pull**: a fresh coordinator's tablet pulls everything, gzip on, pages of the
   largest limit the server allows.
4. **One batch** of 1,000 changes, with the server's memory watched around it.
5. **Scale** (a second database): seeded up to each of ``--scales`` records held
   (``bench.seed``); at each, a few batches per tablet, a fresh coordinator's first
   ``--scale-pull`` records, the full initial pull (up to ``--full-pull-max`` held),
   and the watcher's incremental pull of what those batches put in its sector.
6. **Review** (a third database): ``--review-patrols`` patrols with
   ``--review-points`` track points seeded, most of them reviewed; the queue, filtered
   lists and patrol details timed as ranger leads and a coordinator ask them, every
   answer checked against what was seeded (``bench.review``).
7. **Attachments** (a fourth database): the tablets upload photos at once over tus, at
   each of ``--attachment-sizes``, against the floor of the same bytes sent as plain
   bodies to a server that only keeps them, with every server process's peak memory;
   every photo must be held afterwards (``bench.attachments``).
8. **Console** (a fifth database): the demo programme built over the API by
   ``fieldsync demo --url`` at ``--console-scale``, then the console's pages of it,
   each read as the lead, the coordinator or the admin signed in through the console's
   form, ``--console-requests`` times (``bench.console``).

9. **Workers** (PostgreSQL only; a fresh database for each of ``--scaling-workers``):
   ``fieldsync serve --workers N``, the warm-up, then a short timed push of the same
   devices and batch size (``--scaling-seconds``, the same batches for every N), with
   the server's and PostgreSQL's CPU a change, and how long a push holds the sync
   clock row, sampled from ``pg_locks`` (``bench.clock``). SQLite has one writer at a
   time, so more processes only queue for it: the phase skips it.

``--only`` runs some of these: ``sync`` (1 to 4), ``workers`` (9), ``scale`` (5),
``review`` (6), ``attachments`` (7), ``console`` (8).

The server's memory is sampled all along (``bench.memory``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import secrets
import sqlite3
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from bench import attachments, clock, connections, console, review, spent, turns
from bench import fleet as fleets
from bench import peer as peers
from bench.load import LoadFailed, LoadProcess
from bench.memory import CpuUse, MemorySampler, cpu_used, postgres_processes, tree
from bench.report import TARGETS, say, spread_text, stdout_table, write_json
from bench.seed import CHUNK, History, Patrols, records_held, seed, seed_patrols
from bench.server import Server, clean_environment, run_command, start_server
from sync.platform.database import create_db_engine
from sync.platform.settings import Settings

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ADMIN = "bench-admin"
ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024
PHASES = ("sync", "workers", "scale", "review", "attachments", "console")


@dataclass
class Config:
    backends: list[str] = field(default_factory=lambda: ["sqlite", "postgresql"])
    workers: int = 2
    devices: int = 4
    batch: int = 500
    batches: int = 20
    push_seconds: float = 120.0
    # The workers phase: server processes of each run (PostgreSQL only), and the
    # length of each run's timed push, sized at the first run's warm-up pace.
    scaling_workers: list[int] = field(default_factory=lambda: [1, 2, 4])
    scaling_seconds: float = 20.0
    scales: list[int] = field(default_factory=lambda: [10_000, 100_000, 1_000_000])
    scale_batches: int = 3
    scale_pull: int = 20_000
    full_pull_max: int = 100_000
    one_batch: int = 1000
    review_patrols: int = 10_000
    review_points: int = 1_000_000
    review_requests: int = 100
    review_details: int = 200
    review_page: int = 50
    # Photo sizes in bytes, and how many photos each tablet sends at each; the first
    # and the last size are compared for the server's memory.
    attachment_sizes: list[int] = field(default_factory=lambda: [2 * MIB, 20 * MIB])
    attachment_photos: list[int] = field(default_factory=lambda: [10, 1])
    attachment_chunk: int = 256 * 1024
    # The demo programme's scale for the console run (1: 1,600 households; 0: no run),
    # and the timed reads of each page.
    console_scale: float = 1.0
    console_requests: int = 30
    phases: list[str] = field(default_factory=lambda: list(PHASES))
    # express-pouchdb's _bulk_docs of the timed push's changes, in the sync phase.
    peer: bool = True
    postgres_url: str = DEFAULT_POSTGRES_URL
    postgres_database: str = "fieldsync_bench"
    out: Path = Path("bench-results.json")
    seed: str = "alto-mayo"
    # Extra FIELDSYNC_* settings for the server (the tests lower the password hashing cost).
    server_env: dict[str, str] = field(default_factory=dict)


QUICK: dict[str, Any] = {
    "devices": 2,
    "batch": 40,
    "batches": 2,
    "scales": [300, 600],
    "scale_batches": 1,
    "scale_pull": 200,
    "one_batch": 100,
    "workers": 1,
    "scaling_workers": [1, 2],
    "scaling_seconds": 2.0,
    "review_patrols": 300,
    "review_points": 30_000,
    "review_requests": 6,
    "review_details": 20,
    "review_page": 10,
    "attachment_sizes": [128 * 1024, MIB],
    "attachment_photos": [3, 1],
    "attachment_chunk": 64 * 1024,
    "console_scale": 0.02,
    "console_requests": 3,
}


def parser() -> argparse.ArgumentParser:
    made = argparse.ArgumentParser(
        prog="fieldsync bench",
        description="Benchmark sync over real HTTP on SQLite and PostgreSQL "
        "(see docs/performance.md).",
    )
    default = Config()
    made.add_argument("--backends", default=",".join(default.backends), help="sqlite,postgresql")
    made.add_argument("--workers", type=int, help=f"server processes (default {default.workers})")
    made.add_argument("--devices", type=int, help=f"tablets pushing at once ({default.devices})")
    made.add_argument("--batch", type=int, help=f"changes per batch ({default.batch})")
    made.add_argument("--batches", type=int, help=f"timed batches per device ({default.batches})")
    made.add_argument(
        "--push-seconds",
        type=float,
        help="size the timed push to about this long, from the warm-up's pace "
        f"({default.push_seconds:.0f})",
    )
    made.add_argument(
        "--scaling-workers",
        help="server processes of each run of the workers phase, comma-separated "
        "(1,2,4; PostgreSQL only; empty: no run)",
    )
    made.add_argument(
        "--scaling-seconds",
        type=float,
        help="size each timed push of the workers phase to about this long "
        f"({default.scaling_seconds:.0f})",
    )
    made.add_argument(
        "--scales", help="records held for the scale runs, comma-separated (10000,100000,1000000)"
    )
    made.add_argument("--scale-batches", type=int, help="batches per device at each scale (3)")
    made.add_argument("--scale-pull", type=int, help="records a fresh device pulls at each scale")
    made.add_argument(
        "--full-pull-max", type=int, help="also pull everything at scales up to this (100000)"
    )
    made.add_argument(
        "--review-patrols", type=int, help="patrols held for the review run (10000; 0: none)"
    )
    made.add_argument(
        "--review-points", type=int, help="track points of those patrols, in all (1000000)"
    )
    made.add_argument(
        "--review-requests", type=int, help="timed requests of each list of the review run (100)"
    )
    made.add_argument(
        "--review-details", type=int, help="patrol details timed in the review run (200)"
    )
    made.add_argument(
        "--review-page", type=int, help="patrols a page of the lists timed in the review run (50)"
    )
    made.add_argument(
        "--attachment-sizes",
        help="photo sizes of the attachments run, comma-separated, K or M for KiB or MiB "
        "(2M,20M; the first and last are compared for memory)",
    )
    made.add_argument(
        "--attachment-photos",
        help="photos each tablet sends at each of those sizes, comma-separated (10,1)",
    )
    made.add_argument("--attachment-chunk", help="bytes a request of the attachments run (256K)")
    made.add_argument(
        "--console-scale",
        type=float,
        help="the demo programme's scale for the console run (1: 1,600 households; 0: none)",
    )
    made.add_argument(
        "--console-requests", type=int, help="timed reads of each page in the console run (30)"
    )
    made.add_argument(
        "--only",
        help=f"run only these phases, comma-separated: {','.join(PHASES)} (default: all)",
    )
    made.add_argument(
        "--peer",
        action=argparse.BooleanOptionalAction,
        help="after the push, send the same changes to express-pouchdb's _bulk_docs, "
        "installed by npm into .bench-peer/ (default: on)",
    )
    made.add_argument("--postgres-url", help="the PostgreSQL server (FIELDSYNC_TEST_POSTGRES_URL)")
    made.add_argument(
        "--postgres-database", help=f"made and dropped there ({default.postgres_database})"
    )
    made.add_argument("--out", type=Path, help=f"the JSON file ({default.out})")
    made.add_argument("--seed", help="the data generator's seed")
    made.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of a minute")
    return made


def config_from(argv: Sequence[str]) -> Config:
    args = parser().parse_args(argv)
    values: dict[str, Any] = dict(QUICK) if args.quick else {}
    values["postgres_url"] = os.environ.get("FIELDSYNC_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    for name in (
        "workers",
        "devices",
        "batch",
        "batches",
        "push_seconds",
        "scaling_seconds",
        "scale_batches",
        "scale_pull",
        "full_pull_max",
        "review_patrols",
        "review_points",
        "review_requests",
        "review_details",
        "review_page",
        "console_scale",
        "console_requests",
        "peer",
        "postgres_url",
        "postgres_database",
        "out",
        "seed",
    ):
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    values["backends"] = [name.strip() for name in args.backends.split(",") if name.strip()]
    if args.scales is not None:
        values["scales"] = [int(n) for n in args.scales.split(",") if n.strip()]
    if args.scaling_workers is not None:
        values["scaling_workers"] = _counts(args.scaling_workers)
    if args.attachment_sizes is not None:
        values["attachment_sizes"] = _sizes(args.attachment_sizes)
    if args.attachment_photos is not None:
        values["attachment_photos"] = [int(n) for n in args.attachment_photos.split(",") if n]
    if args.attachment_chunk is not None:
        [values["attachment_chunk"]] = _sizes(args.attachment_chunk, most=1)
    if args.only is not None:
        values["phases"] = [name.strip() for name in args.only.split(",") if name.strip()]
    made = Config(**values)
    unknown = set(made.backends) - {"sqlite", "postgresql"}
    if unknown:
        raise SystemExit(f"fieldsync bench: unknown backend {sorted(unknown)}")
    unknown = set(made.phases) - set(PHASES)
    if unknown or not made.phases:
        raise SystemExit(f"fieldsync bench: --only takes some of {', '.join(PHASES)}")
    if len(made.attachment_photos) != len(made.attachment_sizes):
        raise SystemExit("fieldsync bench: --attachment-photos needs a count for each size")
    if min(made.attachment_sizes, default=1) <= 4 or made.attachment_chunk < 1:
        raise SystemExit("fieldsync bench: a photo is more than 4 bytes, a chunk at least 1")
    if not 0 <= made.console_scale <= 4 or made.console_requests < 1:
        raise SystemExit("fieldsync bench: --console-scale is 0 to 4, --console-requests 1 or more")
    return made


def _counts(text: str) -> list[int]:
    """``1,2,4`` as worker counts, each at least 1; empty: none."""
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        counts = [0]
    if any(count < 1 for count in counts):
        raise SystemExit(f"fieldsync bench: not worker counts of 1 or more: {text!r}")
    return counts


def _sizes(text: str, most: int | None = None) -> list[int]:
    """``2M,20M`` as bytes (``bench.attachments.parse_size``)."""
    try:
        sizes = [attachments.parse_size(part) for part in text.split(",") if part.strip()]
    except ValueError:
        sizes = []
    if not sizes or (most is not None and len(sizes) > most):
        raise SystemExit(f"fieldsync bench: not {'a size' if most == 1 else 'sizes'}: {text!r}")
    return sizes


def main(argv: Sequence[str] | None = None) -> int:
    config = config_from(list(argv or []))
    results = run(config)
    write_json(results, config.out)
    stdout_table(results)
    say(f"JSON written to {config.out}")
    # Rejected changes, failed batches or server errors: the run itself is wrong.
    return 1 if any(figures["errors"] for figures in results["backends"].values()) else 0


def run(config: Config) -> dict[str, Any]:
    started = time.perf_counter()
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(config),
        "config": {**asdict(config), "out": str(config.out)},
        "targets": TARGETS,
        "backends": {},
    }
    peer = PeerSetup()
    if config.peer and "sync" in config.phases:
        try:
            peer.modules = peers.install()
        except peers.PeerUnavailable as error:
            peer.problem = f"no peer, so no push / peer ratio: {error}"
            say(f"!! {peer.problem}")
    results["peer"] = {
        "modules": str(peer.modules) if peer.modules else None,
        "problem": peer.problem,
    }
    for backend in config.backends:
        say(f"== {backend} ==")
        results["backends"][backend] = run_backend(backend, config, peer)
    results["duration_s"] = round(time.perf_counter() - started, 1)
    return results


@dataclass
class PeerSetup:
    """The peer's installed modules, or why there are none (``None`` and ``None``:
    not asked for)."""

    modules: Path | None = None
    problem: str | None = None


# ---------------------------------------------------------------- a deployment


@dataclass
class Deployment:
    backend: str
    url: str
    folder: Path
    env: dict[str, str]
    settings: Settings
    server: Server
    memory: MemorySampler
    fleet: fleets.Fleet
    load: LoadProcess


@contextlib.contextmanager
def database(backend: str, config: Config, folder: Path) -> Iterator[str]:
    """A new, empty database for the run, dropped at the end."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'fieldsync-bench.db'}"
        return
    server = sa.make_url(config.postgres_url)
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    name = config.postgres_database
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@dataclass
class Served:
    """A fresh database, migrated, with its admin, served by its own server process
    whose memory is sampled: what every run starts from."""

    backend: str
    url: str
    folder: Path
    env: dict[str, str]
    settings: Settings
    server: Server
    memory: MemorySampler
    admin_password: str


@contextlib.contextmanager
def served(
    backend: str, config: Config, purpose: str, *, env: dict[str, str] | None = None
) -> Iterator[Served]:
    """Database, migrations, admin, server, memory sampler; ``env`` adds to the
    server's settings."""
    with (
        tempfile.TemporaryDirectory(prefix=f"fieldsync-bench-{backend}-") as scratch,
        database(backend, config, Path(scratch)) as url,
    ):
        folder = Path(scratch)
        env = {
            **clean_environment(),
            "FIELDSYNC_ENV": "production",
            "FIELDSYNC_DATABASE_URL": url,
            "FIELDSYNC_SECRET_KEY": secrets.token_urlsafe(48),
            # Runs of an hour must not need token refreshes; lifetimes cost nothing.
            "FIELDSYNC_ACCESS_TOKEN_MINUTES": "1440",
            **turns.SERVER_ENV,
            **(env or {}),
            **config.server_env,
        }
        # The server's settings as it reads them (validated from these values alone).
        settings = Settings.model_validate(
            {
                key.removeprefix("FIELDSYNC_").lower(): value
                for key, value in env.items()
                if key.startswith("FIELDSYNC_")
            }
        )
        password = secrets.token_urlsafe(18)
        for command, stdin in (
            (("db", "upgrade"), None),
            (("users", "create-admin", ADMIN, "--password-stdin"), password + "\n"),
        ):
            answer = run_command(*command, env=env, folder=folder, stdin=stdin)
            if answer.returncode != 0:
                raise RuntimeError(f"fieldsync {' '.join(command)}: {answer.stderr}")
        server = start_server(env=env, folder=folder, workers=config.workers)
        memory = MemorySampler(server.pid).start()
        try:
            say(f"  [{purpose}] server pid {server.pid} on port {server.port}")
            yield Served(backend, url, folder, env, settings, server, memory, password)
        finally:
            memory.stop()
            server.stop()
            errors = server.tracebacks()
            if errors:
                say(f"  !! the server logged {len(errors)} tracebacks; the first:\n{errors[0]}")


@contextlib.contextmanager
def deployment(
    backend: str, config: Config, purpose: str, *, env: dict[str, str] | None = None
) -> Iterator[Deployment]:
    """A served database (``served``), then the programme set up over HTTP and the
    load process; ``env`` adds to the server's settings."""
    with served(backend, config, purpose, env=env) as made:
        load: LoadProcess | None = None
        try:
            say(f"  [{purpose}] setting up")
            with made.memory.during("setup"):
                fleet = fleets.set_up(
                    made.server.api,
                    admin=ADMIN,
                    password=made.admin_password,
                    devices=config.devices,
                    seed=config.seed,
                )
            load = LoadProcess(fleet, seed=f"{config.seed}:{purpose}")
            yield Deployment(
                backend,
                made.url,
                made.folder,
                made.env,
                made.settings,
                made.server,
                made.memory,
                fleet,
                load,
            )
        finally:
            if load is not None:
                load.close()


# ---------------------------------------------------------------- the phases


def run_backend(backend: str, config: Config, peer: PeerSetup | None = None) -> dict[str, Any]:
    figures: dict[str, Any] = {"warnings": [], "errors": 0, "server_tracebacks": 0}
    started = time.perf_counter()
    if "sync" in config.phases:
        with deployment(backend, config, "main") as made:
            warm_up(made, config, figures)
            push_phase(made, config, figures)
            peer_phase(made, figures, peer or PeerSetup())
            pull_phase(made, figures)
            one_batch(made, config, figures)
            figures["memory"] = made.memory.report()
            figures["server_tracebacks"] += len(made.server.tracebacks())
    if "workers" in config.phases and config.scaling_workers:
        figures["workers"] = workers_phase(backend, config, figures)
    if "scale" in config.phases and config.scales:
        with deployment(backend, config, "scale") as made:
            warm_up(made, config, figures, record=False)
            figures["scales"] = scale_phase(made, config, figures)
            figures["scale_memory"] = made.memory.report()
            figures["server_tracebacks"] += len(made.server.tracebacks())
    if "review" in config.phases and config.review_patrols:
        with deployment(backend, config, "review") as made:
            figures["review"] = review_phase(made, config, figures)
            figures["review_memory"] = made.memory.report()
            figures["server_tracebacks"] += len(made.server.tracebacks())
    if "attachments" in config.phases and config.attachment_sizes:
        env = attachments.server_env(config)
        with deployment(backend, config, "attachments", env=env) as made:
            figures["attachments"] = attachments.phase(made, config, figures)
            figures["attachments_memory"] = made.memory.report()
            figures["server_tracebacks"] += len(made.server.tracebacks())
    if "console" in config.phases and config.console_scale:
        with served(backend, config, "console", env=console.SERVER_ENV) as ready:
            figures["console"] = console.phase(
                ready.server,
                ready.env,
                ready.folder,
                ready.memory,
                scale=config.console_scale,
                requests=config.console_requests,
                seed=config.seed,
                admin=(ADMIN, ready.admin_password),
                figures=figures,
            )
            figures["console_memory"] = ready.memory.report()
            figures["server_tracebacks"] += len(ready.server.tracebacks())
    figures["seconds"] = round(time.perf_counter() - started, 1)
    if figures["server_tracebacks"]:
        figures["errors"] += 1
        figures["warnings"].append(f"the server failed {figures['server_tracebacks']} times")
    return figures


def check(figures: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
    """Say loudly what differs from what the generator expected."""
    if report["statuses"]["rejected"] or report["failed_batches"]:
        figures["errors"] += 1
    if report["statuses"]["rejected"]:
        figures["warnings"].append(
            f"{report['label']}: {report['statuses']['rejected']} changes rejected "
            f"(the generator is wrong): {report['rejected_examples'][:2]}"
        )
    if report["failed_batches"]:
        figures["warnings"].append(
            f"{report['label']}: {report['failed_batches']} batches failed: "
            f"{report['failures'][:2]}"
        )
    if not report["as_expected"]:
        figures["warnings"].append(
            f"{report['label']}: statuses {report['statuses']} but expected {report['expected']}"
        )
    if report.get("stopped_by_budget"):
        figures["warnings"].append(f"{report['label']}: stopped early, over its time budget")
    for warning in figures["warnings"][-4:]:
        if report["label"] in warning:
            say(f"  !! {warning}")
    return report


def _push_line(report: dict[str, Any]) -> str:
    return (
        f"{report['changes']:,} changes in {report['seconds']:.1f} s: "
        f"{report['records_per_s'] or 0:,.0f} records/s, p95 {report['latency_ms']['p95']} ms"
    )


def warm_up(
    made: Deployment, config: Config, figures: dict[str, Any], *, record: bool = True
) -> dict[str, Any]:
    """Every tablet's warm-up batch, then the office's edits of those records; the
    warm-up's report."""
    with made.memory.during("warm-up"):
        report = check(figures, made.load.call("warm_up", size=config.batch))
    say(f"  warm-up: {_push_line(report)}")
    with made.memory.during("office edits"):
        office = check(
            figures,
            made.load.call("office_edits", size=min(config.batch, made.settings.max_batch)),
        )
    say(f"  office edits: {_push_line(office)}")
    if record:
        figures["warm_up"], figures["office_edits"] = report, office
    return report


def push_phase(made: Deployment, config: Config, figures: dict[str, Any]) -> None:
    # As many batches as fit the time asked for, at the warm-up's pace (at least two).
    pace = max((figures["warm_up"]["latency_ms"]["max"] or 1) / 1000, 0.001)
    batches = min(config.batches, max(2, int(config.push_seconds / pace)))
    say(f"  push: {config.devices} devices x {batches} batches of {config.batch} (gzip)")
    sqlite = made.backend == "sqlite"
    before = turns.read(made.server.base_url) if sqlite else None
    spent_before = spent.read(made.server.base_url)
    with (
        made.memory.during("push"),
        push_cpu(made) as cpu,
        connections.watch(made.server.pid, made.server.port) as spread,
    ):
        report = made.load.call(
            "push",
            batches=batches,
            size=config.batch,
            label="push",
            keep=True,
            budget=3 * config.push_seconds,
        )
    figures["push"] = check(figures, report)
    report["cpu"] = cpu.of(report)
    report["connections_by_process"] = spread
    say(f"  push: {_push_line(report)}")
    say(f"  push: {_cpu_line(report['cpu'])}")
    report["cpu_by_phase"] = spent.summary(
        spent_before,
        spent.read(made.server.base_url),
        changes=report["changes"],
        server_us=report["cpu"]["server_us_per_change"],
    )
    say(f"  push: {spent.line(report['cpu_by_phase'])}")
    say(f"  push: connections by server process: {spread_text(spread)}")
    if before is not None:
        after = turns.read(made.server.base_url)
        report["write_turns"] = turns.summary(
            before, after, seconds=report["seconds"], pushes=report["batches"]
        )
        say(f"  push: {turns.line(report['write_turns'])}")
    say("  floor: the same rows by plain INSERT … ON CONFLICT DO NOTHING")
    with made.memory.during("floor"):
        floor = made.load.call(
            "floor",
            database_url=made.url,
            label="push",
            user_id=str(made.fleet.importer.user_id),
            device_id=str(made.fleet.importer.device_id),
        )
    figures["floor"] = floor
    rate = report["records_per_s"]
    report["floor_share"] = (
        round(rate / floor["rows_per_s"], 4) if rate and floor["rows_per_s"] else None
    )
    say(
        f"  floor: {floor['rows']:,} rows in {floor['seconds']:.2f} s: "
        f"{floor['rows_per_s']:,.0f} rows/s"
    )


@dataclass
class PushCpu:
    """The CPU used during a timed push (``push_cpu``): the server's process tree,
    PostgreSQL's backends of the bench's database, and its other processes."""

    server: CpuUse
    backends: CpuUse
    others: CpuUse

    def of(self, report: dict[str, Any]) -> dict[str, Any]:
        """The figures of push ``report``, a change of it at a time."""
        changes = report["changes"]
        server, backends, others = self.server, self.backends, self.others
        return {
            "server_s": server.seconds,
            "server_us_per_change": server.per(changes),
            "server_processes": server.processes,
            # PostgreSQL's backends of the bench's database; None on SQLite, or where
            # the server's processes are not on this machine.
            "postgres_s": backends.seconds if backends.processes else None,
            "postgres_us_per_change": backends.per(changes),
            "postgres_processes": backends.processes,
            # Its other processes: WAL writer, checkpointer, other databases' backends.
            "postgres_others_s": others.seconds if others.processes else None,
            "client_s": report["client_cpu_s"],
            "client_us_per_change": report["client_cpu_us_per_record"],
        }


@contextlib.contextmanager
def push_cpu(made: Deployment) -> Iterator[PushCpu]:
    """The CPU read from ``/proc`` before and after the block (``PushCpu.of`` after it)."""
    database = sa.make_url(made.url).database or ""
    postgresql = made.backend == "postgresql"
    with (
        cpu_used(lambda: tree(made.server.pid)) as server,
        cpu_used(lambda: postgres_processes(database)[0] if postgresql else []) as backends,
        cpu_used(lambda: postgres_processes(database)[1] if postgresql else []) as others,
    ):
        yield PushCpu(server, backends, others)


ONE_WRITER = "SQLite has one writer at a time: more server processes only queue for it"


def workers_phase(backend: str, config: Config, figures: dict[str, Any]) -> dict[str, Any]:
    """For each of ``--scaling-workers``: a fresh database served by that many
    processes, the warm-up and the office's edits, then a timed push of the same
    devices, batch size and number of batches each time (as many as fit
    ``--scaling-seconds`` at the first run's warm-up pace), with its CPU from ``/proc``
    and the sync clock's holders sampled from ``pg_locks`` (``bench.clock``)."""
    if backend != "postgresql":
        say(f"  workers: not on {backend}: {ONE_WRITER}")
        return {"skipped": ONE_WRITER}
    runs: list[dict[str, Any]] = []
    batches = 0
    for count in config.scaling_workers:
        say(f"  workers: fieldsync serve --workers {count}")
        with deployment(backend, replace(config, workers=count), "workers") as made:
            warm = warm_up(made, config, figures, record=False)
            if not batches:  # the same batches for every count, at the first one's pace
                pace = max((warm["latency_ms"]["max"] or 1) / 1000, 0.001)
                batches = min(config.batches, max(2, int(config.scaling_seconds / pace)))
            label = f"push, {count} workers"
            say(f"    {config.devices} devices x {batches} batches of {config.batch} (gzip)")
            with (
                clock.watch(server_url=config.postgres_url, database_url=made.url) as watched,
                made.memory.during(label),
                push_cpu(made) as cpu,
                connections.watch(made.server.pid, made.server.port) as spread,
            ):
                report = made.load.call(
                    "push",
                    batches=batches,
                    size=config.batch,
                    label=label,
                    budget=3 * config.scaling_seconds,
                )
            check(figures, report)
            report["cpu"] = cpu.of(report)
            report["connections_by_process"] = spread
            report["clock"] = clock.summary(
                watched, pushes=report["batches"], push_seconds=report["seconds"]
            )
            figures["server_tracebacks"] += len(made.server.tracebacks())
        say(f"    {_push_line(report)}")
        say(f"    {_cpu_line(report['cpu'])}")
        say(f"    {_clock_line(report['clock'])}")
        say(f"    connections by server process: {spread_text(report['connections_by_process'])}")
        runs.append({"workers": count, "push": report})
    for run_ in runs:
        run_["vs_first"] = _ratio(run_["push"]["records_per_s"], runs[0]["push"]["records_per_s"])
    return {
        "devices": config.devices,
        "batch": config.batch,
        "batches_per_device": batches,
        "seconds_asked": config.scaling_seconds,
        "runs": runs,
    }


def _clock_line(summary: dict[str, Any]) -> str:
    if summary.get("held_ms_per_push") is None:
        return f"sync clock: not measured ({summary.get('problem')})"
    share = summary["held_share_of_push"]
    return (
        f"sync clock held {summary['held_ms_per_push']} ms a push, "
        f"{share:.0%} of the push's time; holds p50 {summary['hold_ms']['p50']} ms, "
        f"{summary['waiting_while_held_mean']} writers waiting while held "
        f"({summary['samples']:,} samples {summary['interval_ms']} ms apart)"
    )


def _cpu_line(cpu: dict[str, Any]) -> str:
    line = f"CPU a change: the server {cpu['server_us_per_change']} µs"
    if cpu["postgres_us_per_change"] is not None:
        line += f", PostgreSQL {cpu['postgres_us_per_change']} µs"
    return line + f", the load process {cpu['client_us_per_change']} µs"


def peer_phase(made: Deployment, figures: dict[str, Any], setup: PeerSetup) -> None:
    """The timed push's changes to express-pouchdb's ``_bulk_docs`` (``bench.peer``):
    the same batches from as many clients at once, into one database; its CPU from
    ``/proc``; and the documents it holds afterwards, checked."""
    if setup.modules is None:
        if setup.problem is not None:
            figures["warnings"].append(setup.problem)
        return
    say("  peer: express-pouchdb _bulk_docs of the same changes (new_edits false, gzip)")
    try:
        with peers.serving(setup.modules) as peer:
            where = {"url": peer.url, "database": peer.database}
            ready = made.load.call("peer_prepare", **where, label="push")
            with cpu_used(lambda: tree(peer.pid)) as used:
                report = made.load.call("peer_push", **where, label="peer")
            held = peers.stored(peer.url, peer.database)
    except (peers.PeerFailed, peers.PeerUnavailable, LoadFailed, httpx.HTTPError) as error:
        problem = f"the peer failed, so no push / peer ratio: {error}"
        figures["errors"] += 1
        figures["warnings"].append(problem[:3000])
        say(f"  !! {problem}")
        return
    records = report["records"]
    report["untimed_documents"] = ready["untimed_documents"]
    report["stored"] = {"records_held": held, "expected": ready["records_expected_after"]}
    report["cpu"] = {
        "server_s": used.seconds,
        "server_us_per_record": used.per(records),
        "server_processes": used.processes,
        "client_s": report["client_cpu_s"],
        "client_us_per_record": report["client_cpu_us_per_record"],
    }
    figures["peer"] = report
    push = figures["push"]
    push["vs_peer"] = _ratio(push["records_per_s"], report["records_per_s"])
    problems = []
    if report["failed_batches"]:
        problems.append(f"{report['failed_batches']} batches failed: {report['failures'][:2]}")
    if held != ready["records_expected_after"]:
        problems.append(f"it holds {held:,} documents, not {ready['records_expected_after']:,}")
    if records != push["changes"]:
        problems.append(f"it was sent {records:,} documents for {push['changes']:,} changes")
    for problem in problems:
        figures["errors"] += 1
        figures["warnings"].append(f"peer: {problem}")
        say(f"  !! peer: {problem}")
    latency = report["latency_ms"]
    say(
        f"  peer: {records:,} documents in {report['seconds']:.1f} s: "
        f"{report['records_per_s'] or 0:,.0f} records/s, p95 {latency['p95']} ms; CPU a record: "
        f"the peer {report['cpu']['server_us_per_record']} µs, "
        f"the load process {report['cpu']['client_us_per_record']} µs"
    )
    say(f"  push / peer: {push['vs_peer']}")


def pull_phase(made: Deployment, figures: dict[str, Any]) -> None:
    device = fleets.fresh_device(made.fleet, "pull")
    with made.memory.during("pull"):
        report = made.load.call(
            "pull", device=device, limit=made.settings.pull_max_limit, label="initial pull"
        )
    report.pop("cursor")
    figures["pull"] = report
    say(
        f"  initial pull: {report['records']:,} records in {report['seconds']:.1f} s: "
        f"{report['records_per_s']:,.0f} records/s ({report['pages']} pages)"
    )


def one_batch(made: Deployment, config: Config, figures: dict[str, Any]) -> None:
    size = min(config.one_batch, made.settings.max_batch)
    made.load.call("prepare_batch", size=size)
    with made.memory.during("one batch"), made.memory.window() as window:
        report = made.load.call("send_batch")
    report["label"] = f"one batch of {size}"
    report["memory"] = window.report()
    figures["one_batch"] = check(figures, report)
    say(
        f"  one batch of {size}: {report['latency_ms']['max']} ms, the largest server "
        f"process grew {report['memory']['largest_process_growth_mb']} MB"
    )


def scale_phase(made: Deployment, config: Config, figures: dict[str, Any]) -> list[dict[str, Any]]:
    fleet = made.fleet
    history = History(
        sectors=fleet.seeded_sectors,
        communities=fleet.communities,
        categories=fleet.categories,
        user_id=fleet.importer.user_id,
        device_id=fleet.importer.device_id,
    )
    limit = made.settings.pull_max_limit
    cursor = made.load.call("pull", device=fleet.watcher, limit=limit, label="watcher")["cursor"]
    engine = create_db_engine(made.url)
    rows: list[dict[str, Any]] = []
    try:
        for target in config.scales:
            held = records_held(engine)
            seeded = 0.0
            if target > held:
                say(f"  seeding {target - held:,} records (to {target:,} held)")
                every = max(CHUNK, (target - held) // 5)

                def progress(done: int, every: int = every, total: int = target - held) -> None:
                    if done % every < CHUNK or done == total:
                        say(f"    seeded {done:,} of {total:,}")

                with made.memory.during(f"seed {target}"):
                    seeded = seed(
                        engine,
                        history,
                        target - held,
                        seed=f"{config.seed}:{target}",
                        progress=progress,
                    )
                if engine.dialect.name == "postgresql":
                    with engine.connect() as connection:  # as autovacuum would by then
                        connection.execute(sa.text("ANALYZE"))
                        connection.commit()
            held = records_held(engine)
            say(f"  at {held:,} records held")
            cursor = _catch_up(made, cursor, limit)
            with made.memory.during(f"push @{target}"):
                push = check(
                    figures,
                    made.load.call(
                        "push",
                        batches=config.scale_batches,
                        size=config.batch,
                        label=f"push @{held}",
                    ),
                )
            say(f"    push: {_push_line(push)}")
            device = fleets.fresh_device(fleet, f"pull @{target}")
            with made.memory.during(f"pull @{target}"):
                first = made.load.call(
                    "pull", device=device, limit=limit, most=config.scale_pull, label="first pull"
                )
            first.pop("cursor")
            say(f"    first {first['records']:,} pulled: {first['records_per_s']:,.0f} records/s")
            full = None
            if held <= config.full_pull_max:
                device = fleets.fresh_device(fleet, f"full pull @{target}")
                with made.memory.during(f"pull @{target}"):
                    full = made.load.call("pull", device=device, limit=limit, label="full pull")
                full.pop("cursor")
                say(f"    all {full['records']:,} pulled: {full['records_per_s']:,.0f} records/s")
            with made.memory.during(f"pull @{target}"):
                incremental = made.load.call(
                    "pull", device=fleet.watcher, limit=limit, cursor=cursor, label="incremental"
                )
            cursor = incremental.pop("cursor")
            say(
                f"    incremental pull of the live sector: {incremental['records']:,} records, "
                f"{incremental['records_per_s'] or 0:,.0f} records/s"
            )
            health = fleet_health(made)
            say(
                f"    fleet health of {health['devices']} devices: "
                f"{health['latency_ms']['p50']:,.1f} ms (p50)"
            )
            rows.append(
                {
                    "scale": target,
                    "records_held": held,
                    "seed_seconds": round(seeded, 1),
                    "push": push,
                    "first_pull": first,
                    "full_pull": full,
                    "incremental_pull": incremental,
                    "fleet_health": health,
                }
            )
    finally:
        engine.dispose()
    for row in rows:
        row["push_vs_first"] = _ratio(
            row["push"]["records_per_s"], rows[0]["push"]["records_per_s"]
        )
        row["pull_vs_first"] = _ratio(
            row["first_pull"]["records_per_s"], rows[0]["first_pull"]["records_per_s"]
        )
        row["incremental_vs_first"] = _ratio(
            row["incremental_pull"]["records_per_s"], rows[0]["incremental_pull"]["records_per_s"]
        )
        # A time, not a rate: above 1 is slower than at the first scale.
        row["health_vs_first"] = _ratio(
            row["fleet_health"]["latency_ms"]["p50"], rows[0]["fleet_health"]["latency_ms"]["p50"]
        )
    return rows


HEALTH_READS = 15


def fleet_health(made: Deployment) -> dict[str, Any]:
    """``GET /devices/health`` as an office reads it, every device on one page, timed
    ``HEALTH_READS`` times: each device's lag is a few index seeks, so the time should
    not grow with the records held."""
    fleet = made.fleet
    headers = {"Authorization": f"Bearer {fleet.admin_token}"}
    times: list[float] = []
    with httpx.Client(base_url=fleet.api, headers=headers, timeout=60) as client:
        for _ in range(HEALTH_READS):
            started = time.perf_counter()
            answer = client.get("/devices/health", params={"limit": 500})
            times.append((time.perf_counter() - started) * 1000)
            answer.raise_for_status()
    page = answer.json()
    behind = sum(1 for item in page["items"] if item["behind_since"] is not None)
    return {
        "devices": page["total"],
        "devices_behind": behind,
        "latency_ms": {
            "p50": round(statistics.median(times), 2),
            "max": round(max(times), 2),
        },
    }


RANGERS_PER_SECTOR = 6  # two a patrol: a sector's patrols of a day rarely share one
# The review history's pace: 10,000 patrols in two years, fourteen a day in the park
# (two or three a sector); a smaller history is a shorter one, of at least 60 days.
REVIEW_DAYS_PER_PATROL = 730 / 10_000


def review_phase(made: Deployment, config: Config, figures: dict[str, Any]) -> dict[str, Any]:
    fleet = made.fleet
    say(f"  review staff: a ranger lead and {RANGERS_PER_SECTOR} rangers in each sector")
    with made.memory.during("review staff"):
        staff = fleets.review_staff(fleet, rangers_per_sector=RANGERS_PER_SECTOR)
    history = History(
        sectors=fleet.sectors,
        communities=fleet.communities,
        categories=fleet.categories,
        user_id=fleet.importer.user_id,
        device_id=fleet.importer.device_id,
    )
    patrols = Patrols(
        config.review_patrols,
        config.review_points,
        crews=tuple(tuple(crew) for crew in staff.crews),
        days=max(60, round(config.review_patrols * REVIEW_DAYS_PER_PATROL)),
    )
    sector_ids = [sector.id for sector in fleet.sectors]
    engine = create_db_engine(made.url)
    try:
        say(f"  seeding {patrols.count:,} patrols with {patrols.points:,} track points")
        every = max(patrols.chunk, patrols.count // 5)

        def progress(done: int) -> None:
            if done % every < patrols.chunk or done == patrols.count:
                say(f"    seeded {done:,} of {patrols.count:,} patrols")

        with made.memory.during("review seed"):
            seconds, seeded = seed_patrols(
                engine, history, patrols, seed=f"{config.seed}:review", progress=progress
            )
        started = time.perf_counter()
        with made.memory.during("review seed"):
            reviews = review.make_reviews(engine, seeded, staff, sector_ids)
        reviewing = time.perf_counter() - started
        say(f"    {reviews:,} of them reviewed by their leads in {reviewing:.1f} s")
        if engine.dialect.name == "postgresql":
            with engine.connect() as connection:  # as autovacuum would by then
                connection.execute(sa.text("ANALYZE"))
                connection.commit()
    finally:
        engine.dispose()
    asks = review.plan(
        review.Expected(seeded, made.settings.zone),
        staff,
        sector_ids,
        requests=config.review_requests,
        details=config.review_details,
        page=config.review_page,
        days=patrols.days,
        seed=config.seed,
    )
    with made.memory.during("review"):
        endpoints = review.measure(fleet.api, asks)
    for report in endpoints.values():
        latency = report["latency_ms"]
        say(
            f"    {report['label']}: p50 {latency['p50']} ms, p95 {latency['p95']} ms "
            f"({report['count']} requests)"
        )
        if report["failed"] or report["mismatches"]:
            figures["errors"] += 1
            problem = (
                f"review, {report['label']}: {report['failed']} requests failed, "
                f"{report['mismatches']} answers differ from the seeded patrols: "
                f"{(report['failures'] + report['mismatch_examples'])[:2]}"
            )
            figures["warnings"].append(problem)
            say(f"  !! {problem}")
    return {
        **review.held(seeded),
        "seed_seconds": round(seconds, 1),
        "reviews": reviews,
        "review_seconds": round(reviewing, 1),
        "endpoints": endpoints,
    }


def _catch_up(made: Deployment, cursor: str, limit: int) -> str:
    """The watcher pulls what it has not seen yet (not timed): its cursor is recent."""
    answer = made.load.call(
        "pull", device=made.fleet.watcher, limit=limit, cursor=cursor, label="watcher"
    )
    latest: str = answer["cursor"]
    return latest


def _ratio(value: float | None, first: float | None) -> float | None:
    return round(value / first, 3) if value and first else None


# ---------------------------------------------------------------- the machine


def machine(config: Config) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "memory_gb": _memory_gb(),
        "sqlite": sqlite3.sqlite_version,
        "git_revision": _git("rev-parse", "--short=12", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
    }
    if "postgresql" in config.backends:
        try:
            engine = sa.create_engine(config.postgres_url)
            with engine.connect() as connection:
                facts["postgresql"] = connection.exec_driver_sql("SHOW server_version").scalar()
            engine.dispose()
        except sa.exc.SQLAlchemyError as error:
            facts["postgresql"] = f"unreachable: {type(error).__name__}"
    return facts


def _git(*args: str) -> str:
    try:
        answer = subprocess.run(  # noqa: S603
            ["git", *args],  # noqa: S607 (git from PATH, like a developer's)
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return answer.stdout.strip() if answer.returncode == 0 else "unknown"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_gb() -> float | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    return None
