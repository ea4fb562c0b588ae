"""The verifier's bundle: the audit chain and its records, for a verifier outside the
office to check with nothing but Python (``fieldsync audit export``; docs/audit.md).

A bundle is a folder (or a zip of one):

- ``rows.jsonl``: every chained row of every block, in block order, each with its
  content exactly as it was hashed (``chain.canonical``: personal data as keyed
  pseudonyms, so nothing personal leaves the office and every hash can be checked),
  or its hash alone where it is withheld (the trainings of other programmes, with
  ``--program``; rows of personal data hashed before pseudonyms, migration 0019);
- ``blocks.jsonl``: the chain's blocks, 1 to the head, which the bundle ends at;
- ``anchors.jsonl``: the office's signed anchors up to it, and one for it when the
  office's signing key is set, so that the bundle ends at a signed block;
- ``bundle.json``: the period, the programme, and the figures the office's own
  reports give for them, read in the same snapshot as the rows;
- ``verify_bundle.py`` and ``ed25519.py``: the standalone check, and ``LEEME.txt``.

The bundle is written beside its destination and moved there whole: a failed export
leaves nothing behind.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from schemas import Patrol, Person, TrainingSession
from schemas.agreements import AgreementReportQuery
from schemas.audit import AnchorRead
from schemas.enums import Role
from schemas.records import Program
from schemas.trainings import AttendanceReportQuery
from sync.accounts.principal import Principal
from sync.audit import anchors, verify
from sync.people import agreement_report
from sync.platform import chain
from sync.platform.database import is_postgresql
from sync.platform.period import period
from sync.training import attendance_report

FORM = "fieldsync-bundle-1"
SCRIPTS = ("verify_bundle.py", "ed25519.py")
_OFFICE = Principal(
    user_id=uuid.UUID(int=0),
    username="audit-export",
    role=Role.admin,
    family_id=None,
    device_id=None,
    sector_ids=frozenset(),
    community_ids=frozenset(),
)
"""The reports are read as an admin reads them: every sector and community."""


class ExportRefused(ValueError):
    """The bundle cannot be made as asked."""


@dataclass(frozen=True)
class Exported:
    path: Path
    blocks: int
    rows: int
    withheld: int
    anchored: AnchorRead | None


def export(
    engine: Engine,
    out: Path,
    *,
    start: date,
    end: date,
    zone: ZoneInfo,
    program: Program | None = None,
    signing_key: Any = None,
    anchor_file: Path | None = None,
) -> Exported:
    """Write the bundle of ``start`` to ``end`` (whole local days of ``zone``) at
    ``out`` (a folder, or a zip if it ends in ``.zip``); sign its last block with
    ``signing_key`` (an Ed25519 private key) if given."""
    if out.exists():
        raise ExportRefused(f"{out} exists already: the export writes a new one")
    if end < start:
        raise ExportRefused("the period runs backwards: --to is before --from")
    if not out.parent.is_dir():
        raise ExportRefused(f"{out.parent} is not a folder: make it first")
    work = Path(tempfile.mkdtemp(prefix=".bundle-", dir=out.parent))
    try:
        with _snapshot(engine) as connection:
            head = chain.head(connection)
            if head[0] == 0:
                raise ExportRefused("nothing is chained yet: there is no history to export")
            blocks, rows, withheld = _write_chain(connection, work, head[0], program)
            claims = _office_figures(connection, start, end, zone, program)
            held = [made for made in anchors.held(connection) if made.block <= head[0]]
        anchored = None
        if signing_key is not None and anchor_file is not None:
            with Session(engine) as session, session.begin():
                anchored = anchors.anchor(session, signing_key, anchor_file, head=head)
            held.insert(0, anchored)
        _write_lines(work / "anchors.jsonl", (anchors.line_of(made) for made in reversed(held)))
        span = period(start, end, zone=zone)
        assert span.start is not None
        assert span.end is not None
        manifest = {
            "form": FORM,
            "made_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "period": {
                "from": start.isoformat(),
                "to": end.isoformat(),
                "timezone": zone.key,
                "starts": span.start.isoformat(),
                "ends": span.end.isoformat(),
            },
            "program": program.value if program else None,
            "programs": [program.value] if program else [p.value for p in Program],
            "head": {"block": head[0], "hash": head[1]},
            "office_figures": claims,
        }
        manifest_text = json.dumps(manifest, indent=2, ensure_ascii=False)
        (work / "bundle.json").write_text(manifest_text, encoding="utf-8")
        here = Path(__file__).parent
        for name in SCRIPTS:
            shutil.copyfile(here / name, work / name)
        (work / "LEEME.txt").write_text(_README.format(script=SCRIPTS[0]), encoding="utf-8")
        _move(work, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Exported(out, blocks, rows, withheld, anchored)


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection that reads one moment of the database throughout: the rows, the
    head and the office's figures agree with each other."""
    with engine.connect() as connection:
        if is_postgresql(connection):
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin() as snapshot:
            yield connection
            snapshot.rollback()  # it only read


