"""What tablets push: batches of changes, each with the result the server must give it.

A ``Tablet`` is one simulated device: a ranger's (patrols, their track segments and
observations) or an extension worker's (households, people, agreements, training
sessions, attendance). It turns the field stories of ``bench.generator`` into
protocol changes with their own ``seq`` and ``change_id``, and mixes in updates:

- **own updates**, which always apply: a patrol closed at the end of the day, a
  training session marked held, an agreement made active;
- **shared updates**, on records the tablet made in its warm-up batch and the office
  edited since (``office_edits``): the tablet changes *other* fields from the same
  ``base_version`` (``merged``) or the *same* field to another value (``conflict``).
  The office edits before the timed batches, so the expected result of every change
  is known whatever the interleaving of devices, and checked.

Every change carries the status it must get; a difference is reported loudly by the
benchmark (a ``rejected`` change means this generator is wrong).
"""

from __future__ import annotations

import random
import uuid
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bench.generator import (
    EPOCH,
    Box,
    CommunityPlace,
    Record,
    Walker,
    day_after,
    household_story,
    moment,
    new_id,
    patrol_story,
    training_story,
)
from schemas.versions import CURRENT

RANGER = "ranger"
EXTENSION_WORKER = "extension_worker"
# Of the changes of a timed batch, the share that are shared updates: two of three
# merge, one conflicts (while warm-up records last).
SHARED_SHARE = 0.04
CONFLICT_SHARE = 1 / 3


@dataclass(frozen=True)
class SectorPlace:
    id: uuid.UUID
    box: Box


@dataclass
class Planned:
    """A change before it is numbered: what it does and the status it must get."""

    entity: str
    id: uuid.UUID
    op: str
    fields: dict[str, Any]
    recorded_at: datetime
    expected: str
    base_version: int | None = None
    record: Record | None = None  # the record a create makes


@dataclass
class Batch:
    """A device's batch: the wire changes, the statuses they must get, the records made."""

    changes: list[dict[str, Any]]
    expected: Counter[str] = field(default_factory=Counter)
    created: list[Record] = field(default_factory=list)


@dataclass(frozen=True)
class Edit:
    """How the office and a tablet both edit one kind of record: the office sets
    ``office``; the tablet sets ``merge`` (other fields: merged) or ``conflict`` (the
    same field as ``office``, to another value). No value here is one the generator
    makes, so that no edit is a no-op whose result would differ from the expected."""

    office: dict[str, Any]
    merge: dict[str, Any]
    conflict: dict[str, Any]


EDITS: dict[str, Edit] = {
    "patrol": Edit(
        office={"objective": "Patrullaje rutinario (corregido en oficina)"},
        merge={"rest_minutes": 50},
        conflict={"objective": "Patrullaje rutinario y control de caza"},
    ),
    "observation": Edit(
        office={"notes": "Validado por el jefe de sector."},
        merge={"action_taken": "confiscated"},
        conflict={"notes": "Se volvió a visitar el lugar; la tala continúa."},
    ),
    "person": Edit(
        office={"maternal_surname": "Sáenz"},
        merge={"phone": "987654321"},
        conflict={"maternal_surname": "Saenz"},
    ),
    "household": Edit(
        office={"code": "HH-OFICINA"},
        merge={"location": {"lat": -5.702113, "lon": -77.488310}},
        conflict={"code": "HH-CAMPO"},
    ),
    "agreement": Edit(
        office={"area_forest_ha": 12.55},
        merge={"benefits": ["coffee_market_access", "seed_bank"]},
        conflict={"area_forest_ha": 14.05},
    ),
    "training_session": Edit(
        office={"venue": "Casa comunal de la asociación"},
        merge={"topic": "Manejo de la roya (segunda sesión)"},
        conflict={"venue": "Escuela primaria"},
    ),
}


@dataclass
class Target:
    """A warm-up record both the office and its tablet edit."""

    entity: str
    id: uuid.UUID
    version: int  # the version the tablet last saw (its own)
    conflict: bool


def wire_change(seq: int, change_id: uuid.UUID, planned: Planned) -> dict[str, Any]:
    return {
        "change_id": str(change_id),
        "seq": seq,
        "entity": planned.entity,
        "id": str(planned.id),
        "op": planned.op,
        "base_version": planned.base_version,
        "schema_version": CURRENT,
        "recorded_at": moment(planned.recorded_at),
        "fields": planned.fields,
    }


