"""The audit chain: what a transaction writes of history is sealed into blocks, in
commit order.

A row of a chained table (``schemas.audit.Chained``) is hashed when it is written:
the SHA-256 of its table's name and its canonical content (every column but the
hash, keys sorted; ``canonical``), its personal data as pseudonyms (keyed hashes,
``schemas.audit.PSEUDONYMISED``) so that a verifier's bundle can be checked
outside the office without carrying it. Rows written through the ORM are hashed as they
are flushed (``_hash_new_rows``); the versions a push writes by ``COPY`` are hashed
by ``sync.engine.changelog`` with the same function. All carry the chain id of the
block that will seal them (``tx_of``), and their hashes are kept in memory — and
forgotten with a savepoint rolled back, as the rows are.

A block (``Seal``) is appended by the statement that advances the sync clock's row,
which also holds the chain's head (its last number and hash): the change log's
numbering seals what a push wrote in the very statement that takes its numbers
(``Seal.advance``, ``Seal.block``), and whatever is left when the transaction
commits is sealed then (``seal``, a ``before_commit`` hook, so that no writer can
forget it). The row's lock, held by every writer of the change log until it
commits, orders the blocks: no gap, no fork, and no lock or round trip of the
chain's own (docs/audit.md).
"""

from __future__ import annotations

import enum
import functools
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session, SQLModel

from schemas.audit import LINKED, PSEUDONYMISED, AuditBlock, Chained
from schemas.patrols import PatrolReview
from schemas.registry import PersonalDataAccess, PersonMerge
from schemas.sync import CLOCK_ID, RecordVersion, SyncClock
from schemas.types import UTCDateTime
from sync.platform import spliced

# The chained tables: every version of every field record, every patrol review, every
# merge of people, every time personal data was taken out.
CHAINED: tuple[type[Chained], ...] = (RecordVersion, PatrolReview, PersonMerge, PersonalDataAccess)
# The forms rows and blocks are hashed by; a block names its own, and its rows follow it.
FORM_1 = "fieldsync-audit-1"  # every value as held (the blocks before migration 0019)
FORM = "fieldsync-audit-2"  # personal data as its pseudonyms
FORMS = (FORM_1, FORM)
GENESIS = "0" * 64  # the hash before the first block
_TX, _HASHES, _MARKS, _KEY = "audit_tx", "audit_hashes", "audit_marks", "audit_key"

Key = Callable[[], bytes]
"""The pseudonym key, asked for only when a row holds personal data."""


class NoPseudonymKey(RuntimeError):
    """The database has no pseudonym key: it was not migrated (``fieldsync db upgrade``)."""


def table_of(model: type[SQLModel]) -> sa.Table:
    return model.__table__  # type: ignore[attr-defined, no-any-return]


TABLES: dict[str, sa.Table] = {table_of(model).name: table_of(model) for model in CHAINED}


def canonical(
    table: sa.Table, values: Mapping[str, Any], *, key: Key | None = None, form: str = FORM
) -> bytes:
    """A row's content as the bytes it is hashed by: every column of ``table`` but
    ``chain_hash``, as JSON with sorted keys; ids as text, times in UTC to the
    microsecond. Null columns are left out, so that a nullable column added to a
    chained table later leaves the rows hashed before it as they were. In ``FORM``,
    personal data is taken out and written as its pseudonym (``pseudonymised``): the
    same bytes are what a verifier's bundle carries."""
    # orjson writes ids, dates and enums as ``_plain`` would, in C; times it would write
    # in another form, so they are written here.
    document = {
        name: _when(value) if isinstance(value, datetime) else value
        for name in _hashed_columns(table)
        if (value := values.get(name)) is not None
    }
    if form != FORM_1:
        document = pseudonymised(table.name, document, key)
    return _dumps(document)


def _dumps(document: Mapping[str, Any]) -> bytes:
    """``document`` as JSON with sorted keys; a value written once for several documents
    (``sync.platform.spliced``, its text sorted too) spliced in as its text."""
    try:
        return orjson.dumps(document, option=orjson.OPT_SORT_KEYS, default=spliced.orjson_default)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits
        text = json.dumps(
            document,
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            default=_stdlib_default,
        )
        return text.encode()


