"""Push, set-based: the batch decided whole in memory, retried whole when it loses a race.

``sync.engine.push`` decides a batch in memory (``sync.engine.workspace``) and writes it with a few
statements; when the database refuses those writes the whole batch is decided again
in a savepoint, and the last attempt goes one change at a time, each in a savepoint of
its own. These tests hold that design to its promises:

- deciding set-wise is only an optimisation: the same batch pushed one change at a
  time (``ATTEMPTS = 1``, so the first attempt is the last) gets the same answers and
  leaves the same server state, and a batch that races nobody is decided once (a
  differential property test);
- a change the database refuses is rejected alone (``storage_conflict``), undone in
  memory as in storage, and the rest of its batch applies once; only races are
  retried;
- an attempt that lost a race leaves nothing behind: the next one starts clean;
- what one batch does to a record it does in ``seq`` order, as separate pushes would;
- numbers the columns cannot hold get a clear answer, never a 500.

The database refusing a write is simulated by a ``before_cursor_execute`` listener
that raises what the driver would (``refusing``)."""

from __future__ import annotations

import itertools
import json
import random
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, event, example, given
from hypothesis import settings as examples
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

import sync.engine.push
from sync.platform.settings import Settings
from tests.asgi import TestClient
from tests.conftest import Caller, World, _empty, assert_problem
from tests.sync_support import pull_all, push

RECORDED_AT = "2026-11-02T09:31:07-05:00"
STARTS_AT = "2026-11-02T09:00:00-05:00"
OBSERVED_AT = "2026-11-02T10:00:00-05:00"
CATEGORY = "threat.logging"


def rid(name: str) -> str:
    """The record id of ``name``: the same in every run, so two runs can be compared."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"fieldsync-test:{name}"))


# ---------------------------------------------------------------- the records a batch names

# Made by the base state (another device): PA (edited since), PB (approved: locked),
# PC (deleted); PD and PE are new. And so on for each record type.
PATROLS = ("PA", "PB", "PC", "PD", "PE")
OBSERVATIONS = ("OA", "OB", "OC", "OD")
SEGMENTS = ("TA", "TB", "TC")
SESSIONS = ("SA", "SB")
PERSONS = ("NA", "NB", "NC")
ATTENDANCES = ("AA", "AB", "AC", "AD", "AE", "AF")
# The (session, person) an attendance may be created with. (SA, NA) is AA's and (SA,
# NB) is everyone's, so duplicates are merged into records of the base state or of
# the batch; SB and NC are not on the server yet, so attendances wait for them, and
# are merged when they wake together.
PAIRS = {
    "AA": [("SA", "NA"), ("SA", "NB")],
    "AB": [("SA", "NB"), ("SA", "NA"), ("SB", "NA")],
    "AC": [("SA", "NB"), ("SB", "NA"), ("SA", "NC")],
    "AD": [("SA", "NB"), ("SB", "NA"), ("SA", "NC")],
    "AE": [("SA", "NB"), ("SB", "NA"), ("SA", "NC")],
    "AF": [("SA", "NA"), ("SA", "NB"), ("SB", "NA")],
}
VALUES = ("a", "b", "c")
BASE_VERSIONS = (None, 0, 1, 2, 3, 9)  # 9: a version the server never had


class ChangeIds:
    """Change ids counted from ``start``: the same in every run."""

    def __init__(self, start: int) -> None:
        self._next = itertools.count(start)

    def __call__(self) -> str:
        return str(uuid.UUID(int=next(self._next)))


def make_change(
    change_id: str,
    seq: int,
    entity: str,
    name: str,
    op: str,
    fields: dict[str, Any] | None = None,
    base_version: int | None = None,
) -> dict[str, Any]:
    return {
        "change_id": change_id,
        "seq": seq,
        "entity": entity,
        "id": rid(name),
        "op": op,
        "base_version": base_version,
        "schema_version": 1,
        "recorded_at": RECORDED_AT,
        "fields": fields or {},
    }


# ---------------------------------------------------------------- the scene


@dataclass
class Scene:
    """Two rangers and their lead in one sector, two extension workers in one of its
    communities, and a sector and community outside everyone's scope. Rosa's and
    Ana's tablets made the base state; Juan's and Eva's push the batches under test."""

    world: World
    sector: str
    elsewhere: str
    community: str
    outside: str
    lead: Caller
    rosa: Caller
    juan: Caller
    ana: Caller
    eva: Caller
    labels: dict[str, str] = field(default_factory=dict)

    def patrol(self, **fields: Any) -> dict[str, Any]:
        return {"sector_id": self.sector, "objective": "a", **fields}

    def observation(self, patrol: str | None, **fields: Any) -> dict[str, Any]:
        placed = {"patrol_id": rid(patrol)} if patrol else {"sector_id": self.sector}
        return {
            **placed,
            "category_key": CATEGORY,
            "observed_at": OBSERVED_AT,
            "lat": -5.9,
            "lon": -77.3,
            "attributes": {"logs": 3},
            **fields,
        }

    def segment(self, patrol: str) -> dict[str, Any]:
        point = {"t": OBSERVED_AT, "lat": -5.91, "lon": -77.31}
        return {"patrol_id": rid(patrol), "points": [point]}

    def session(self, community: str | None = None, **fields: Any) -> dict[str, Any]:
        return {
            "program": "coffee_production",
            "community_id": community or self.community,
            "starts_at": STARTS_AT,
            **fields,
        }

    def person(self, given_names: str) -> dict[str, Any]:
        return {
            "given_names": given_names,
            "paternal_surname": "Huamán",
            "community_id": self.community,
        }

    @staticmethod
    def attendance(session: str, person: str) -> dict[str, Any]:
        return {"session_id": rid(session), "person_id": rid(person)}


def make_scene(client: TestClient, engine: Engine, settings: Settings) -> Scene:
    """The people, places and the category; no records yet."""
    world = World(client, engine, settings)
    sector = world.sector("AM-01")["id"]
    elsewhere = world.sector("AM-02")["id"]
    community = world.community(sector, "Alto Mayo")["id"]
    outside = world.community(elsewhere, "Bajo Mayo")["id"]
    category = world.admin.post(
        "/observation-categories",
        json={
            "key": CATEGORY,
            "name_es": "Tala",
            "name_en": "Logging",
            "attributes": [{"key": "logs", "type": "number"}],
        },
    )
    assert category.status_code == 201, category.text
    rosa = world.user("ranger", username="rosa", sector_ids=[sector])
    juan = world.user("ranger", username="juan", sector_ids=[sector])
    lead = world.user("ranger_lead", username="lead", sector_ids=[sector])
    ana = world.user("extension_worker", username="ana", community_ids=[community])
    eva = world.user("extension_worker", username="eva", community_ids=[community])
    made = Scene(
        world,
        sector,
        elsewhere,
        community,
        outside,
        lead,
        world.device(rosa),
        world.device(juan),
        world.device(ana),
        world.device(eva),
    )
    labels = {
        sector: "sector AM-01",
        elsewhere: "sector AM-02",
        community: "community Alto Mayo",
        outside: "community Bajo Mayo",
        category.json()["id"]: "category",
        str(world.admin.user_id): "user admin",
    }
    for person in (rosa, juan, lead, ana, eva):
        labels[str(person.user_id)] = f"user {person.username}"
    for name in ("rosa", "juan", "ana", "eva"):
        labels[getattr(made, name).tokens["device_id"]] = f"device of {name}"
    made.labels = labels
    return made


