"""The ``fieldsync`` command.

    fieldsync serve [--host H] [--port P] [--workers N]
    fieldsync db upgrade [REVISION] | db downgrade REVISION | db current
    fieldsync changes retry        (changes kept as schema_too_new, decided again)
    fieldsync users create-admin USERNAME [--full-name NAME] [--password-stdin]
    fieldsync bench [OPTIONS]      (``fieldsync bench --help``; docs/performance.md)
    fieldsync demo [OPTIONS]       (``fieldsync demo --help``; make demo)
    fieldsync device enroll CODE | push [FILE] | pull | status
                                   (a tablet in the shell; ``fieldsync device --help``)

Every command reads ``FIELDSYNC_DATABASE_URL`` (and the other ``FIELDSYNC_*``
settings); ``serve`` refuses to start without a safe ``FIELDSYNC_SECRET_KEY``.
"""

import argparse
import getpass
import logging.config
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from datetime import date

import sqlalchemy as sa
import uvicorn
from pydantic import ValidationError

from api import logs
from api.protocol import BoundedHeadersProtocol
from schemas.records import Program
from sync.accounts import users
from sync.platform import migrate
from sync.platform.database import create_db_engine, transaction
from sync.platform.errors import FieldsyncError
from sync.platform.settings import Settings, SettingsError, get_settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, rest = parser.parse_known_args(argv)
    if rest and args.run not in (_bench, _demo, _device):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.rest = rest
    try:
        result: int = args.run(args)
        return result
    except SettingsError as error:
        print(f"fieldsync: {error}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fieldsync", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
    serve.set_defaults(run=_serve)

    db = commands.add_parser("db", help="the database schema").add_subparsers(
        required=True, metavar="ACTION"
    )
    upgrade = db.add_parser("upgrade", help="apply the migrations (to head by default)")
    upgrade.add_argument("revision", nargs="?", default="head")
    upgrade.set_defaults(run=_db_upgrade)
    downgrade = db.add_parser("downgrade", help="undo migrations down to REVISION")
    downgrade.add_argument("revision")
    downgrade.set_defaults(run=_db_downgrade)
    db.add_parser("current", help="print the database's migration").set_defaults(run=_db_current)

    changes = commands.add_parser("changes", help="changes tablets pushed").add_subparsers(
        required=True, metavar="ACTION"
    )
    changes.add_parser(
        "retry",
        help="decide again the changes kept as schema_too_new whose version this server "
        "now reads (db upgrade runs it too)",
    ).set_defaults(run=_changes_retry)

    audit = commands.add_parser("audit", help="the tamper-evident history").add_subparsers(
        required=True, metavar="ACTION"
    )
    verify = audit.add_parser(
        "verify", help="walk the audit chain on the database and say where it breaks"
    )
    verify.add_argument(
        "--anchors",
        metavar="FILE",
        help="also check the anchors of this anchor file (one kept out of the office)",
    )
    verify.set_defaults(run=_audit_verify)
    audit.add_parser(
        "anchor", help="sign the chain's head with FIELDSYNC_AUDIT_SIGNING_KEY, keep it, print it"
    ).set_defaults(run=_audit_anchor)
    audit.add_parser(
        "keygen", help="make a signing key for FIELDSYNC_AUDIT_SIGNING_KEY, and its public key"
    ).set_defaults(run=_audit_keygen)
    export = audit.add_parser(
        "export",
        help="write a verifier's bundle: the chain, its records pseudonymised, the anchors, "
        "the office's figures and a standalone script that checks them",
    )
    export.add_argument("--from", dest="start", required=True, type=_day, metavar="YYYY-MM-DD")
    export.add_argument("--to", dest="end", required=True, type=_day, metavar="YYYY-MM-DD")
    export.add_argument(
        "--program",
        choices=[program.value for program in Program],
        help="only this training programme's sessions and attendance are shown",
    )
    export.add_argument(
        "--out", required=True, metavar="PATH", help="a new folder, or a zip if it ends in .zip"
    )
    export.set_defaults(run=_audit_export)

    people = commands.add_parser("users", help="users").add_subparsers(
        required=True, metavar="ACTION"
    )
    admin = people.add_parser("create-admin", help="make an admin (the first one, say)")
    admin.add_argument("username")
    admin.add_argument("--full-name", default=None, help="defaults to the username")
    admin.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    admin.set_defaults(run=_create_admin)

    # Its options are the benchmark's own (``fieldsync bench --help``), parsed there.
    bench = commands.add_parser(
        "bench", help="benchmark sync on SQLite and PostgreSQL (make bench)", add_help=False
    )
    bench.set_defaults(run=_bench)

    # Likewise: ``fieldsync demo --help``.
    demo = commands.add_parser(
        "demo", help="build a realistic demo programme through the API (make demo)", add_help=False
    )
    demo.set_defaults(run=_demo)

    # Likewise: ``fieldsync device --help``.
    device = commands.add_parser(
        "device", help="a tablet in the shell: enroll, push, pull, status", add_help=False
    )
    device.set_defaults(run=_device)
    return parser


def _serve(args: argparse.Namespace) -> int:
    settings = get_settings()
    settings.signing_key()  # refuse to start rather than sign with nothing safe
    # JSON lines on stderr (or text), uvicorn's own lines too; each worker applies it again.
    log_config = logs.log_config(settings.log_format)
    logging.config.dictConfig(log_config)
    engine = create_db_engine(settings.database_url)
    try:
        if not migrate.is_at_head(engine):
            logging.getLogger("fieldsync").warning(
                "the database is not at the newest migration; "
                "run `fieldsync db upgrade` (readyz answers 503 until then)"
            )
    finally:
        engine.dispose()
    with ExitStack() as cleanup:
        # Several workers keep their metrics in files of one folder, which any of them
        # sums when scraped (api/metrics.py). Set before the workers start and import
        # prometheus_client; a fresh folder each start, so no old run's counts linger.
        if args.workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
            folder = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="fieldsync-metrics-"))
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
        uvicorn.run(
            "api.app:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            # The app reads X-Forwarded-For itself, from FIELDSYNC_TRUSTED_PROXIES only
            # (sync.platform.addresses): uvicorn's own reading trusts 127.0.0.1 by default
            # and would hide the socket peer that the throttles must see.
            proxy_headers=False,
            log_level="info",
            log_config=log_config,
            # One access line per request, with its route and id, is written by the app
            # (api/logs.py); uvicorn's would say the same without them, and the query.
            access_log=False,
            # httptools with a deadline and a size cap on request headers (api/protocol.py).
            http=BoundedHeadersProtocol,
            # Several processes share new connections evenly (api/accept.py).
            loop="api.accept:FairAcceptLoop" if args.workers > 1 else "auto",
        )
    return 0


