"""Waking deferred changes: when a record arrives, the changes that waited for it
(an attendance pushed before its session) are applied, oldest first, for the device
and user that pushed them, with their scope as it is now — and in the current version
of the data model: a change is kept as its device sent it, so one that waited across
an upgrade is upcast when it wakes (``sync.engine.versions``).

On PostgreSQL two pushes can overlap: one making a record, the other deferring a
change for it (an observation for its patrol, an update for the record's create).
Neither sees what the other has not committed, so the maker finds no change waiting,
and the other does not find the record: the change would wait for a record already
there, for ever. So a push that made records, or deferred a change, checks before it
commits, holding the sync clock's row (``check_waits``); of two such pushes the later
to take it sees what the earlier committed. A push that deferred counts itself on
that row, so that one that made records looks them up again only when a deferral was
committed since it began. A push that finds it crossed another's way is decided
again, holding the clock from its start (``sync.engine.push``). SQLite's pushes take
turns whole.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping

import sqlalchemy as sa
from sqlmodel import Session

from schemas import DeferredChange, User
from schemas.sync import Change, Status
from sync.accounts.auth import principal_of
from sync.accounts.principal import Principal
from sync.engine import versions
from sync.engine.changelog import count_deferral, hold_clock
from sync.engine.decide import Actor, Decider
from sync.engine.entities import Catalog
from sync.engine.rules import Deferred, Rejected
from sync.engine.store import Receipts
from sync.engine.workspace import Waiting, in_order
from sync.platform.database import is_postgresql, one_of


class Waker:
    def __init__(self, session: Session, decider: Decider, receipts: Receipts) -> None:
        self.session = session
        self.decider = decider
        self.receipts = receipts
        self.ws = decider.ws
        self._principals: dict[tuple[uuid.UUID, uuid.UUID], Principal | None] = {}

    def wake(self, entity: str, record_id: uuid.UUID) -> None:
        """Apply the changes that were waiting for this record, oldest first."""
        for waiting in self.ws.waiting_for(entity, record_id):
            self.ws.wake(entity, record_id, waiting)
            principal = self._principal(waiting.user_id, waiting.device_id)
            if principal is None:
                continue
            try:
                change = versions.upcast_change(Change.model_validate(waiting.change))
            except versions.Unconvertible as problem:
                self._reject(waiting, Rejected(problem.field, problem.code, problem.message))
                continue
            try:
                result = self.decider.apply_undoably(Actor(principal, waiting.device_id), change)
            except Rejected as rejection:
                self._reject(waiting, rejection)
            except Deferred as again:
                self.ws.defer(again.entity, again.record_id, waiting, self.decider.now)
            else:
                self.ws.update_stored(
                    waiting.change_id, status=str(result.status), applied_at=self.decider.now
                )
                self.receipts.link_conflicts(waiting.change_id)

    def _reject(self, waiting: Waiting, rejection: Rejected) -> None:
        """A change that woke and was rejected: its first answer (``deferred``) stands
        for replays; why it was rejected since is kept beside it."""
        self.ws.update_stored(
            waiting.change_id,
            status=str(Status.rejected),
            result={**waiting.result, "later_errors": [e.model_dump() for e in rejection.errors]},
        )

    def _principal(self, user_id: uuid.UUID, device_id: uuid.UUID) -> Principal | None:
        """The pusher of a deferred change, with their scope as it is now."""
        key = (user_id, device_id)
        if key not in self._principals:
            self._principals[key] = pusher(self.session, user_id, device_id)
        return self._principals[key]


def pusher(session: Session, user_id: uuid.UUID, device_id: uuid.UUID) -> Principal | None:
    """Who pushed a kept change, with their scope as it is now; None when the user is
    gone."""
    user = session.get(User, user_id)
    if user is None:
        return None
    return principal_of(session, user, family_id=None, device_id=device_id)


class WaitsCrossed(Exception):
    """A change was deferred for a record this push made, or a record this push deferred
    a change for was made, by a transaction that overlapped this one."""


def check_waits(
    session: Session,
    catalog: Catalog,
    *,
    made: Mapping[str, Collection[uuid.UUID]],
    waits: Mapping[str, Collection[uuid.UUID]],
    seen: int | None,
    held: int | None,
) -> None:
    """PostgreSQL, last before the commit, with the clock's row held: ``WaitsCrossed`` if
    a change now waits for one of the records this transaction ``made``, or one of those
    it deferred changes for (``waits``) now exists. ``seen`` is the clock's count of
    deferrals as this transaction began (``changelog.deferrals``), and ``held`` the
    count its numbering read as it took the clock (``changelog.number``), if it did:
    while no push has deferred a change since, what it made is not looked up again, and
    a push that deferred nothing adds no statement to its hold of the clock. (Each
    statement there costs its process the GIL to win back, several milliseconds under
    load: a read of the count alone held the clock 54 ms a push against 42.)"""
    if not is_postgresql(session) or not (any(made.values()) or any(waits.values())):
        return
    count = held if held is not None else hold_clock(session)
    found: list[sa.Select[tuple[uuid.UUID]]] = []
    if count != seen:
        deferred = DeferredChange.__table__  # type: ignore[attr-defined]
        found += [
            sa.select(deferred.c.waiting_id).where(
                deferred.c.waiting_entity == entity,
                one_of(session, deferred.c.waiting_id, in_order(set(ids))),
            )
            for entity, ids in made.items()
            if ids
        ]
    for entity, ids in waits.items():
        if ids:
            table = catalog[entity].table.__table__  # type: ignore[attr-defined]
            found.append(sa.select(table.c.id).where(one_of(session, table.c.id, in_order(ids))))
    if found and session.execute(sa.union_all(*found).limit(1)).first() is not None:
        raise WaitsCrossed
    count_waits(session, waits)


def count_waits(session: Session, waits: Mapping[str, Collection[uuid.UUID]]) -> None:
    """PostgreSQL, the clock's row held: count this transaction among those that deferred
    changes, if it did (``waits``), so that a push that made records and took the clock
    after it looks them up again. Every transaction that defers counts, one that held
    the clock from its start too: none could cross it, but it can cross one that made
    the record it waits for and has not committed."""
    if is_postgresql(session) and any(waits.values()):
        count_deferral(session)
