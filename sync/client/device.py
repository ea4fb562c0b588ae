"""The reference device client: a tablet's side of the sync protocol, over HTTP.

A tablet edits records offline and syncs when it has a link. This client keeps all
it knows in one SQLite file (its records, its outbox and its meta:
``sync.client.store``), so that it survives restarts, crashes and flat batteries
without losing or duplicating an edit.

A tablet starts with ``enroll(code)``: the one-time enrollment code an admin, a
coordinator or a ranger lead made for it is traded for its identity, stored before it
is used. (A client may also be given an identity already made, as the tests do.)

Push sends the outbox oldest first, in batches; a network failure or a ``5xx``
resends the same batch (with exponential backoff); a ``401`` for an invalid or
expired access token rotates the token pair once (stored before it is used). Pull
pages through the changes after the cursor, storing each page and the cursor in one
transaction, and keeps the device's pending edits on top of what it pulls. A
``410 cursor_reset`` pushes what the device holds and pulls everything again.

Files (photos, scans, recordings) are attached with ``attach(path)``, which answers
the reference a record's ``attachments`` field takes. Before each push, the files the
device's changes name are uploaded with tus (``sync.client.files``): resumably, in
chunks read from disk, never one the server holds; after it, those the server still
says it lacks (``missing_attachments``) are sent, and ``upload_missing()`` sends
whatever the server says the device owes. Uploads that give out do not hold the
changes back: those are pushed, and the files follow next time.

This module talks HTTP through ``httpx`` only (its calls, retries and token refresh
are ``sync.client.connection``); it knows nothing of the server's framework (pass it a
``TestClient`` in tests: it is an ``httpx.Client``).
"""

from __future__ import annotations

import gzip
import json
import shutil
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from schemas.accounts import Enrollment
from schemas.sync import (
    ChangeResult,
    ClientReport,
    PulledChange,
    PullResponse,
    PushRequest,
    PushResponse,
)
from schemas.wire import has_nul
from sync.client.connection import Connection, problem_code, problem_detail, raise_for
from sync.client.errors import AuthFailed, SyncError
from sync.client.files import CHUNK_SIZE, AttachmentRefused, OwedFiles, Uploads, named_files
from sync.client.files import attach as attach_file
from sync.client.store import SCHEMA_VERSION, LocalFile, LocalRecord, LocalStore, Pending

