"""A change deferred for a record another push is making at that moment wakes when that
push commits: the two pushes' transactions overlap (two server processes; two
connections here), and neither sees what the other has not committed
(``sync.engine.wake.check_waits``). Both orders are held: the maker commits first, or
the deferral does. On SQLite the pushes take turns whole, so the second one waits."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from schemas import SyncChange
from schemas.enums import Role
from schemas.reference import ObservationCategoryCreate
from schemas.sync import PushRequest, PushResponse, Status
from sync.accounts.principal import Principal
from sync.catalog import CATALOG
from sync.engine.push import Batch, push
from sync.engine.workspace import Workspace
from sync.platform.database import transaction
from sync.platform.settings import Settings
from sync.reference import service as reference
from tests.engine.test_push_and_pull import Office, change, new_id, office

CATEGORY = "threat.logging"
POINT = {"t": "2026-11-02T09:40:00-05:00", "lat": -5.91, "lon": -77.31}
# Long enough for the other push to decide and commit, where nothing holds it.
HELD_SECONDS = 2.0


class Pushing:
    """A push run in a thread of its own; its answer, or what it raised."""

    def __init__(self, send: Callable[[], PushResponse]) -> None:
        self.answers: list[PushResponse | BaseException] = []
        self.thread = threading.Thread(target=self._run, args=(send,))
        self.thread.start()

    def _run(self, send: Callable[[], PushResponse]) -> None:
        try:
            self.answers.append(send())
        except BaseException as error:
            self.answers.append(error)

    def answer(self) -> PushResponse:
        self.thread.join(timeout=30)
        assert len(self.answers) == 1, self.answers
        answer = self.answers[0]
        assert isinstance(answer, PushResponse), answer
        return answer


# What waits: a segment for its patrol, or an edit of an observation for its create (a
# change can wait for a record of any type, not only one that others hang from).
WAITING = ["segment", "edit"]


def _made_and_waiting(place: Office, waits: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    patrol, observation = new_id(), new_id()
    made = [change(1, "patrol", patrol, {"sector_id": str(place.sector_id)})]
    if waits == "segment":
        waiting = change(1, "track_segment", new_id(), {"patrol_id": patrol, "points": [POINT]})
        return made, waiting
    with transaction(place.engine) as session:
        reference.create_category(
            session,
            category=ObservationCategoryCreate(key=CATEGORY, name_es="Tala", name_en="Logging"),
        )
    seen = {"patrol_id": patrol, "category_key": CATEGORY, "observed_at": POINT["t"]}
    made.append(change(2, "observation", observation, {**seen, "lat": -5.9, "lon": -77.3}))
    waiting = {
        **change(1, "observation", observation, {"notes": "tala reciente"}),
        "op": "update",
        "base_version": 1,
    }
    return made, waiting


def _assert_woken(engine: Engine, place: Office, waiting: dict[str, Any]) -> None:
    table = SyncChange.__table__  # type: ignore[attr-defined]
    with engine.connect() as connection:
        status = connection.execute(
            sa.select(table.c.status).where(table.c.change_id == uuid.UUID(waiting["change_id"]))
        ).scalar_one()
    assert status == str(Status.applied)
    pulled = place.pull(place.tablet(Role.ranger))
    assert (waiting["entity"], waiting["id"], "upsert") in pulled


@pytest.mark.parametrize("waits", WAITING)
def test_a_change_deferred_while_its_parent_is_made_wakes_when_the_parent_commits(
    engine: Engine, settings: Settings, waits: str
) -> None:
    place = office(engine, settings)
    maker, follower = place.tablet(Role.ranger), place.tablet(Role.ranger)
    made, waiting = _made_and_waiting(place, waits)

    batch = PushRequest(protocol=1, device_id=maker.device_id, changes=made)
    with transaction(engine) as session:
        first = push(session, catalog=CATALOG, principal=maker, batch=batch, settings=settings)
        assert {r.status for r in first.results} == {Status.applied}
        # The patrol is written, not committed: the segment's push runs now.
        following = Pushing(lambda: place.push(follower, waiting))
        following.thread.join(timeout=HELD_SECONDS)

    assert following.answer().results[0].status in (Status.deferred, Status.applied)
    _assert_woken(engine, place, waiting)


def _race_the_deferral(
    place: Office,
    monkeypatch: pytest.MonkeyPatch,
    maker: Principal,
    follower: Principal,
    made: list[dict[str, Any]],
    waiting: dict[str, Any],
) -> None:
    """The maker's push pauses once it has looked for changes waiting for what it makes
    (none yet), before it writes; the follower's push defers its change meanwhile (on
    PostgreSQL: SQLite's would wait for its turn); then the maker writes and commits,
    and the deferred change must wake."""
    looked, followed = threading.Event(), threading.Event()
    writing = Workspace.flush

    def flush(self: Workspace) -> None:
        if not looked.is_set():
            looked.set()
            followed.wait(timeout=HELD_SECONDS)
        writing(self)

    monkeypatch.setattr(Workspace, "flush", flush)
    making = Pushing(lambda: place.push(maker, *made))
    assert looked.wait(timeout=30)
    overlapping = place.engine.dialect.name == "postgresql"
    deferred = place.push(follower, waiting) if overlapping else None
    followed.set()

    assert {r.status for r in making.answer().results} == {Status.applied}
    deferred = deferred or place.push(follower, waiting)
    assert deferred.results[0].status in (Status.deferred, Status.applied)
    _assert_woken(place.engine, place, waiting)


@pytest.mark.parametrize("waits", WAITING)
def test_a_push_that_made_a_record_wakes_a_change_deferred_for_it_since_it_looked(
    engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch, waits: str
) -> None:
    """The patrol's push has looked for changes waiting for it (none) when the
    segment's push defers and commits; then the patrol's push writes and commits."""
    place = office(engine, settings)
    maker, follower = place.tablet(Role.ranger), place.tablet(Role.ranger)
    made, waiting = _made_and_waiting(place, waits)
    _race_the_deferral(place, monkeypatch, maker, follower, made, waiting)


@pytest.mark.parametrize("waits", WAITING)
def test_a_change_deferred_by_a_push_holding_the_clock_wakes_for_a_record_made_since(
    engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch, waits: str
) -> None:
    """As above, with the segment's push decided holding the clock from its start (as
    after a crossing, or an admin's retry): no push can cross it, but it deferred for a
    patrol made by a push not yet committed, which must still learn of the deferral."""
    place = office(engine, settings)
    maker, follower = place.tablet(Role.ranger), place.tablet(Role.ranger)
    made, waiting = _made_and_waiting(place, waits)
    running = Batch.run

    def run(self: Batch, principal: Principal, *args: Any, **kwargs: Any) -> PushResponse:
        if principal.device_id == follower.device_id:
            kwargs["serialized"] = True
        return running(self, principal, *args, **kwargs)

    monkeypatch.setattr(Batch, "run", run)
    _race_the_deferral(place, monkeypatch, maker, follower, made, waiting)
