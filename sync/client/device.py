"""The reference device client: a tablet's side of the sync protocol, over HTTP.

A tablet edits records offline and syncs when it has a link. This client keeps all
it knows in one SQLite file, so that it survives restarts, crashes and flat
batteries without losing or duplicating an edit:

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

A tablet starts with ``enroll(code)``: the one-time enrollment code an admin, a
coordinator or a ranger lead made for it is traded for its identity, stored before it
is used. (A client may also be given an identity already made, as the tests do.)

Push sends the outbox oldest first, in batches; a network failure or a ``5xx``
resends the same batch (with exponential backoff); a ``401`` for an invalid or
expired access token rotates the token pair once (stored before it is used). Pull
pages through the changes after the cursor, storing each page and the cursor in one
transaction, and keeps the device's pending edits on top of what it pulls. A
``410 cursor_reset`` pushes what the device holds and pulls everything again.

This module talks HTTP through ``httpx`` only; it knows nothing of the server's
framework (pass it a ``TestClient`` in tests: it is an ``httpx.Client``).
"""

from __future__ import annotations

import gzip
import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from schemas.accounts import Enrollment
from schemas.sync import (
    Change,
    ChangeResult,
    PulledChange,
    PullResponse,
    PushRequest,
    PushResponse,
    Status,
)
from schemas.wire import has_nul

PROTOCOL = 1
MAX_ENTITY = 64
GZIP_OVER_BYTES = 1024

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
    recorded_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_record ON outbox (entity, id, seq);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


# ---------------------------------------------------------------- errors


