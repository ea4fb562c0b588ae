"""The device's local store: the one SQLite file in which a tablet keeps all it knows.

One file, so that it survives restarts, crashes and flat batteries without losing or
duplicating an edit:

- ``record``: every record the device knows. ``base_fields``/``base_deleted`` and
  ``version`` are the server's state as the device last saw it (``NULL``: never
  seen); ``fields``/``deleted`` are the local view: that base with the device's
  pending edits on top, recomputed whenever either side moves.
- ``outbox``: the edits not yet answered by the server, in ``seq`` order, each with
  its ``change_id`` and ``base_version`` fixed when it was made. A change leaves the
  outbox only once the server has given it a result; resent, it is the same change
  (same ``change_id``, same content), so the server answers it from its memory.
- ``meta``: the pull cursor, the next ``seq``, the device's identity (its id, its
  user, its tokens) and the server's URL.
- ``local_file``: the files attached on this device, by their SHA-256: where each is,
  its type and size, whether a change made here names it (``named``: only those are
  sent), the tus upload under way (its ``location``, kept before the first byte is
  sent, so that a restarted client resumes that upload), and whether the server is
  known to hold it (``uploaded_at``) or refused its bytes (``refused``).

The schema is made when the file is opened (``CREATE … IF NOT EXISTS``), so a state
file made by an older client gains a new table the first time a newer one opens it,
and a new column likewise (``_add_columns``): the outbox's ``schema_version``, 1 for
the edits an older client queued.

It knows nothing of HTTP: ``DeviceClient`` (``sync.client.device``) hands it what the
server answered.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from schemas.sync import Change, ChangeResult, PulledChange, Status
from sync.client.errors import NotEnrolled

# The version of the data model this client writes (and asks pulls to answer in):
# 2 since an observation's accuracy_m became gps {accuracy_m, fix}. A change keeps the
# version it was made in, so one queued by an older client goes with its own.
SCHEMA_VERSION = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS record (
    entity TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER,
    fields TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    base_fields TEXT,
    base_deleted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (entity, id)
);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    change_id TEXT NOT NULL UNIQUE,
    entity TEXT NOT NULL,
    id TEXT NOT NULL,
    op TEXT NOT NULL,
    base_version INTEGER,
    fields TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    schema_version INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS outbox_record ON outbox (entity, id, seq);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS local_file (
    sha256 TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    named INTEGER NOT NULL DEFAULT 0,
    location TEXT,
    uploaded_at TEXT,
    refused TEXT,
    attached_at TEXT NOT NULL
);
"""


# ---------------------------------------------------------------- local rows


@dataclass(frozen=True)
class Pending:
    """A change in the outbox."""

    seq: int
    change_id: str
    entity: str
    id: str
    op: str
    base_version: int | None
    fields: dict[str, Any]
    recorded_at: str
    schema_version: int = SCHEMA_VERSION  # of the data model it was made in

    def as_change(self) -> Change:
        return Change(
            change_id=uuid.UUID(self.change_id),
            seq=self.seq,
            entity=self.entity,
            id=uuid.UUID(self.id),
            op=self.op,
            base_version=self.base_version,
            schema_version=self.schema_version,
            recorded_at=datetime.fromisoformat(self.recorded_at),
            fields=self.fields,
        )


@dataclass(frozen=True)
class LocalFile:
    """A file attached on this device: ``path`` holds the bytes that hash to
    ``sha256``. ``location``: its tus upload under way; ``uploaded_at``: when the server
    was last known to hold it; ``refused``: why the server (or the client's own check)
    would not take its bytes."""

    sha256: str
    path: str
    content_type: str
    size: int
    location: str | None
    uploaded_at: str | None
    refused: str | None


@dataclass(frozen=True)
class LocalRecord:
    entity: str
    id: str
    version: int | None
    fields: dict[str, Any]
    deleted: bool
    base_fields: dict[str, Any] | None
    base_deleted: bool


# ---------------------------------------------------------------- the store