class Tablet:
    """One simulated device and everything it will push, reproducible from ``seed``."""

    def __init__(
        self,
        *,
        seed: str,
        role: str,
        user_id: uuid.UUID,
        sectors: list[SectorPlace] | None = None,
        communities: list[CommunityPlace] | None = None,
        categories: list[dict[str, Any]] | None = None,
    ) -> None:
        self.rng = random.Random(f"bench:{seed}")
        self.role = role
        self.user_id = user_id
        self.sectors = sectors or []
        self.communities = communities or []
        self.categories = categories or []
        if role == RANGER and not (self.sectors and self.categories):
            raise ValueError("a ranger's tablet needs sectors and observation categories")
        if role == EXTENSION_WORKER and not self.communities:
            raise ValueError("an extension worker's tablet needs communities")
        self.seq = 0
        self.day = EPOCH + timedelta(days=self.rng.randint(0, 6))
        self.waiting: deque[Planned] = deque()
        self.targets: list[Target] = []

    # ------------------------------------------------------------ batches

    def warm_up(self, size: int) -> Batch:
        """A first batch of whole stories (about ``size`` changes), whose records
        become the targets of shared updates once the office has edited them."""
        planned: list[Planned] = []
        while len(planned) < size:
            planned.extend(self._story())
        seen: dict[uuid.UUID, int] = {}
        for change in planned:
            seen[change.id] = 1 if change.op == "create" else seen.get(change.id, 0) + 1
        candidates = [
            (change.entity, change.id)
            for change in planned
            if change.op == "create" and change.entity in EDITS
        ]
        self.rng.shuffle(candidates)
        self.targets = [
            Target(entity, record_id, seen[record_id], conflict=self.rng.random() < CONFLICT_SHARE)
            for entity, record_id in candidates
        ]
        return self._numbered(planned)

    def batch(self, size: int) -> Batch:
        """The next ``size`` changes: stories (cut where the batch ends, continued in
        the next) with shared updates mixed in."""
        planned: list[Planned] = []
        while len(planned) < size:
            if self.targets and self.rng.random() < SHARED_SHARE:
                planned.append(self._shared_update(self.targets.pop()))
                continue
            if not self.waiting:
                self.waiting.extend(self._story())
            planned.append(self.waiting.popleft())
        return self._numbered(planned)

    def _numbered(self, planned: list[Planned]) -> Batch:
        batch = Batch(changes=[])
        for change in planned:
            self.seq += 1
            batch.changes.append(wire_change(self.seq, new_id(self.rng), change))
            batch.expected[change.expected] += 1
            if change.record is not None:
                batch.created.append(change.record)
        return batch

    # ------------------------------------------------------------ stories

    def _story(self) -> list[Planned]:
        self.day = day_after(self.rng, self.day)
        if self.role == RANGER:
            return self._patrol_day()
        return self._extension_day()

    def _patrol_day(self) -> list[Planned]:
        sector = self.rng.choice(self.sectors)
        made, closing = patrol_story(
            self.rng, sector.id, sector.box, self.day, self.user_id, self.categories
        )
        planned = [created(record) for record in made]
        patrol = made[0]
        planned.append(
            Planned(
                "patrol",
                patrol.id,
                "update",
                closing,
                made[-1].recorded_at + timedelta(minutes=15),
                "applied",
                base_version=1,
            )
        )
        return planned

    def _extension_day(self) -> list[Planned]:
        community = self.rng.choice(self.communities)
        if len(community.people) >= 12 and self.rng.random() < 0.35:
            made = training_story(
                self.rng, community, self.day, self.user_id, self.rng.randint(8, 25)
            )
            planned = [created(record) for record in made]
            session = made[0]
            planned.append(
                Planned(
                    "training_session",
                    session.id,
                    "update",
                    {"status": "held"},
                    made[-1].recorded_at + timedelta(minutes=30),
                    "applied",
                    base_version=1,
                )
            )
            return planned
        made = household_story(self.rng, community, self.day)
        planned = [created(record) for record in made]
        agreements = [record for record in made if record.entity == "agreement"]
        if agreements and self.rng.random() < 0.5:
            planned.append(
                Planned(
                    "agreement",
                    agreements[0].id,
                    "update",
                    {"status": "active"},
                    agreements[0].recorded_at + timedelta(days=1),
                    "applied",
                    base_version=1,
                )
            )
        return planned

    def _shared_update(self, target: Target) -> Planned:
        edit = EDITS[target.entity]
        return Planned(
            target.entity,
            target.id,
            "update",
            dict(edit.conflict if target.conflict else edit.merge),
            self.day + timedelta(hours=2),
            "conflict" if target.conflict else "merged",
            base_version=target.version,
        )


def created(record: Record) -> Planned:
    return Planned(
        record.entity,
        record.id,
        "create",
        record.fields,
        record.recorded_at,
        "applied",
        record=record,
    )


class Office:
    """The office's tablet (a coordinator): edits the warm-up records of the field
    tablets before they edit them too. Every edit applies (the office saw the latest)."""

    def __init__(self, seed: str) -> None:
        self.rng = random.Random(f"bench:{seed}")
        self.seq = 0

    def edits(self, targets: list[Target], size: int) -> list[Batch]:
        when = EPOCH + timedelta(days=400)
        planned = [
            Planned(
                target.entity,
                target.id,
                "update",
                dict(EDITS[target.entity].office),
                when,
                "applied",
                base_version=target.version,
            )
            for target in targets
        ]
        batches = []
        for start in range(0, len(planned), size):
            batch = Batch(changes=[])
            for change in planned[start : start + size]:
                self.seq += 1
                batch.changes.append(wire_change(self.seq, new_id(self.rng), change))
                batch.expected[change.expected] += 1
            batches.append(batch)
        return batches


def stories(
    rng: random.Random,
    *,
    sectors: list[SectorPlace],
    communities: list[CommunityPlace],
    categories: list[dict[str, Any]],
    user_id: uuid.UUID,
    day: datetime = EPOCH,
    walker: type[Walker] = Walker,
) -> Iterator[Record]:
    """Records without end, alternating a ranger's day and an extension worker's,
    for seeding a history: what many tablets would have pushed over the years.
    ``walker`` walks the patrols (``TrailWalker`` for a history of millions)."""
    while True:
        day = day_after(rng, day)
        sector = rng.choice(sectors)
        made, _closing = patrol_story(
            rng, sector.id, sector.box, day, user_id, categories, walker=walker
        )
        yield from made
        community = rng.choice(communities)
        if len(community.people) >= 12 and rng.random() < 0.35:
            yield from training_story(rng, community, day, user_id, rng.randint(8, 25))
        else:
            yield from household_story(rng, community, day)
        if len(community.people) > 400:  # keep memory flat over millions of records
            del community.people[:200]
