"""Nine years of field work, replayed in order by the tablets that did it.

The programme's history is planned first (seeded, from ``bench.generator``'s
stories), as *events*: a tablet recording something on a given day. Each tablet
also goes to town to sync every so often — extension workers every 7 to 28 days,
rangers every 3 to 8 — and pushes there whatever it recorded since (in batches of at
most 500), then pulls. Events and syncs of all tablets run in one timeline, so
pushes interleave as the field work did; the server sees them as they come, now.

- **2017** — each extension worker registers the households of their four
  communities (``household_story``: the household and its people). 1,300 of the
  households sign a conservation agreement days later, for one to three years; it
  is renewed shortly before its term ends, and the old one marked expired (its
  ``valid_until`` the day before the renewal), up to the agreement in force today
  (status ``active``, valid past today).
- **2018-2020** — coffee sessions (``coffee_production``), planned 30 to 50 days
  ahead, then held: attendance is taken and the session marked ``held``. The
  participants are drawn once, exactly the target of women and of men among the
  adults (born 2002 or before), and each attends one to five sessions of their own
  community. Financial-skills sessions (2019-2020) take whoever comes. School
  sessions (``school_environmental_education``) record a ``headcount`` instead of
  attendance, whose sum over all of them is the target of young people.
- **Two tablets, one community.** Each extension worker also visits the first
  community of the next one. There the visitor (a) registers again, days after,
  a person the visitor's tablet has not yet seen — same names and document, another
  id: a *duplicate*, who never attends anything; (b) co-facilitates coffee sessions
  and takes attendance too, of people both tablets know: whichever arrives second is
  folded into the first (``merged``); (c) now and then edits, the same day as the
  home worker and from the same version, a person's phone or a household's code:
  whichever arrives second opens a *conflict*.
- **The last six months** — rangers walk patrols in their two sectors
  (``patrol_story``: a track in segments, observations, closed as ``submitted``);
  at the end the ranger lead approves most of those older than two weeks, returns a
  few, and leaves the rest in the review queue. The first six patrols planned are
  spoiled as happens in the field (``demo/flags.py``), so that between them they
  raise every quality flag a reviewer is shown.

Before a visit that needs the other tablet's records (attendance, an edit) the
visitor syncs the evening before, as a worker does in town; the duplicates happen
precisely when it has not.
"""

from __future__ import annotations

import heapq
import itertools
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

import httpx

from bench import generator
from bench.generator import PERU, Person, Record
from demo import flags
from demo.office import Place, SectorPlace, Staff, sign_in
from demo.tablet import DemoFailed, Expect, Tablet
from demo.targets import Targets, at_least_one_each, seeded, split

REGISTRATION = (date(2017, 1, 9), date(2017, 12, 15))
COFFEE = (date(2018, 1, 15), date(2020, 12, 10))
FINANCIAL = (date(2019, 1, 14), date(2020, 12, 10))
SCHOOL_YEARS = (2018, 2019, 2020)
ADULT_BORN_BY = 2002
TERM_YEARS = (1, 2, 3)  # an agreement runs one to three years, then is renewed
PATROL_DAYS = 182
REVIEWED_AFTER_DAYS = 14
WORKER_SYNC_DAYS = (7, 28)
RANGER_SYNC_DAYS = (3, 8)
PLANNED_AHEAD_DAYS = (30, 50)
SESSIONS_A_PERSON = (1, 2, 3, 4, 5)
SESSIONS_WEIGHTS = (35, 25, 20, 12, 8)
RETURN_COMMENTS = (
    "Falta la hora de regreso del último tramo; corregir y reenviar.",
    "El tramo de la tarde no tiene puntos GPS; revisar el dispositivo.",
    "Indicar la especie en la observación de caza.",
)


def say(message: str) -> None:
    sys.stdout.write(f"{message}\n")
    sys.stdout.flush()


@dataclass
class Family:
    household_id: uuid.UUID
    code: str
    place: int
    registered_at: datetime
    people: list[tuple[Person, dict[str, Any]]]

    @property
    def head(self) -> uuid.UUID:
        return self.people[0][0].id


@dataclass
class Summary:
    """What the field work made, as the tablets counted it."""

    households: int = 0
    people: int = 0
    agreements: int = 0
    duplicates: int = 0
    double_attendance: int = 0
    conflicts: int = 0
    sessions: Counter[str] = field(default_factory=Counter)
    patrols: int = 0
    approved: int = 0
    returned: int = 0
    syncs: int = 0
    pushed: int = 0
    pulled: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


