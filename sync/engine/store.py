"""What a push keeps of every change it receives, whatever its answer: the change and
its result (``sync_change``), by ``change_id``, for idempotency and for the rejected
changes' list; the conflicts it opened; and, for a change that cannot be kept under
its own id (its ``change_id`` was used for other content), a copy in ``refused_change``.

The change's document as sent is kept unless it was applied as sent: then the version
it made (``record_version``, in the audit chain) holds its fields, validated, with its
``change_id``, and a second copy of them — for a track segment, its hundred points —
was a quarter of what PostgreSQL wrote and compressed for a push.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from schemas.sync import Change, ChangeResult, Status
from sync.accounts.principal import Principal
from sync.engine.prepare import storable
from sync.engine.rules import Rejected
from sync.engine.workspace import Waiting, Workspace


class Receipts:
    """Keeps the batch's changes and their answers, written at the workspace's flush;
    ``conflicts`` are those opened by the change being decided (``Decider.conflicts``)."""

    def __init__(
        self,
        ws: Workspace,
        conflicts: list[dict[str, Any]],
        *,
        now: datetime,
        batch_id: uuid.UUID | None,
    ) -> None:
        self.ws = ws
        self.conflicts = conflicts
        self.now = now
        self.batch_id = batch_id

    def store(
        self,
        principal: Principal,
        change: Change,
        document: dict[str, Any],
        digest: str,
        result: ChangeResult,
    ) -> Waiting:
        """Keep a change with its answer, and the conflicts it opened."""
        assert principal.device_id is not None
        answer = result.model_dump(mode="json", exclude_none=True)
        row = {
            "change_id": change.change_id,
            "device_id": principal.device_id,
            "user_id": principal.user_id,
            "batch_id": self.batch_id,
            "seq": change.seq,
            "entity": change.entity,
            "record_id": change.id,
            "op": change.op,
            "content_hash": digest,
            "status": str(result.status),
            "result": answer,
            "change": None if _held_by_its_version(change, document, result) else document,
            "received_at": self.now,
            "applied_at": self.now if result.status in (Status.applied, Status.merged) else None,
        }
        self.ws.store_change(row)
        self.link_conflicts(change.change_id)
        return Waiting(
            change_id=change.change_id,
            device_id=principal.device_id,
            user_id=principal.user_id,
            seq=change.seq,
            received_at=self.now,
            change=document,
            result=answer,
        )

    def reject(
        self,
        principal: Principal,
        change: Change,
        document: dict[str, Any],
        rejection: Rejected,
        digest: str,
    ) -> ChangeResult:
        result = ChangeResult(
            change_id=change.change_id, status=Status.rejected, errors=rejection.errors
        )
        self.store(principal, change, document, digest, result)
        return result

    def refuse(self, principal: Principal, change: Change, result: ChangeResult) -> None:
        """Keep a change that cannot be stored under its own id, for admins to see."""
        assert principal.device_id is not None
        kept = storable(change)
        self.ws.refuse(
            {
                "change_id": kept.change_id,
                "device_id": principal.device_id,
                "user_id": principal.user_id,
                "batch_id": self.batch_id,
                "seq": kept.seq,
                "entity": kept.entity,
                "record_id": kept.id,
                "op": kept.op,
                "errors": [e.model_dump() for e in result.errors or []],
                "change": kept.model_dump(mode="json"),
                "received_at": self.now,
            }
        )

    def link_conflicts(self, change_id: uuid.UUID) -> None:
        """Store the conflicts opened so far as opened by ``change_id``."""
        for conflict in self.conflicts:
            self.ws.open_conflict({**conflict, "change_id": change_id})
        self.conflicts.clear()


def _held_by_its_version(change: Change, document: dict[str, Any], result: ChangeResult) -> bool:
    """Whether the version ``change`` made holds all it sent: it was applied as sent, in
    the version of the data model it was written in (one upcast is kept as sent)."""
    return result.status is Status.applied and change.schema_version == document["schema_version"]
