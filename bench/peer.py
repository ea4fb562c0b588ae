"""The peer: express-pouchdb's ``_bulk_docs``, run by the benchmark itself, so that our
push rate is always a ratio measured in the same run on the same machine, never quoted.

**Installing** (``install``): ``bench/peer/package.json`` pins express-pouchdb,
pouchdb-node (PouchDB with its LevelDB adapter) and express; ``package-lock.json``
beside it pins everything under them. Both are copied into ``.bench-peer/`` at the
project's root (git-ignored), where ``npm ci --no-audit --no-fund`` installs them,
only when that folder lacks them or they changed (a stamp file holds their hash).
Without a lock, ``npm install`` makes one, and it is copied back beside
``package.json`` to be committed. No node or npm, or npm failing: ``PeerUnavailable``,
and the run says loudly that it has no peer.

**Serving** (``serving``): ``node bench/peer/server.js`` with the installed modules
(``NODE_PATH``), its databases in a fresh temporary folder, on a free port of
127.0.0.1, in its own process group (killed at the end, even on failure), ready once
``GET /`` answers; then one database is made, which every tablet pushes into: the
analogue of one fieldsync server and its one database.

**Documents** (``Documents``): our changes as a PouchDB tablet would have written
them in its own database and pushes them, the way PouchDB's replicator does: a
document per change, ``_id`` the record's id, the record's fields as the body with
its type in ``entity``, an update the record's whole new state. Revisions are made
on the tablet (``N-<change_id as 32 hex digits>``, with ``_revisions``, the history
the tablet knows) and sent with ``new_edits: false``: a revision sent twice is
stored once, as a change is applied once by ``change_id``. A tablet that edited a
record from an older version than the server holds (our ``merged`` and ``conflict``)
makes a branch in the peer's revision tree: the peer keeps both and picks a winner
by its rule; it merges nothing and answers nothing per document (``[]`` unless one
fails), where fieldsync answers every change.

**Pushing** (``push``): the same batches, K clients at once (a thread and a
connection each), bodies made and gzipped before the clock starts, the answer of
each timed from sending to its end.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.report import say as progress
from bench.server import Server, free_port, wait_until_answering

SOURCE = Path(__file__).resolve().parent / "peer"
SERVER_SCRIPT = SOURCE / "server.js"
FOLDER = Path(__file__).resolve().parent.parent / ".bench-peer"
PINNED = ("package.json", "package-lock.json")
STAMP = ".installed"
DATABASE = "fieldsync"
NODE_AT_LEAST = 18
INSTALL_TIMEOUT_SECONDS = 900
READY_TIMEOUT_SECONDS = 30.0
HTTP_TIMEOUT = 900.0
GZIP_LEVEL = 6  # as the load process gzips our push's bodies
ENGINE = "express-pouchdb 4.2.0 (mode minimumForPouchDB), pouchdb-node 9.0.0 (LevelDB)"
DURABILITY = (
    "LevelDB batch without sync: answered once in the OS's buffers, not fsynced "
    "(fieldsync answers after its commit is on disk)"
)

Runner = Callable[..., subprocess.CompletedProcess[str]]


class PeerUnavailable(RuntimeError):
    """The peer cannot run here (no node or npm, or npm failed): the reason."""


class PeerFailed(RuntimeError):
    """The peer's server exited or never answered; the message holds its log."""


# ---------------------------------------------------------------- installing


def fingerprint(source: Path = SOURCE) -> str:
    """The hash of the pinned files: the installed modules are those of this."""
    digest = hashlib.sha256()
    for name in PINNED:
        path = source / name
        digest.update(name.encode() + b"\0")
        digest.update(path.read_bytes() if path.exists() else b"(none)")
    return digest.hexdigest()


def installed(source: Path = SOURCE, folder: Path = FOLDER) -> bool:
    stamp = folder / STAMP
    return (
        stamp.exists()
        and stamp.read_text().strip() == fingerprint(source)
        and (folder / "node_modules" / "express-pouchdb").is_dir()
    )