def _bench(args: argparse.Namespace) -> int:
    # Imported here: the server never loads the benchmark, only this command does.
    try:
        from bench.run import main as bench
    except ModuleNotFoundError as missing:
        return _from_a_checkout(missing, "bench")
    return bench(args.rest)


def _demo(args: argparse.Namespace) -> int:
    # Imported here, as the benchmark is: the server never loads the demo.
    try:
        from demo.run import main as demo
    except ModuleNotFoundError as missing:
        return _from_a_checkout(missing, "demo")
    return demo(args.rest)


def _from_a_checkout(missing: ModuleNotFoundError, command: str) -> int:
    """The benchmark and the demo are not in the production wheel: they run from a
    source checkout, whose ``make install`` puts them on the venv's path."""
    if missing.name != command:
        raise missing
    print(
        f"fieldsync {command} runs from a source checkout: make {command}",
        file=sys.stderr,
    )
    return 2


def _device(args: argparse.Namespace) -> int:
    from api.device_command import main as device

    return device(args.rest)


def _db_upgrade(args: argparse.Namespace) -> int:
    engine = create_db_engine(get_settings().database_url)
    try:
        migrate.upgrade(engine, args.revision)
        print(f"database at {migrate.current_revision(engine)}")
        # An upgraded server may read versions of the data model it refused before.
        if migrate.is_at_head(engine):
            _retry_too_new(engine, quiet=True)
    finally:
        engine.dispose()
    return 0


def _changes_retry(_args: argparse.Namespace) -> int:
    engine = create_db_engine(get_settings().database_url)
    try:
        if _not_migrated(engine):
            return 1
        _retry_too_new(engine, quiet=False)
    finally:
        engine.dispose()
    return 0


def _not_migrated(engine: sa.Engine) -> bool:
    """Whether the database is behind the newest migration (and say so)."""
    if migrate.is_at_head(engine):
        return False
    print("fieldsync: the database is not migrated; run `fieldsync db upgrade`", file=sys.stderr)
    return True