def base_state(client: TestClient, engine: Engine, settings: Settings) -> Scene:
    """The scene, with records made by Rosa's and Ana's tablets and a lead's review:
    PA's objective and SA's topic changed since version 1 (stale edits merge or
    conflict), PB approved (edits are locked), PC deleted, AA recording NA at SA."""
    scene = make_scene(client, engine, settings)
    ids = ChangeIds(1 << 60)

    def base(device: Caller, *changes: tuple[Any, ...]) -> None:
        answer = push(device, *[make_change(ids(), *c) for c in changes])
        assert [r["status"] for r in answer["results"]] == ["applied"] * len(changes), answer

    base(
        scene.rosa,
        (1, "patrol", "PA", "create", scene.patrol(transport="boat")),
        (2, "patrol", "PB", "create", scene.patrol()),
        (3, "patrol", "PC", "create", scene.patrol()),
        (4, "observation", "OA", "create", scene.observation("PA")),
        (5, "observation", "OB", "create", scene.observation("PB")),
        (6, "track_segment", "TA", "create", scene.segment("PA")),
        (7, "patrol", "PA", "update", {"objective": "b"}, 1),
        (8, "patrol", "PB", "update", {"status": "submitted"}, 1),
        (9, "patrol", "PC", "delete", None, 1),
    )
    review = scene.lead.post(f"/patrols/{rid('PB')}/review", json={"decision": "approve"})
    assert review.status_code == 200, review.text
    base(
        scene.ana,
        (1, "training_session", "SA", "create", scene.session(topic="x")),
        (2, "person", "NA", "create", scene.person("Rosa")),
        (3, "person", "NB", "create", scene.person("Luz")),
        (4, "attendance", "AA", "create", scene.attendance("SA", "NA")),
        (5, "training_session", "SA", "update", {"topic": "y"}, 1),
        (6, "person", "NB", "update", {"phone": "555-0100"}, 1),
    )
    return scene


# ---------------------------------------------------------------- the server's state, comparable

RECORD_TABLES = (
    "patrol",
    "observation",
    "track_segment",
    "training_session",
    "person",
    "attendance",
)
# Server clocks: only whether they are set can be compared between two runs.
MOMENTS = frozenset(
    {
        "created_at",
        "updated_at",
        "deleted_at",
        "reviewed_at",
        "received_at",
        "applied_at",
        "resolved_at",
        "last_seen_at",
        "server_time",
    }
)


def normalised(value: Any, labels: dict[str, str]) -> Any:
    """``value`` with the ids of people, devices and places as labels (they differ
    between runs), server times as whether they are set, conflict ids as whether
    there is one, and every id and time as text."""
    if isinstance(value, dict):
        return {key: _normalised_item(key, item, labels) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [normalised(item, labels) for item in value]
    if isinstance(value, uuid.UUID):
        value = str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, str):
        return labels.get(value, value)
    return value


def _normalised_item(key: str, item: Any, labels: dict[str, str]) -> Any:
    # The audit chain's transaction ids and hashes (of rows holding server times)
    # differ between runs too: only whether a row is chained compares.
    if key in MOMENTS or key in ("conflict_id", "chain_tx", "chain_hash"):
        return item is not None
    return normalised(item, labels)


