"""A simulated tablet: what it recorded offline, pushed in batches, and what it pulled.

Leaner than the reference client (``sync.client.device``), whose local SQLite store and
wall-clock ``recorded_at`` are right for a real tablet but not for replaying nine
years of field work in a minute: the outbox is a list, each change carries the
field time it was recorded at, and what the tablet knows of the server is a map of
record ids to the versions it last saw (from its pulls and its own push results),
which is all its later edits need for their ``base_version``.

Every change carries the status the server must answer it with, decided when the
batch is sent (``Expect``: a status, or a function of what reached the server
before); any other answer — a rejection, a deferral, a conflict not planned — stops
the demo with the change and the server's answer (``DemoFailed``).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import orjson

from bench.generator import moment
from schemas.versions import CURRENT

BATCH = 500  # changes a tablet sends at once
PULL_LIMIT = 1000

Expect = str | Callable[[], str]


class DemoFailed(RuntimeError):
    """The server answered something the demo did not plan: the demo is wrong, or the
    service is. The message says which change and what came back."""


@dataclass
class Enrolled:
    """A device's identity and tokens, as enrollment answered them."""

    device_id: uuid.UUID
    user_id: uuid.UUID
    access_token: str
    refresh_token: str


@dataclass
class Outgoing:
    change: dict[str, Any]
    expect: Expect


@dataclass
class Tablet:
    """One enrolled tablet of one user."""

    name: str  # the user's username
    role: str
    access: Enrolled
    http: httpx.Client
    seq: int = 0
    outbox: list[Outgoing] = field(default_factory=list)
    known: dict[uuid.UUID, int] = field(default_factory=dict)
    cursor: str | None = None
    syncs: int = 0
    pushed: int = 0
    pulled: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    # The app it runs, reported with each push (the tablets page shows it): most run
    # the current release, one ranger's tablet has not been updated since 2.3.
    app_version: str = "2.4.1"
    free_storage_mb: int = 2900

    # ------------------------------------------------------------ recording offline

    def create(
        self,
        entity: str,
        record_id: uuid.UUID,
        fields: dict[str, Any],
        recorded_at: datetime,
        expect: Expect = "applied",
    ) -> None:
        self._record(entity, record_id, "create", None, fields, recorded_at, expect)

    def update(
        self,
        entity: str,
        record_id: uuid.UUID,
        fields: dict[str, Any],
        recorded_at: datetime,
        expect: Expect = "applied",
    ) -> None:
        """Change ``fields`` of a record, from the version the tablet last saw (0 for
        one it made and has not heard of since: nobody else's change is then unseen)."""
        self._record(
            entity, record_id, "update", self.known.get(record_id, 0), fields, recorded_at, expect
        )

    def knows(self, record_id: uuid.UUID) -> bool:
        return record_id in self.known

    def _record(
        self,
        entity: str,
        record_id: uuid.UUID,
        op: str,
        base_version: int | None,
        fields: dict[str, Any],
        recorded_at: datetime,
        expect: Expect,
    ) -> None:
        self.seq += 1
        change = {
            "change_id": str(uuid.uuid5(self.access.device_id, f"{self.seq}")),
            "seq": self.seq,
            "entity": entity,
            "id": str(record_id),
            "op": op,
            "base_version": base_version,
            "schema_version": CURRENT,
            "recorded_at": moment(recorded_at),
            "fields": fields,
        }
        self.outbox.append(Outgoing(change, expect))

    # ------------------------------------------------------------ at a signal

    def sync(self) -> None:
        """Push the outbox, in batches, then pull until caught up."""
        self.syncs += 1
        self.push()
        self.pull()

    def push(self) -> None:
        while self.outbox:
            batch, self.outbox = self.outbox[:BATCH], self.outbox[BATCH:]
            wanted = [
                outgoing.expect if isinstance(outgoing.expect, str) else outgoing.expect()
                for outgoing in batch
            ]
            body = {
                "protocol": 1,
                "device_id": str(self.access.device_id),
                "batch_id": str(
                    uuid.uuid5(self.access.device_id, f"batch-{batch[0].change['seq']}")
                ),
                "changes": [outgoing.change for outgoing in batch],
                "client": {
                    "app_version": self.app_version,
                    "schema_version": CURRENT,
                    "pending_changes": len(self.outbox) + len(batch),
                    "oldest_pending_at": batch[0].change["recorded_at"],
                    "free_storage_mb": self.free_storage_mb - self.pushed // 50,
                },
            }
            answer = self._call(
                "POST",
                "/sync/push",
                content=orjson.dumps(body),
                headers={"Content-Type": "application/json"},
            )
            results = answer["results"]
            if len(results) != len(batch):
                raise DemoFailed(f"{self.name}: {len(batch)} changes sent, {len(results)} answered")
            for outgoing, want, result in zip(batch, wanted, results, strict=True):
                self._take(outgoing.change, want, result)
            self.pushed += len(batch)

    def _take(self, change: dict[str, Any], want: str, result: dict[str, Any]) -> None:
        status = result["status"]
        if status != want or result.get("replayed"):
            # A create meeting a record of its id: this seed's records are there already.
            taken = change["op"] == "create" and (
                status in ("merged", "conflict") or "id_taken" in str(result.get("errors"))
            )
            raise DemoFailed(
                f"{self.name}'s tablet sent {change['op']} {change['entity']} {change['id']} "
                f"(seq {change['seq']}), expecting {want!r}; the server answered "
                f"{orjson.dumps(result).decode()}"
                + (
                    "\n(the database seems to hold this seed's demo records already: "
                    "use a fresh database, or another --seed)"
                    if taken
                    else ""
                )
            )
        self.statuses[status] += 1
        record_id = uuid.UUID(change["id"])
        if status == "applied":
            self.known[record_id] = max(result["version"], self.known.get(record_id, 0))

    def pull(self) -> None:
        while True:
            params: dict[str, str | int] = {"limit": PULL_LIMIT}
            if self.cursor is not None:
                params["cursor"] = self.cursor
            page = self._call("GET", "/sync/pull", params=params)
            for change in page["changes"]:
                record_id = uuid.UUID(change["id"])
                if change["op"] == "delete":
                    self.known.pop(record_id, None)
                else:
                    self.known[record_id] = change["version"]
            self.pulled += len(page["changes"])
            self.cursor = page["cursor"]
            if not page["has_more"]:
                return

    # ------------------------------------------------------------ HTTP

    def _call(self, method: str, path: str, **arguments: Any) -> dict[str, Any]:
        """A request with the device's token, rotated once when it has expired."""
        headers: dict[str, str] = arguments.pop("headers", {})
        for attempt in (1, 2):
            answer = self.http.request(
                method,
                path,
                headers={**headers, "Authorization": f"Bearer {self.access.access_token}"},
                **arguments,
            )
            if answer.status_code == 401 and attempt == 1:
                self._refresh()
                continue
            if answer.status_code != 200:
                raise DemoFailed(
                    f"{self.name}'s tablet: {method} {path} answered "
                    f"{answer.status_code} {answer.text[:500]}"
                )
            document: dict[str, Any] = orjson.loads(answer.content)
            return document
        raise AssertionError("unreachable")

    def _refresh(self) -> None:
        answer = self.http.post("/auth/refresh", json={"refresh_token": self.access.refresh_token})
        if answer.status_code != 200:
            raise DemoFailed(f"{self.name}'s tablet cannot refresh its tokens: {answer.text[:300]}")
        tokens = answer.json()
        self.access.access_token = tokens["access_token"]
        self.access.refresh_token = tokens["refresh_token"]