PROTOCOL = 1
MAX_ENTITY = 64
GZIP_OVER_BYTES = 1024


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
        chunk_size: int = CHUNK_SIZE,
        app_version: str | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.state_path = Path(state_path)
        # What its pushes report as the app's version: the caller's app, or this client's.
        self.app_version = app_version or version("fieldsync")
        self._store = LocalStore(state_path)
        if isinstance(server, httpx.Client):
            http = server
            owns_http = False
        else:
            url = server if server is not None else self._store.meta("server_url")
            if url is None:
                self._store.close()
                raise ValueError(f"{self.state_path} keeps no server URL: give one")
            http = httpx.Client(base_url=url, timeout=timeout)
            owns_http = True
        self._link = Connection(
            http,
            self._store,
            owns_http=owns_http,
            max_retries=max_retries,
            backoff=backoff,
            sleep=sleep,
        )
        self._uploads = Uploads(self._link, self._store, chunk_size=chunk_size, sleep=sleep)
        self.batch_size = batch_size
        self.pull_limit = pull_limit
        with self._store.transaction():
            if isinstance(server, str) and server != self._store.meta("server_url"):
                self._store.set_meta("server_url", server)
            if self._store.meta("next_seq") is None:
                self._store.set_meta("next_seq", "1")
            self._adopt_identity(device_id, access_token, refresh_token)

    def _adopt_identity(
        self,
        device_id: str | uuid.UUID | None,
        access_token: str | None,
        refresh_token: str | None,
    ) -> None:
        stored = self._store.meta("device_id")
        given = (device_id, access_token, refresh_token)
        if stored is None:
            if all(part is None for part in given):
                return  # not enrolled yet: enroll(code) makes the identity
            if device_id is None or access_token is None or refresh_token is None:
                raise ValueError("an identity is device_id, access_token and refresh_token")
            self._store.set_meta("device_id", str(uuid.UUID(str(device_id))))
            self._store.set_meta("access_token", access_token)
            self._store.set_meta("refresh_token", refresh_token)
        elif device_id is not None and uuid.UUID(str(device_id)) != uuid.UUID(stored):
            raise ValueError(
                f"{self.state_path} holds the state of device {stored}, not {device_id}"
            )

    @property
    def max_retries(self) -> int:
        """How many times a failed request is resent (network failures, ``5xx``)."""
        return self._link.max_retries

    @max_retries.setter
    def max_retries(self, value: int) -> None:
        self._link.max_retries = value

    @property
    def backoff(self) -> float:
        """Seconds before the first resend; each further one waits twice as long."""
        return self._link.backoff

    @backoff.setter
    def backoff(self, value: float) -> None:
        self._link.backoff = value

    @property
    def chunk_size(self) -> int:
        """How many bytes of a file each upload request carries."""
        return self._uploads.chunk_size

    @chunk_size.setter
    def chunk_size(self, value: int) -> None:
        if value < 1:
            raise ValueError("chunk_size must be at least 1")
        self._uploads.chunk_size = value

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
        response = self._link.post_without_token("/devices/enroll", {"enrollment_code": code})
        if response.status_code != 200:
            raise SyncError(
                f"the enrollment code was refused: {problem_detail(response)}",
                status=response.status_code,
                code=problem_code(response),
            )
        enrollment = Enrollment.model_validate_json(response.content)
        with self._store.transaction():
            held_by = self._store.meta("user_id")
            unsent = self._store.unsent()
            if unsent and held_by is not None and held_by != str(enrollment.user_id):
                raise ValueError(
                    f"{self.state_path} holds {unsent} unsent edits of user {held_by}; "
                    f"the code enrolled a device of user {enrollment.user_id}: use another "
                    "state file (the code is spent; device "
                    f"{enrollment.device_id} can be revoked)"
                )
            re_enrolled = self._store.meta("device_id") is not None
            self._store.set_meta("device_id", str(enrollment.device_id))
            self._store.set_meta("user_id", str(enrollment.user_id))
            self._store.set_meta("access_token", enrollment.access_token)
            self._store.set_meta("refresh_token", enrollment.refresh_token)
            if re_enrolled:
                self._store.drop_server_state()
        return enrollment

    @property
    def enrolled(self) -> bool:
        return self._store.meta("device_id") is not None

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        self._store.close()
        self._link.close()

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
        return uuid.UUID(self._store.identity("device_id"))

    @property
    def user_id(self) -> uuid.UUID | None:
        """The device's user, as its enrollment named them (``None`` for an identity
        given to the client, not enrolled through it)."""
        held = self._store.meta("user_id")
        return None if held is None else uuid.UUID(held)

    @property
    def server_url(self) -> str:
        return self._link.base_url

    @property
    def cursor(self) -> str | None:
        return self._store.meta("cursor")

    @property
    def next_seq(self) -> int:
        return self._store.next_seq

    @property
    def tokens(self) -> dict[str, str]:
        return {
            "device_id": self._store.identity("device_id"),
            "access_token": self._store.identity("access_token"),
            "refresh_token": self._store.identity("refresh_token"),
        }

    def records(self, entity: str) -> dict[str, dict[str, Any]]:
        """The local view of ``entity``: id → fields, pending edits included."""
        return self._store.records(entity)

    def record(self, entity: str, record_id: str | uuid.UUID) -> LocalRecord | None:
        return self._store.record(entity, _id(record_id))

    def outbox(self) -> list[Pending]:
        return self._store.outbox()

    # ------------------------------------------------------------ editing offline

    def create(self, entity: str, record_id: str | uuid.UUID, fields: Mapping[str, Any]) -> Pending:
        """A new record (its whole state), made on the device."""
        key = _id(record_id)
        with self._store.transaction():
            if self._store.record(entity, key) is not None:
                raise ValueError(f"{entity} {key} already exists on this device")
            self._store.add_unseen(entity, key)
            change = self._append(entity, key, "create", None, dict(fields))
            self._store.recompute(entity, key)
        return change

    def update(self, entity: str, record_id: str | uuid.UUID, fields: Mapping[str, Any]) -> Pending:
        """Change some fields; the change carries only those."""
        key = _id(record_id)
        with self._store.transaction():
            record = self._live(entity, key)
            change = self._append(entity, key, "update", _base(record), dict(fields))
            self._store.recompute(entity, key)
        return change

    def delete(self, entity: str, record_id: str | uuid.UUID) -> Pending:
        key = _id(record_id)
        with self._store.transaction():
            record = self._live(entity, key)
            change = self._append(entity, key, "delete", _base(record), {})
            self._store.recompute(entity, key)
        return change

    def attach(
        self, path: str | Path, content_type: str | None = None, caption: str | None = None
    ) -> dict[str, Any]:
        """Keep the file at ``path`` (its bytes stay there) to be uploaded with the
        changes that name it; the reference to put in a record's ``attachments``:
        ``{"sha256", "content_type", "size", "caption"}``. The type is
        read from the file's first bytes; one given must agree with them. A file of a
        type fieldsync does not keep is a ``ValueError``."""
        return attach_file(self._store, path, content_type, caption)

    def refused_attachments(self) -> list[LocalFile]:
        """The attached files whose bytes will not do, each with why (``refused``):
        not sent until attached again."""
        return self._store.refused_files()

    def _live(self, entity: str, key: str) -> LocalRecord:
        record = self._store.record(entity, key)
        if record is None or record.deleted:
            raise KeyError(f"no {entity} {key} on this device")
        return record

    def _append(
        self, entity: str, key: str, op: str, base_version: int | None, fields: dict[str, Any]
    ) -> Pending:
        seq = int(self._store.required_meta("next_seq"))
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
        self._store.queue(change)
        self._store.name_files(named_files(change.fields))
        return change

    # ------------------------------------------------------------ sync

    def me(self) -> dict[str, Any]:
        """The device's user as the server sees them now (``GET /auth/me``): whether
        the server answers and still accepts the device."""
        response = self._link.call("GET", "/auth/me")
        raise_for(response)
        user: dict[str, Any] = response.json()
        return user

    def sync(self) -> list[ChangeResult]:
        """Push, then pull: the device ends with the server's state and its own edits.
        A file refused on the way (``AttachmentRefused``) is raised after the pull."""
        results, refused = self._push()
        self.pull()
        if refused:
            raise AttachmentRefused(refused, results)
        return results

    def push(self) -> list[ChangeResult]:
        """Upload the files the device's changes name, then send the outbox, oldest
        first, in batches; the results, in order. The files a result says the server lacks
        (``missing_attachments``) are sent after.

        Every status is a final answer for the outbox: the change leaves it. Raises
        ``Unreachable`` when retries run out (the unanswered changes stay queued, an
        upload under way is continued next time; if only the uploads gave out, the
        changes were pushed before it is raised), ``AuthFailed`` when the device must
        enroll again, ``AttachmentRefused`` when it is done but some file's bytes would
        not do, ``SyncError`` otherwise."""
        results, refused = self._push()
        if refused:
            raise AttachmentRefused(refused, results)
        return results

    def upload_missing(self) -> OwedFiles:
        """Send the files the server says this device named and has not sent (``GET
        /sync/missing-attachments``), those it holds; what became of each."""
        owed = self._uploads.owed()
        refused: list[LocalFile] = []
        not_here = self._uploads.resend(owed, refused)
        gone = {file.sha256 for file in refused} | set(not_here)
        return OwedFiles(
            sent=[sha256 for sha256 in owed if sha256 not in gone],
            not_here=not_here,
            refused=refused,
        )

    def _push(self) -> tuple[list[ChangeResult], list[LocalFile]]:
        """The push's results, and the files refused on the way.

        The files go first, so that the server holds them when the changes naming them
        arrive. If the uploads give out (a link too poor for a photo, a server that
        cannot store files just now), the changes are pushed all the same (small, and
        what the office waits for; the server notes the files as owed), and the
        uploads' error is raised after: the files go next time, each resumed."""
        refused: list[LocalFile] = []
        gave_out: SyncError | None = None
        try:
            self._uploads.send(self._store.files_to_send(), refused)
        except AuthFailed:
            raise
        except SyncError as error:
            gave_out = error
        results: list[ChangeResult] = []
        after = -1
        size = self.batch_size
        while True:
            batch = self._store.outbox_after(after, size)
            if not batch:
                break
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
        if gave_out is not None:
            raise gave_out
        missing = [sha256 for result in results for sha256 in result.missing_attachments or ()]
        self._uploads.resend(missing, refused)
        return results, refused

    def pull(self, on_change: Callable[[PulledChange], None] | None = None) -> int:
        """Pull pages until caught up; how many changes were pulled. ``on_change`` is
        shown each change once its page is stored."""
        pulled = 0
        reset = False
        while True:
            params: dict[str, str | int] = {}
            cursor = self._store.meta("cursor")
            if cursor is not None:
                params["cursor"] = cursor
            if self.pull_limit is not None:
                params["limit"] = self.pull_limit
            # Records in the shape this client reads (its version of the data model).
            params["schema_version"] = SCHEMA_VERSION
            response = self._link.call("GET", "/sync/pull", params=params)
            if (
                response.status_code == 410
                and problem_code(response) == "cursor_reset"
                and not reset
            ):
                # The server's history is not the one the cursor names (a restore):
                # hand over what the device holds, then take everything again.
                reset = True
                self._push()  # a file refused here stays listed in refused_attachments()
                self._forget_server_state()
                continue
            raise_for(response)
            page = PullResponse.model_validate_json(response.content)
            with self._store.transaction():
                touched: dict[tuple[str, str], None] = {}
                for change in page.changes:
                    if self._store.take_pulled(change):
                        touched[(change.entity, str(change.id))] = None
                for entity, key in touched:
                    self._store.recompute(entity, key)
                self._store.set_meta("cursor", page.cursor)
                self._store.raise_next_seq(page.last_seq)
            pulled += len(page.changes)
            if on_change is not None:
                for change in page.changes:
                    on_change(change)
            if not page.has_more:
                return pulled

    # ------------------------------------------------------------ push, inside

    def _post_batch(self, batch: list[Pending]) -> PushResponse | None:
        """The server's results for ``batch``; ``None`` if it was too large."""
        body = self._batch_body(batch)
        headers = {"Content-Type": "application/json"}
        if len(body) > GZIP_OVER_BYTES:
            body = gzip.compress(body, mtime=0)
            headers["Content-Encoding"] = "gzip"
        # Built once: every retry sends these very bytes (same batch, same change_ids).
        response = self._link.call("POST", "/sync/push", content=body, headers=headers)
        if response.status_code == 413:
            return None
        raise_for(response)
        return PushResponse.model_validate_json(response.content)

    def _batch_body(self, batch: list[Pending]) -> bytes:
        request = PushRequest(
            protocol=PROTOCOL,
            device_id=self.device_id,
            batch_id=uuid.uuid4(),
            changes=[change.as_change() for change in batch],
            client=self.report(),
        )
        return request.model_dump_json().encode()

    def report(self) -> ClientReport:
        """What this device says of itself with each push, for the office's view of
        the fleet: its version, the changes it holds unsent (the batch being sent
        among them) and the free space beside its state file."""
        oldest = self._store.oldest_unsent_at()
        free = shutil.disk_usage(self.state_path.resolve().parent).free
        return ClientReport(
            app_version=self.app_version,
            schema_version=SCHEMA_VERSION,
            pending_changes=self._store.unsent(),
            oldest_pending_at=None if oldest is None else datetime.fromisoformat(oldest),
            free_storage_mb=free // 2**20,
        )

    def _take_results(self, batch: list[Pending], answer: PushResponse) -> list[ChangeResult]:
        answered = {str(result.change_id): result for result in answer.results}
        with self._store.transaction():
            self._store.raise_next_seq(answer.last_seq)
            touched: dict[tuple[str, str], None] = {}
            for change in batch:
                result = answered.get(change.change_id)
                if result is None:
                    continue  # no answer: it stays queued and goes again next push
                self._store.unqueue(change.seq)
                self._store.learn(change, result)
                touched[(change.entity, change.id)] = None
            for entity, key in touched:
                self._store.recompute(entity, key)
        return answer.results

    # ------------------------------------------------------------ pull, inside

    def _forget_server_state(self) -> None:
        """Before pulling everything again: only what the device itself holds remains."""
        with self._store.transaction():
            self._store.drop_server_state()


# ---------------------------------------------------------------- helpers


def _id(record_id: str | uuid.UUID) -> str:
    return str(uuid.UUID(str(record_id)))


def _base(record: LocalRecord) -> int:
    """The conflict tag: the server version last seen, 0 for one the server has not
    shown yet (a record made here): the device has seen nothing of others' changes."""
    return record.version if record.version is not None else 0


__all__ = ["DeviceClient"]