def install(
    source: Path = SOURCE,
    folder: Path = FOLDER,
    *,
    run: Runner = subprocess.run,
    say: Callable[[str], None] = progress,
) -> Path:
    """The peer's modules in ``folder`` as ``source`` pins them (installed if missing
    or changed); the folder. ``PeerUnavailable`` if that cannot be done here."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise PeerUnavailable("node and npm are needed for the peer (express-pouchdb)")
    version = _run(run, [node, "--version"], folder=None).stdout.strip()
    major = version.lstrip("v").split(".")[0]
    if not major.isdigit() or int(major) < NODE_AT_LEAST:
        raise PeerUnavailable(f"node {version}: the peer needs node {NODE_AT_LEAST} or later")
    if installed(source, folder):
        return folder
    locked = (source / "package-lock.json").exists()
    say(f"  peer: installing express-pouchdb into {folder} (npm {'ci' if locked else 'install'})")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / STAMP).unlink(missing_ok=True)
    for name in PINNED:
        if (source / name).exists():
            shutil.copyfile(source / name, folder / name)
        else:
            (folder / name).unlink(missing_ok=True)
    command = "ci" if locked else "install"
    answer = _run(run, [npm, command, "--no-audit", "--no-fund"], folder=folder)
    if answer.returncode != 0:
        raise PeerUnavailable(f"npm {command} failed:\n{answer.stderr[-3000:]}")
    if not locked and (folder / "package-lock.json").exists():
        shutil.copyfile(folder / "package-lock.json", source / "package-lock.json")
        say(f"  peer: wrote {source / 'package-lock.json'}: commit it")
    if not (folder / "node_modules" / "express-pouchdb").is_dir():
        raise PeerUnavailable(f"npm {command} left no express-pouchdb in {folder}")
    (folder / STAMP).write_text(fingerprint(source) + "\n")
    return folder


def _run(
    run: Runner, command: list[str], *, folder: Path | None
) -> subprocess.CompletedProcess[str]:
    try:
        return run(
            command,
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise PeerUnavailable(f"{' '.join(command)}: {error}") from error


# ---------------------------------------------------------------- serving


@dataclass
class PeerServer:
    server: Server
    database: str

    @property
    def url(self) -> str:
        return self.server.base_url

    @property
    def pid(self) -> int:
        return self.server.pid


@contextlib.contextmanager
def serving(modules: Path, database: str = DATABASE) -> Iterator[PeerServer]:
    """The peer on a free loopback port, its data in a fresh temporary folder, with
    ``database`` made; stopped (its process group killed) at the end."""
    node = shutil.which("node")
    if node is None:
        raise PeerUnavailable("node is needed for the peer")
    with tempfile.TemporaryDirectory(prefix="fieldsync-bench-peer-") as scratch:
        data = Path(scratch) / "data"
        data.mkdir()
        port = free_port()
        log = Path(scratch) / "peer.log"
        with log.open("wb") as output:
            process = subprocess.Popen(  # noqa: S603 (our own script, no shell)
                [node, str(SERVER_SCRIPT), str(data), str(port)],
                cwd=scratch,
                env={**os.environ, "NODE_PATH": str(modules / "node_modules")},
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = Server(process, port, log)
        try:
            _wait_until_ready(server)
            made = httpx.put(f"{server.base_url}/{database}", timeout=30)
            if made.status_code not in (201, 412):
                raise PeerFailed(f"PUT /{database}: {made.status_code} {made.text[:300]}")
            yield PeerServer(server, database)
        finally:
            server.stop()


def _wait_until_ready(server: Server) -> None:
    wait_until_answering(server, "/", timeout=READY_TIMEOUT_SECONDS, failed=PeerFailed, name="peer")


def stored(url: str, database: str = DATABASE) -> int:
    """How many documents the peer's database holds (``doc_count``)."""
    answer = httpx.get(f"{url}/{database}", timeout=60)
    answer.raise_for_status()
    count: int = answer.json()["doc_count"]
    return count


# ---------------------------------------------------------------- documents


@dataclass
class Version:
    rev: str  # the revision's hash, without its number
    body: dict[str, Any]


