"""Pull: the records in a device's scope that changed after its cursor, oldest first.

Pages are range scans of ``sync_entry`` by change number (see ``sync.engine.changelog`` for
why that number is commit order). Each entry carries the record's whole current
state, so a record changed many times comes once, at its latest version; a
deleted one comes as ``op: "delete"``.

When the device's scope changes (a ranger moved to another sector, a community
added), the next pulls first **evict** — every record visible under the old scope
and not the new one comes as a delete — then **backfill** — every record visible
under the new scope and not the old, up to the cursor's change number — and then go
on **live** from where the cursor was. The cursor carries the old scope to make
that possible.

Why a page costs the same with ten thousand entries held or ten million
------------------------------------------------------------------------
What a scope sees is a union of **parts**, each read as one range in change-number
order: everything (the ``change_seq`` index), one sector (``sector_id, change_seq``),
one community (``community_id, change_seq``), the observation categories everyone
sees (a partial index of the entries with no scope key), or a sector's own row (by
primary key). A page merges its parts' ordered scans — PostgreSQL with a Merge Append,
SQLite with its merge of an ordered compound SELECT — and stops as soon as the page
is full. Written as one ``OR``, PostgreSQL read every entry of the scope and sorted
them all for each page, and SQLite walked the change-number index past every entry
of every other sector.

The answer is written as JSON bytes straight from the rows: ``fields`` is read as
the JSON text the database holds and spliced in, never parsed into Python objects
and serialised again, and no model is built per change; that was nearly all of the
cost of a pull. A page is capped in bytes as well as in changes, so that a page of
very long track segments cannot hold the server's memory to ransom.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache
from typing import Any, Literal

import sqlalchemy as sa
from sqlmodel import Session, col, select

from schemas import Community, Device, SyncEntry, SyncExit
from schemas.enums import Role
from sync.accounts.contact import PullNote
from sync.accounts.principal import Principal
from sync.engine import changelog, versions
from sync.engine.cursor import Cursor, Scope, decode, encode
from sync.platform.database import is_postgresql, is_sqlite
from sync.platform.errors import Forbidden, Gone
from sync.platform.settings import Settings

SECTOR_ROLES = (Role.ranger, Role.ranger_lead)

# A page stops growing once it holds this many bytes of JSON, whatever the limit
# asked: enough for a full page of ordinary records (about 3 KB each), while a page of
# 10,000-point track segments (about 1 MB each) stays a few dozen of them.
PAGE_BYTES = 16 * 1024 * 1024
# Rows are fetched from the database this many at a time (a server-side cursor on
# PostgreSQL), so that the driver holds a slice of a page, not all of it: a few hundred
# KB of ordinary records, and never more than ~100 MB even of the longest tracks.
FETCH_ROWS = 100
# Past this many parts, a scope is read by one filtered walk of the change-number
# index instead: it then covers much of the data anyway, and SQLite refuses a compound
# SELECT of more than 500 terms.
MAX_PARTS = 64


# A row of ``_COLUMNS``: entity, record_id, version, deleted, fields, updated_at, change_seq.
EntryRow = sa.Row[str, str, int, bool, str, datetime, int]
EntrySelect = sa.Select[str, str, int, bool, str, datetime, int]


class CursorReset(Gone):
    code = "cursor_reset"


@dataclass(frozen=True)
class Pulled:
    """A page as answered: ``body`` (a ``PullResponse`` as JSON bytes), how many
    changes it holds, and where it leaves the device: ``seq``, the change number it has
    everything up to, and whether it is ``caught_up``. ``note`` is what the device's
    row said of its pulls before (``sync.accounts.contact``)."""

    body: bytes
    changes: int
    seq: int
    caught_up: bool
    note: PullNote


def pull(
    session: Session,
    *,
    principal: Principal,
    cursor: str | None,
    limit: int | None,
    settings: Settings,
    schema_version: int = versions.CURRENT,
) -> Pulled:
    """The next page for the principal's device, its records written in
    ``schema_version`` of the data model (``sync.engine.versions.pull_version``)."""
    if principal.device_id is None:
        raise Forbidden("pulling needs a device's token; enroll the device", code="device_required")
    size = min(limit or settings.pull_default_limit, settings.pull_max_limit)
    top, epoch = changelog.clock(session)
    scope = current_scope(session, principal)
    key = settings.signing_key()
    if cursor is None:
        position = Cursor(epoch=epoch, seq=0, scope=scope)
    else:
        position = decode(cursor, key)
        if position.epoch != epoch or position.seq > top:
            raise CursorReset(
                "this cursor is from another history of the database; push what you hold, "
                "then pull from no cursor"
            )
        if position.phase == "live" and position.scope != scope:
            position = Cursor(
                epoch=epoch, seq=position.seq, scope=position.scope, phase="evict", target=scope
            )
        elif position.target is not None and position.target != scope:
            # The scope changed again during a catch-up: catch up to the newest scope.
            # Part of the cut-short catch-up may have been handed out (deletes of the old
            # scope, records of the old target), so both are remembered: records of
            # either may be held and are evicted, only those of both are surely held.
            also = tuple(dict.fromkeys((*position.also, position.target)))
            position = Cursor(
                epoch=epoch,
                seq=position.seq,
                scope=position.scope,
                phase="evict",
                target=scope,
                also=also,
            )

    page = Page(size=size, max_bytes=PAGE_BYTES, sqlite=is_sqlite(session), version=schema_version)
    while not page.full:
        position, done = _fill(session, position, page)
        if done:
            break
    device = session.exec(
        select(Device.last_seq, Device.last_pull_at, Device.pulled_seq).where(
            Device.id == principal.device_id
        )
    ).one()
    changes = page.count
    body = page.document(cursor=encode(position, key), has_more=page.full, last_seq=device[0])
    note = PullNote(principal.device_id, last_pull_at=device[1], pulled_seq=device[2])
    return Pulled(body, changes, seq=position.seq, caught_up=not page.full, note=note)


# ---------------------------------------------------------------- the page, as JSON


class Page:
    """The changes of one answer, written as JSON while the rows are read.

    Full once it holds ``size`` changes or ``max_bytes`` of JSON; it always takes at
    least one change, however large, so that a pull always moves on, and it never ends
    between two changes of one number, since the cursor it ends on would pass the second
    by (a move's exit could share its number with an entry until 3165e67: such a page
    holds one change more). ``sqlite`` says
    the stored JSON was written by Python's JSON writer, and may hold what JSON cannot
    (see ``_finite_json``); PostgreSQL's JSON types refuse it.
    """

    def __init__(
        self, *, size: int, max_bytes: int, sqlite: bool, version: int = versions.CURRENT
    ) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self.version = version
        self.count = 0
        self.length = 0
        self._fields = _finite_json if sqlite else _as_stored
        self._chunks: list[bytes] = [b'{"changes":[']

    @property
    def full(self) -> bool:
        return self.count >= self.size or self.length >= self.max_bytes

    @property
    def room(self) -> int:
        return self.size - self.count

    def take(self, rows: Iterable[EntryRow], *, delete: bool) -> tuple[int | None, bool]:
        """Write ``rows`` (``room`` of them, and one more read to see whether it shares
        the last one's number) until the page is full: the change number of the last
        one written, and whether ``rows`` ran out (then the part of the pull they came
        from is done)."""
        last = None
        for entity, record_id, version, deleted, fields, updated_at, change_seq in rows:
            if self.full and change_seq != last:
                return last, False
            gone = delete or deleted
            if not gone and versions.needs_downcast(entity, self.version):
                fields = versions.downcast_json(entity, fields, self.version)
            change = (
                f'{"," if self.count else ""}{{"entity":{_quoted(entity)},'
                f'"id":"{_dashed(record_id)}","version":{version},'
                f'"op":"{"delete" if gone else "upsert"}",'
                f'"fields":{"{}" if gone else self._fields(fields)},'
                f'"updated_at":"{_timestamp(updated_at)}"}}'
            ).encode()
            self._chunks.append(change)
            self.count += 1
            self.length += len(change)
            last = change_seq
        return last, True

    def document(self, *, cursor: str, has_more: bool, last_seq: int | None) -> bytes:
        """The whole answer, ``{changes, cursor, has_more, last_seq}`` (the contract's
        shape: the version it is written in is the one the device asked for); the page is
        emptied."""
        tail = json.dumps(
            {"cursor": cursor, "has_more": has_more, "last_seq": last_seq},
            separators=(",", ":"),
        )
        self._chunks.append(b"]," + tail[1:].encode())
        document = b"".join(self._chunks)
        self._chunks = []
        return document


@cache
def _quoted(entity: str) -> str:
    return json.dumps(entity)


def _dashed(record_id: str) -> str:
    """A UUID read as text: PostgreSQL's has its dashes, SQLite stores 32 hex digits."""
    if len(record_id) != 32:
        return record_id
    groups = record_id[:8], record_id[8:12], record_id[12:16], record_id[16:20], record_id[20:]
    return "-".join(groups)


def _timestamp(moment: datetime) -> str:
    """UTC as pydantic writes it, as the rest of the API does: ``…T14:31:07.250000Z``,
    or ``…T14:31:07Z`` on the second."""
    return moment.isoformat().replace("+00:00", "Z")


def _as_stored(stored: str) -> str:
    return stored


def _finite_json(stored: str) -> str:
    """The stored JSON text, unless it holds what JSON cannot. SQLite keeps the text a
    Python JSON writer made, and the standard library's writes a NaN or an infinity as a
    bare ``NaN`` or ``Infinity``, which no device could parse (and one such record would
    stop every device in its scope). Those rare documents are rewritten with ``null`` in
    their place, as the API writes such numbers everywhere else."""
    if "NaN" not in stored and "Infinity" not in stored:
        return stored
    return json.dumps(_finite(json.loads(stored)), ensure_ascii=False, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {name: _finite(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


# ---------------------------------------------------------------- phases


def _fill(session: Session, position: Cursor, page: Page) -> tuple[Cursor, bool]:
    """Fill the page from the position's phase: the new position, and whether the pull
    is caught up."""
    if position.phase == "live":
        # A device that holds nothing (no number yet) has nothing to hear leave.
        exits = Exits(position.scope, after=position.seq) if position.seq else None
        last, ran_out = _take(session, page, parts(position.scope), after=position.seq, exits=exits)
        return replace(position, seq=position.seq if last is None else last), ran_out
    assert position.target is not None
    held = [parts(s) for s in (position.scope, *position.also)]
    new = parts(position.target)
    if position.phase == "evict":
        # What may be held and is not visible now, read from the parts that may hold it.
        # And what left those parts after the number the device reached (before it,
        # the device heard of it already).
        last, ran_out = _take(
            session,
            page,
            {part for some in held for part in some if not _within(part, new)},
            where=[sa.not_(visible(position.target))],
            after=position.position,
            delete=True,
            exits=Exits(position.target, after=position.seq),
        )
        if ran_out:
            return replace(position, phase="backfill", position=0), False
        assert last is not None
        return replace(position, position=last), False
    # What is visible now and not surely held, read from the new parts not held by all.
    surely_held = sa.and_(*(visible(s) for s in (position.scope, *position.also)))
    last, ran_out = _take(
        session,
        page,
        {part for part in new if not all(_within(part, some) for some in held)},
        where=[sa.not_(surely_held), sa.not_(col(SyncEntry.deleted))],
        after=position.position,
        upto=position.seq,
    )
    if ran_out:
        caught_up = Cursor(epoch=position.epoch, seq=position.seq, scope=position.target)
        return caught_up, False
    assert last is not None
    return replace(position, position=last), False


# ---------------------------------------------------------------- scopes and their parts


@dataclass(frozen=True)
class Part:
    """One index range of ``sync_entry``; a scope sees the union of its parts.

    - ``everything``: all entries (admins and coordinators);
    - ``category``: the observation categories, which everyone sees;
    - ``sector``: a sector's patrol records, its own row and its communities' rows;
    - ``sector_row``: only a sector's own row (what an extension worker sees of it);
    - ``community``: a community's people records and its own row.

    A part is its scope keys only, never a list of record types: the change log
    writes a sector's key on the entries of the records that lie in it (and on its
    communities' rows), a community's on the records that live in it, and neither
    on what everyone sees (``sync.engine.changelog.entry_of``).
    """

    kind: Literal["everything", "category", "sector", "sector_row", "community"]
    key: uuid.UUID | None = None

    @property
    def where(self) -> sa.ColumnElement[bool]:
        if self.kind == "everything":
            return sa.true()
        if self.kind == "category":
            # Unscoped, as observation categories are: read by the partial index of such entries.
            return sa.and_(
                col(SyncEntry.sector_id).is_(None), col(SyncEntry.community_id).is_(None)
            )
        if self.kind == "sector":
            return col(SyncEntry.sector_id) == self.key
        if self.kind == "sector_row":
            # The record id finds it by primary key; a sector's entry is scoped to itself.
            return sa.and_(
                col(SyncEntry.record_id) == self.key, col(SyncEntry.sector_id) == self.key
            )
        return col(SyncEntry.community_id) == self.key

    @property
    def exits(self) -> sa.ColumnElement[bool] | None:
        """The exits of the records that left this part (``sync_exit``): only a sector
        or a community is ever left; everything, the categories and a sector's own row
        are not."""
        if self.kind == "sector":
            return col(SyncExit.sector_id) == self.key
        if self.kind == "community":
            return col(SyncExit.community_id) == self.key
        return None


EVERYTHING = Part("everything")


def parts(scope: Scope) -> frozenset[Part]:
    """The parts ``scope`` sees.

    Rangers and ranger leads: patrol records, sectors and communities of their sectors.
    Extension workers: people records and communities of their communities, and the
    sectors those lie in. Everyone: observation categories.
    """
    if scope.role == "all":
        return frozenset({EVERYTHING})
    if scope.role == "sectors":
        return frozenset({Part("category"), *(Part("sector", s) for s in scope.sector_ids)})
    return frozenset(
        {
            Part("category"),
            *(Part("sector_row", s) for s in scope.sector_ids),
            *(Part("community", c) for c in scope.community_ids),
        }
    )


def visible(scope: Scope) -> sa.ColumnElement[bool]:
    """The entries ``scope`` sees, as a WHERE clause that is never NULL: a part
    compares a scope key an entry may not have (``community_id = …`` of a patrol
    record is NULL), and ``NOT`` of NULL would drop the entry instead of keeping it."""
    if scope.role == "all":
        return sa.true()
    seen = sa.or_(*(part.where for part in _ordered(parts(scope))))
    return sa.func.coalesce(seen, sa.false())


def _within(part: Part, some: AbstractSet[Part]) -> bool:
    """Whether every entry of ``part`` lies in the union of ``some``."""
    return (
        EVERYTHING in some
        or part in some
        or (part.kind == "sector_row" and Part("sector", part.key) in some)
    )


def _ordered(some: Iterable[Part]) -> list[Part]:
    """The parts without those that others contain, in a stable order (one SQL text
    per shape of scope, for the statement caches)."""
    some = set(some)
    if EVERYTHING in some:
        return [EVERYTHING]
    sectors = {part.key for part in some if part.kind == "sector"}
    kept = [part for part in some if not (part.kind == "sector_row" and part.key in sectors)]
    return sorted(kept, key=lambda part: (part.kind, str(part.key)))


def current_scope(session: Session, principal: Principal) -> Scope:
    """What the device may see now, as the cursor remembers it."""
    if principal.sees_everything:
        return Scope(role="all")
    if principal.role in SECTOR_ROLES:
        return Scope(role="sectors", sector_ids=principal.sector_ids)
    sectors = session.exec(
        select(Community.sector_id).where(col(Community.id).in_(principal.community_ids))
    ).all()
    return Scope(
        role="communities", sector_ids=frozenset(sectors), community_ids=principal.community_ids
    )


# ---------------------------------------------------------------- reading entries

_COLUMNS = (
    col(SyncEntry.entity),
    # Ids and JSON as text: no UUID object made, and no document parsed, per entry.
    sa.cast(col(SyncEntry.record_id), sa.String).label("record_id"),
    col(SyncEntry.version),
    col(SyncEntry.deleted),
    sa.cast(col(SyncEntry.fields), sa.Text).label("fields"),
    col(SyncEntry.updated_at),
    col(SyncEntry.change_seq),
)


def _take(
    session: Session,
    page: Page,
    some: Iterable[Part],
    *,
    where: Iterable[sa.ColumnElement[bool]] = (),
    after: int,
    upto: int | None = None,
    delete: bool = False,
    exits: Exits | None = None,
) -> tuple[int | None, bool]:
    """Fill the page with the entries of the parts ``some`` that meet ``where``, after
    change number ``after`` (and up to ``upto``), and with their ``exits``, oldest
    change first; as ``Page.take``."""
    postgresql = is_postgresql(session)
    query = _query(
        some,
        where=where,
        after=after,
        upto=upto,
        limit=page.room + 1,  # one more, to see that the page ends between two numbers
        postgresql=postgresql,
        exits=exits,
    )
    if query is None:
        return None, True
    options = {"yield_per": FETCH_ROWS}
    with session.connection().execute(query, execution_options=options) as result:
        return page.take(result, delete=delete)


def _query(
    some: Iterable[Part],
    *,
    where: Iterable[sa.ColumnElement[bool]] = (),
    after: int,
    upto: int | None = None,
    limit: int,
    postgresql: bool,
    exits: Exits | None = None,
) -> sa.Executable | None:
    """The query of the first ``limit`` entries of the parts ``some`` that meet
    ``where``, after change number ``after`` (and up to ``upto``), and of their
    ``exits``, oldest change first: one index range scan per part (and per part that
    can be left), merged. ``None`` when there are no parts."""
    ordered = _ordered(some)
    if not ordered:
        return None
    seq = col(SyncEntry.change_seq)
    numbered = [seq > after] if upto is None else [seq > after, seq <= upto]
    if len(ordered) > MAX_PARTS:
        clauses = [sa.or_(*(part.where for part in ordered))]
    else:
        clauses = _disjoint(ordered)
    scans = [sa.select(*_COLUMNS).where(clause, *where, *numbered) for clause in clauses]
    if exits is not None:
        scans += exits.scans(ordered, after=after)
    if len(scans) == 1:
        return scans[0].order_by(seq).limit(limit)
    if postgresql:
        # PostgreSQL merges ordered scans (Merge Append) only of subqueries that are
        # ordered and limited themselves; under one ORDER BY it reads every entry of
        # every part and sorts them, each page.
        # (Each in its own table's order: an entry's change number, or an exit's.)
        limited = [
            sa.select(scan.order_by(scan.selected_columns.change_seq).limit(limit).subquery())
            for scan in scans
        ]
        merged = sa.union_all(*limited).subquery("entry")
        return sa.select(merged).order_by(merged.c.change_seq).limit(limit)
    # SQLite merges the parts of an ordered compound SELECT as it reads them (and
    # would sort the rows of each limited subquery before merging them).
    return sa.union_all(*scans).order_by(sa.literal_column("change_seq")).limit(limit)


@dataclass(frozen=True)
class Exits:
    """The exits a phase reads with its entries, as deletes: those after change number
    ``after``, of the records ``seen_by`` does not see now. A record that left one of
    the device's parts for another it holds is not deleted and sent again: its entry,
    numbered after the exit, comes in the same pull."""

    seen_by: Scope
    after: int

    def scans(self, ordered: list[Part], *, after: int) -> list[EntrySelect]:
        """The scans of the exits of the parts ``ordered``, after ``after`` as well."""
        clauses = [clause for part in ordered if (clause := part.exits) is not None]
        if not clauses:
            return []
        if len(clauses) > MAX_PARTS:
            clauses = [sa.or_(*clauses)]
        still_seen = sa.exists().where(
            col(SyncEntry.entity) == col(SyncExit.entity),
            col(SyncEntry.record_id) == col(SyncExit.record_id),
            visible(self.seen_by),
        )
        since = col(SyncExit.change_seq) > max(after, self.after)
        return [
            sa.select(*_EXIT_COLUMNS).where(clause, since, sa.not_(still_seen))
            for clause in clauses
        ]


# An exit read as an entry row: a delete of the record, at the exit's number.
_EXIT_COLUMNS = (
    col(SyncExit.entity),
    sa.cast(col(SyncExit.record_id), sa.String).label("record_id"),
    col(SyncExit.version),
    sa.true().label("deleted"),
    sa.cast(sa.literal("{}"), sa.Text).label("fields"),
    col(SyncExit.updated_at),
    col(SyncExit.change_seq),
)


def _disjoint(ordered: list[Part]) -> list[sa.ColumnElement[bool]]:
    """The parts' WHERE clauses, made not to overlap, so that ``UNION ALL`` hands each
    entry out once. Only a community's own row can lie in two parts — its community's
    and its sector's, when a catch-up reads both kinds of scope — and is left to the
    sector's."""
    sectors = [part.key for part in ordered if part.kind == "sector"]
    if not sectors:
        return [part.where for part in ordered]
    entity, sector_id = col(SyncEntry.entity), col(SyncEntry.sector_id)
    outside = sa.or_(entity != "community", sector_id.not_in(sectors))
    return [
        sa.and_(part.where, outside) if part.kind == "community" else part.where for part in ordered
    ]