@dataclass(order=True)
class Event:
    when: datetime
    order: int
    action: Callable[[], None] = field(compare=False)


class Fieldwork:
    """The programme's history, planned from ``seed`` and replayed over HTTP."""

    def __init__(
        self,
        *,
        http: httpx.Client,
        seed: str,
        targets: Targets,
        today: date,
        sectors: list[SectorPlace],
        places: list[Place],
        categories: list[dict[str, Any]],
        staff: Staff,
        workers: list[Tablet],
        rangers: list[Tablet],
    ) -> None:
        self.http = http
        self.seed = seed
        self.targets = targets
        self.today = today
        self.end = at(today, 0)
        self.sectors = sectors
        self.places = places
        self.categories = categories
        self.staff = staff
        self.workers = workers
        self.rangers = rangers
        self.summary = Summary()
        self.events: list[Event] = []
        self._order = itertools.count()
        # What reached the server, for the status each change must get.
        self.attended: set[tuple[uuid.UUID, uuid.UUID]] = set()
        self.contested: Counter[uuid.UUID] = Counter()
        self.families: list[Family] = []
        self.home_of: dict[int, int] = {}  # place → worker
        self.visitor_of: dict[int, int] = {}  # place → worker who visits it
        for index, worker in enumerate(staff.workers):
            *home, visited = worker.scope
            for place in home:
                self.home_of[place] = index
            self.visitor_of[visited] = index
        self.patrols: list[tuple[uuid.UUID, int, datetime]] = []  # id, ranger, started

    def rng(self, purpose: str) -> random.Random:
        return seeded(f"demo:{self.seed}:{purpose}")

    def at(self, when: datetime, action: Callable[[], None]) -> None:
        heapq.heappush(self.events, Event(when, next(self._order), action))

    # ------------------------------------------------------------ the whole of it

    def run(self) -> Summary:
        started = time.perf_counter()
        self.plan_households()
        self.plan_agreements()
        self.plan_coffee()
        self.plan_financial()
        self.plan_school()
        self.plan_duplicates()
        self.plan_conflicts()
        self.plan_patrols()
        self.plan_syncs()
        year = None
        while self.events:
            event = heapq.heappop(self.events)
            if event.when >= self.end:
                break
            if year is not None and event.when.year != year:
                self.progress(str(year), started)
            year = event.when.year
            event.action()
        for tablet in self.tablets:
            tablet.sync()
        self.review()
        for tablet in self.rangers:
            tablet.pull()
        self.progress("today", started)
        self.check_made()
        self.summary.seconds = time.perf_counter() - started
        for tablet in self.tablets:
            self.summary.syncs += tablet.syncs
            self.summary.pushed += tablet.pushed
            self.summary.pulled += tablet.pulled
            self.summary.statuses += tablet.statuses
        return self.summary

    @property
    def tablets(self) -> list[Tablet]:
        return [*self.workers, *self.rangers]

    def progress(self, label: str, started: float) -> None:
        pushed = sum(t.pushed for t in self.tablets)
        pulled = sum(t.pulled for t in self.tablets)
        say(
            f"  {label:>5}: {pushed:>7,} changes pushed, {pulled:>7,} pulled "
            f"({time.perf_counter() - started:.0f} s)"
        )

    def check_made(self) -> None:
        made = self.summary
        for what, count, wanted in (
            ("duplicates", made.duplicates, self.targets.duplicates),
            ("attendances recorded twice", made.double_attendance, self.targets.double_attendance),
            ("conflicts", made.conflicts, self.targets.conflicts),
        ):
            if count != wanted:
                raise DemoFailed(
                    f"the field work made {count} {what}, not {wanted}: too few chances at "
                    f"scale {self.targets.scale}; try a larger --scale or another --seed"
                )

    # ------------------------------------------------------------ families

    def plan_households(self) -> None:
        rng = self.rng("households")
        counts = at_least_one_each(self.targets.households, len(self.places), rng)
        documents: set[str] = set()
        for index, (place, count) in enumerate(zip(self.places, counts, strict=True)):
            worker = self.workers[self.home_of[index]]
            for day in spread_days(rng, REGISTRATION, count, distinct=False):
                when = at(day, rng.randint(8, 15), rng.randint(0, 59))
                made = generator.household_story(rng, place.community, when)
                made = [record for record in made if record.entity != "agreement"]
                household, people = made[0], made[1:]
                for record in people:
                    unique_document(record, documents)
                registered = place.community.people[-len(people) :]
                family = Family(
                    household.id,
                    household.fields["code"],
                    index,
                    when,
                    [(p, r.fields) for p, r in zip(registered, people, strict=True)],
                )
                self.families.append(family)
                self.summary.households += 1
                self.summary.people += len(people)
                self.at(when, partial(record_all, worker, made))

    def plan_agreements(self) -> None:
        rng = self.rng("agreements")
        signing = rng.sample(self.families, self.targets.agreements)
        signing.sort(key=lambda family: family.registered_at)
        for number, family in enumerate(signing, start=1):
            worker = self.workers[self.home_of[family.place]]
            signed = (family.registered_at + timedelta(days=rng.randint(1, 4))).date()
            terms = generator.agreement_terms(rng)
            previous: uuid.UUID | None = None
            renewal = 0
            while signed < self.today:
                term = rng.choice(TERM_YEARS)
                agreement_id = generator.new_id(rng)
                fields = {
                    "code": f"AC-{signed.year}-{number:04d}" + (f"-R{renewal}" if renewal else ""),
                    "household_id": str(family.household_id),
                    "signatory_person_id": str(family.head),
                    "community_id": str(self.places[family.place].id),
                    "signed_on": signed.isoformat(),
                    "valid_from": signed.isoformat(),
                    "valid_until": (years_later(signed, term) - timedelta(days=1)).isoformat(),
                    "status": "active",
                    **terms,
                    "consent": {"method": terms_consent(rng), "given_on": signed.isoformat()},
                }
                if previous is not None:
                    fields["renews_agreement_id"] = str(previous)
                self.at(
                    at(signed, 10, rng.randint(0, 59)),
                    partial(self.sign, worker, agreement_id, fields, previous, signed),
                )
                previous = agreement_id
                renewal += 1
                # Renewed shortly before the term ends: the one in force today is
                # valid for days at least after it.
                signed = years_later(signed, term) - timedelta(days=rng.randint(5, 40))
            self.summary.agreements += renewal

    def sign(
        self,
        worker: Tablet,
        agreement_id: uuid.UUID,
        fields: dict[str, Any],
        previous: uuid.UUID | None,
        signed: date,
    ) -> None:
        when = at(signed, 11)
        worker.create("agreement", agreement_id, fields, when)
        if previous is not None:
            ended = (signed - timedelta(days=1)).isoformat()
            worker.update("agreement", previous, {"status": "expired", "valid_until": ended}, when)

    # ------------------------------------------------------------ trainings

    def adults(self, sex: str | None = None) -> list[tuple[Person, int]]:
        return [
            (person, family.place)
            for family in self.families
            for person, _ in family.people
            if person.birth_year <= ADULT_BORN_BY and (sex is None or person.sex == sex)
        ]

    def plan_coffee(self) -> None:
        rng = self.rng("coffee")
        chosen: list[tuple[Person, int]] = []
        for sex, wanted in (("female", self.targets.women), ("male", self.targets.men)):
            pool = self.adults(sex)
            if len(pool) < wanted:
                raise DemoFailed(
                    f"{len(pool)} adults of sex {sex} registered, {wanted} wanted in coffee "
                    "training: use a larger --scale"
                )
            chosen += rng.sample(pool, wanted)
        by_place: dict[int, list[Person]] = {}
        for person, place in chosen:
            by_place.setdefault(place, []).append(person)
        for place in sorted(by_place):
            people = by_place[place]
            rng.shuffle(people)
            wants = [rng.choices(SESSIONS_A_PERSON, SESSIONS_WEIGHTS)[0] for _ in people]
            # A community's course runs two sessions at least, so that people come back.
            count = max(min(len(people), 2), round(sum(wants) / self.targets.coffee_group))
            days = spread_days(rng, COFFEE, count, distinct=True)
            attendees: list[list[Person]] = [[] for _ in days]
            for position, (person, want) in enumerate(zip(people, wants, strict=True)):
                first = position % count
                others = [i for i in range(count) if i != first]
                for session in [first, *rng.sample(others, min(want, count) - 1)]:
                    attendees[session].append(person)
            for day, present in zip(days, attendees, strict=True):
                self.plan_session(rng, place, day, "coffee_production", present)

    def plan_financial(self) -> None:
        rng = self.rng("financial")
        counts = split(self.targets.financial_sessions, len(self.places), rng)
        for place, count in enumerate(counts):
            adults = [person for person, where in self.adults() if where == place]
            for day in spread_days(rng, FINANCIAL, count, distinct=True):
                present = rng.sample(adults, min(len(adults), rng.randint(8, 20)))
                self.plan_session(rng, place, day, "financial_skills", present)

    def plan_school(self) -> None:
        rng = self.rng("school")
        sessions = self.targets.school_sessions
        counts = split(sessions, len(self.places), rng)
        children = iter(split(self.targets.young_people, sessions, rng, spread=0.5))
        for place, count in enumerate(counts):
            for _ in range(count):
                day = date(rng.choice(SCHOOL_YEARS), rng.randint(3, 11), rng.randint(1, 28))
                total = next(children)
                girls = round(total * rng.uniform(0.42, 0.58))
                headcount = {"female": girls, "male": total - girls}
                self.plan_session(rng, place, day, "school_environmental_education", [], headcount)

    def plan_session(
        self,
        rng: random.Random,
        place: int,
        day: date,
        program: str,
        present: list[Person],
        headcount: dict[str, int] | None = None,
    ) -> None:
        """A session planned weeks ahead by the community's worker (with the visitor
        as co-facilitator in a visited community), then held: attendance, or a
        headcount, and ``held``."""
        worker = self.home_of[place]
        tablet = self.workers[worker]
        [session] = generator.training_story(
            rng, self.places[place].community, at(day, 6), self.staff.workers[worker].user_id, 0
        )
        fields = session.fields
        fields.pop("headcount", None)
        fields.update(program=program, topic=rng.choice(generator.TOPICS[program]))
        visitor = self.visitor_of.get(place) if program == "coffee_production" else None
        if visitor is not None:
            fields["facilitators"].append(
                {"user_id": str(self.staff.workers[visitor].user_id), "role": "cofacilitador"}
            )
        planned = at(day, 17) - timedelta(days=rng.randint(*PLANNED_AHEAD_DAYS))
        self.at(planned, lambda: tablet.create("training_session", session.id, fields, planned))
        starts = datetime.fromisoformat(fields["starts_at"])
        self.summary.sessions[program] += 1

        def held() -> None:
            for minute, person in enumerate(present):
                self.attend(tablet, session.id, person.id, starts + timedelta(minutes=minute))
            closing: dict[str, Any] = {"status": "held"}
            if headcount is not None:
                closing["headcount"] = headcount
            tablet.update("training_session", session.id, closing, starts + timedelta(hours=3))
            if visitor is not None and present:
                self.visit(self.workers[visitor], session.id, present, starts)

        self.at(starts + timedelta(hours=3), held)

    def attend(
        self, tablet: Tablet, session_id: uuid.UUID, person_id: uuid.UUID, when: datetime
    ) -> None:
        pair = (session_id, person_id)

        def judge() -> str:
            if pair in self.attended:
                return "merged"
            self.attended.add(pair)
            return "applied"

        attendance = uuid.uuid5(session_id, f"{tablet.name}:{person_id}")
        fields = {"session_id": str(session_id), "person_id": str(person_id), "role": "participant"}
        tablet.create("attendance", attendance, fields, when, judge)

    def visit(
        self, visitor: Tablet, session_id: uuid.UUID, present: list[Person], starts: datetime
    ) -> None:
        """The co-facilitator takes attendance too, of the people its tablet knows."""
        wanted = min(3, self.targets.double_attendance - self.summary.double_attendance)
        if wanted <= 0:
            return
        visitor.sync()  # the evening before, in town
        if not visitor.knows(session_id):
            return
        known = [person for person in present if visitor.knows(person.id)][:wanted]
        for minute, person in enumerate(known):
            self.attend(visitor, session_id, person.id, starts + timedelta(minutes=minute + 5))
        self.summary.double_attendance += len(known)

    # ------------------------------------------------------------ two tablets, one community

    def plan_duplicates(self) -> None:
        rng = self.rng("duplicates")
        candidates = [
            (family, person, fields)
            for family in self.families
            if family.place in self.visitor_of
            for person, fields in family.people
            if fields.get("doc_number") and person.birth_year <= ADULT_BORN_BY
        ]
        rng.shuffle(candidates)
        for family, person, fields in candidates[: 3 * self.targets.duplicates]:
            visitor = self.workers[self.visitor_of[family.place]]
            when = family.registered_at + timedelta(days=rng.randint(1, 3), hours=rng.randint(0, 3))
            again = {k: v for k, v in fields.items() if k not in ("household_id", "phone")}
            if rng.random() < 0.5:
                again["phone"] = f"9{rng.randint(10_000_000, 99_999_999)}"
            duplicate_id = generator.new_id(rng)
            self.at(
                when, partial(self.register_again, visitor, person.id, duplicate_id, again, when)
            )

    def register_again(
        self,
        visitor: Tablet,
        original: uuid.UUID,
        duplicate_id: uuid.UUID,
        fields: dict[str, Any],
        when: datetime,
    ) -> None:
        if self.summary.duplicates >= self.targets.duplicates or visitor.knows(original):
            return
        visitor.create("person", duplicate_id, fields, when)
        self.summary.duplicates += 1
        self.summary.people += 1

    def plan_conflicts(self) -> None:
        rng = self.rng("conflicts")
        visited = sorted(self.visitor_of)
        first, last = date(2019, 3, 1), date(2025, 10, 31)
        for number, day in enumerate(spread_days(rng, (first, last), self.targets.conflicts, True)):
            when = at(day, rng.randint(9, 16), rng.randint(0, 59))
            place = visited[number % len(visited)]
            kind = "person" if number % 2 == 0 else "household"
            self.at(when, partial(self.edit_both, place, kind, when, seeded(rng.random())))

    def edit_both(self, place: int, kind: str, when: datetime, rng: random.Random) -> None:
        """The home worker and the visitor change the same field of one record, each
        from the version its tablet holds — the same one, both synced that morning.
        The record is one of ``place``'s, or else of another visited community's."""
        visited = sorted(self.visitor_of, key=lambda p: (p != place, p))
        for where in visited:
            home = self.workers[self.home_of[where]]
            visitor = self.workers[self.visitor_of[where]]
            home.sync()
            visitor.sync()
            for family in (f for f in self.families if f.place == where):
                if kind == "household":
                    targets = [(family.household_id, "code")]
                else:
                    targets = [(p.id, "phone") for p, fields in family.people if "phone" in fields]
                for record_id, name in targets:
                    if (
                        record_id in self.contested
                        or not home.knows(record_id)
                        or home.known[record_id] != visitor.known.get(record_id)
                    ):
                        continue
                    if name == "code":
                        values = [f"{family.code}-{where + 1:02d}", f"{family.code}A"]
                    else:
                        values = [f"9{rng.randint(10_000_000, 99_999_999)}" for _ in "ab"]
                    judge = self.contest(record_id)
                    home.update(kind, record_id, {name: values[0]}, when, judge)
                    later = when + timedelta(hours=1)
                    visitor.update(kind, record_id, {name: values[1]}, later, judge)
                    self.summary.conflicts += 1
                    return

    def contest(self, record_id: uuid.UUID) -> Expect:
        """The first of two edits from one version applies; the second conflicts."""
        self.contested[record_id] = 0  # taken: no other pair edits it

        def judge() -> str:
            self.contested[record_id] += 1
            return "applied" if self.contested[record_id] == 1 else "conflict"

        return judge

    # ------------------------------------------------------------ patrols

    def plan_patrols(self) -> None:
        rng = self.rng("patrols")
        for index, (tablet, member) in enumerate(
            zip(self.rangers, self.staff.rangers, strict=True)
        ):
            back = rng.sample(range(1, PATROL_DAYS + 1), self.targets.patrols_per_ranger)
            for days in sorted(back, reverse=True):
                sector = self.sectors[rng.choice(member.scope)]
                day = at(self.today - timedelta(days=days), 0)
                made, closing = generator.patrol_story(
                    rng, sector.id, sector.box, day, member.user_id, self.categories
                )
                made = self.spoiled(len(self.patrols), made, closing, sector.box)
                started = made[0].recorded_at
                self.patrols.append((made[0].id, index, started))
                self.summary.patrols += 1

                def walk(
                    t: Tablet = tablet, m: list[Record] = made, c: dict[str, Any] = closing
                ) -> None:
                    record_all(t, m)
                    ended = datetime.fromisoformat(c["ended_at"])
                    t.update("patrol", m[0].id, c, ended + timedelta(minutes=5))

                self.at(started, walk)

    def spoiled(
        self, planned: int, made: list[Record], closing: dict[str, Any], box: generator.Box
    ) -> list[Record]:
        """The ``planned``-th patrol, spoiled as ``flags.SPOILERS`` says (most are not)."""
        if planned >= len(flags.SPOILERS):
            return made
        spoiler = flags.SPOILERS[planned]
        if spoiler is None:  # the second: alongside the first, which its ranger led
            _, first_ranger, first_start = self.patrols[0]
            flags.alongside(made, closing, first_start, self.staff.rangers[first_ranger].user_id)
            return made
        return spoiler(self.rng(f"flags:{planned}"), made, closing, box, self.categories)

    def review(self) -> None:
        """The ranger lead reviews the patrols older than two weeks: most approved,
        a few returned with a comment; the newer ones wait in the queue."""
        rng = self.rng("review")
        lead = sign_in(self.http, self.staff.ranger_lead.username, self.staff.password)
        due = self.end - timedelta(days=REVIEWED_AFTER_DAYS)
        for patrol_id, _ranger, started in sorted(self.patrols, key=lambda p: p[2]):
            if started >= due:
                continue
            if rng.random() < 0.9:
                body: dict[str, str] = {"decision": "approve"}
                self.summary.approved += 1
            else:
                body = {"decision": "return", "comment": rng.choice(RETURN_COMMENTS)}
                self.summary.returned += 1
            answer = self.http.post(f"/patrols/{patrol_id}/review", json=body, headers=lead)
            if answer.status_code != 200:
                raise DemoFailed(
                    f"review of patrol {patrol_id}: {answer.status_code} {answer.text}"
                )

    # ------------------------------------------------------------ going to town

    def plan_syncs(self) -> None:
        rng = self.rng("syncs")
        start = at(REGISTRATION[0], 19) - timedelta(days=3)
        for tablet in self.workers:
            self.sync_from(tablet, start + timedelta(days=rng.randint(0, 4)), WORKER_SYNC_DAYS, rng)
        start = at(self.today - timedelta(days=PATROL_DAYS + 1), 19)
        for tablet in self.rangers:
            self.sync_from(tablet, start + timedelta(days=rng.randint(0, 3)), RANGER_SYNC_DAYS, rng)

    def sync_from(
        self, tablet: Tablet, when: datetime, gap: tuple[int, int], rng: random.Random
    ) -> None:
        """A sync at ``when`` if the tablet holds anything to push, and the next one."""

        def go() -> None:
            if tablet.outbox:
                tablet.sync()
            self.sync_from(tablet, when + timedelta(days=rng.randint(*gap)), gap, rng)

        if when < self.end:
            self.at(when, go)


