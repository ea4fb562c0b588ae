"""The review benchmark: a ranger lead's queue and a patrol's detail, with years of
patrols held.

On a fresh database (``bench.run``), a ranger lead and a crew of rangers are made in
every sector over the API (``fleet.review_staff``), then ``seed.seed_patrols`` writes
a history of patrols alone: ``--review-patrols`` patrols holding
``--review-points`` track points in all, led and walked by those rangers. Their
reviews are made by the server's own ``sync.patrols.review.review`` as each sector's lead
(in this process, many a transaction: the same rows as ``POST /patrols/{id}/review``
makes, without an HTTP request each), so that most patrols are approved and a tenth
wait in the queue.

Then, one request at a time over one connection, as a lead's browser asks (after a
few untimed requests of each kind), it times:

- the queue, ``GET /patrols?status=submitted``: its first page and its last (by
  ``offset``), as each sector's lead in turn, and as a coordinator (every sector);
- filtered lists: one ranger's patrols over a month (``ranger_id``, ``from``,
  ``to``), as the lead of the ranger's sector; patrols with a threat observed
  (``category=threat``), as the coordinator;
- the detail, ``GET /patrols/{id}``, of random patrols, as the lead of their sector.

Every answer is checked against what the seeder made (``SeededPatrol``): totals,
order, scope, and, in a detail, the point count, the observations, members and
reviews. A difference is an error of the run, reported loudly.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

import httpx
from sqlalchemy.engine import Engine

from bench.fleet import ReviewStaff, UserAccess
from bench.generator import EPOCH
from bench.load import percentiles
from bench.report import TARGETS
from bench.seed import REVIEWED, SeededPatrol
from schemas.enums import Role
from sync.accounts.principal import Principal
from sync.patrols.review import ReviewRequest, review
from sync.platform.database import transaction

WARM = 3  # untimed requests of each kind first: the worker's first answers build caches
REVIEWS_A_TRANSACTION = 500
HTTP_TIMEOUT = 300.0
MISMATCH_EXAMPLES = 5

# What is timed, in the order of the table.
ENDPOINTS = {
    "queue_lead_first": "queue, lead, first page",
    "queue_lead_last": "queue, lead, last page",
    "queue_all_first": "queue, coordinator, first page",
    "queue_all_last": "queue, coordinator, last page",
    "ranger_month": "a ranger's month, lead",
    "threats": "category=threat, coordinator",
    "detail": "detail, lead",
}


# ---------------------------------------------------------------- the reviews


def make_reviews(
    engine: Engine, seeded: list[SeededPatrol], staff: ReviewStaff, sector_ids: list[uuid.UUID]
) -> int:
    """Approve or return, as their sector's lead, the patrols seeded ``submitted`` to
    be reviewed; the reviews made."""
    leads = {
        sector_ids[lead.sector_index]: Principal(
            user_id=lead.user_id,
            username=lead.username,
            role=Role.ranger_lead,
            family_id=None,
            device_id=None,
            sector_ids=frozenset({sector_ids[lead.sector_index]}),
            community_ids=frozenset(),
        )
        for lead in staff.leads
        if lead.sector_index is not None
    }
    approve = ReviewRequest.model_validate({"decision": "approve"})
    give_back = ReviewRequest.model_validate(
        {"decision": "return", "comment": "Falta el registro de la segunda quebrada."}
    )
    due = [patrol for patrol in seeded if patrol.status in REVIEWED]
    for start in range(0, len(due), REVIEWS_A_TRANSACTION):
        with transaction(engine) as session:
            for patrol in due[start : start + REVIEWS_A_TRANSACTION]:
                review(
                    session,
                    principal=leads[patrol.sector_id],
                    patrol_id=patrol.id,
                    request=approve if patrol.status == "approved" else give_back,
                )
    return len(due)


# ---------------------------------------------------------------- what is asked


Check = Callable[[Any], list[str]]


@dataclass
class Ask:
    """One request: who asks, what, and what the answer must hold."""

    endpoint: str
    who: UserAccess
    path: str
    params: dict[str, Any]
    check: Check


@dataclass
class Expected:
    """What the API must answer, from what the seeder made and the reviews did."""

    seeded: list[SeededPatrol]
    zone: tzinfo
    by_id: dict[uuid.UUID, SeededPatrol] = field(init=False)

    def __post_init__(self) -> None:
        self.by_id = {patrol.id: patrol for patrol in self.seeded}

    def queue(self, sector_id: uuid.UUID | None) -> int:
        return sum(
            1
            for p in self.seeded
            if p.status == "submitted" and (sector_id is None or p.sector_id == sector_id)
        )

    def of_ranger(self, ranger_id: uuid.UUID, first: date, last: date) -> int:
        return sum(
            1
            for p in self.seeded
            if ranger_id in p.member_ids
            and first <= p.started_at.astimezone(self.zone).date() <= last
        )

    def threats(self) -> int:
        return sum(1 for p in self.seeded if any(c.startswith("threat.") for c in p.categories))


def plan(
    expected: Expected,
    staff: ReviewStaff,
    sector_ids: list[uuid.UUID],
    *,
    requests: int,
    details: int,
    page: int,
    days: int,
    seed: str,
) -> list[list[Ask]]:
    """The requests of each endpoint (``ENDPOINTS``' order), ``requests`` of each
    list (pages of ``page`` patrols) and ``details`` details, drawn from ``seed``;
    ``days``: how long the seeded history is."""
    rng = random.Random(f"bench-review:{seed}")
    leads = staff.leads
    coordinator = staff.coordinator

    def queue(who: UserAccess, last: bool) -> Ask:
        sector = None if who.sector_index is None else sector_ids[who.sector_index]
        total = expected.queue(sector)
        offset = max(0, total - page) if last else 0
        return Ask(
            f"queue_{'all' if sector is None else 'lead'}_{'last' if last else 'first'}",
            who,
            "/patrols",
            {"status": "submitted", "limit": page, "offset": offset},
            page_check(expected, total, offset, sector=sector, queue=True),
        )

    def ranger_month() -> Ask:
        lead = rng.choice(leads)
        assert lead.sector_index is not None
        ranger = rng.choice(staff.crews[lead.sector_index])
        first = EPOCH.date() + timedelta(days=rng.randrange(max(1, days - 30)))
        last = first + timedelta(days=29)
        return Ask(
            "ranger_month",
            lead,
            "/patrols",
            {
                "ranger_id": str(ranger),
                "from": first.isoformat(),
                "to": last.isoformat(),
                "limit": page,
            },
            page_check(
                expected,
                expected.of_ranger(ranger, first, last),
                0,
                sector=sector_ids[lead.sector_index],
                ranger=ranger,
                span=(first, last),
            ),
        )

    def threats() -> Ask:
        return Ask(
            "threats",
            coordinator,
            "/patrols",
            {"category": "threat", "limit": page},
            page_check(expected, expected.threats(), 0, threat=True),
        )

    def detail() -> Ask:
        patrol = rng.choice(expected.seeded)
        lead = next(
            lead
            for lead in leads
            if lead.sector_index is not None and sector_ids[lead.sector_index] == patrol.sector_id
        )
        return Ask("detail", lead, f"/patrols/{patrol.id}", {}, detail_check(patrol))

    return [
        [queue(leads[i % len(leads)], last=False) for i in range(requests)],
        [queue(leads[i % len(leads)], last=True) for i in range(requests)],
        [queue(coordinator, last=False) for _ in range(requests)],
        [queue(coordinator, last=True) for _ in range(requests)],
        [ranger_month() for _ in range(requests)],
        [threats() for _ in range(requests)],
        [detail() for _ in range(details)],
    ]


def page_check(
    expected: Expected,
    total: int,
    offset: int,
    *,
    sector: uuid.UUID | None = None,
    queue: bool = False,
    ranger: uuid.UUID | None = None,
    span: tuple[date, date] | None = None,
    threat: bool = False,
) -> Check:
    def check(page: Any) -> list[str]:
        wrong = []
        if page["total"] != total:
            wrong.append(f"total {page['total']}, seeded {total}")
        items = page["items"]
        if len(items) != max(0, min(page["limit"], total - offset)):
            wrong.append(f"{len(items)} items at offset {offset} of {total}")
        for item in items:
            made = expected.by_id.get(uuid.UUID(item["id"]))
            if made is None:
                wrong.append(f"{item['id']}: not seeded")
                continue
            if item["point_count"] != made.points:
                wrong.append(f"{item['id']}: {item['point_count']} points, seeded {made.points}")
            if item["observation_count"] != made.observations:
                wrong.append(f"{item['id']}: {item['observation_count']} observations")
            if sector is not None and item["sector_id"] != str(sector):
                wrong.append(f"{item['id']}: out of the sector")
            if queue and item["status"] != "submitted":
                wrong.append(f"{item['id']}: {item['status']} in the queue")
            if ranger is not None and ranger not in made.member_ids:
                wrong.append(f"{item['id']}: not {ranger}'s")
            if span is not None:
                day = made.started_at.astimezone(expected.zone).date()
                if not span[0] <= day <= span[1]:
                    wrong.append(f"{item['id']}: started {day}, outside {span}")
            if threat and not any(c.startswith("threat.") for c in made.categories):
                wrong.append(f"{item['id']}: no threat observed")
        if queue:  # the longest waiting first
            keys = [(datetime.fromisoformat(i["updated_at"]), uuid.UUID(i["id"])) for i in items]
            if keys != sorted(keys):
                wrong.append("the queue is not oldest first")
        elif items:  # the newest first
            starts = [datetime.fromisoformat(i["started_at"]) for i in items]
            if starts != sorted(starts, reverse=True):
                wrong.append("the list is not newest first")
        return wrong

    return check


def detail_check(made: SeededPatrol) -> Check:
    def check(answer: Any) -> list[str]:
        patrol, effort = answer["patrol"], answer["effort"]
        shown = {
            "id": patrol["id"],
            "status": patrol["status"],
            "sector": patrol["sector_id"],
            "leader": patrol["leader_id"],
            "members": sorted(m["user_id"] for m in patrol["members"] if m.get("user_id")),
            "points": patrol["point_count"],
            "effort points": effort["point_count"],
            "track points": sum(
                f["properties"]["point_count"] for f in answer["track"]["features"]
            ),
            "observations": patrol["observation_count"],
            "categories": sorted(o["category_key"] for o in answer["observations"]),
            "reviews": len(answer["reviews"]),
        }
        seeded = {
            "id": str(made.id),
            "status": made.status,
            "sector": str(made.sector_id),
            "leader": str(made.leader_id),
            "members": sorted(str(m) for m in made.member_ids),
            "points": made.points,
            "effort points": made.points,
            "track points": made.points,
            "observations": made.observations,
            "categories": sorted(made.categories),
            "reviews": 1 if made.status in REVIEWED else 0,
        }
        return [
            f"{made.id}: {name} {shown[name]!r}, seeded {value!r}"
            for name, value in seeded.items()
            if shown[name] != value
        ]

    return check


# ---------------------------------------------------------------- timing


@dataclass
class Timed:
    seconds: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    totals: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)


def measure(api: str, asks: list[list[Ask]]) -> dict[str, Any]:
    """Each endpoint's requests one after the other, over one connection, timed from
    sending to the whole answer read; then each answer checked (untimed)."""
    report: dict[str, Any] = {}
    with httpx.Client(base_url=api, timeout=HTTP_TIMEOUT) as client:
        for group in asks:
            name = group[0].endpoint
            for ask in group[:WARM]:  # untimed
                client.get(ask.path, params=ask.params, headers=ask.who.headers)
            timed = Timed()
            for ask in group:
                sent = time.perf_counter()
                answer = client.get(ask.path, params=ask.params, headers=ask.who.headers)
                seconds = time.perf_counter() - sent
                if answer.status_code != 200:
                    timed.failures.append(
                        f"{ask.path} {ask.params}: {answer.status_code} {answer.text[:300]}"
                    )
                    continue
                timed.seconds.append(seconds)
                timed.sizes.append(len(answer.content))
                body = answer.json()
                if "total" in body:
                    timed.totals.append(body["total"])
                timed.mismatches += ask.check(body)
            report[name] = {
                "label": ENDPOINTS[name],
                "who": group[0].who.role,
                "example": str(httpx.URL(group[0].path, params=group[0].params)),
                "count": len(timed.seconds),
                "latency_ms": (latency := percentiles(timed.seconds)),
                "p95_within_target": latency["p95"] is not None
                and latency["p95"] <= TARGETS["review_p95_ms"],
                "mean_bytes": round(sum(timed.sizes) / len(timed.sizes)) if timed.sizes else None,
                "total": _span(timed.totals),
                "failed": len(timed.failures),
                "failures": timed.failures[:MISMATCH_EXAMPLES],
                "mismatches": len(timed.mismatches),
                "mismatch_examples": timed.mismatches[:MISMATCH_EXAMPLES],
            }
    return report


def _span(values: list[int]) -> list[int] | None:
    """The least and the most of the totals answered (a list's matching patrols)."""
    return [min(values), max(values)] if values else None


def held(seeded: list[SeededPatrol]) -> dict[str, Any]:
    """What the seeded history holds, for the record."""
    return {
        "patrols": len(seeded),
        "track_points": sum(p.points for p in seeded),
        "track_segments": sum(p.segments for p in seeded),
        "observations": sum(p.observations for p in seeded),
        "statuses": dict(Counter(p.status for p in seeded).most_common()),
    }
