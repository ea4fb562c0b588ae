"""Waking deferred changes: when a record arrives, the changes that waited for it
(an attendance pushed before its session) are applied, oldest first, for the device
and user that pushed them, with their scope as it is now — and in the current version
of the data model: a change is kept as its device sent it, so one that waited across
an upgrade is upcast when it wakes (``sync.engine.versions``).
"""

from __future__ import annotations

import uuid

from sqlmodel import Session

from schemas import User
from schemas.sync import Change, Status
from sync.accounts.auth import principal_of
from sync.accounts.principal import Principal
from sync.engine import versions
from sync.engine.decide import Actor, Decider
from sync.engine.rules import Deferred, Rejected
from sync.engine.store import Receipts
from sync.engine.workspace import Waiting


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