def _audit(command: Callable[[Settings, sa.Engine], int]) -> int:
    """Run an audit ``command`` on the settings' database: exit 1 where the database is
    not migrated, or the command is refused (the reason printed)."""
    from sync.audit import anchors, bundle

    settings = get_settings()
    engine = create_db_engine(settings.database_url)
    try:
        if _not_migrated(engine):
            return 1
        return command(settings, engine)
    except (anchors.AnchorRefused, bundle.ExportRefused) as refused:
        print(f"fieldsync: {refused}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()


def _signing_secret(settings: Settings) -> str | None:
    secret = settings.audit_signing_key
    return secret.get_secret_value() if secret else None


def _audit_verify(args: argparse.Namespace) -> int:
    """Exit 0 when the chain is intact, 1 where it breaks (each break printed)."""
    from pathlib import Path

    from sync.audit import anchors
    from sync.audit.verify import verify

    kept_out = list(anchors.read_file(Path(args.anchors))) if args.anchors else []

    def check(_settings: Settings, engine: sa.Engine) -> int:
        with engine.connect() as connection:
            report = verify(connection, kept_out)
        print(report.summary())
        return 0 if report.intact else 1

    return _audit(check)


def _audit_anchor(_args: argparse.Namespace) -> int:
    """Sign the chain's head; the line printed is what to send out of the office."""
    from sync.audit import anchors

    def sign(settings: Settings, engine: sa.Engine) -> int:
        key = anchors.signing_key(_signing_secret(settings))
        with transaction(engine) as session:
            made = anchors.anchor(session, key, settings.anchor_file())
        print(anchors.line_of(made))
        return 0

    return _audit(sign)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _audit_export(args: argparse.Namespace) -> int:
    """Write the bundle; sign its last block when FIELDSYNC_AUDIT_SIGNING_KEY is set."""
    from pathlib import Path

    from sync.audit import anchors, bundle

    def write(settings: Settings, engine: sa.Engine) -> int:
        secret = _signing_secret(settings)
        made = bundle.export(
            engine,
            Path(args.out),
            start=args.start,
            end=args.end,
            zone=settings.zone,
            program=Program(args.program) if args.program else None,
            signing_key=anchors.signing_key(secret) if secret else None,
            anchor_file=settings.anchor_file(),
        )
        print(f"{made.path}: {made.blocks} blocks, {made.rows} rows ({made.withheld} withheld)")
        if made.anchored is None:
            print(
                "fieldsync: FIELDSYNC_AUDIT_SIGNING_KEY is not set: the bundle's last block "
                "is signed by no anchor, and its script will say so",
                file=sys.stderr,
            )
        else:
            print(f"signed: {anchors.line_of(made.anchored)}")
        return 0

    return _audit(write)


def _audit_keygen(_args: argparse.Namespace) -> int:
    from sync.audit import anchors

    seed, public_key = anchors.keygen()
    print(f"FIELDSYNC_AUDIT_SIGNING_KEY={seed}")
    print(f"# public key (give it to the verifiers): {public_key}")
    return 0


def _retry_too_new(engine: sa.Engine, *, quiet: bool) -> None:
    """Decide again the changes kept as ``schema_too_new`` (``sync.engine.retry``);
    say what happened (``quiet``: only if there were any)."""
    from sync.catalog import CATALOG
    from sync.engine.retry import retry_too_new

    retried = retry_too_new(engine, catalog=CATALOG)
    if not quiet or retried.decided or retried.still_too_new or retried.failed:
        print(retried.summary())


def _db_downgrade(args: argparse.Namespace) -> int:
    engine = create_db_engine(get_settings().database_url)
    try:
        migrate.downgrade(engine, args.revision)
        print(f"database at {migrate.current_revision(engine)}")
    finally:
        engine.dispose()
    return 0


def _db_current(_args: argparse.Namespace) -> int:
    engine = create_db_engine(get_settings().database_url)
    try:
        current = migrate.current_revision(engine)
        head = migrate.head_revision()
        print(f"{current} (head: {head})")
    finally:
        engine.dispose()
    return 0


def _create_admin(args: argparse.Namespace) -> int:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("fieldsync: the passwords differ", file=sys.stderr)
            return 1
    settings = get_settings()
    engine = create_db_engine(settings.database_url)
    try:
        with transaction(engine) as session:
            admin = users.create_admin(
                session,
                username=args.username,
                password=password,
                full_name=args.full_name or args.username,
                settings=settings,
            )
    except ValidationError as error:
        for problem in error.errors():
            print(f"fieldsync: {problem['loc'][-1]}: {problem['msg']}", file=sys.stderr)
        return 1
    except FieldsyncError as error:
        print(f"fieldsync: {error.detail}", file=sys.stderr)
        return 1
    except sa.exc.SQLAlchemyError as error:
        if not migrate.is_at_head(engine):
            print(
                "fieldsync: the database is not migrated; run `fieldsync db upgrade`",
                file=sys.stderr,
            )
        else:
            print(f"fieldsync: the database failed: {type(error).__name__}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(f"admin {admin.username} created ({admin.id})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
