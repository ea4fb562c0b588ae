"""A property of the whole protocol: tablets that edit offline, push, pull, lose
answers, retry and restart in any order end with the server's state, and the server
holds every acknowledged change exactly once.

Two or three tablets (of two rangers of one sector) edit the same three patrols
(creates, updates of random fields to a few values, deletes), so conflicts are
common. Their requests go through a flaky transport that can refuse a request,
answer 503, or let the app apply a batch and lose its answer (the batch is then
sent again). At the end everyone syncs until quiet; then:

- every tablet's view is what a brand-new tablet pulls, and every outbox is empty;
- every change got exactly one first answer; every replay repeats it;
- every version the server holds was made by exactly one change, whose first answer
  names it (replays never bump a version; the count of versions is the count of
  changes that made one);
- what an applied or merged change sent is in the version it names; every conflict
  answer has its conflict row (nothing the tablet sent is lost).
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, event, given
from hypothesis import settings as examples
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, select

from schemas import Conflict, RecordVersion, SyncEntry
from sync.client import DeviceClient, Unreachable
from sync.platform.settings import Settings
from tests.asgi import TestClient
from tests.client.test_client import BASE_URL, Flaky
from tests.conftest import World

RECORDS = [uuid.UUID(int=n + 1) for n in range(3)]
FIELDS = ("objective", "comment", "transport")
VALUES = ("a", "b", "c")
FINAL = {"applied", "merged", "conflict"}


def _empty(engine: Engine) -> None:
    """Every table emptied but the clock (which only ever moves forward), as the
    ``engine`` fixture does before each test, here before each example."""
    tables = [t.name for t in reversed(SQLModel.metadata.sorted_tables) if t.name != "sync_clock"]
    with engine.begin() as connection:
        for name in tables:
            connection.exec_driver_sql(f'DELETE FROM "{name}"')  # noqa: S608 (our table names)


# ---------------------------------------------------------------- operations

devices = st.integers(0, 2)
records = st.sampled_from(RECORDS)
some_fields = st.dictionaries(st.sampled_from(FIELDS), st.sampled_from(VALUES), min_size=1)


def _weighted(*choices: tuple[int, st.SearchStrategy[tuple[Any, ...]]]) -> Any:
    return st.one_of([strategy for weight, strategy in choices for _ in range(weight)])


operations = st.lists(
    _weighted(
        (1, st.tuples(st.just("create"), devices, records, some_fields)),
        (5, st.tuples(st.just("update"), devices, records, some_fields)),
        (1, st.tuples(st.just("delete"), devices, records)),
        (2, st.tuples(st.just("push"), devices)),
        (2, st.tuples(st.just("pull"), devices)),
        (2, st.tuples(st.just("sync"), devices)),
        (1, st.tuples(st.just("lose"), devices)),  # the next answer is lost
        (1, st.tuples(st.just("push lost"), devices)),  # a batch applied, its answer lost
        (
            1,
            st.tuples(
                st.just("fail"), devices, st.integers(1, 3), st.sampled_from(["connect", "503"])
            ),
        ),
        (1, st.tuples(st.just("restart"), devices)),
    ),
    min_size=10,
    max_size=30,
)


class Tablet:
    def __init__(self, world: World, owner: Any, folder: Path, index: int, batch: int) -> None:
        device = world.device(owner)
        self.flaky = Flaky(world.client)
        self.http = httpx.Client(base_url=BASE_URL, transport=httpx.MockTransport(self.flaky))
        self.path = folder / f"tablet-{index}.db"
        self.batch = batch
        self.client = DeviceClient(
            self.http,
            self.path,
            device_id=device.tokens["device_id"],
            access_token=device.tokens["access_token"],
            refresh_token=device.tokens["refresh_token"],
            batch_size=batch,
            max_retries=2,
            backoff=0,
        )

    def restart(self) -> None:
        self.client.close()
        self.client = DeviceClient(
            self.http, self.path, batch_size=self.batch, max_retries=2, backoff=0
        )

    def close(self) -> None:
        self.client.close()
        self.http.close()


@contextmanager
def tablets(world: World, count: int, batch: int, sector_id: str) -> Iterator[list[Tablet]]:
    rosa = world.user("ranger", sector_ids=[sector_id])
    juan = world.user("ranger", sector_ids=[sector_id])
    owners = [rosa, juan, rosa][:count]
    with tempfile.TemporaryDirectory() as folder:
        made = [Tablet(world, owner, Path(folder), i, batch) for i, owner in enumerate(owners)]
        try:
            yield made
        finally:
            for tablet in made:
                tablet.close()


def run(operation: tuple[Any, ...], tablets: list[Tablet], sector_id: str) -> None:
    kind, which, *rest = operation
    tablet = tablets[which % len(tablets)]
    device = tablet.client
    if kind in ("create", "update", "delete"):
        # An edit of a patrol the tablet has not seen yet creates it.
        record = device.record("patrol", rest[0])
        if record is None and kind != "delete":
            device.create("patrol", rest[0], {"sector_id": sector_id, **rest[1]})
        elif kind == "update" and record is not None and not record.deleted:
            device.update("patrol", rest[0], rest[1])
        elif kind == "delete" and record is not None and not record.deleted:
            device.delete("patrol", rest[0])
    elif kind == "lose":
        tablet.flaky.script.append("lost")
    elif kind == "push lost":
        tablet.flaky.script.append("lost")
        _attempt(device.push)
    elif kind == "fail":
        tablet.flaky.script.extend([rest[1]] * rest[0])
    elif kind == "restart":
        tablet.restart()
    else:
        _attempt(getattr(device, kind))


def _attempt(action: Any) -> None:
    try:
        action()
    except Unreachable:
        event("a tablet gave up (retries ran out)")  # what was unanswered stays queued


# ---------------------------------------------------------------- the property


@examples(
    max_examples=20,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    count=st.integers(2, 3),
    batch=st.sampled_from([1, 2, 500]),
    seeded=st.sets(st.sampled_from(RECORDS), min_size=1),
    steps=operations,
)
def test_tablets_converge_and_every_acknowledged_change_applies_exactly_once(
    client: TestClient,
    engine: Engine,
    settings: Settings,
    count: int,
    batch: int,
    seeded: set[uuid.UUID],
    steps: list[tuple[Any, ...]],
) -> None:
    _empty(engine)
    world = World(client, engine, settings)
    sector_id = world.sector("AM-01")["id"]
    with tablets(world, count, batch, sector_id) as made:
        # Some patrols every tablet already holds (edits of them meet); the others
        # may be created by several tablets at once.
        for record in sorted(seeded):
            made[0].client.create("patrol", record, {"sector_id": sector_id, "objective": "x"})
        for tablet in made:
            tablet.client.sync()
        for step in steps:
            run(step, made, sector_id)

        # Quiet: the links are good again; everyone hands over, then everyone catches up.
        for tablet in made:
            tablet.flaky.script.clear()
        for tablet in made:
            tablet.client.push()
        for tablet in made:
            tablet.client.pull()

        with tablets(world, 1, 500, sector_id) as [fresh]:
            fresh.client.pull()
            server = fresh.client.records("patrol")
        for tablet in made:
            assert tablet.client.outbox() == []
            assert tablet.client.records("patrol") == server

        pushes = [exchange for tablet in made for exchange in tablet.flaky.pushes]
    _check_the_server_kept_every_change_once(engine, pushes, server)


def _check_the_server_kept_every_change_once(
    engine: Engine,
    pushes: list[tuple[dict[str, Any], dict[str, Any] | None]],
    server: dict[str, dict[str, Any]],
) -> None:
    first: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}  # change_id: result, change
    for body, answer in pushes:
        assert answer is not None, body
        assert len(answer["results"]) == len(body["changes"])
        for change, result in zip(body["changes"], answer["results"], strict=True):
            assert result["change_id"] == change["change_id"]
            if result.get("replayed"):
                event("a change was replayed")
                original, _ = first[change["change_id"]]
                assert {**result, "replayed": None} == {**original, "replayed": None}
            else:
                assert change["change_id"] not in first, "answered afresh twice"
                first[change["change_id"]] = (result, change)
    assert {result["status"] for result, _ in first.values()} <= FINAL
    for status in sorted({result["status"] for result, _ in first.values()}):
        event(f"some change was {status}")

    with Session(engine) as session:
        versions = {(str(v.record_id), v.version): v for v in session.exec(select(RecordVersion))}
        conflicts = {str(c.change_id) for c in session.exec(select(Conflict))}
        entries = {str(e.record_id): e for e in session.exec(select(SyncEntry))}

    makers = [str(v.change_id) for v in versions.values()]
    assert len(makers) == len(set(makers)), "a change made two versions"
    for (record_id, version), made in versions.items():
        result, change = first[str(made.change_id)]
        assert (change["id"], result["version"]) == (record_id, version)
    bumped = [
        cid
        for cid, (result, change) in first.items()
        if str(versions[(change["id"], result["version"])].change_id) == cid
    ]
    assert len(versions) == len(bumped)

    for cid, (result, change) in first.items():
        named = versions[(change["id"], result["version"])]  # it names a real version
        if result["status"] == "conflict":
            assert cid in conflicts
        elif change["op"] == "delete":
            assert named.op == "delete"
        else:
            sent = change["fields"]
            assert {k: named.fields.get(k) for k in sent} == sent

    live = {rid for rid, entry in entries.items() if entry.entity == "patrol" and not entry.deleted}
    assert live == set(server)
    for record_id, entry in entries.items():
        if entry.entity == "patrol":
            top = max(v for (rid, v) in versions if rid == record_id)
            assert entry.version == top