def _write_chain(
    connection: Connection, work: Path, last: int, program: Program | None
) -> tuple[int, int, int]:
    """``blocks.jsonl`` and ``rows.jsonl``, blocks 1 to ``last``; how many blocks,
    rows, and rows withheld."""
    key = chain.key_read(connection)
    others = _other_sessions(connection, program)
    blocks = rows = withheld = 0
    with (
        (work / "blocks.jsonl").open("w", encoding="utf-8") as block_lines,
        (work / "rows.jsonl").open("w", encoding="utf-8") as row_lines,
    ):
        for group in verify.groups(connection):
            found = verify.rows_of(connection, [block.tx for block in group])
            for block in group:
                if block.number > last:
                    return blocks, rows, withheld
                line = {
                    "number": block.number,
                    "form": block.form,
                    "tx": str(block.tx),
                    "entries": block.entries,
                    "prev_hash": block.prev_hash,
                    "hash": block.hash,
                    "sealed_at": block.sealed_at.astimezone(UTC).isoformat(),
                }
                _write(block_lines, line)
                blocks += 1
                for name, values in found.get(block.tx, []):
                    shown = _row(name, values, block.number, block.form, key, others)
                    withheld += "content" not in shown
                    rows += 1
                    _write(row_lines, shown)
    return blocks, rows, withheld


def _row(
    name: str,
    values: dict[str, Any],
    number: int,
    form: str,
    key: chain.Key,
    others: set[str],
) -> dict[str, Any]:
    """A row as the bundle shows it: its content as hashed, or why it is withheld."""
    table = chain.TABLES[name]
    line: dict[str, Any] = {"block": number, "table": name, "hash": values["chain_hash"]}
    if name == "record_version" and _other_program(values, others):
        return {**line, "withheld": "another programme"}
    if form == chain.FORM_1:
        content = chain.canonical(table, values, form=form)
        shown = chain.canonical(table, values, key=key)
        if content != shown:  # personal data, hashed before pseudonyms
            return {
                **line,
                "withheld": "personal data hashed before pseudonyms",
                "unchecked": json.loads(shown),
            }
    else:
        content = chain.canonical(table, values, key=key, form=form)
    return {**line, "content": content.decode()}


def _other_sessions(connection: Connection, program: Program | None) -> set[str]:
    """The training sessions of programmes other than ``program`` (none without one)."""
    if program is None:
        return set()
    sessions = chain.table_of(TrainingSession)
    query = sa.select(sessions.c.id).where(sessions.c.program != program)
    return {str(session_id) for session_id in connection.execute(query).scalars()}


def _other_program(values: dict[str, Any], others: set[str]) -> bool:
    if not others:
        return False
    if values["entity"] == "training_session":
        return str(values["record_id"]) in others
    if values["entity"] == "attendance":
        return str((values["fields"] or {}).get("session_id")) in others
    return False