class LocalStore:
    """The state file at ``path``: its records, its outbox and its meta.

    Every write is made inside ``transaction()``; the caller opens it, so that what
    belongs together (a page and its cursor, a batch's results) is stored together."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._add_columns()

    def _add_columns(self) -> None:
        """Columns added since the file may have been made (``CREATE TABLE IF NOT
        EXISTS`` leaves an older table as it is)."""
        outbox = {row["name"] for row in self._db.execute("PRAGMA table_info(outbox)")}
        if "schema_version" not in outbox:
            # Edits queued by a client of version 1, the only one before this column.
            self._db.execute(
                "ALTER TABLE outbox ADD COLUMN schema_version INTEGER NOT NULL DEFAULT 1"
            )

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # ------------------------------------------------------------ meta

    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    def required_meta(self, key: str) -> str:
        value = self.meta(key)
        if value is None:
            raise LookupError(f"the state file has no {key}")
        return value

    def identity(self, key: str) -> str:
        """A part of the device's identity (its id, a token): ``NotEnrolled`` if none."""
        value = self.meta(key)
        if value is None:
            raise NotEnrolled(self.path)
        return value

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    @property
    def next_seq(self) -> int:
        return int(self.required_meta("next_seq"))

    def raise_next_seq(self, server_last_seq: int | None) -> None:
        """Never reuse a seq the server already holds for this device."""
        if server_last_seq is not None and server_last_seq >= self.next_seq:
            self.set_meta("next_seq", str(server_last_seq + 1))

    # ------------------------------------------------------------ records

    def record(self, entity: str, key: str) -> LocalRecord | None:
        row = self._db.execute(
            "SELECT * FROM record WHERE entity = ? AND id = ?", (entity, key)
        ).fetchone()
        if row is None:
            return None
        return LocalRecord(
            entity=row["entity"],
            id=row["id"],
            version=row["version"],
            fields=json.loads(row["fields"]),
            deleted=bool(row["deleted"]),
            base_fields=json.loads(row["base_fields"]) if row["base_fields"] is not None else None,
            base_deleted=bool(row["base_deleted"]),
        )

    def records(self, entity: str) -> dict[str, dict[str, Any]]:
        """The local view of ``entity``: id → fields, pending edits included."""
        rows = self._db.execute(
            "SELECT id, fields FROM record WHERE entity = ? AND deleted = 0 ORDER BY id",
            (entity,),
        ).fetchall()
        return {row["id"]: json.loads(row["fields"]) for row in rows}

    def add_unseen(self, entity: str, key: str) -> None:
        """A record made here: nothing of it on the server yet, its view to recompute."""
        self._db.execute(
            "INSERT INTO record (entity, id, version, fields, deleted, base_fields, "
            "base_deleted) VALUES (?, ?, NULL, '{}', 1, NULL, 0)",
            (entity, key),
        )

    # ------------------------------------------------------------ outbox

    def outbox(self) -> list[Pending]:
        rows = self._db.execute("SELECT * FROM outbox ORDER BY seq").fetchall()
        return [_pending(row) for row in rows]

    def outbox_after(self, after: int, size: int) -> list[Pending]:
        rows = self._db.execute(
            "SELECT * FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", (after, size)
        ).fetchall()
        return [_pending(row) for row in rows]

    def unsent(self) -> int:
        count: int = self._db.execute("SELECT count(*) FROM outbox").fetchone()[0]
        return count

    def oldest_unsent_at(self) -> str | None:
        """When the oldest change of the outbox was made (its ``recorded_at``)."""
        row = self._db.execute("SELECT recorded_at FROM outbox ORDER BY seq LIMIT 1").fetchone()
        return None if row is None else str(row[0])

    def queue(self, change: Pending) -> None:
        """Put ``change`` in the outbox; the next change gets the next ``seq``."""
        self._db.execute(
            "INSERT INTO outbox (seq, change_id, entity, id, op, base_version, fields, "
            "recorded_at, schema_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                change.seq,
                change.change_id,
                change.entity,
                change.id,
                change.op,
                change.base_version,
                _dumps(change.fields),
                change.recorded_at,
                change.schema_version,
            ),
        )
        self.set_meta("next_seq", str(change.seq + 1))

    def unqueue(self, seq: int) -> None:
        """The change at ``seq`` has its answer: it leaves the outbox."""
        self._db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))

    # ------------------------------------------------------------ what the server said

    def learn(self, change: Pending, result: ChangeResult) -> None:
        """What a result tells of the server's record.

        ``applied``: the server's record is the device's base with this change on top,
        at ``version``, so the device has now seen that version. ``merged``: the fields
        sent are on the server, and so are changes of others the device has not seen:
        the fields join the base, but the base *version* stays until a pull shows the
        rest. ``conflict``: the server kept some of its values, unseen: the base waits
        for the pull. Only a version the device has wholly seen may be its conflict tag;
        otherwise an edit made before the next pull would silently overwrite the
        others' changes it never saw, instead of meeting them."""
        if result.status not in (Status.applied, Status.merged) or result.version is None:
            return
        record = self.record(change.entity, change.id)
        if record is None:
            return
        if record.version is not None and result.version <= record.version:
            return  # already known (a replay of something a pull has shown since)
        base = dict(record.base_fields or {})
        base_deleted = record.base_deleted if record.base_fields is not None else False
        if change.op == "delete" or result.merged_into is not None:
            base_deleted = True
        else:
            base.update(change.fields)
            if change.op == "create":
                base_deleted = False
        version = result.version if result.status == Status.applied else record.version
        self._db.execute(
            "UPDATE record SET version = ?, base_fields = ?, base_deleted = ? "
            "WHERE entity = ? AND id = ?",
            (version, _dumps(base), int(base_deleted), change.entity, change.id),
        )

    def take_pulled(self, change: PulledChange) -> bool:
        """Store the server's state of a record as the device's base; whether stored."""
        key = str(change.id)
        gone = change.op == "delete"
        record = self.record(change.entity, key)
        if record is None:
            if gone:
                return False  # never seen, already gone: nothing to remember
            self._db.execute(
                "INSERT INTO record (entity, id, version, fields, deleted, base_fields, "
                "base_deleted) VALUES (?, ?, ?, ?, 0, ?, 0)",
                (change.entity, key, change.version, _dumps(change.fields), _dumps(change.fields)),
            )
            return True
        base = (record.base_fields or {}) if gone else change.fields
        self._db.execute(
            "UPDATE record SET version = ?, base_fields = ?, base_deleted = ? "
            "WHERE entity = ? AND id = ?",
            (change.version, _dumps(base), int(gone), change.entity, key),
        )
        return True

    def drop_server_state(self) -> None:
        """Only what the device itself holds remains (its outbox, the records it
        edits), and no cursor: the next pull takes everything again."""
        self._db.execute(
            "DELETE FROM record WHERE NOT EXISTS (SELECT 1 FROM outbox o "
            "WHERE o.entity = record.entity AND o.id = record.id)"
        )
        self._db.execute("UPDATE record SET version = NULL, base_fields = NULL, base_deleted = 0")
        for row in self._db.execute("SELECT entity, id FROM record").fetchall():
            self.recompute(row["entity"], row["id"])
        self._db.execute("DELETE FROM meta WHERE key = 'cursor'")

    # ------------------------------------------------------------ files

    def keep_file(
        self, *, sha256: str, path: str, content_type: str, size: int, attached_at: str
    ) -> None:
        """A file attached here (again): where its bytes are now. One refused before is
        given another chance (its bytes were just read and hash to its name); one the
        server holds stays known as held."""
        self._db.execute(
            "INSERT INTO local_file (sha256, path, content_type, size, attached_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (sha256) DO UPDATE SET path = excluded.path, "
            "content_type = excluded.content_type, size = excluded.size, refused = NULL",
            (sha256, path, content_type, size, attached_at),
        )

    def file(self, sha256: str) -> LocalFile | None:
        row = self._db.execute("SELECT * FROM local_file WHERE sha256 = ?", (sha256,)).fetchone()
        return None if row is None else _file(row)

    def name_files(self, hashes: list[str]) -> None:
        """A change made here names these files: those attached here are to be sent."""
        self._db.executemany(
            "UPDATE local_file SET named = 1 WHERE sha256 = ?", [(h,) for h in hashes]
        )

    def files_to_send(self) -> list[str]:
        """The files a change made here names that the server is not known to hold,
        and whose bytes were not refused: oldest attached first."""
        rows = self._db.execute(
            "SELECT sha256 FROM local_file WHERE named = 1 AND uploaded_at IS NULL "
            "AND refused IS NULL ORDER BY attached_at, sha256"
        ).fetchall()
        return [str(row["sha256"]) for row in rows]

    def refused_files(self) -> list[LocalFile]:
        rows = self._db.execute(
            "SELECT * FROM local_file WHERE refused IS NOT NULL ORDER BY attached_at, sha256"
        ).fetchall()
        return [_file(row) for row in rows]

    def set_upload_location(self, sha256: str, location: str | None) -> None:
        self._db.execute("UPDATE local_file SET location = ? WHERE sha256 = ?", (location, sha256))

    def mark_uploaded(self, sha256: str, at: str) -> None:
        """The server holds the file: it is never sent again (unless the server says
        it lost it: ``forget_uploaded``)."""
        self._db.execute(
            "UPDATE local_file SET uploaded_at = ?, location = NULL, refused = NULL "
            "WHERE sha256 = ?",
            (at, sha256),
        )

    def forget_uploaded(self, sha256: str) -> None:
        """The server says it lacks the file, that a change names: to be sent (again)."""
        self._db.execute(
            "UPDATE local_file SET uploaded_at = NULL, named = 1 WHERE sha256 = ?", (sha256,)
        )

    def refuse_file(self, sha256: str, reason: str) -> None:
        """Its bytes will not do (changed or damaged since attached, or not what they
        were said to be): not sent again until attached again."""
        self._db.execute(
            "UPDATE local_file SET refused = ?, location = NULL WHERE sha256 = ?",
            (reason, sha256),
        )

    # ------------------------------------------------------------ the local view

    def recompute(self, entity: str, key: str) -> None:
        """The local view: the server's state as last seen, the pending edits on top."""
        record = self.record(entity, key)
        pending = [
            _pending(row)
            for row in self._db.execute(
                "SELECT * FROM outbox WHERE entity = ? AND id = ? ORDER BY seq", (entity, key)
            ).fetchall()
        ]
        if record is None:
            return
        fields: dict[str, Any] | None = (
            dict(record.base_fields) if record.base_fields is not None else None
        )
        deleted = record.base_deleted if fields is not None else True
        for change in pending:
            if change.op == "create":
                fields = {**(fields or {}), **change.fields}
                deleted = False
            elif change.op == "update":
                fields = {**(fields or {}), **change.fields}
            elif change.op == "delete":
                deleted = True
        if fields is None:  # never on the server, nothing pending (a rejected create)
            self._db.execute("DELETE FROM record WHERE entity = ? AND id = ?", (entity, key))
            return
        self._db.execute(
            "UPDATE record SET fields = ?, deleted = ? WHERE entity = ? AND id = ?",
            (_dumps(fields), int(deleted), entity, key),
        )


# ---------------------------------------------------------------- helpers


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _file(row: sqlite3.Row) -> LocalFile:
    return LocalFile(
        sha256=row["sha256"],
        path=row["path"],
        content_type=row["content_type"],
        size=row["size"],
        location=row["location"],
        uploaded_at=row["uploaded_at"],
        refused=row["refused"],
    )


def _pending(row: sqlite3.Row) -> Pending:
    return Pending(
        seq=row["seq"],
        change_id=row["change_id"],
        entity=row["entity"],
        id=row["id"],
        op=row["op"],
        base_version=row["base_version"],
        fields=json.loads(row["fields"]),
        recorded_at=row["recorded_at"],
        schema_version=row["schema_version"],
    )


__all__ = ["SCHEMA", "LocalFile", "LocalRecord", "LocalStore", "Pending"]
