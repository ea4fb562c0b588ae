"""Push: a device's batch of offline changes, each answered, none lost, none applied twice.

For every change, in ``seq`` order, inside the request's one transaction:

1. **Idempotency.** A ``change_id`` seen before gets the answer it got then
   (``replayed: true``); the same id with other content is ``change_id_reused``.
   Pushes of one device are serialised by a lock on its row, so the same batch
   arriving twice at once, on two server processes, is applied once.
2. **Versions.** A change written in an older version of the data model is read in
   the current one (``sync.engine.versions``; kept as sent); one of a version newer
   than the server's is rejected ``schema_too_new``, kept, and decided again after
   an upgrade (``sync.engine.retry``). A batch of an app older than the server takes
   is refused whole, ``426 app_too_old``, before anything else.
3. **Validation and scope.** Unknown types, ops or fields, invalid values, and
   records outside the caller's scope are ``rejected``, and kept with their reason.
4. **Deferral.** A change naming a parent the server does not hold yet (an
   attendance before its session) is ``deferred``: stored, and applied by itself
   when the parent arrives, in any later push.
5. **The decision.** Creates apply. Updates merge field by field against the
   version the device last saw (``sync.engine.merge``); a device never conflicts with
   itself. Edits of an approved patrol and updates or deletes meeting a server-side
   delete open a conflict; nothing the device sent is lost.

The batch is set-based: what it names is read up front in a few statements, every
change is decided in memory (``sync.engine.workspace``), and each table is written with
one statement at the end. The jobs are modules of their own: ``prepare`` (what needs
no database), ``decide`` (one change against the records), ``store`` (what is kept of
every change) and ``wake`` (deferred changes whose record arrived); this module runs
them in order. A change found invalid halfway is undone in memory, as a
savepoint would. When another device's batch wins a race for the same row (the same
attendance recorded on two tablets at once), the database refuses our write and the
whole batch is decided again, seeing the winner; should that keep failing, the last
attempt goes one change at a time, each in its own savepoint, so that one bad change
can never block the rest. A batch that crossed an overlapping one's way over a deferred
change (it made the record the other deferred a change for, or the reverse:
``sync.engine.wake``) is decided again holding the sync clock from its start. The
batch is answered only after the transaction commits (``api.deps``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session, select

from schemas import Device, SyncChange
from schemas.sync import (
    Change,
    ChangeError,
    ChangeResult,
    PushRequest,
    PushResponse,
    Status,
)
from schemas.types import utcnow
from sync.accounts import contact
from sync.accounts.principal import Principal
from sync.engine.changelog import Changelog, deferrals, hold_clock
from sync.engine.decide import Actor, Decider
from sync.engine.entities import Catalog
from sync.engine.files import Owed
from sync.engine.prepare import (
    Prepared,
    in_current_version,
    prepare,
    same_content,
    storable,
    unstorable,
)
from sync.engine.rules import Deferred, Rejected
from sync.engine.spent import Spent
from sync.engine.store import Receipts
from sync.engine.versions import AppTooOld, too_old
from sync.engine.wake import WaitsCrossed, Waker, check_waits, count_waits
from sync.engine.workspace import Waiting, Workspace, in_order
from sync.platform.database import is_postgresql, one_of, unavailable
from sync.platform.errors import Forbidden, KeepsChanges, PayloadTooLarge
from sync.platform.settings import Settings

# How often a batch is decided again after losing a race; the last try goes one
# change at a time.
ATTEMPTS = 3
# PostgreSQL's deadlock_detected and serialization_failure: the batch lost a race.
RACE_STATES = frozenset({"40P01", "40001"})

log = logging.getLogger("fieldsync")


class RefusedAsTooOld(KeepsChanges, AppTooOld):
    """``426 app_too_old`` for a whole batch: none of its changes is applied or kept,
    but the device's row keeps when, and what its app reported, for the fleet's health
    (the request's transaction commits that much)."""


def push(
    session: Session,
    *,
    catalog: Catalog,
    principal: Principal,
    batch: PushRequest,
    settings: Settings,
    prepared: dict[uuid.UUID, Prepared] | None = None,
    spent: Spent | None = None,
) -> PushResponse:
    """Apply a batch; one result per change, in the order sent. ``prepared`` is
    ``prepare(batch, catalog)``, when the caller made it outside the transaction;
    ``spent``, if given, is told the CPU of each phase (``sync.engine.spent``)."""
    if spent is None:
        spent = Spent()
    else:
        spent.start()
    if principal.device_id is None:
        raise Forbidden("pushing needs a device's token; enroll the device", code="device_required")
    if batch.device_id != principal.device_id:
        raise Forbidden("this batch names another device than the token's", code="wrong_device")
    if len(batch.changes) > settings.max_batch:
        raise PayloadTooLarge(
            f"a batch holds at most {settings.max_batch} changes; send smaller ones",
            code="batch_too_large",
        )
    # Pushes of one device take turns: the same batch sent twice at once (two server
    # processes, a retry racing its original) is applied once and replayed once.
    device = session.exec(
        select(Device).where(Device.id == principal.device_id).with_for_update()
    ).one()
    now = utcnow()
    refusal = too_old(batch, settings=settings)
    if refusal is not None:
        device.app_too_old_at = now
        device.last_seen_at = now
        contact.note_report(device, batch.client, now)
        session.add(device)
        session.flush()
        raise RefusedAsTooOld(refusal)
    if prepared is None:
        prepared = prepare(batch, catalog)
    attempt = 1
    serialized = False  # holding the sync clock from the start (``sync.engine.wake``)
    while True:
        one_by_one = attempt == ATTEMPTS
        try:
            once = Batch(
                session, catalog, now=now, batch_id=batch.batch_id, prepared=prepared, spent=spent
            )
            with session.begin_nested(), once:
                return once.run(
                    principal, batch, device, one_by_one=one_by_one, serialized=serialized
                )
        except WaitsCrossed:
            serialized = True
        except DBAPIError as error:
            if one_by_one or unavailable(error):
                raise
            # A lost race is decided again; anything else goes one change at a time at
            # once, so that the change the database refuses is rejected alone.
            attempt = attempt + 1 if _lost_race(error) else ATTEMPTS


def _nobody(entity: str, record_id: uuid.UUID) -> None:
    """Told of a record's arrival once the batch is over: nothing to wake."""


def _lost_race(error: DBAPIError) -> bool:
    return isinstance(error, IntegrityError) or (
        getattr(error.orig, "sqlstate", None) in RACE_STATES
    )


class Batch:
    """One attempt at a batch: its workspace, and the decider, the receipts and the
    waker working on it."""

    def __init__(
        self,
        session: Session,
        catalog: Catalog,
        *,
        now: datetime,
        batch_id: uuid.UUID | None,
        prepared: dict[uuid.UUID, Prepared] | None = None,
        spent: Spent | None = None,
    ) -> None:
        self.session = session
        self.spent = spent or Spent()
        self.now = now
        self.prepared = prepared or {}
        self.changelog = Changelog(session)
        self.ws = Workspace(session, self.changelog, catalog)
        self.decider = Decider(self.ws, now=now, prepared=self.prepared, arrived=self._arrived)
        self.receipts = Receipts(self.ws, self.decider.conflicts, now=now, batch_id=batch_id)
        self.waker = Waker(session, self.decider, self.receipts)

    def _arrived(self, entity: str, record_id: uuid.UUID) -> None:
        self.waker.wake(entity, record_id)

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, *_: object) -> None:
        """Unlink the decider from the batch it tells of arrivals. The two refer to each
        other, so everything the batch read and made (the body's changes, their records,
        their versions) would otherwise wait for the garbage collector's next full
        collection, which a server under load makes rarely (``api.app``): held so, the
        batches of a few minutes doubled a worker's memory."""
        self.decider.arrived = _nobody

    def run(
        self,
        principal: Principal,
        batch: PushRequest,
        device: Device,
        *,
        one_by_one: bool,
        serialized: bool = False,
    ) -> PushResponse:
        # The deferrals committed so far: ``check_waits`` looks again only if one more has.
        seen = None
        if serialized:
            hold_clock(self.session)
        elif is_postgresql(self.session):
            seen = deferrals(self.session)
        known = _stored(self.session, [c.change_id for c in batch.changes])
        readies = [self._ready(change) for change in batch.changes]
        current = [ready.change for ready in readies]  # in the current version
        self.owed = Owed(self.session, current)
        if not one_by_one:
            self.ws.prefetch(current)
        self.spent.lap("reads")
        floor = device.last_seq if device.last_seq is not None else -1
        used_seqs: set[int] = set()
        results: list[ChangeResult | None] = [None] * len(batch.changes)
        received = False  # a change not sent before
        for index in sorted(range(len(batch.changes)), key=lambda i: batch.changes[i].seq):
            change, ready = batch.changes[index], readies[index]
            prior = known.get(change.change_id)
            if prior is not None:
                result = _replay(prior, change, ready, device.id)
                if result.replayed is not True:  # the id was used for other content
                    self.receipts.refuse(principal, change, result)
                results[index] = result
                continue
            received = True
            refused = unstorable(change, ready.text)
            if refused is not None:
                kept = storable(change)
                result = self.receipts.reject(
                    principal, kept, kept.model_dump(mode="json"), refused, ready.digest
                )
                used_seqs.add(change.seq)
            elif change.seq <= floor or change.seq in used_seqs:
                result = self.receipts.reject(
                    principal,
                    change,
                    ready.document,
                    Rejected("seq", "seq_not_increasing", f"seq {change.seq} was already used"),
                    ready.digest,
                )
            elif ready.refused is not None:  # not readable in this server's version
                result = self.receipts.reject(
                    principal, change, ready.document, ready.refused, ready.digest
                )
                used_seqs.add(change.seq)
            elif one_by_one:
                result = self.receive_alone(principal, ready.change, ready.document, ready.digest)
                used_seqs.add(change.seq)
            else:
                result = self.receive(principal, ready.change, ready.document, ready.digest)
                used_seqs.add(change.seq)
            known[change.change_id] = self.ws.stored(change.change_id)
            results[index] = result
        self.spent.lap("decisions")
        self.ws.flush()
        if used_seqs:
            device.last_seq = max(max(used_seqs), floor)
        device.last_seen_at = self.now
        device.app_too_old_at = None  # its app writes a version this server takes
        if received:
            device.last_push_at = self.now
        contact.note_report(device, batch.client, self.now)
        self.session.add(device)
        self.owed.write()
        self.spent.lap("writes")
        self.changelog.publish()  # last: it takes the clock, held until commit
        waits = self.ws.waits
        if serialized:  # no other push can cross it, but it can cross one not committed
            count_waits(self.session, waits)
        else:
            made, held = self.ws.made, self.changelog.deferrals_held
            check_waits(self.session, self.ws.catalog, made=made, waits=waits, seen=seen, held=held)
        self.spent.lap("publish")
        return PushResponse(
            results=[r for r in results if r is not None],
            last_seq=device.last_seq,
            server_time=self.now,
        )

    def _ready(self, change: Change) -> Prepared:
        """``change`` prepared: by ``prepare`` before the transaction, or now (a
        ``change_id`` sent twice in a batch was prepared for its first object only)."""
        ready = self.prepared.get(change.change_id)
        if ready is None or ready.sent is not change:
            ready = Prepared.of(change)
        return ready

    def receive(
        self, principal: Principal, change: Change, document: dict[str, Any], digest: str
    ) -> ChangeResult:
        """Decide a change (in the current version) and keep it with its answer;
        ``document`` and ``digest`` are of the change as sent."""
        assert principal.device_id is not None
        actor = Actor(principal, principal.device_id)
        try:
            result = self.decider.apply_undoably(actor, change)
        except Rejected as rejection:
            return self.receipts.reject(principal, change, document, rejection, digest)
        except Deferred as waiting:
            result = ChangeResult(change_id=change.change_id, status=Status.deferred)
            result.missing_attachments = self.owed.missing(
                change, device_id=actor.device_id, now=self.now
            )
            kept = self.receipts.store(principal, change, document, digest, result)
            self.ws.defer(waiting.entity, waiting.record_id, kept, self.now)
            return result
        # Applied, merged or in conflict: the files it names are owed until they arrive.
        result.missing_attachments = self.owed.missing(
            change, device_id=actor.device_id, now=self.now
        )
        self.receipts.store(principal, change, document, digest, result)
        return result

    def decide_again(self, principal: Principal, kept: Waiting) -> ChangeResult:
        """A change kept as rejected decided again, for its device and user (``kept``:
        its stored row), as if it had just arrived: a change rejected ``schema_too_new``
        once the server reads its version (``sync.engine.retry``). Its stored status and
        answer are replaced, so that a replay of its ``change_id`` answers the new one;
        what was kept of it, as sent, stays. Written and published at once."""
        hold_clock(self.session)  # one change, decided as no other could cross it
        sent = Change.model_validate(kept.change)
        change, refused = in_current_version(sent)
        self.owed = Owed(self.session, [change])
        self.ws.prefetch([change])
        actor = Actor(principal, kept.device_id)
        waiting: Deferred | None = None
        try:
            if refused is not None:
                raise refused
            result = self.decider.apply_undoably(actor, change)
        except Rejected as rejection:
            result = ChangeResult(
                change_id=sent.change_id, status=Status.rejected, errors=rejection.errors
            )
        except Deferred as deferred:
            waiting = deferred
            result = ChangeResult(change_id=sent.change_id, status=Status.deferred)
        if result.status is not Status.rejected:
            result.missing_attachments = self.owed.missing(
                change, device_id=kept.device_id, now=self.now
            )
        answer = result.model_dump(mode="json", exclude_none=True)
        settled = result.status in (Status.applied, Status.merged)
        self.ws.update_stored(
            sent.change_id,
            status=str(result.status),
            result=answer,
            applied_at=self.now if settled else None,
        )
        if waiting is not None:
            again = replace(kept, result=answer)
            self.ws.defer(waiting.entity, waiting.record_id, again, self.now)
        self.receipts.link_conflicts(sent.change_id)
        self.ws.flush()
        self.owed.write()
        self.changelog.publish()  # last: it takes the clock, held until commit
        count_waits(self.session, self.ws.waits)
        return result

    def receive_alone(
        self, principal: Principal, change: Change, document: dict[str, Any], digest: str
    ) -> ChangeResult:
        """``receive`` in a savepoint of its own, written at once: a change the
        database refuses is rejected alone."""
        mark = self.ws.mark()
        try:
            with self.session.begin_nested():
                self.ws.prefetch([change])
                result = self.receive(principal, change, document, digest)
                self.ws.flush()
                return result
        except DBAPIError as error:
            if unavailable(error):
                raise
            self.ws.rollback(mark)
            self.ws.discard_writes()
            refused = error
        if _lost_race(refused):
            rejection = Rejected(
                "id", "storage_conflict", "the record changed under this change; resend it"
            )
        else:
            # A value the checks let through and the database cannot hold: a bug of ours,
            # logged for the operators; the change is kept, rejected, for an admin.
            log.error("the database refused change %s", change.change_id, exc_info=refused)
            rejection = Rejected("id", "storage_error", "the database refused this change")
        with self.session.begin_nested():
            result = self.receipts.reject(principal, change, document, rejection, digest)
            self.ws.flush()
        return result


def _stored(session: Session, change_ids: list[uuid.UUID]) -> dict[uuid.UUID, Mapping[str, Any]]:
    """The changes of this batch the server has already received, by id."""
    table = SyncChange.__table__  # type: ignore[attr-defined]
    rows = session.connection().execute(
        sa.select(table.c.change_id, table.c.content_hash, table.c.device_id, table.c.result).where(
            one_of(session, table.c.change_id, in_order(set(change_ids)))
        )
    )
    return {row.change_id: dict(row._mapping) for row in rows}


def _replay(
    prior: Mapping[str, Any], change: Change, ready: Prepared, device_id: uuid.UUID
) -> ChangeResult:
    """The answer to a change whose ``change_id`` is stored (``prior``): its first
    answer again if it is the same change from the same device, else a rejection."""
    same = same_content(prior["content_hash"], ready.document, ready.digest)
    if same and prior["device_id"] == device_id:
        return ChangeResult.model_validate({**prior["result"], "replayed": True})
    return ChangeResult(
        change_id=change.change_id,
        status=Status.rejected,
        errors=[
            ChangeError(
                field="change_id",
                code="change_id_reused",
                message="this change_id was already used for another change",
            )
        ],
    )