def _office_figures(
    connection: Connection, start: date, end: date, zone: ZoneInfo, program: Program | None
) -> dict[str, Any]:
    """What the office's own reports say of the period: the figures the script must
    find again in the records."""
    session = Session(bind=connection)
    training = {}
    for each in [program] if program else list(Program):
        query = AttendanceReportQuery.model_validate({"program": each, "from": start, "to": end})
        report = attendance_report.attendance_report(
            session, principal=_OFFICE, query=query, zone=zone
        )
        share = report.women_share
        training[each.value] = {
            "participants": report.participants,
            "women": report.women,
            "men": report.men,
            "women_share": round(share, 3) if share is not None else None,
            "headcount_sessions": report.headcount.sessions,
            "headcount_people": report.headcount.people,
        }
    agreements = agreement_report.agreement_report(
        session, principal=_OFFICE, query=AgreementReportQuery(), today=end
    )
    return {
        "training": training,
        "agreements": {
            "households": agreements.households,
            "households_with_agreement_in_force": agreements.households_with_active_agreement,
        },
        "patrols": _patrols(connection, start, end, zone),
        "people": _people(connection),
    }


def _patrols(connection: Connection, start: date, end: date, zone: ZoneInfo) -> dict[str, Any]:
    span = period(start, end, zone=zone)
    patrols = chain.table_of(Patrol)
    rows = connection.execute(
        sa.select(patrols.c.status, patrols.c.started_at, patrols.c.ended_at).where(
            patrols.c.deleted_at.is_(None),
            patrols.c.started_at >= span.start,
            patrols.c.started_at < span.end,
        )
    ).all()
    by_status: dict[str, int] = {}
    seconds = 0.0
    for status, started_at, ended_at in rows:
        by_status[str(status)] = by_status.get(str(status), 0) + 1
        if ended_at is not None:
            seconds += (ended_at - started_at).total_seconds()
    return {
        "patrols": len(rows),
        "by_status": dict(sorted(by_status.items())),
        "hours": round(seconds / 3600, 1),
    }


def _people(connection: Connection) -> dict[str, int]:
    """Live people not merged into another, and those beyond the first registered with
    one document number."""
    people = chain.table_of(Person)
    live = sa.and_(people.c.deleted_at.is_(None), people.c.merged_into.is_(None))
    count = connection.execute(sa.select(sa.func.count()).where(live)).scalar_one()
    shared = (
        sa.select(sa.func.count().label("n"))
        .where(live, people.c.doc_number.is_not(None))
        .group_by(people.c.doc_number)
        .subquery()
    )
    twice = connection.execute(
        sa.select(sa.func.coalesce(sa.func.sum(shared.c.n - 1), 0))
    ).scalar_one()
    return {"people": int(count), "registered_twice": int(twice)}


def _write(out: IO[str], document: dict[str, Any]) -> None:
    out.write(json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n")


def _write_lines(path: Path, lines: Iterator[str]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for line in lines:
            out.write(line + "\n")


def _move(work: Path, out: Path) -> None:
    """The finished bundle to ``out``, whole: a folder renamed, or a zip written beside
    it and renamed."""
    if out.suffix != ".zip":
        work.rename(out)
        return
    partial = out.with_name(f".{out.name}.partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(work.iterdir()):
            archive.write(path, f"{out.stem}/{path.name}")
    partial.rename(out)


_README = """\
Paquete de verificación de fieldsync / fieldsync verifier's bundle

ES: Este paquete contiene el historial encadenado de los registros de campo (patrullajes,
acuerdos de conservación, capacitaciones), con los datos personales reemplazados por
seudónimos, y los anclajes firmados por la oficina. Para verificarlo solo se necesita
Python 3.8 o más reciente:

    python3 {script} --key CLAVE_PUBLICA_DE_LA_OFICINA

El programa vuelve a calcular cada hash, comprueba las firmas y recalcula las cifras
del programa (participantes, % de mujeres, acuerdos vigentes, esfuerzo de patrullaje).
Termina con VERIFIED si todo coincide y con NOT VERIFIED y la lista de problemas si no.
Pida la clave pública directamente a la oficina, no la tome de este paquete.

EN: This bundle holds the chained history of the field records (patrols, conservation
agreements, trainings), personal data replaced by pseudonyms, and the anchors the
office signed. To check it you need only Python 3.8 or later:

    python3 {script} --key THE_OFFICE_PUBLIC_KEY

It hashes every row and block again, checks the signatures and counts the programme's
figures again (participants, % women, agreements in force, patrol effort). It ends
with VERIFIED if everything matches, or NOT VERIFIED and the problems found. Ask the
office for its public key directly; do not take it from this bundle.
"""