@dataclass
class Documents:
    """Our wire changes as the documents a PouchDB tablet pushes (see the module's
    docstring). Changes must be given in the order the server got them (a device's in
    its order; the warm-up, the office's edits, then the timed batches), so that each
    update finds the versions it was made from."""

    versions: dict[str, list[Version]] = field(default_factory=dict)  # the main line

    def of(self, changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [self.document(change) for change in changes]

    def document(self, change: dict[str, Any]) -> dict[str, Any]:
        record_id: str = change["id"]
        rev = uuid.UUID(change["change_id"]).hex
        fields: dict[str, Any] = change["fields"]
        if "entity" in fields or any(name.startswith("_") for name in fields):
            raise ValueError(f"{change['entity']} {record_id}: a field the document needs")
        if change["op"] == "create":
            line = self.versions.setdefault(record_id, [])
            if line:
                raise ValueError(f"{change['entity']} {record_id} is created twice")
            body = {"entity": change["entity"], **fields}
            line.append(Version(rev, body))
            return _document(record_id, [Version(rev, body)])
        if change["op"] != "update":
            raise ValueError(f"a change the peer has no counterpart for: {change['op']}")
        line = self.versions.get(record_id) or []
        base = change["base_version"] or len(line)
        if not 1 <= base <= len(line):
            raise ValueError(f"{change['entity']} {record_id}: no version {base} to update")
        made = Version(rev, {**line[base - 1].body, **fields})
        history = [*line[:base], made]
        if base == len(line):
            line.append(made)  # else a branch: the tablet had not seen the later versions
        return _document(record_id, history)


def _document(record_id: str, history: list[Version]) -> dict[str, Any]:
    latest = history[-1]
    return {
        **latest.body,
        "_id": record_id,
        "_rev": f"{len(history)}-{latest.rev}",
        "_revisions": {"start": len(history), "ids": [v.rev for v in reversed(history)]},
    }


def body(documents: list[dict[str, Any]]) -> bytes:
    """A ``_bulk_docs`` request as a replicating tablet sends it, gzipped."""
    payload = json.dumps({"docs": documents, "new_edits": False}).encode()
    return gzip.compress(payload, GZIP_LEVEL)


# ---------------------------------------------------------------- pushing


@dataclass
class Posted:
    seconds: float
    documents: int
    problem: str | None = None


def push(
    url: str,
    bodies: list[list[tuple[bytes, int]]],
    *,
    database: str = DATABASE,
    label: str = "peer",
    transport: httpx.BaseTransport | None = None,
) -> dict[str, Any]:
    """Each client's batches (a gzipped body and how many documents it holds), all
    clients at once; the rate, each batch's latency and the client's CPU."""
    from bench.load import percentiles

    sent: list[list[Posted]] = [[] for _ in bodies]
    clock: dict[str, float] = {}
    barrier = threading.Barrier(len(bodies), action=lambda: clock.update(start=time.perf_counter()))

    def client(index: int) -> None:
        with httpx.Client(
            base_url=url,
            timeout=HTTP_TIMEOUT,
            transport=transport,
            headers={
                "Content-Type": "application/json",
                "Content-Encoding": "gzip",
                "Accept-Encoding": "gzip",
            },
        ) as http:
            barrier.wait()
            for content, count in bodies[index]:
                sent[index].append(_post(http, f"/{database}/_bulk_docs", content, count))

    cpu = time.process_time()
    threads = [
        threading.Thread(target=client, args=(i,), name=f"peer-{i}") for i in range(len(bodies))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - clock["start"]
    client_cpu = time.process_time() - cpu
    answers = [item for per_client in sent for item in per_client]
    failures = [item.problem for item in answers if item.problem is not None]
    documents = sum(item.documents for item in answers if item.problem is None)
    return {
        "label": label,
        "engine": ENGINE,
        "durability": DURABILITY,
        "database": f"one, shared by the {len(bodies)} clients",
        "devices": len(bodies),
        "batches": len(answers),
        "batch_size": bodies[0][0][1] if bodies and bodies[0] else 0,
        "records": documents,
        "seconds": round(seconds, 3),
        "records_per_s": round(documents / seconds, 1) if seconds and documents else None,
        "latency_ms": percentiles([item.seconds for item in answers]),
        "failed_batches": len(failures),
        "failures": failures[:5],
        "client_cpu_s": round(client_cpu, 3),
        "client_cpu_us_per_record": round(client_cpu * 1e6 / documents, 1) if documents else None,
    }


def _post(http: httpx.Client, path: str, content: bytes, count: int) -> Posted:
    started = time.perf_counter()
    try:
        answer = http.post(path, content=content)
    except httpx.HTTPError as error:
        return Posted(time.perf_counter() - started, count, problem=repr(error))
    seconds = time.perf_counter() - started
    if answer.status_code != 201:
        return Posted(seconds, count, problem=f"{answer.status_code}: {answer.text[:300]}")
    errors = answer.json()  # with new_edits false, only the documents that failed
    if errors:
        return Posted(seconds, count, problem=f"{len(errors)} documents failed: {errors[:2]}")
    return Posted(seconds, count)
