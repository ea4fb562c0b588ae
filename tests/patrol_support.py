"""Build patrols the way tablets send them: one push with the patrol, its track
segments and its observations, so tests of the queue, the detail, the reports and the
exports start from what the sync engine really stored."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from tests.conftest import Caller
from tests.sync_support import change, push

Fix = tuple[datetime, float, float]
"""A track point as a test writes it: (time, lat, lon)."""


def at(text: str) -> datetime:
    """``at("2026-03-02T08:00-05:00")``: an aware datetime."""
    return datetime.fromisoformat(text)


def walk(
    start: datetime, lat: float, lon: float, *, minutes: int, step_m: float, every_s: int = 60
) -> list[Fix]:
    """A straight walk north from (lat, lon): one fix every ``every_s`` seconds, each
    ``step_m`` metres on from the last (1° of latitude is 111.195 km on the sphere)."""
    count = minutes * 60 // every_s + 1
    step_deg = step_m / 1000 / 111.19508
    return [(start + timedelta(seconds=i * every_s), lat + i * step_deg, lon) for i in range(count)]


def points(fixes: Sequence[Fix]) -> list[dict[str, Any]]:
    return [
        {"t": t.isoformat(), "lat": lat, "lon": lon, "accuracy_m": 5.0} for t, lat, lon in fixes
    ]


class PatrolTablet:
    """A ranger's tablet that records whole patrols and pushes each in one batch."""

    def __init__(self, device: Caller) -> None:
        self.device = device
        self.seq = 0

    def _next(self) -> int:
        self.seq += 1
        return self.seq

    def patrol(
        self,
        *,
        sector_id: str,
        started_at: datetime | None,
        ended_at: datetime | None,
        segments: Sequence[Sequence[Fix]] = (),
        observations: Sequence[dict[str, Any]] = (),
        status: str = "submitted",
        **fields: Any,
    ) -> str:
        """Push a patrol with its segments and observations; returns the patrol id.

        ``observations`` are their fields (``category_key``, ``observed_at`` as a
        datetime, ``lat``, ``lon``, ``attributes`` ...); ``patrol_id`` is filled in.
        """
        patrol_id = str(uuid.uuid4())
        body = {
            "sector_id": sector_id,
            "started_at": started_at.isoformat() if started_at else None,
            "ended_at": ended_at.isoformat() if ended_at else None,
            "status": status,
            **fields,
        }
        changes = [change("patrol", patrol_id, "create", self._next(), body)]
        for segment in segments:
            changes.append(
                change(
                    "track_segment",
                    str(uuid.uuid4()),
                    "create",
                    self._next(),
                    {"patrol_id": patrol_id, "points": points(segment)},
                )
            )
        for observation in observations:
            made = {
                "patrol_id": patrol_id,
                **observation,
                "observed_at": observation["observed_at"].isoformat(),
            }
            changes.append(change("observation", str(uuid.uuid4()), "create", self._next(), made))
        result = push(self.device, *changes)
        refused = [r for r in result["results"] if r["status"] != "applied"]
        assert not refused, refused
        return patrol_id


__all__ = ["Fix", "PatrolTablet", "at", "points", "walk"]
