"""Helpers for sync tests: build changes, push them, pull everything."""

from __future__ import annotations

import uuid
from typing import Any

from schemas.versions import CURRENT
from tests.conftest import Caller


def change(
    entity: str,
    record_id: str,
    op: str,
    seq: int,
    fields: dict[str, Any] | None = None,
    *,
    base_version: int | None = None,
    schema_version: int = CURRENT,
) -> dict[str, Any]:
    return {
        "change_id": str(uuid.uuid4()),
        "seq": seq,
        "entity": entity,
        "id": record_id,
        "op": op,
        "base_version": base_version,
        "schema_version": schema_version,
        "recorded_at": "2026-11-02T09:31:07-05:00",
        "fields": fields or {},
    }


def push(device: Caller, *changes: dict[str, Any]) -> dict[str, Any]:
    answer = device.post(
        "/sync/push",
        json={
            "protocol": 1,
            "device_id": device.tokens["device_id"],
            "batch_id": str(uuid.uuid4()),
            "changes": list(changes),
        },
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def pull_all(device: Caller, cursor: str | None = None) -> tuple[list[dict[str, Any]], str]:
    """Every change after ``cursor``, following pages; and the last cursor."""
    changes: list[dict[str, Any]] = []
    for _ in range(1000):
        params = {"cursor": cursor} if cursor else {}
        answer = device.get("/sync/pull", params=params)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        changes.extend(page["changes"])
        cursor = page["cursor"]
        if not page["has_more"]:
            return changes, page["cursor"]
    raise AssertionError("pull did not end")


class Tablet:
    """A device with its own seq counter."""

    def __init__(self, device: Caller) -> None:
        self.device = device
        self.seq = 0

    def send(
        self,
        entity: str,
        record_id: str,
        op: str,
        fields: dict[str, Any] | None = None,
        *,
        base_version: int | None = None,
    ) -> dict[str, Any]:
        self.seq += 1
        result = push(
            self.device, change(entity, record_id, op, self.seq, fields, base_version=base_version)
        )
        first: dict[str, Any] = result["results"][0]
        return first

    def defer_one(self, patrol_id: str | None = None) -> dict[str, Any]:
        """Push a track segment of a patrol the server has not received: deferred."""
        waiting = self.send(
            "track_segment",
            str(uuid.uuid4()),
            "create",
            {
                "patrol_id": patrol_id or str(uuid.uuid4()),
                "points": [{"t": "2026-03-02T08:00:00-05:00", "lat": -5.8, "lon": -77.3}],
            },
        )
        assert waiting["status"] == "deferred", waiting
        return waiting