def _stdlib_default(value: Any) -> Any:
    """What the standard library's writer cannot write, as orjson writes it."""
    return value.value if type(value) is spliced.Spliced else _plain(value)


@functools.cache
def _hashed_columns(table: sa.Table) -> tuple[str, ...]:
    return tuple(column.key for column in table.columns if column.key != "chain_hash")


def pseudonymised(name: str, document: dict[str, Any], key: Key | None) -> dict[str, Any]:
    """``document``, a row of table ``name`` as plain JSON values, with its personal data
    moved to ``pseudonyms``: each value's HMAC-SHA256 with the database's pseudonym
    key, over the field's name, its record (unless ``LINKED``) and the value."""
    in_fields = name == "record_version"  # a version's personal data is in its fields
    entity = document["entity"] if in_fields else name
    source: dict[str, Any] = (document.get("fields") or {}) if in_fields else document
    hidden = {
        field
        for field in PSEUDONYMISED.get(entity, frozenset()) & source.keys()
        if source[field] is not None  # a value not given hides nothing
    }
    if not hidden:
        return document
    if key is None:
        raise NoPseudonymKey(f"a row of {name} holds personal data and no key was given")
    secret = key()
    scope_id = document["record_id"] if in_fields else document.get("id")
    kept = {field: value for field, value in source.items() if field not in hidden}
    shown = {**document, "fields": kept} if in_fields else kept
    shown["pseudonyms"] = {
        field: pseudonym(
            secret,
            f"{entity}.{field}" if (entity, field) in LINKED else f"{entity}.{field}\n{scope_id}",
            source[field],
        )
        for field in sorted(hidden)
    }
    return shown


def pseudonym(secret: bytes, scope: str, value: Any) -> str:
    """The keyed hash a personal value is shown as: equal values in one ``scope`` have
    equal pseudonyms; without the key, no value can be tried against one."""
    mac = _keyed(secret).copy()
    mac.update(scope.encode() + b"\n" + _dumps({"v": value}))
    return mac.hexdigest()


@functools.lru_cache(maxsize=4)
def _keyed(secret: bytes) -> hmac.HMAC:
    """An HMAC-SHA256 keyed with ``secret``, copied for each value. ``hmac.digest``
    lets go of the GIL for every value, however short, and waited up to the interpreter's
    switch interval to have it back while another thread of the process computed: 0.7 ms
    a value against 0.8 µs, measured apart, under a push's locks."""
    return hmac.new(secret, digestmod=hashlib.sha256)


def content_hash(name: str, content: bytes) -> str:
    """A row's hash, from its table's name and its ``canonical`` content."""
    return hashlib.sha256(name.encode() + b"\n" + content).hexdigest()


def row_hash(
    table: sa.Table, values: Mapping[str, Any], *, key: Key | None = None, form: str = FORM
) -> str:
    return content_hash(table.name, canonical(table, values, key=key, form=form))


def block_hash(
    number: int, prev_hash: str, tx: uuid.UUID, entries: int, digest: str, *, form: str = FORM
) -> str:
    text = f"{form}\n{number}\n{prev_hash}\n{tx}\n{entries}\n{digest}"
    return hashlib.sha256(text.encode()).hexdigest()


def digest_of(hashes: list[str]) -> str:
    """The digest of a block's row hashes, whatever order the rows were written in."""
    return hashlib.sha256("\n".join(sorted(hashes)).encode()).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return _when(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _when(value: datetime) -> str:
    """A time in UTC to the microsecond; one without an offset is taken as UTC."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="microseconds")


def head(bind: Session | sa.Connection) -> tuple[int, str]:
    """The chain's head as the sync clock's row keeps it: the last block's number (0
    before the first) and hash."""
    clock = table_of(SyncClock)
    row = bind.execute(
        sa.select(clock.c.chain_number, clock.c.chain_hash).where(clock.c.id == CLOCK_ID)
    ).one()
    return row.chain_number, row.chain_hash


def pseudonym_key(bind: Session | sa.Connection) -> bytes:
    """The database's pseudonym key (migration 0019 draws it)."""
    clock = table_of(SyncClock)
    held = bind.execute(sa.select(clock.c.pseudonym_key).where(clock.c.id == CLOCK_ID)).scalar()
    if not held:
        raise NoPseudonymKey("the database has no pseudonym key: run `fieldsync db upgrade`")
    return bytes.fromhex(held)


