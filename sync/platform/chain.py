"""The audit chain: each transaction that writes history seals one block, in commit order.

A row of a chained table (``schemas.audit.Chained``) is hashed when it is written:
the SHA-256 of its table's name and its canonical content (every column but the
hash, keys sorted; ``canonical``). Rows written through the ORM are hashed as they
are flushed (``_hash_new_rows``); the versions a push writes by ``COPY`` are hashed
by ``sync.engine.changelog`` with the same function. All carry the transaction's
chain id (``tx_of``).

When the transaction commits (``seal``, a ``before_commit`` hook, so that no writer
can forget it), the hashes of its rows — kept in memory as they are made, and
forgotten with a savepoint rolled back as the rows are — are sorted and digested, and one
``AuditBlock`` is appended: number one past the head, the head's hash, and its own
hash over both and the digest. The head is read under the sync clock's row lock,
which every writer of the change log holds until its commit anyway: blocks are
numbered in commit order with no gap and no fork, and the lock is held one short
read and one insert longer (docs/audit.md).
"""

from __future__ import annotations

import enum
import hashlib
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session, SQLModel

from schemas.audit import AuditBlock, Chained
from schemas.patrols import PatrolReview
from schemas.registry import PersonalDataAccess, PersonMerge
from schemas.sync import RecordVersion, SyncClock

# The chained tables: every version of every field record, every patrol review, every
# merge of people, every time personal data was taken out.
CHAINED: tuple[type[Chained], ...] = (RecordVersion, PatrolReview, PersonMerge, PersonalDataAccess)
FORM = "fieldsync-audit-1"  # names how rows and blocks are hashed
GENESIS = "0" * 64  # the hash before the first block
CLOCK_ID = 1
_TX, _HASHES, _MARKS, _CLOCK = "audit_tx", "audit_hashes", "audit_marks", "audit_clock"


def table_of(model: type[SQLModel]) -> sa.Table:
    return model.__table__  # type: ignore[attr-defined, no-any-return]


TABLES: dict[str, sa.Table] = {table_of(model).name: table_of(model) for model in CHAINED}


def canonical(table: sa.Table, values: Mapping[str, Any]) -> bytes:
    """A row's content as the bytes it is hashed by: every column of ``table`` but
    ``chain_hash``, as JSON with sorted keys; ids as text, times in UTC to the
    microsecond. Null columns are left out, so that a nullable column added to a
    chained table later leaves the rows hashed before it as they were."""
    document = {
        column.key: _plain(value)
        for column in table.columns
        if column.key != "chain_hash" and (value := values.get(column.key)) is not None
    }
    try:
        return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits
        text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return text.encode()


def row_hash(table: sa.Table, values: Mapping[str, Any]) -> str:
    return hashlib.sha256(table.name.encode() + b"\n" + canonical(table, values)).hexdigest()


def block_hash(number: int, prev_hash: str, tx: uuid.UUID, entries: int, digest: str) -> str:
    text = f"{FORM}\n{number}\n{prev_hash}\n{tx}\n{entries}\n{digest}"
    return hashlib.sha256(text.encode()).hexdigest()


def digest_of(hashes: list[str]) -> str:
    """The digest of a block's row hashes, whatever order the rows were written in."""
    return hashlib.sha256("\n".join(sorted(hashes)).encode()).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value


def tx_of(session: Session) -> uuid.UUID:
    """This transaction's chain id, which its chained rows carry and its block names."""
    tx: uuid.UUID = session.info.setdefault(_TX, uuid.uuid4())
    return tx


def _hashes(session: Session) -> list[str]:
    """The hashes of the chained rows this transaction wrote, in memory: the block is
    made of them without reading anything back under the clock's lock."""
    hashes: list[str] = session.info.setdefault(_HASHES, [])
    return hashes


def chained_row(session: Session, table: sa.Table, values: dict[str, Any]) -> dict[str, Any]:
    """``values``, a row about to be written to ``table`` other than by the ORM, with
    its chain id and hash."""
    values["chain_tx"] = tx_of(session)
    values["chain_hash"] = digest = row_hash(table, values)
    _hashes(session).append(digest)
    return values


def clock_taken(session: Session) -> None:
    """Say that this transaction holds the sync clock's row lock until it ends (the
    change log's numbering took it): the seal need not take it again."""
    session.info[_CLOCK] = True


@event.listens_for(Session, "before_flush")
def _hash_new_rows(session: Session, _context: Any, _instances: Any) -> None:
    for instance in session.new:
        if isinstance(instance, CHAINED):
            table = table_of(type(instance))
            instance.chain_tx = tx_of(session)
            values = {column.key: getattr(instance, column.key) for column in table.columns}
            instance.chain_hash = digest = row_hash(table, values)
            _hashes(session).append(digest)


@event.listens_for(Session, "after_transaction_create")
def _mark(session: Session, transaction: SessionTransaction) -> None:
    """A savepoint remembers how many rows were hashed when it began..."""
    if transaction.nested:
        session.info.setdefault(_MARKS, {})[id(transaction)] = len(_hashes(session))


@event.listens_for(Session, "after_soft_rollback")
def _unmark(session: Session, previous: SessionTransaction) -> None:
    """...and forgets, when rolled back, the rows written since, as the database does."""
    if previous.nested:
        session.info.pop(_CLOCK, None)  # a lock taken in it was let go with it
        mark = session.info.get(_MARKS, {}).pop(id(previous), None)
        if mark is not None:
            del _hashes(session)[mark:]


@event.listens_for(Session, "before_commit")
def seal(session: Session) -> None:
    """Append this transaction's block, if it wrote chained rows. Only the head is
    read, under the sync clock's row lock (taken here if the transaction has not
    taken it already), and the block inserted."""
    if session.in_nested_transaction():
        return  # a savepoint released: the hook fires for those too
    session.flush()  # what is still pending is hashed, and takes the chain id
    hashes = session.info.get(_HASHES)
    if not hashes:
        return
    tx = tx_of(session)
    digest = digest_of(hashes)
    connection = session.connection()
    if not session.info.get(_CLOCK):  # else the change log took it already
        clock = table_of(SyncClock)
        connection.execute(sa.select(clock.c.seq).where(clock.c.id == CLOCK_ID).with_for_update())
    blocks = table_of(AuditBlock)
    head = connection.execute(
        sa.select(blocks.c.number, blocks.c.hash).order_by(blocks.c.number.desc()).limit(1)
    ).first()
    number, prev_hash = (head.number + 1, head.hash) if head is not None else (1, GENESIS)
    connection.execute(
        sa.insert(blocks).values(
            number=number,
            tx=tx,
            entries=len(hashes),
            prev_hash=prev_hash,
            hash=block_hash(number, prev_hash, tx, len(hashes), digest),
            sealed_at=datetime.now(UTC),
        )
    )


@event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, transaction: SessionTransaction) -> None:
    """The session's own transaction ended (committed or rolled back; a savepoint's
    end is not): the next one has a chain id and hashes of its own."""
    if transaction.parent is None:
        for key in (_TX, _HASHES, _MARKS, _CLOCK):
            session.info.pop(key, None)
