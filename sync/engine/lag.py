"""How far each device's pull cursor is behind the newest change in its scope.

A device's last noted pull (``sync.accounts.contact``) says the change number it had
everything up to. What its scope holds after that number is read the way pull reads
it, by parts (``sync.engine.pull.Part``), but only at the ends of each part's index
range: the newest change of a part, and the first one after the device's number, are
one index seek each — never a count, nor a scan of the change log per device. A part
whose newest change the device already has is not asked about at all.

So the lag is told as *since when* a device has been missing changes (the oldest
change waiting for it) and *up to which change number*, not as a count of them. The
exits of records that left a part (``sync_exit``) are changes of the part too, read
the same way.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from schemas import Community, SyncEntry, SyncExit, UserCommunity, UserSector
from schemas.enums import Role
from sync.accounts.principal import OFFICE_ROLES
from sync.engine.cursor import Scope
from sync.engine.pull import SECTOR_ROLES, Part, parts

# Index seeks per statement: SQLite refuses a compound SELECT of more than 500 terms.
SEEKS_PER_STATEMENT = 200


@dataclass(frozen=True)
class Holder:
    """A device as its lag is asked: whose it is and the number its pulls reached."""

    device_id: uuid.UUID
    user_id: uuid.UUID
    role: Role
    pulled_seq: int | None  # None: it never pulled


@dataclass(frozen=True)
class Lag:
    newest_seq: int | None  # the newest change in its scope (None: its scope is empty)
    waiting_since: datetime | None  # when the oldest change it has not pulled was made


def lags(session: Session, holders: Iterable[Holder]) -> dict[uuid.UUID, Lag]:
    """Each device's lag, by device id: a few statements whatever the number of devices."""
    holders = list(holders)
    scopes = _scopes(session, holders)
    every = {part for scope in scopes.values() for part in parts(scope)}
    newest = _ends(session, [(part, None) for part in every])
    # Only the parts holding something newer than the device's number are asked for
    # the first change after it.
    asked = {
        (part, holder.pulled_seq or 0)
        for holder in holders
        for part in parts(scopes[holder.device_id])
        if (newest.get((part, None)) or 0) > (holder.pulled_seq or 0)
    }
    first = _ends(session, list(asked))
    made = _made_at(session, first.values())
    answer: dict[uuid.UUID, Lag] = {}
    for holder in holders:
        mine = parts(scopes[holder.device_id])
        tops = [newest[part, None] for part in mine if newest.get((part, None)) is not None]
        after = holder.pulled_seq or 0
        waiting = [first[part, after] for part in mine if first.get((part, after)) is not None]
        answer[holder.device_id] = Lag(
            newest_seq=max(tops, default=None),
            waiting_since=made.get(min(waiting)) if waiting else None,
        )
    return answer


def _scopes(session: Session, holders: list[Holder]) -> dict[uuid.UUID, Scope]:
    """Each device's scope now, read for all of them at once (``pull.current_scope``
    reads one principal's)."""
    users = {holder.user_id for holder in holders}
    sectors: dict[uuid.UUID, set[uuid.UUID]] = {}
    for user_id, sector_id in session.exec(
        select(UserSector.user_id, UserSector.sector_id).where(col(UserSector.user_id).in_(users))
    ):
        sectors.setdefault(user_id, set()).add(sector_id)
    communities: dict[uuid.UUID, set[uuid.UUID]] = {}
    their_sectors: dict[uuid.UUID, set[uuid.UUID]] = {}
    for user_id, community_id, sector_id in session.exec(
        select(UserCommunity.user_id, UserCommunity.community_id, Community.sector_id)
        .join(Community, col(Community.id) == UserCommunity.community_id)
        .where(col(UserCommunity.user_id).in_(users))
    ):
        communities.setdefault(user_id, set()).add(community_id)
        their_sectors.setdefault(user_id, set()).add(sector_id)
    scopes: dict[uuid.UUID, Scope] = {}
    for holder in holders:
        user = holder.user_id
        if holder.role in OFFICE_ROLES:
            scope = Scope(role="all")
        elif holder.role in SECTOR_ROLES:
            scope = Scope(role="sectors", sector_ids=frozenset(sectors.get(user, ())))
        else:
            scope = Scope(
                role="communities",
                sector_ids=frozenset(their_sectors.get(user, ())),
                community_ids=frozenset(communities.get(user, ())),
            )
        scopes[holder.device_id] = scope
    return scopes


Seek = tuple[Part, int | None]


def _ends(session: Session, seeks: list[Seek]) -> dict[Seek, int]:
    """For each (part, number): the newest change of the part (number ``None``), or the
    first one after the number; parts with none are left out."""
    found: dict[Seek, int] = {}
    for start in range(0, len(seeks), SEEKS_PER_STATEMENT):
        chunk = seeks[start : start + SEEKS_PER_STATEMENT]
        terms = [
            sa.select(sa.literal(index).label("seek"), end.label("seq"))
            for index, (part, after) in enumerate(chunk)
            for end in (_end(part, after), _exit_end(part, after))
            if end is not None
        ]
        query = terms[0] if len(terms) == 1 else sa.union_all(*terms)
        for index, seq in session.execute(query):
            if seq is None:
                continue
            seek = chunk[index]
            # A part's end is its entries' or its exits', whichever is further out.
            pick = max if seek[1] is None else min
            found[seek] = pick(found.get(seek, seq), seq)
    return found


def _end(part: Part, after: int | None) -> sa.ScalarSelect[int | None]:
    """One index seek: the newest change number of ``part``, or its first after ``after``."""
    seq = col(SyncEntry.change_seq)
    numbered = [] if after is None else [seq > after]
    if part.kind == "sector_row":
        # The sector's own entry, by primary key: one row, so no aggregate — with one,
        # PostgreSQL walked the sector's whole scope index backwards looking for it.
        own = col(SyncEntry.entity) == "sector"
        return sa.select(seq).where(own, part.where, *numbered).scalar_subquery()
    # The scope parts are ranges of (key, change number) indexes: their end is a seek.
    # The unscoped entries are a few, in a partial index that is not in change-number
    # order: aggregated (``+ 0``), never found by walking the whole log from its end.
    value: Any = seq + 0 if part.kind == "category" else seq
    end = sa.func.max(value) if after is None else sa.func.min(value)
    return sa.select(end).where(part.where, *numbered).scalar_subquery()


def _exit_end(part: Part, after: int | None) -> sa.ScalarSelect[int | None] | None:
    """As ``_end``, of the exits of the records that left the part (None: a part that
    is never left)."""
    if part.exits is None:
        return None
    seq = col(SyncExit.change_seq)
    numbered = [] if after is None else [seq > after]
    end = sa.func.max(seq) if after is None else sa.func.min(seq)
    return sa.select(end).where(part.exits, *numbered).scalar_subquery()


def _made_at(session: Session, numbers: Iterable[int]) -> Mapping[int, datetime]:
    numbers = set(numbers)
    if not numbers:
        return {}
    made: dict[int, datetime] = {}
    for table in (SyncEntry, SyncExit):
        rows = session.exec(
            select(table.change_seq, table.updated_at).where(col(table.change_seq).in_(numbers))
        )
        made.update(rows.all())
    return made


__all__ = ["Holder", "Lag", "lags"]