def key_read(bind: Session | sa.Connection) -> Key:
    """The pseudonym key, read now: for those who will hash many rows (verify, export)."""
    secret = pseudonym_key(bind)
    return lambda: secret


def key_of(session: Session) -> Key:
    """The pseudonym key of ``session``'s database, read once, when first asked for."""

    def key() -> bytes:
        held: bytes | None = session.info.get(_KEY)
        if held is None:
            held = session.info[_KEY] = pseudonym_key(session)
        return held

    return key


def tx_of(session: Session) -> uuid.UUID:
    """The chain id the rows written now carry, and the block that seals them names."""
    tx: uuid.UUID | None = session.info.get(_TX)
    if tx is None:  # not ``setdefault``: a new id (a system call) for every row written
        tx = session.info[_TX] = uuid.uuid4()
    return tx


def _hashes(session: Session) -> list[str]:
    """The hashes of the chained rows written since the last seal, in memory: a block
    is made of them without reading anything back under the clock's lock."""
    hashes: list[str] = session.info.setdefault(_HASHES, [])
    return hashes


def chained_row(session: Session, table: sa.Table, values: dict[str, Any]) -> dict[str, Any]:
    """``values``, a row about to be written to ``table`` other than by the ORM, with
    its chain id and hash."""
    values["chain_tx"] = tx_of(session)
    values["chain_hash"] = digest = row_hash(table, values, key=key_of(session))
    _hashes(session).append(digest)
    return values


@event.listens_for(Session, "before_flush")
def _hash_new_rows(session: Session, _context: Any, _instances: Any) -> None:
    for instance in session.new:
        if isinstance(instance, CHAINED):
            table = table_of(type(instance))
            instance.chain_tx = tx_of(session)
            values = {column.key: getattr(instance, column.key) for column in table.columns}
            instance.chain_hash = digest = row_hash(table, values, key=key_of(session))
            _hashes(session).append(digest)


@event.listens_for(Session, "after_transaction_create")
def _mark(session: Session, transaction: SessionTransaction) -> None:
    """A savepoint remembers what was hashed, and not yet sealed, when it began..."""
    if transaction.nested:
        marks = session.info.setdefault(_MARKS, {})
        marks[id(transaction)] = (session.info.get(_TX), list(_hashes(session)))


@event.listens_for(Session, "after_soft_rollback")
def _unmark(session: Session, previous: SessionTransaction) -> None:
    """...and goes back to it when rolled back, as the database does: the rows and any
    block written since are gone."""
    if previous.nested:
        mark = session.info.get(_MARKS, {}).pop(id(previous), None)
        if mark is not None:
            tx, hashes = mark
            session.info[_HASHES] = hashes
            if tx is None:
                session.info.pop(_TX, None)
            else:
                session.info[_TX] = tx