class SyncError(Exception):
    """The server refused a request, or could not be reached; nothing local was lost."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


class Unreachable(SyncError):
    """Network failures or ``5xx`` answers outlasted the retries; try again later."""


class AuthFailed(SyncError):
    """The device's tokens are refused for good (revoked, deactivated, replayed):
    it must be enrolled again (``enroll`` with a new code). Its outbox is kept."""


class NotEnrolled(AuthFailed):
    """The state file holds no device yet: ``enroll(code)`` first."""

    def __init__(self, state_path: Path) -> None:
        super().__init__(f"{state_path} holds no enrolled device: enroll it with a code first")


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

    def as_change(self) -> Change:
        return Change(
            change_id=uuid.UUID(self.change_id),
            seq=self.seq,
            entity=self.entity,
            id=uuid.UUID(self.id),
            op=self.op,
            base_version=self.base_version,
            schema_version=1,
            recorded_at=datetime.fromisoformat(self.recorded_at),
            fields=self.fields,
        )


@dataclass(frozen=True)
class LocalRecord:
    entity: str
    id: str
    version: int | None
    fields: dict[str, Any]
    deleted: bool
    base_fields: dict[str, Any] | None
    base_deleted: bool


# ---------------------------------------------------------------- the client


class DeviceClient:
    """One tablet: its local store, its outbox, and enrollment, push and pull.

    ``server`` is a base URL (``http://host/api/v1``), kept in the state file, or an
    ``httpx.Client`` whose ``base_url`` is that (the caller keeps owning it), or
    ``None`` for the URL the state file keeps. A new state file holds no device until
    ``enroll(code)``, unless an identity is given (``device_id``, ``access_token`` and
    ``refresh_token``, together): it is used only when ``state_path`` holds none yet;
    once stored, the stored (rotated) tokens win.
    """

    def __init__(
        self,
        server: str | httpx.Client | None,
        state_path: str | Path,
        *,
        device_id: str | uuid.UUID | None = None,
        access_token: str | None = None,
        refresh_token: str | None = None,
        batch_size: int = 500,
        max_retries: int = 5,
        backoff: float = 0.2,
        pull_limit: int | None = None,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.state_path = Path(state_path)
        self._db = sqlite3.connect(str(state_path), isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        if isinstance(server, httpx.Client):
            self._http = server
            self._owns_http = False
        else:
            url = server if server is not None else self._meta("server_url")
            if url is None:
                self._db.close()
                raise ValueError(f"{self.state_path} keeps no server URL: give one")
            self._http = httpx.Client(base_url=url, timeout=timeout)
            self._owns_http = True
        self.batch_size = batch_size
        self.max_retries = max_retries
        self.backoff = backoff
        self.pull_limit = pull_limit
        self._sleep = sleep
        with self._transaction():
            if isinstance(server, str) and server != self._meta("server_url"):
                self._set_meta("server_url", server)
            if self._meta("next_seq") is None:
                self._set_meta("next_seq", "1")
            self._adopt_identity(device_id, access_token, refresh_token)

    def _adopt_identity(
        self,
        device_id: str | uuid.UUID | None,
        access_token: str | None,
        refresh_token: str | None,
    ) -> None:
        stored = self._meta("device_id")
        given = (device_id, access_token, refresh_token)
        if stored is None:
            if all(part is None for part in given):
                return  # not enrolled yet: enroll(code) makes the identity
            if device_id is None or access_token is None or refresh_token is None:
                raise ValueError("an identity is device_id, access_token and refresh_token")
            self._set_meta("device_id", str(uuid.UUID(str(device_id))))
            self._set_meta("access_token", access_token)
            self._set_meta("refresh_token", refresh_token)
        elif device_id is not None and uuid.UUID(str(device_id)) != uuid.UUID(stored):
            raise ValueError(
                f"{self.state_path} holds the state of device {stored}, not {device_id}"
            )

    # ------------------------------------------------------------ enrollment

    def enroll(self, code: str) -> Enrollment:
        """Trade a one-time enrollment code (as typed: case, spaces and dashes do not
        matter) for the device's id, its user and its token pair, stored before they
        are used; the answer as the server gave it.

        A code works once: an enrollment whose answer was lost is retried with the
        same code, which succeeds only if the server never saw the first try (if it
        did, the code is spent: ask for a new one). On a state file that already holds
        a device (one revoked, say), the new enrollment takes its place: the outbox is
        kept, to be sent by the new device, and the server's state is pulled afresh,
        since the new device's scope may differ. The unsent edits of one user are never
        handed to another: that is a ``ValueError``, and nothing is stored."""
        response = self._with_retries(
            lambda: self._http.post("/devices/enroll", json={"enrollment_code": code})
        )
        if response.status_code != 200:
            raise SyncError(
                f"the enrollment code was refused: {_detail(response)}",
                status=response.status_code,
                code=_code(response),
            )
        enrollment = Enrollment.model_validate_json(response.content)
        with self._transaction():
            held_by = self._meta("user_id")
            unsent = self._db.execute("SELECT count(*) FROM outbox").fetchone()[0]
            if unsent and held_by is not None and held_by != str(enrollment.user_id):
                raise ValueError(
                    f"{self.state_path} holds {unsent} unsent edits of user {held_by}; "
                    f"the code enrolled a device of user {enrollment.user_id}: use another "
                    "state file (the code is spent; device "
                    f"{enrollment.device_id} can be revoked)"
                )
            re_enrolled = self._meta("device_id") is not None
            self._set_meta("device_id", str(enrollment.device_id))
            self._set_meta("user_id", str(enrollment.user_id))
            self._set_meta("access_token", enrollment.access_token)
            self._set_meta("refresh_token", enrollment.refresh_token)
            if re_enrolled:
                self._drop_server_state()
        return enrollment

    @property
    def enrolled(self) -> bool:
        return self._meta("device_id") is not None

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        self._db.close()
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> DeviceClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------ what the device holds

    @property
    def device_id(self) -> uuid.UUID:
        return uuid.UUID(self._identity("device_id"))

    @property
    def user_id(self) -> uuid.UUID | None:
        """The device's user, as its enrollment named them (``None`` for an identity
        given to the client, not enrolled through it)."""
        held = self._meta("user_id")
        return None if held is None else uuid.UUID(held)

    @property
    def server_url(self) -> str:
        return str(self._http.base_url).removesuffix("/")

    @property
    def cursor(self) -> str | None:
        return self._meta("cursor")

    @property
    def next_seq(self) -> int:
        return int(self._required_meta("next_seq"))

    @property
    def tokens(self) -> dict[str, str]:
        return {
            "device_id": self._identity("device_id"),
            "access_token": self._identity("access_token"),
            "refresh_token": self._identity("refresh_token"),
        }

    def records(self, entity: str) -> dict[str, dict[str, Any]]:
        """The local view of ``entity``: id → fields, pending edits included."""
        rows = self._db.execute(
            "SELECT id, fields FROM record WHERE entity = ? AND deleted = 0 ORDER BY id",
            (entity,),
        ).fetchall()
        return {row["id"]: json.loads(row["fields"]) for row in rows}

    def record(self, entity: str, record_id: str | uuid.UUID) -> LocalRecord | None:
        return self._record(entity, _id(record_id))

    def outbox(self) -> list[Pending]:
        rows = self._db.execute("SELECT * FROM outbox ORDER BY seq").fetchall()
        return [_pending(row) for row in rows]

    # ------------------------------------------------------------ editing offline

    def create(self, entity: str, record_id: str | uuid.UUID, fields: Mapping[str, Any]) -> Pending:
        """A new record (its whole state), made on the device."""
        key = _id(record_id)
        with self._transaction():
            if self._record(entity, key) is not None:
                raise ValueError(f"{entity} {key} already exists on this device")
            self._db.execute(
                "INSERT INTO record (entity, id, version, fields, deleted, base_fields, "
                "base_deleted) VALUES (?, ?, NULL, '{}', 1, NULL, 0)",
                (entity, key),
            )
            change = self._append(entity, key, "create", None, dict(fields))
            self._recompute(entity, key)
        return change

    def update(self, entity: str, record_id: str | uuid.UUID, fields: Mapping[str, Any]) -> Pending:
        """Change some fields; the change carries only those."""
        key = _id(record_id)
        with self._transaction():
            record = self._live(entity, key)
            change = self._append(entity, key, "update", _base(record), dict(fields))
            self._recompute(entity, key)
        return change

    def delete(self, entity: str, record_id: str | uuid.UUID) -> Pending:
        key = _id(record_id)
        with self._transaction():
            record = self._live(entity, key)
            change = self._append(entity, key, "delete", _base(record), {})
            self._recompute(entity, key)
        return change

    def _live(self, entity: str, key: str) -> LocalRecord:
        record = self._record(entity, key)
        if record is None or record.deleted:
            raise KeyError(f"no {entity} {key} on this device")
        return record

    def _append(
        self, entity: str, key: str, op: str, base_version: int | None, fields: dict[str, Any]
    ) -> Pending:
        seq = int(self._required_meta("next_seq"))
        change = Pending(
            seq=seq,
            change_id=str(uuid.uuid4()),
            entity=entity,
            id=key,
            op=op,
            base_version=base_version,
            fields=json.loads(json.dumps(fields, default=str)),
            recorded_at=datetime.now(UTC).isoformat(),
        )
        # A change the server can only reject (a NUL character, an entity name longer
        # than any) is refused now, while the user still looks at it; one that could not
        # even be sent (pydantic's ValidationError, a ValueError) likewise.
        if has_nul(change.fields) or has_nul(entity):
            raise ValueError("text must not contain the NUL character")
        if len(entity) > MAX_ENTITY:
            raise ValueError(f"no record type has a name over {MAX_ENTITY} characters")
        PushRequest.model_validate_json(self._batch_body([change]))
        self._db.execute(
            "INSERT INTO outbox (seq, change_id, entity, id, op, base_version, fields, "
            "recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                change.seq,
                change.change_id,
                entity,
                key,
                op,
                base_version,
                _dumps(change.fields),
                change.recorded_at,
            ),
        )
        self._set_meta("next_seq", str(seq + 1))
        return change

    # ------------------------------------------------------------ sync

    def me(self) -> dict[str, Any]:
        """The device's user as the server sees them now (``GET /auth/me``): whether
        the server answers and still accepts the device."""
        response = self._call("GET", "/auth/me")
        _raise_for(response)
        user: dict[str, Any] = response.json()
        return user

    def sync(self) -> list[ChangeResult]:
        """Push, then pull: the device ends with the server's state and its own edits."""
        results = self.push()
        self.pull()
        return results

    def push(self) -> list[ChangeResult]:
        """Send the outbox, oldest first, in batches; the results, in order.

        Every status is a final answer for the outbox: the change leaves it. Raises
        ``Unreachable`` when retries run out (the unanswered changes stay queued),
        ``AuthFailed`` when the device must enroll again, ``SyncError`` otherwise."""
        results: list[ChangeResult] = []
        after = -1
        size = self.batch_size
        while True:
            batch = self._outbox_after(after, size)
            if not batch:
                return results
            answer = self._post_batch(batch)
            if answer is None:  # 413: the batch was too large; halve it
                if len(batch) == 1:
                    raise SyncError(
                        f"change {batch[0].change_id} alone is over the server's body limit",
                        status=413,
                        code="payload_too_large",
                    )
                size = max(1, len(batch) // 2)
                continue
            results.extend(self._take_results(batch, answer))
            after = batch[-1].seq

    def pull(self, on_change: Callable[[PulledChange], None] | None = None) -> int:
        """Pull pages until caught up; how many changes were pulled. ``on_change`` is
        shown each change once its page is stored."""
        pulled = 0
        reset = False
        while True:
            params: dict[str, str | int] = {}
            cursor = self._meta("cursor")
            if cursor is not None:
                params["cursor"] = cursor
            if self.pull_limit is not None:
                params["limit"] = self.pull_limit
            response = self._call("GET", "/sync/pull", params=params)
            if response.status_code == 410 and _code(response) == "cursor_reset" and not reset:
                # The server's history is not the one the cursor names (a restore):
                # hand over what the device holds, then take everything again.
                reset = True
                self.push()
                self._forget_server_state()
                continue
            _raise_for(response)
            page = PullResponse.model_validate_json(response.content)
            with self._transaction():
                touched: dict[tuple[str, str], None] = {}
                for change in page.changes:
                    if self._take_pulled(change):
                        touched[(change.entity, str(change.id))] = None
                for entity, key in touched:
                    self._recompute(entity, key)
                self._set_meta("cursor", page.cursor)
                self._raise_next_seq(page.last_seq)
            pulled += len(page.changes)
            if on_change is not None:
                for change in page.changes:
                    on_change(change)
            if not page.has_more:
                return pulled

    # ------------------------------------------------------------ push, inside

    def _outbox_after(self, after: int, size: int) -> list[Pending]:
        rows = self._db.execute(
            "SELECT * FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", (after, size)
        ).fetchall()
        return [_pending(row) for row in rows]

    def _post_batch(self, batch: list[Pending]) -> PushResponse | None:
        """The server's results for ``batch``; ``None`` if it was too large."""
        body = self._batch_body(batch)
        headers = {"Content-Type": "application/json"}
        if len(body) > GZIP_OVER_BYTES:
            body = gzip.compress(body, mtime=0)
            headers["Content-Encoding"] = "gzip"
        # Built once: every retry sends these very bytes (same batch, same change_ids).
        response = self._call("POST", "/sync/push", content=body, headers=headers)
        if response.status_code == 413:
            return None
        _raise_for(response)
        return PushResponse.model_validate_json(response.content)

    def _batch_body(self, batch: list[Pending]) -> bytes:
        request = PushRequest(
            protocol=PROTOCOL,
            device_id=self.device_id,
            batch_id=uuid.uuid4(),
            changes=[change.as_change() for change in batch],
        )
        return request.model_dump_json().encode()

    def _take_results(self, batch: list[Pending], answer: PushResponse) -> list[ChangeResult]:
        answered = {str(result.change_id): result for result in answer.results}
        with self._transaction():
            self._raise_next_seq(answer.last_seq)
            touched: dict[tuple[str, str], None] = {}
            for change in batch:
                result = answered.get(change.change_id)
                if result is None:
                    continue  # no answer: it stays queued and goes again next push
                self._db.execute("DELETE FROM outbox WHERE seq = ?", (change.seq,))
                self._learn(change, result)
                touched[(change.entity, change.id)] = None
            for entity, key in touched:
                self._recompute(entity, key)
        return answer.results

    def _learn(self, change: Pending, result: ChangeResult) -> None:
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
        record = self._record(change.entity, change.id)
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

    # ------------------------------------------------------------ pull, inside

    def _take_pulled(self, change: PulledChange) -> bool:
        """Store the server's state of a record as the device's base; whether stored."""
        key = str(change.id)
        gone = change.op == "delete"
        record = self._record(change.entity, key)
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

    def _forget_server_state(self) -> None:
        """Before pulling everything again: only what the device itself holds remains."""
        with self._transaction():
            self._drop_server_state()

    def _drop_server_state(self) -> None:
        self._db.execute(
            "DELETE FROM record WHERE NOT EXISTS (SELECT 1 FROM outbox o "
            "WHERE o.entity = record.entity AND o.id = record.id)"
        )
        self._db.execute("UPDATE record SET version = NULL, base_fields = NULL, base_deleted = 0")
        for row in self._db.execute("SELECT entity, id FROM record").fetchall():
            self._recompute(row["entity"], row["id"])
        self._db.execute("DELETE FROM meta WHERE key = 'cursor'")

    # ------------------------------------------------------------ the local view

    def _recompute(self, entity: str, key: str) -> None:
        """The local view: the server's state as last seen, the pending edits on top."""
        record = self._record(entity, key)
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

    def _record(self, entity: str, key: str) -> LocalRecord | None:
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

    # ------------------------------------------------------------ HTTP

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """A request with the device's token: retried on network failures and ``5xx``,
        the token pair rotated once on a ``401`` for an invalid or expired token."""
        refreshed = False
        while True:
            authorized = {
                **(headers or {}),
                "Authorization": f"Bearer {self._identity('access_token')}",
            }

            def send(headers: dict[str, str] = authorized) -> httpx.Response:
                return self._http.request(
                    method, path, params=params, content=content, headers=headers
                )

            response = self._with_retries(send)
            if response.status_code == 401 and not refreshed and _code(response) == "invalid_token":
                self._refresh()
                refreshed = True
                continue
            if response.status_code == 401:
                raise AuthFailed(_detail(response), status=401, code=_code(response))
            return response

    def _refresh(self) -> None:
        """Rotate the token pair; the new pair is stored before it is ever used.

        A refresh whose answer was lost is retried with the same token: if the server
        never saw it, that succeeds; if it did, the device's sign-in is gone either way
        (the new pair is lost, and the replay revokes the family)."""
        refresh_token = self._identity("refresh_token")
        response = self._with_retries(
            lambda: self._http.post("/auth/refresh", json={"refresh_token": refresh_token})
        )
        if response.status_code != 200:
            raise AuthFailed(
                f"the device cannot refresh its tokens: {_detail(response)}",
                status=response.status_code,
                code=_code(response),
            )
        pair = response.json()
        with self._transaction():
            self._set_meta("access_token", pair["access_token"])
            self._set_meta("refresh_token", pair["refresh_token"])

    def _with_retries(self, send: Callable[[], httpx.Response]) -> httpx.Response:
        attempt = 0
        while True:
            failure: str
            try:
                response = send()
            except httpx.TransportError as error:
                failure = f"{type(error).__name__}: {error}"
            else:
                if response.status_code < 500:
                    return response
                failure = f"{response.status_code}: {_detail(response)}"
            if attempt >= self.max_retries:
                raise Unreachable(
                    f"gave up after {attempt + 1} attempts; last: {failure}", code="unreachable"
                )
            self._sleep(self.backoff * 2**attempt)
            attempt += 1

    # ------------------------------------------------------------ storage

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    def _required_meta(self, key: str) -> str:
        value = self._meta(key)
        if value is None:
            raise LookupError(f"the state file has no {key}")
        return value

    def _identity(self, key: str) -> str:
        value = self._meta(key)
        if value is None:
            raise NotEnrolled(self.state_path)
        return value

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def _raise_next_seq(self, server_last_seq: int | None) -> None:
        """Never reuse a seq the server already holds for this device."""
        if server_last_seq is not None and server_last_seq >= self.next_seq:
            self._set_meta("next_seq", str(server_last_seq + 1))


# ---------------------------------------------------------------- helpers


def _id(record_id: str | uuid.UUID) -> str:
    return str(uuid.UUID(str(record_id)))


def _base(record: LocalRecord) -> int:
    """The conflict tag: the server version last seen, 0 for one the server has not
    shown yet (a record made here): the device has seen nothing of others' changes."""
    return record.version if record.version is not None else 0


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


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
    )


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        document = response.json()
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def _code(response: httpx.Response) -> str | None:
    code = _problem(response).get("code")
    return code if isinstance(code, str) else None


def _detail(response: httpx.Response) -> str:
    detail = _problem(response).get("detail")
    return detail if isinstance(detail, str) else response.reason_phrase


def _raise_for(response: httpx.Response) -> None:
    if response.status_code != 200:
        raise SyncError(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {_detail(response)}",
            status=response.status_code,
            code=_code(response),
        )


__all__ = [
    "AuthFailed",
    "DeviceClient",
    "LocalRecord",
    "NotEnrolled",
    "Pending",
    "SyncError",
    "Unreachable",
]
