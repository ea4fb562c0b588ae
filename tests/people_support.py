"""Build families the way extension workers' tablets send them."""

from __future__ import annotations

import uuid
from typing import Any

from tests.conftest import Caller
from tests.sync_support import change, push


class Recorder:
    """An extension worker's tablet: records pile up offline, then go in one push."""

    def __init__(self, device: Caller) -> None:
        self.device = device
        self.seq = 0
        self.outbox: list[dict[str, Any]] = []

    def record(self, entity: str, fields: dict[str, Any]) -> str:
        record_id = str(uuid.uuid4())
        self.seq += 1
        self.outbox.append(change(entity, record_id, "create", self.seq, fields))
        return record_id

    def person(self, community: str, given: str, surname: str, sex: str, **fields: Any) -> str:
        names = {"given_names": given, "paternal_surname": surname, "sex": sex}
        return self.record("person", {**names, "community_id": community, **fields})

    def session(self, community: str, program: str, starts_at: str, **fields: Any) -> str:
        body = {"program": program, "community_id": community, "starts_at": starts_at}
        return self.record("training_session", {**body, "status": "held", **fields})

    def attend(self, session_id: str, person_id: str, role: str = "participant") -> str:
        return self.record(
            "attendance", {"session_id": session_id, "person_id": person_id, "role": role}
        )

    def sync(self) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = push(self.device, *self.outbox)["results"]
        self.outbox = []
        return results

    def update(
        self, entity: str, record_id: str, base_version: int, **fields: Any
    ) -> dict[str, Any]:
        """Push one update at once; its result."""
        self.seq += 1
        sent = change(entity, record_id, "update", self.seq, fields, base_version=base_version)
        result: dict[str, Any] = push(self.device, sent)["results"][0]
        return result


__all__ = ["Recorder"]