@dataclass(frozen=True)
class Seal:
    """A block to append: the chain id its rows carry, how many, and their digest."""

    tx: uuid.UUID
    entries: int
    digest: str

    def advance(self, clock: sa.Table) -> dict[str, Any]:
        """The sync clock row's new chain head, as ``UPDATE … SET`` values: the number
        one past it, the hash before, and the block's hash (``block_hash``, in SQL),
        all of the head as the row lock found it."""
        number = clock.c.chain_number + 1
        text = (
            sa.literal(f"{FORM}\n", sa.String())
            .concat(sa.cast(number, sa.String()))
            .concat("\n")
            .concat(clock.c.chain_hash)
            .concat(f"\n{self.tx}\n{self.entries}\n{self.digest}")
        )
        return {
            "chain_number": number,
            "chain_prev": clock.c.chain_hash,
            "chain_hash": _Sha256Hex(text),
        }

    def returning(self, clock: sa.Table) -> list[sa.Column[Any]]:
        """What the clock's ``UPDATE`` returns for ``block``."""
        return [clock.c.chain_number, clock.c.chain_prev, clock.c.chain_hash]

    def block_after(self, head: Any) -> sa.Insert:
        """The block row, from the clock's new head as returned (a row)."""
        row = sa.select(
            sa.literal(head.chain_number, sa.BigInteger()).label("chain_number"),
            sa.literal(head.chain_prev, sa.String()).label("chain_prev"),
            sa.literal(head.chain_hash, sa.String()).label("chain_hash"),
        ).subquery()
        return self.block(row)

    def block(self, head: Any) -> sa.Insert:
        """The block row, from the clock's new head (a CTE of its ``UPDATE``)."""
        blocks = table_of(AuditBlock)
        return sa.insert(blocks).from_select(
            ["number", "tx", "form", "entries", "prev_hash", "hash", "sealed_at"],
            sa.select(
                head.c.chain_number,
                sa.literal(self.tx, sa.Uuid()),
                sa.literal(FORM, sa.String()),
                sa.literal(self.entries, sa.Integer()),
                head.c.chain_prev,
                head.c.chain_hash,
                sa.literal(datetime.now(UTC), UTCDateTime()),
            ),
        )


class _Sha256Hex(sa.sql.functions.FunctionElement[str]):
    """The SHA-256 of a text (UTF-8) in hex, in SQL: PostgreSQL's own ``sha256``; on
    SQLite the function ``sync.platform.database`` gives each connection."""

    type = sa.String()
    inherit_cache = True


@compiles(_Sha256Hex, "postgresql")
def _sha256_postgresql(element: _Sha256Hex, compiler: Any, **kw: Any) -> str:
    text = compiler.process(element.clauses, **kw)
    return f"encode(sha256(convert_to({text}, 'UTF8')), 'hex')"


@compiles(_Sha256Hex, "sqlite")
def _sha256_sqlite(element: _Sha256Hex, compiler: Any, **kw: Any) -> str:
    return f"fieldsync_sha256({compiler.process(element.clauses, **kw)})"


def sha256_hex(text: str) -> str:
    """What ``_Sha256Hex`` computes, in Python (SQLite's ``fieldsync_sha256``)."""
    return hashlib.sha256(text.encode()).hexdigest()


def pending(session: Session) -> Seal | None:
    """The block this transaction's rows written since the last seal would make;
    None if there are none. They are sealed by ``advance``-ing the clock with it and
    writing its ``block``, then ``sealed``."""
    hashes = session.info.get(_HASHES)
    if not hashes:
        return None
    return Seal(tx_of(session), len(hashes), digest_of(hashes))


def sealed(session: Session) -> None:
    """The rows written so far are sealed: those written next take a new chain id."""
    session.info.pop(_TX, None)
    session.info.pop(_HASHES, None)


@event.listens_for(Session, "before_commit")
def seal(session: Session) -> None:
    """Append the block of what this transaction wrote and the change log did not seal
    (a review's row, personal data taken out): one statement on PostgreSQL, which
    takes the clock's row lock if the transaction has not, and advances its head."""
    if session.in_nested_transaction():
        return  # a savepoint released: the hook fires for those too
    session.flush()  # what is still pending is hashed
    block = pending(session)
    if block is None:
        return
    clock = table_of(SyncClock)
    advance = (
        sa.update(clock)
        .where(clock.c.id == CLOCK_ID)
        .values(**block.advance(clock))
        .returning(*block.returning(clock))
    )
    from sync.platform.database import is_postgresql  # which imports this module

    connection = session.connection()
    if is_postgresql(session):
        head = advance.cte("head")
        connection.execute(block.block(head).add_cte(head))
    else:
        connection.execute(block.block_after(connection.execute(advance).one()))
    sealed(session)


@event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, transaction: SessionTransaction) -> None:
    """The session's own transaction ended (committed or rolled back; a savepoint's
    end is not): the next one starts with nothing hashed."""
    if transaction.parent is None:
        for key in (_TX, _HASHES, _MARKS):
            session.info.pop(key, None)