def _rows(engine: Engine, table: str, *, drop: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    meta = SQLModel.metadata.tables[table]
    with engine.connect() as connection:
        rows = connection.execute(sa.select(meta)).mappings().all()
    return [{k: v for k, v in row.items() if k not in drop} for row in rows]


def _sorted(rows: list[Any]) -> list[Any]:
    return sorted(rows, key=lambda row: json.dumps(row, sort_keys=True, default=str))


def server_state(engine: Engine, labels: dict[str, str]) -> dict[str, Any]:
    """Everything a push writes, comparable between two runs of the same pushes."""

    def table(name: str, *, drop: tuple[str, ...] = ()) -> list[Any]:
        return _sorted(normalised(_rows(engine, name, drop=drop), labels))

    state = {name: table(name) for name in RECORD_TABLES}
    state["record_version"] = table("record_version")
    state["conflict"] = table("conflict", drop=("id",))
    state["deferred_change"] = table("deferred_change")
    # The content hash covers the batch's sector and community ids, which differ
    # between runs, as do batch ids.
    state["sync_change"] = table("sync_change", drop=("content_hash", "batch_id"))
    state["refused_change"] = table("refused_change", drop=("id", "batch_id"))
    state["device"] = _sorted(
        [
            (labels[str(row["id"])], row["last_seq"])
            for row in _rows(engine, "device")
            if str(row["id"]) in labels
        ]
    )
    # Pull entries in change-number order: the order matters, not the numbers.
    entries = sorted(_rows(engine, "sync_entry"), key=lambda row: row["change_seq"])
    state["sync_entry"] = [
        normalised({k: v for k, v in row.items() if k != "change_seq"}, labels) for row in entries
    ]
    return state


def answers(result: dict[str, Any], labels: dict[str, str]) -> Any:
    """A push's answer, comparable between runs."""
    return normalised({k: v for k, v in result.items() if k != "server_time"}, labels)


# ---------------------------------------------------------------- counting attempts


@contextmanager
def attempts(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """Every attempt ``sync.engine.push.push`` makes at a batch, by whether it went one by one."""
    made: list[bool] = []
    run = sync.engine.push.Batch.run

    def counted(*args: Any, **kwargs: Any) -> Any:
        made.append(kwargs["one_by_one"])
        return run(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(sync.engine.push.Batch, "run", counted)
        yield made


def quietly(caller: Caller) -> Caller:
    """``caller`` through a client that answers a server error as the 500 a device
    gets, instead of raising it in the test."""
    quiet = TestClient(
        caller.client.app, base_url=str(caller.client.base_url), raise_server_exceptions=False
    )
    return Caller(
        quiet, caller.user_id, caller.username, caller.password, caller.role, caller.tokens
    )


@contextmanager
def deciding(monkeypatch: pytest.MonkeyPatch, *, alone: bool) -> Iterator[None]:
    """Batches decided whole, as they are, or ``alone``: one change at a time, each
    written in its own savepoint (with ``ATTEMPTS = 1`` the first attempt is the last)."""
    with monkeypatch.context() as patch:
        if alone:
            patch.setattr(sync.engine.push, "ATTEMPTS", 1)
        yield


# ---------------------------------------------------------------- random batches

names = st.sampled_from
base_versions = st.sampled_from(BASE_VERSIONS)
patrol_fields = st.dictionaries(
    st.sampled_from(("objective", "comment", "transport")), st.sampled_from(VALUES)
)
# What makes a change invalid: nothing, mostly.
flaws = st.sampled_from((None, None, None, None, "unknown_field", "bad_value", "review_status"))

patrol_steps = st.one_of(
    st.tuples(st.just("patrol create"), names(PATROLS), patrol_fields, flaws, st.booleans()),
    st.tuples(st.just("patrol update"), names(PATROLS), patrol_fields, flaws, base_versions),
    st.tuples(st.just("patrol delete"), names(PATROLS), base_versions),
    st.tuples(
        st.just("observation create"),
        names(OBSERVATIONS),
        st.sampled_from((*PATROLS, None)),
        st.sampled_from((3, 4, "many")),
        st.booleans(),
    ),
    st.tuples(
        st.just("observation update"),
        names(OBSERVATIONS),
        st.sampled_from(({"notes": "a"}, {"notes": "b"}, {"action_taken": "warned"}, "patrol")),
        base_versions,
    ),
    st.tuples(st.just("observation delete"), names(OBSERVATIONS), base_versions),
    st.tuples(st.just("segment create"), names(SEGMENTS), names(PATROLS)),
    st.tuples(st.just("segment update"), names(SEGMENTS)),
    st.tuples(st.just("not mine"), st.sampled_from(("person", "canoe", "community"))),
)
people_steps = st.one_of(
    st.tuples(st.just("session create"), names(SESSIONS), st.booleans(), names(VALUES)),
    st.tuples(
        st.just("session update"),
        names(SESSIONS),
        st.sampled_from(("topic", "venue")),
        names(VALUES),
        base_versions,
    ),
    st.tuples(st.just("session delete"), names(SESSIONS), base_versions),
    st.tuples(st.just("person create"), names(PERSONS)),
    st.tuples(st.just("person update"), names(PERSONS), names(VALUES), base_versions),
    *[st.tuples(st.just("attendance create"), names(ATTENDANCES), st.integers(0, 2))] * 3,
    st.tuples(
        st.just("attendance update"),
        names(ATTENDANCES),
        st.sampled_from((*PERSONS, "facilitator")),
        base_versions,
    ),
    st.tuples(st.just("attendance delete"), names(ATTENDANCES), base_versions),
)
# The same change sent twice in one batch, a change_id reused for other content, and
# a seq used twice: on either device, naming an earlier change by its index.
meta_steps = st.tuples(
    st.sampled_from(("again", "reused", "same seq")), st.booleans(), st.integers(0, 40)
)
batch_steps = st.lists(
    st.one_of(patrol_steps, patrol_steps, people_steps, people_steps, meta_steps),
    min_size=5,
    max_size=40,
)


class Batches:
    """Turns steps into the two tablets' batches (Juan's patrol records, Eva's people
    records), each numbering its own changes."""

    def __init__(self, scene: Scene) -> None:
        self.scene = scene
        self.change_id = ChangeIds(1)
        self.sent: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
        self.seq = {True: 0, False: 0}
        self.repeat_seq = {True: False, False: False}

    def add(
        self,
        patrols: bool,
        entity: str,
        name: str,
        op: str,
        fields: Any = None,
        base_version: int | None = None,
    ) -> None:
        if self.repeat_seq[patrols] and self.seq[patrols]:
            self.repeat_seq[patrols] = False
        else:
            self.seq[patrols] += 1
        self.sent[patrols].append(
            make_change(self.change_id(), self.seq[patrols], entity, name, op, fields, base_version)
        )

    def step(self, step: tuple[Any, ...]) -> None:
        kind, *rest = step
        scene = self.scene
        if kind == "patrol create":
            name, values, flaw, elsewhere = rest
            fields = scene.patrol(**values)
            if elsewhere:
                fields["sector_id"] = scene.elsewhere
            self.add(True, "patrol", name, "create", _flawed(fields, flaw))
        elif kind == "patrol update":
            name, values, flaw, base = rest
            self.add(True, "patrol", name, "update", _flawed(values, flaw), base)
        elif kind == "patrol delete":
            name, base = rest
            self.add(True, "patrol", name, "delete", None, base)
        elif kind == "observation create":
            name, patrol, logs, known = rest
            fields = scene.observation(patrol, attributes={"logs": logs})
            if not known:
                fields["category_key"] = "threat.unknown"
            self.add(True, "observation", name, "create", fields)
        elif kind == "observation update":
            name, values, base = rest
            if values == "patrol":  # a record keeps the parent it was made under
                values = {"patrol_id": rid("PD")}
            self.add(True, "observation", name, "update", values, base)
        elif kind == "observation delete":
            name, base = rest
            self.add(True, "observation", name, "delete", None, base)
        elif kind == "segment create":
            name, patrol = rest
            self.add(True, "track_segment", name, "create", scene.segment(patrol))
        elif kind == "segment update":
            self.add(True, "track_segment", rest[0], "update", {"points": []}, 1)
        elif kind == "not mine":
            fields = scene.person("Nadie") if rest[0] == "person" else {"name": "x"}
            self.add(True, rest[0], "NX", "create", fields)
        elif kind == "session create":
            name, inside, topic = rest
            community = scene.community if inside else scene.outside
            self.add(
                False, "training_session", name, "create", scene.session(community, topic=topic)
            )
        elif kind == "session update":
            name, field_name, value, base = rest
            self.add(False, "training_session", name, "update", {field_name: value}, base)
        elif kind == "session delete":
            name, base = rest
            self.add(False, "training_session", name, "delete", None, base)
        elif kind == "person create":
            self.add(False, "person", rest[0], "create", scene.person(f"Persona {rest[0]}"))
        elif kind == "person update":
            name, value, base = rest
            self.add(False, "person", name, "update", {"phone": f"555-010{value}"}, base)
        elif kind == "attendance create":
            name, pair = rest
            session, person = PAIRS[name][pair % len(PAIRS[name])]
            self.add(False, "attendance", name, "create", scene.attendance(session, person))
        elif kind == "attendance update":
            name, person, base = rest
            values = (
                {"role": "facilitator"} if person == "facilitator" else {"person_id": rid(person)}
            )
            self.add(False, "attendance", name, "update", values, base)
        elif kind == "attendance delete":
            name, base = rest
            self.add(False, "attendance", name, "delete", None, base)
        else:
            self.meta(kind, *rest)

    def meta(self, kind: str, patrols: bool, index: int) -> None:
        sent = self.sent[patrols]
        if kind == "same seq":
            self.repeat_seq[patrols] = True
        elif sent and kind == "again":
            sent.append(dict(sent[index % len(sent)]))
        elif sent and kind == "reused":
            earlier = sent[index % len(sent)]
            self.seq[patrols] += 1
            sent.append({**earlier, "seq": self.seq[patrols], "recorded_at": STARTS_AT})


def _flawed(fields: dict[str, Any], flaw: str | None) -> dict[str, Any]:
    if flaw == "unknown_field":
        return {**fields, "colour": "green"}
    if flaw == "bad_value":
        return {**fields, "rest_minutes": -1}
    if flaw == "review_status":
        return {**fields, "status": "approved"}
    return fields


# ---------------------------------------------------------------- the property


@dataclass
class Run:
    answers: list[Any]
    state: dict[str, Any]
    attempts: list[list[bool]]


def run_batches(
    client: TestClient,
    engine: Engine,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    steps: list[tuple[Any, ...]],
    order: int | None,
    *,
    alone: bool,
) -> Run:
    """From empty tables: the base state, then the batches of ``steps``, each in an
    order shuffled by ``order`` (none: in seq order), decided whole or (``alone``)
    one change at a time."""
    _empty(engine)
    scene = base_state(client, engine, settings)
    batches = Batches(scene)
    for step in steps:
        batches.step(step)
    made: list[list[bool]] = []
    results = []
    for device, sent in ((scene.juan, batches.sent[True]), (scene.eva, batches.sent[False])):
        if order is not None:
            random.Random(order).shuffle(sent)
        if sent:
            with attempts(monkeypatch) as tries, deciding(monkeypatch, alone=alone):
                results.append(answers(push(device, *sent), scene.labels))
            made.append(tries)
    return Run(results, server_state(engine, scene.labels), made)


# Steps whose two batches (Juan's, Eva's) meet most of what a push decides: tried on
# every run, before the random ones.
EVERYTHING: list[tuple[Any, ...]] = [
    ("attendance create", "AB", 0),  # NB at SA
    ("attendance create", "AE", 0),  # NB at SA again: merged into AB, in memory
    ("attendance create", "AC", 1),  # NA at SB, which the server has not got: deferred
    ("attendance create", "AD", 1),  # the same: deferred
    ("session create", "SB", True, "a"),  # wakes AC (applied), and AD (merged into AC)
    ("attendance update", "AC", "facilitator", 1),  # AC, woken, is at version 1
    ("attendance create", "AA", 0),  # AA again, as another tablet made it
    ("attendance update", "AA", "NB", 1),  # NB is at SA already: duplicate_attendance
    ("attendance delete", "AA", 1),  # frees NA at SA...
    ("attendance create", "AF", 0),  # ...for AF, written once AA has left the index
    ("person update", "NB", "a", 1),  # NB's phone changed since: conflict
    ("session update", "SA", "venue", "a", 1),  # SA's topic changed since: merged
    ("session create", "SB", False, "b"),  # SB again, outside Eva's scope
    ("observation create", "OC", "PD", 3, True),  # deferred until PD
    ("patrol create", "PD", {"transport": "a"}, None, False),  # wakes OC
    ("observation update", "OC", {"notes": "a"}, 1),
    ("patrol update", "PA", {"objective": "b", "comment": "c"}, None, 1),  # merged
    ("patrol update", "PA", {"objective": "c"}, None, 1),  # conflict
    ("patrol update", "PB", {"comment": "a"}, None, 3),  # locked
    ("observation create", "OD", "PB", 4, True),  # create_locked
    ("patrol delete", "PC", 1),  # meets a delete
    ("segment create", "TB", "PD"),
    ("patrol create", "PE", {}, "bad_value", False),
    ("patrol create", "PE", {}, None, True),  # out of scope
    ("again", True, 3),  # the same change twice: replayed
    ("reused", False, 2),  # its change_id for other content
    ("same seq", True, 0),
    ("segment update", "TA"),  # a seq used before
    ("not mine", "person"),
]


@example(steps=EVERYTHING, order=None)
@example(steps=EVERYTHING, order=1)
@examples(
    max_examples=6,
    deadline=None,
    database=None,
    # No explain phase: on a failure it reruns the example hundreds of times.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=batch_steps, order=st.none() | st.integers(0, 2**16))
def test_a_batch_decided_whole_answers_and_stores_what_one_by_one_would(
    client: TestClient,
    engine: Engine,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    steps: list[tuple[Any, ...]],
    order: int | None,
) -> None:
    """Deciding a batch set-wise is an optimisation of deciding it one change at a time
    (which is also what the last attempt after lost races does): for the same base
    state and the same batch, both give the same answers and leave the same records,
    versions, conflicts, deferred changes, stored changes and pull entries (in the
    same order). And a batch that races nobody is decided in one attempt."""
    whole = run_batches(client, engine, settings, monkeypatch, steps, order, alone=False)
    alone = run_batches(client, engine, settings, monkeypatch, steps, order, alone=True)

    for result in whole.answers:
        for answer in result["results"]:
            event(f"status {answer['status']}")
            for error in answer["errors"] or []:
                event(f"rejected: {error['code']}")
            if answer["replayed"]:
                event("replayed")
    for change in whole.state["sync_change"]:
        if change["result"]["status"] == "deferred" and change["status"] != "deferred":
            event(f"deferred, then {change['status']}")
    assert whole.answers == alone.answers
    for name in whole.state:
        assert whole.state[name] == alone.state[name], name
    assert alone.attempts == [[True]] * len(alone.attempts)
    assert whole.attempts == [[False]] * len(whole.attempts), "decided more than once"


# ---------------------------------------------------------------- the database refusing writes


def _holds(parameters: Any, values: frozenset[Any]) -> bool:
    """Whether statement parameters (a row, rows, or rows flattened into one) hold one
    of ``values``."""
    if isinstance(parameters, dict):
        return any(_holds(value, values) for value in parameters.values())
    if isinstance(parameters, list | tuple):
        return any(_holds(value, values) for value in parameters)
    return isinstance(parameters, str | uuid.UUID) and parameters in values


def _forms(value: str) -> frozenset[Any]:
    """``value`` as a statement parameter: a record id is a UUID on PostgreSQL and 32
    hex digits on SQLite."""
    try:
        record_id = uuid.UUID(value)
    except ValueError:
        return frozenset({value})
    return frozenset({value, record_id, record_id.hex})


# What the driver raises when a write loses a race, by PostgreSQL's SQLSTATE: the
# engine looks for IntegrityError, and for these two states.
RACES = {
    "unique violation": "23505",
    "deadlock": "40P01",
    "serialization failure": "40001",
}


def _driver_error(engine: Engine, kind: str) -> Exception:
    """What the database driver raises: one of ``RACES``, or a data error (a value
    a column cannot hold), which is no race."""
    dbapi = engine.dialect.loaded_dbapi
    if engine.dialect.name == "postgresql":
        import psycopg.errors

        sqlstate = RACES.get(kind, "22003")  # numeric_value_out_of_range
        postgresql: Exception = psycopg.errors.lookup(sqlstate)(kind)
        return postgresql
    if kind == "unique violation":
        sqlite: Exception = dbapi.IntegrityError(kind)
    elif kind in RACES:
        sqlite = dbapi.OperationalError(kind)
        vars(sqlite)["sqlstate"] = RACES[kind]  # as psycopg's errors carry it
    else:
        sqlite = dbapi.DataError(kind)
    return sqlite


@contextmanager
def refusing(
    engine: Engine,
    table: str,
    *,
    naming: str | None = None,
    times: int | None = None,
    kind: str = "unique violation",
) -> Iterator[list[str]]:
    """The database refuses the inserts and updates of ``table`` (those naming
    ``naming``, a record id or a value, if given) as a lost race would: the first
    ``times`` of them, or all. Yields the statements refused."""
    writes_table = re.compile(rf'^\s*(INSERT INTO|UPDATE) "?{table}"?\s', re.IGNORECASE)
    named = _forms(naming) if naming else None
    refused: list[str] = []

    def refuse(
        _connection: Any,
        _cursor: Any,
        statement: str,
        parameters: Any,
        _context: Any,
        _executemany: bool,
    ) -> None:
        if not writes_table.match(statement):
            return
        if named is not None and not _holds(parameters, named):
            return
        if times is not None and len(refused) >= times:
            return
        refused.append(statement)
        raise _driver_error(engine, kind)

    sa.event.listen(engine, "before_cursor_execute", refuse)
    try:
        yield refused
    finally:
        sa.event.remove(engine, "before_cursor_execute", refuse)


def clock(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.text("SELECT seq FROM sync_clock")).scalar_one())


def rows_of(engine: Engine, table: str, record_id: str) -> list[dict[str, Any]]:
    """The rows of ``table`` about one record (by ``id`` or ``record_id``)."""
    wanted = uuid.UUID(record_id)
    rows = _rows(engine, table)
    key = "id" if table in RECORD_TABLES else "record_id"
    return [row for row in rows if row[key] == wanted]


def test_a_change_the_database_refuses_is_rejected_alone_and_the_rest_applies_once(
    client: TestClient, engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A patrol whose row the database refuses however often it is tried (another
    device's batch keeps winning it) costs its batch two set-wise attempts and a last
    one change at a time; there it is rejected alone (``storage_conflict``), kept for
    admins to see, and leaves nothing else behind, while every other change of the
    batch is applied exactly once, with its version and its pull entry. Observations
    of the refused patrol wait for it, as for any patrol the server has not got."""
    scene = make_scene(client, engine, settings)
    ids = ChangeIds(1)
    earlier = make_change(ids(), 1, "observation", "OD", "create", scene.observation("PC"))
    assert push(scene.rosa, earlier)["results"][0]["status"] == "deferred"
    sent = [
        make_change(ids(), 1, "patrol", "PA", "create", scene.patrol()),
        make_change(ids(), 2, "patrol", "PB", "create", scene.patrol()),
        make_change(ids(), 3, "patrol", "PC", "create", scene.patrol()),
        make_change(ids(), 4, "observation", "OC", "create", scene.observation("PC")),
        make_change(ids(), 5, "patrol", "PD", "create", scene.patrol()),
        make_change(ids(), 6, "observation", "OA", "create", scene.observation("PA")),
    ]
    before = clock(engine)

    with attempts(monkeypatch) as made, refusing(engine, "patrol", naming=rid("PC")) as refused:
        answer = push(scene.juan, *sent)

    assert made == [False, False, True]
    assert len(refused) == 3
    statuses = [(r["status"], r["version"]) for r in answer["results"]]
    assert statuses == [
        ("applied", 1),
        ("applied", 1),
        ("rejected", None),
        ("deferred", None),
        ("applied", 1),
        ("applied", 1),
    ]
    assert [e["code"] for e in answer["results"][2]["errors"]] == ["storage_conflict"]
    assert answer["last_seq"] == 6

    for entity, name in [
        ("patrol", "PA"),
        ("patrol", "PB"),
        ("patrol", "PD"),
        ("observation", "OA"),
    ]:
        assert len(rows_of(engine, entity, rid(name))) == 1, name
        versions = rows_of(engine, "record_version", rid(name))
        assert [(v["version"], v["op"]) for v in versions] == [(1, "create")], name
        assert len(rows_of(engine, "sync_entry", rid(name))) == 1, name
    for table in ("patrol", "record_version", "sync_entry", "conflict"):
        assert rows_of(engine, table, rid("PC")) == [], table
    assert (
        rows_of(engine, "observation", rid("OC")) == rows_of(engine, "observation", rid("OD")) == []
    )
    assert clock(engine) - before == 4  # one number for each of the four records

    stored = {str(c["change_id"]): c for c in _rows(engine, "sync_change")}
    assert sorted(stored) == sorted([earlier["change_id"]] + [c["change_id"] for c in sent])
    assert stored[sent[2]["change_id"]]["status"] == "rejected"
    listed = {
        item["change_id"]: item for item in scene.world.admin.get("/sync/rejected").json()["items"]
    }
    assert [e["code"] for e in listed[sent[2]["change_id"]]["errors"]] == ["storage_conflict"]
    # What waited for the refused patrol still waits: from an earlier batch (its wake
    # undone with the patrol) and from this one.
    waiting = scene.world.admin.get("/sync/deferred").json()["items"]
    assert sorted((w["change_id"], w["waiting_for_id"]) for w in waiting) == sorted(
        [(earlier["change_id"], rid("PC")), (sent[3]["change_id"], rid("PC"))]
    )
    assert stored[earlier["change_id"]]["status"] == "deferred"
    pulled = {c["id"] for c in pull_all(scene.juan)[0]}
    assert {rid(n) for n in ("PA", "PB", "PD", "OA")} <= pulled
    assert not {rid("PC"), rid("OC")} & pulled


def test_a_refused_update_leaves_the_record_as_it_was_for_the_rest_of_the_batch(
    client: TestClient, engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An update the database refuses is rejected alone, and undone in the batch's
    memory too: the next update of the same patrol, later in the batch, finds it as it
    was (version 2, objective "b") and makes version 3, not 4."""
    scene = base_state(client, engine, settings)  # PA at version 2, objective "b"
    ids = ChangeIds(1)
    sent = [
        make_change(ids(), 1, "patrol", "PA", "update", {"objective": "poisoned"}, 2),
        make_change(ids(), 2, "patrol", "PA", "update", {"comment": "c"}, 2),
    ]

    with attempts(monkeypatch) as made, refusing(engine, "patrol", naming="poisoned"):
        results = push(scene.juan, *sent)["results"]

    assert made == [False, False, True]
    assert [(r["status"], r["version"]) for r in results] == [("rejected", None), ("applied", 3)]
    assert [e["code"] for e in results[0]["errors"]] == ["storage_conflict"]
    [patrol] = rows_of(engine, "patrol", rid("PA"))
    assert (patrol["version"], patrol["objective"], patrol["comment"]) == (3, "b", "c")
    versions = rows_of(engine, "record_version", rid("PA"))
    assert sorted(v["version"] for v in versions) == [1, 2, 3]
    [entry] = rows_of(engine, "sync_entry", rid("PA"))
    assert (entry["version"], entry["fields"]["objective"]) == (3, "b")


def test_a_database_error_that_is_no_race_rejects_its_change_alone(
    client: TestClient, engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only lost races are decided again: an error no retry can cure (a value the
    column cannot hold, a bug of ours) goes one change at a time at once, so that the
    change the database refuses is rejected alone (``storage_error``), kept for an
    admin, and never blocks the rest of the batch or the device's queue."""
    scene = make_scene(client, engine, settings)
    ids = ChangeIds(2)
    sent = [
        make_change(ids(), 1, "patrol", "PA", "create", scene.patrol()),
        make_change(ids(), 2, "patrol", "PD", "create", scene.patrol()),
    ]
    device = quietly(scene.juan)

    with (
        attempts(monkeypatch) as made,
        refusing(engine, "patrol", naming=rid("PA"), kind="data error"),
    ):
        answer = device.post(
            "/sync/push",
            json={"protocol": 1, "device_id": device.tokens["device_id"], "changes": sent},
        )

    assert made == [False, True]
    assert answer.status_code == 200, answer.text
    refused, fine = answer.json()["results"]
    assert (refused["status"], refused["errors"][0]["code"]) == ("rejected", "storage_error")
    assert fine["status"] == "applied"
    assert rows_of(engine, "patrol", rid("PA")) == []
    assert len(rows_of(engine, "patrol", rid("PD"))) == 1


# A batch with a bit of everything, against the base state: stale edits that merge and
# conflict, a locked patrol, a delete meeting a delete, a deferred observation woken
# by its patrol, attendance merged into an existing one, a rejection.
MIXED_STEPS: list[tuple[Any, ...]] = [
    ("patrol update", "PA", {"objective": "c", "comment": "a"}, None, 1),
    ("observation create", "OC", "PD", 3, True),
    ("patrol create", "PD", {"transport": "boat"}, None, False),
    ("patrol update", "PB", {"comment": "b"}, None, 3),
    ("patrol delete", "PC", 1),
    ("segment create", "TB", "PD"),
    ("patrol update", "PD", {"objective": "b"}, None, 1),
    ("patrol create", "PE", {}, "unknown_field", False),
    ("attendance create", "AB", 1),  # NA at SA, as AA
    ("person update", "NB", "c", 1),
    ("session update", "SA", "venue", "a", 1),
]


# Which of the two pushes (Juan's patrol records, Eva's people records) write a table.
WRITERS = {
    "patrol": [True, False],
    "record_version": [True, True],
    "sync_entry": [True, True],
}


@pytest.mark.parametrize(
    ("table", "kind"),
    [
        ("patrol", "unique violation"),
        ("record_version", "serialization failure"),
        ("sync_entry", "deadlock"),
    ],
)
def test_an_attempt_that_lost_a_race_leaves_nothing_behind(
    client: TestClient,
    engine: Engine,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    table: str,
    kind: str,
) -> None:
    """The first attempt at a batch loses a race when it writes (its records, its
    versions, or its pull entries, written after the clock moved): the second
    attempt, decided afresh, answers exactly what an undisturbed push answers and
    leaves exactly its state: no record, version, conflict, stored change or pull
    entry of the first attempt survives, and the clock moved once."""

    def pushed(lose_first_attempt: bool) -> tuple[Any, dict[str, Any], int, list[list[bool]]]:
        _empty(engine)
        scene = base_state(client, engine, settings)
        batches = Batches(scene)
        for step in MIXED_STEPS:
            batches.step(step)
        before = clock(engine)
        results, made = [], []
        for device, sent in ((scene.juan, batches.sent[True]), (scene.eva, batches.sent[False])):
            refused = refusing(engine, table, times=1 if lose_first_attempt else 0, kind=kind)
            with attempts(monkeypatch) as tries, refused:
                results.append(answers(push(device, *sent), scene.labels))
            made.append(tries)
        moved = clock(engine) - before
        return results, server_state(engine, scene.labels), moved, made

    raced, raced_state, raced_clock, raced_attempts = pushed(lose_first_attempt=True)
    calm, calm_state, calm_clock, calm_attempts = pushed(lose_first_attempt=False)

    assert calm_attempts == [[False], [False]]
    assert raced_attempts == [[False, False] if writes else [False] for writes in WRITERS[table]]
    assert raced == calm
    for name in calm_state:
        assert raced_state[name] == calm_state[name], name
    assert raced_clock == calm_clock


# ---------------------------------------------------------------- attendance


def _attendance_state(engine: Engine) -> list[tuple[Any, ...]]:
    return sorted(
        (str(r["id"]), str(r["person_id"]), r["version"], r["deleted_at"] is not None)
        for r in _rows(engine, "attendance")
    )


@pytest.mark.parametrize("same_batch", [False, True], ids=["later batch", "same batch"])
def test_moving_an_attendance_onto_a_person_already_attending_is_rejected(
    client: TestClient,
    engine: Engine,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    same_batch: bool,
) -> None:
    """An update of an attendance's person to someone already recorded at that session
    would make two live attendances of one person: it is rejected with
    ``duplicate_attendance``, decided in memory (not refused by the unique index,
    which would cost retries and end as ``storage_conflict``, or as a 500), and it
    changes nothing: no version, no pull entry."""
    scene = base_state(client, engine, settings)  # AA: NA at SA
    ids = ChangeIds(1)
    made = make_change(ids(), 1, "attendance", "AB", "create", scene.attendance("SA", "NB"))
    moved = make_change(ids(), 2, "attendance", "AB", "update", {"person_id": rid("NA")}, 1)
    if not same_batch:
        assert push(scene.eva, made)["results"][0]["status"] == "applied"
    attendance_before = _attendance_state(engine)
    entries_before = rows_of(engine, "sync_entry", rid("AB"))

    with attempts(monkeypatch) as tries:
        answer = push(scene.eva, made, moved) if same_batch else push(scene.eva, moved)

    assert tries == [False]
    result = answer["results"][-1]
    assert result["status"] == "rejected", result
    assert [(e["field"], e["code"]) for e in result["errors"]] == [
        ("fields.person_id", "duplicate_attendance")
    ]
    if not same_batch:
        assert _attendance_state(engine) == attendance_before
        assert rows_of(engine, "sync_entry", rid("AB")) == entries_before
    versions = rows_of(engine, "record_version", rid("AB"))
    assert [v["version"] for v in versions] == [1]
    assert {str(r["person_id"]) for r in rows_of(engine, "attendance", rid("AB"))} == {rid("NB")}


def test_one_person_recorded_three_times_at_a_session_in_one_batch_is_one_attendance(
    client: TestClient, engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three tablets' worth of the same attendance, arriving in one batch: the first is
    applied, the others are merged into it (in memory: the batch writes one live
    attendance, which the unique index would refuse otherwise), and devices pull the
    duplicates as deletes."""
    scene = base_state(client, engine, settings)
    ids = ChangeIds(1)
    sent = [
        make_change(ids(), seq, "attendance", name, "create", scene.attendance("SA", "NB"))
        for seq, name in enumerate(("AB", "AC", "AD"), start=1)
    ]

    with attempts(monkeypatch) as tries:
        results = push(scene.eva, *sent)["results"]

    assert tries == [False]  # the batch alone does not trip the unique index
    assert [(r["status"], r["version"], r["merged_into"]) for r in results] == [
        ("applied", 1, None),
        ("merged", 1, rid("AB")),
        ("merged", 1, rid("AB")),
    ]
    live = [r for r in _rows(engine, "attendance") if r["deleted_at"] is None]
    assert sorted(str(r["id"]) for r in live) == sorted([rid("AA"), rid("AB")])
    pulled = {c["id"]: c for c in pull_all(scene.ana)[0]}
    assert pulled[rid("AB")]["op"] == "upsert"
    assert pulled[rid("AC")]["op"] == pulled[rid("AD")]["op"] == "delete"


@pytest.mark.parametrize("alone", [False, True], ids=["set-wise", "one by one"])
def test_deferred_duplicates_woken_together_are_merged(
    client: TestClient,
    engine: Engine,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    alone: bool,
) -> None:
    """Two attendances of one person at a session the server has not got yet wait for
    it; when it arrives later in the batch both wake: the first is applied, the second
    merged into it, whichever way the batch is decided. (One by one, the deferrals are
    already written when the session arrives: read back, they must not wake twice, or
    the second wake meets the merged attendance and marks its change rejected.)"""
    scene = base_state(client, engine, settings)
    ids = ChangeIds(1)
    sent = [
        make_change(ids(), 1, "attendance", "AB", "create", scene.attendance("SB", "NA")),
        make_change(ids(), 2, "attendance", "AC", "create", scene.attendance("SB", "NA")),
        make_change(ids(), 3, "training_session", "SB", "create", scene.session()),
    ]

    with deciding(monkeypatch, alone=alone):
        results = push(scene.eva, *sent)["results"]

    assert [r["status"] for r in results] == ["deferred", "deferred", "applied"]
    stored = {str(c["change_id"]): c for c in _rows(engine, "sync_change")}
    assert [stored[c["change_id"]]["status"] for c in sent] == ["applied", "merged", "applied"]
    assert _rows(engine, "deferred_change") == []
    ab, ac = rows_of(engine, "attendance", rid("AB")), rows_of(engine, "attendance", rid("AC"))
    assert (ab[0]["deleted_at"], ab[0]["merged_into"]) == (None, None)
    assert ac[0]["deleted_at"] is not None
    assert str(ac[0]["merged_into"]) == rid("AB")


@pytest.mark.parametrize(
    "freed",
    [
        ("attendance", "AA", "delete", None, 1),
        ("attendance", "AA", "update", {"person_id": rid("NB")}, 1),
    ],
    ids=["deleted", "moved away"],
)
def test_a_batch_that_frees_an_attendance_pair_and_records_it_again_takes_one_attempt(
    client: TestClient,
    engine: Engine,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    freed: tuple[Any, ...],
) -> None:
    """Recording NA at SA again after the batch deleted (or moved) the attendance that
    recorded it is valid in seq order, and races nobody: one attempt decides and
    writes it. (Written naively, the new attendance is inserted while the old one is
    still live in storage, and the unique index refuses the batch.)"""
    scene = base_state(client, engine, settings)  # AA: NA at SA
    ids = ChangeIds(1)
    sent = [
        make_change(ids(), 1, *freed),
        make_change(ids(), 2, "attendance", "AB", "create", scene.attendance("SA", "NA")),
    ]

    with attempts(monkeypatch) as tries:
        results = push(scene.eva, *sent)["results"]

    assert [(r["status"], r["version"]) for r in results] == [("applied", 2), ("applied", 1)]
    assert tries == [False]


# ---------------------------------------------------------------- one record, changed again


def test_a_record_made_changed_and_deleted_in_one_batch_is_as_if_pushed_one_by_one(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    """Create, update (on version 1) and delete of one patrol in one batch: each change
    sees what the one before it did, as if each were pushed alone: three versions, the
    last a delete; one pull entry, the delete. Pushed in one batch or in three, the
    server ends the same."""
    states = []
    for together in (True, False):
        _empty(engine)
        scene = make_scene(client, engine, settings)
        ids = ChangeIds(1)
        sent = [
            make_change(ids(), 1, "patrol", "PD", "create", scene.patrol()),
            make_change(ids(), 2, "patrol", "PD", "update", {"objective": "b"}, 1),
            make_change(ids(), 3, "patrol", "PD", "delete", None, 2),
        ]
        if together:
            results = push(scene.juan, *sent)["results"]
        else:
            results = [push(scene.juan, change)["results"][0] for change in sent]
        assert [(r["status"], r["version"]) for r in results] == [
            ("applied", 1),
            ("applied", 2),
            ("applied", 3),
        ]
        states.append(server_state(engine, scene.labels))

    one_batch, three_batches = states
    versions = one_batch["record_version"]
    assert [(v["version"], v["op"], v["changed"]) for v in versions][1:] == [
        (2, "update", ["objective"]),
        (3, "delete", []),
    ]
    [entry] = one_batch["sync_entry"][-1:]
    assert (entry["record_id"], entry["version"], entry["deleted"]) == (rid("PD"), 3, True)
    for name in one_batch:
        assert one_batch[name] == three_batches[name], name


@pytest.mark.parametrize("base_version", [1, 0])
def test_an_update_of_a_record_made_earlier_in_the_batch_is_applied(
    client: TestClient, engine: Engine, settings: Settings, base_version: int
) -> None:
    """A device never conflicts with itself: its update of a patrol it made earlier in
    the same batch (base_version 1, or 0 for "made here, never pulled") is applied on
    top of it, not merged and not a conflict, also for the fields the create set."""
    scene = make_scene(client, engine, settings)
    ids = ChangeIds(1)
    sent = [
        make_change(ids(), 1, "patrol", "PD", "create", scene.patrol(comment="a")),
        make_change(ids(), 2, "patrol", "PD", "update", {"objective": "b"}, base_version),
        make_change(ids(), 3, "patrol", "PD", "update", {"comment": "b"}, base_version),
    ]

    results = push(scene.juan, *sent)["results"]

    assert [(r["status"], r["version"]) for r in results] == [
        ("applied", 1),
        ("applied", 2),
        ("applied", 3),
    ]
    [patrol] = rows_of(engine, "patrol", rid("PD"))
    assert (patrol["objective"], patrol["comment"], patrol["version"]) == ("b", "b", 3)
    assert _rows(engine, "conflict") == []


def test_a_deferred_observation_woken_by_its_patrol_takes_its_own_later_update(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    """Changes apply in seq order, whatever order they are sent in, and are answered in
    the order sent. An observation of a patrol the server has not got waits (seq 1);
    the patrol arrives (seq 2) and wakes it; the observation's own update (seq 3) then
    finds it, at version 1, and is applied on top."""
    scene = make_scene(client, engine, settings)
    ids = ChangeIds(1)
    made = make_change(ids(), 1, "observation", "OC", "create", scene.observation("PD"))
    patrol = make_change(ids(), 2, "patrol", "PD", "create", scene.patrol())
    edited = make_change(ids(), 3, "observation", "OC", "update", {"notes": "tala"}, 1)

    results = push(scene.juan, edited, patrol, made)["results"]

    assert [(r["change_id"], r["status"], r["version"]) for r in results] == [
        (edited["change_id"], "applied", 2),
        (patrol["change_id"], "applied", 1),
        (made["change_id"], "deferred", None),
    ]
    stored = {str(c["change_id"]): c["status"] for c in _rows(engine, "sync_change")}
    assert stored[made["change_id"]] == "applied"  # it woke
    assert _rows(engine, "deferred_change") == []
    versions = rows_of(engine, "record_version", rid("OC"))
    assert sorted((v["version"], str(v["change_id"])) for v in versions) == [
        (1, made["change_id"]),
        (2, edited["change_id"]),
    ]
    pulled = {c["id"]: c for c in pull_all(scene.juan)[0]}
    observation = pulled[rid("OC")]
    assert (observation["version"], observation["fields"]["notes"]) == (2, "tala")
    assert observation["fields"]["sector_id"] == scene.sector  # from its patrol


@pytest.mark.parametrize("alone", [False, True], ids=["set-wise", "one by one"])
def test_pull_entries_show_recorded_at_in_utc_however_the_batch_went(
    client: TestClient,
    engine: Engine,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    alone: bool,
) -> None:
    """The server stores and answers UTC: a record's ``recorded_at`` is pulled in UTC,
    whether the batch that made it was decided set-wise or one change at a time. (The
    pull entry of a record made in the batch is written from memory, not read back
    from storage, so it must not keep the device's offset.)"""
    scene = make_scene(client, engine, settings)
    ids = ChangeIds(1)
    sent = [
        make_change(ids(), 1, "patrol", "PD", "create", scene.patrol()),
        make_change(ids(), 2, "patrol", "PE", "create", scene.patrol()),
        make_change(ids(), 3, "patrol", "PE", "update", {"objective": "b"}, 1),
    ]
    with deciding(monkeypatch, alone=alone):
        push(scene.juan, *sent)

    pulled = {c["id"]: c for c in pull_all(scene.juan)[0]}
    assert pulled[rid("PD")]["fields"]["recorded_at"] == "2026-11-02T14:31:07Z"
    assert pulled[rid("PE")]["fields"]["recorded_at"] == "2026-11-02T14:31:07Z"


# ---------------------------------------------------------------- numbers out of range


# A number too large for its column, by the field it is in; each change's own seq is
# given (``seq`` is one of those fields).
Build = Callable[[Scene, str, int], dict[str, Any]]
OUT_OF_RANGE: list[tuple[str, str, Build]] = [
    (
        "rest_minutes 10**12",
        "rest_minutes",
        lambda scene, cid, seq: make_change(
            cid, seq, "patrol", "PD", "create", scene.patrol(rest_minutes=10**12)
        ),
    ),
    (
        "seq 2**70",
        "seq",
        lambda scene, cid, seq: make_change(cid, 2**70, "patrol", "PD", "create", scene.patrol()),
    ),
    (
        "base_version 2**40, update",
        "base_version",
        lambda scene, cid, seq: make_change(
            cid, seq, "patrol", "PA", "update", {"comment": "b"}, 2**40
        ),
    ),
    # Deletes meeting a delete or a lock open conflicts, which keep the base_version.
    (
        "base_version 2**40, delete of a deleted patrol",
        "base_version",
        lambda scene, cid, seq: make_change(cid, seq, "patrol", "PC", "delete", None, 2**40),
    ),
    (
        "base_version 2**40, delete of an approved patrol",
        "base_version",
        lambda scene, cid, seq: make_change(cid, seq, "patrol", "PB", "delete", None, 2**40),
    ),
]


def test_a_number_the_server_cannot_hold_gets_a_clear_answer(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    """Numbers beyond what a column holds (a 32-bit version, a 64-bit seq, a rest of
    two million years) are refused up front, naming the field: the batch with a 422
    problem, or the change rejected. Never a 500; nothing stored but the rejection.
    (Today: the rest is a rejected change; seq and base_version make the batch a 422.)"""
    scene = base_state(client, engine, settings)
    device = quietly(scene.juan)
    ids = ChangeIds(1)
    for seq, (case, name, build) in enumerate(OUT_OF_RANGE, start=1):
        change = build(scene, ids(), seq)
        versions = len(_rows(engine, "record_version"))
        stored = len(_rows(engine, "sync_change"))

        answer = device.post(
            "/sync/push",
            json={"protocol": 1, "device_id": device.tokens["device_id"], "changes": [change]},
        )

        assert answer.status_code in (200, 422), (case, answer.text)
        if answer.status_code == 422:
            problem = assert_problem(answer, 422, "validation_failed")
            errors = problem["errors"]
            assert len(_rows(engine, "sync_change")) == stored, case
        else:
            [result] = answer.json()["results"]
            assert result["status"] == "rejected", (case, result)
            errors = result["errors"]
        assert any(error["field"].endswith(name) for error in errors), (case, errors)
        assert len(_rows(engine, "record_version")) == versions, case
        assert _rows(engine, "conflict") == [], case


def test_an_attribute_number_beyond_64_bits_is_kept_exactly_or_refused(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    """An observation attribute of type number of 10**30 is a JSON number: either it is
    refused (the batch or the change), or the server keeps exactly what was sent,
    also once the record is read back from storage for a later edit (a JSON reader
    that takes integers beyond 64 bits as floats would make it 1e+30). Today: kept."""
    scene = base_state(client, engine, settings)
    ids = ChangeIds(1)
    made = make_change(
        ids(),
        1,
        "observation",
        "OC",
        "create",
        scene.observation("PA", attributes={"logs": 10**30}),
    )
    device = quietly(scene.juan)
    answer = device.post(
        "/sync/push",
        json={"protocol": 1, "device_id": device.tokens["device_id"], "changes": [made]},
    )
    assert answer.status_code in (200, 422), answer.text
    if answer.status_code == 422 or answer.json()["results"][0]["status"] == "rejected":
        return
    edited = push(
        scene.juan, make_change(ids(), 2, "observation", "OC", "update", {"notes": "n"}, 1)
    )
    assert edited["results"][0]["status"] == "applied"

    pulled = {c["id"]: c for c in pull_all(scene.juan)[0]}
    assert pulled[rid("OC")]["fields"]["attributes"] == {"logs": 10**30}