# ---------------------------------------------------------------- helpers


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """``day`` at ``hour:minute``, Peru time."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=PERU)


def years_later(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # the 29th of February
        return day.replace(year=day.year + years, day=28)


def spread_days(
    rng: random.Random, span: tuple[date, date], count: int, distinct: bool
) -> list[date]:
    """``count`` working days (Monday to Saturday) in ``span``, in order."""
    days = [
        span[0] + timedelta(days=offset)
        for offset in range((span[1] - span[0]).days + 1)
        if (span[0] + timedelta(days=offset)).weekday() < 6
    ]
    chosen = rng.sample(days, count) if distinct else rng.choices(days, k=count)
    return sorted(chosen)


def record_all(tablet: Tablet, made: list[Record]) -> None:
    for record in made:
        tablet.create(record.entity, record.id, record.fields, record.recorded_at)


def unique_document(record: Record, documents: set[str]) -> None:
    """A DNI is one person's: two people the generator drew the same number for get
    two numbers, so that the only people sharing one are the duplicates."""
    number = record.fields.get("doc_number")
    if number is None:
        return
    while number in documents:
        number = str(int(number) + 1)
    documents.add(number)
    record.fields["doc_number"] = number


def terms_consent(rng: random.Random) -> str:
    return rng.choice(("signature", "signature", "thumbprint", "witnessed_verbal"))
