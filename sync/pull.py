"""Pull: the records in a device's scope that changed after its cursor, oldest first.

Pages are range scans of ``sync_entry`` by change number (see ``sync.changelog`` for
why that number is commit order). Each entry carries the record's whole current
state, so a record changed many times comes once, at its latest version; a
deleted one comes as ``op: "delete"``.

When the device's scope changes (a ranger moved to another sector, a community
added), the next pulls first **evict** — every record visible under the old scope
and not the new one comes as a delete — then **backfill** — every record visible
under the new scope and not the old, up to the cursor's change number — and then go
on **live** from where the cursor was. The cursor carries the old scope to make
that possible.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

import sqlalchemy as sa
from sqlmodel import Session, col, select

from schemas import Community, Device, SyncEntry
from schemas.enums import Role
from schemas.sync import PulledChange, PullResponse
from sync import changelog
from sync.cursor import Cursor, Scope, decode, encode
from sync.entities import PATROL_ENTITIES, PEOPLE_ENTITIES
from sync.errors import Forbidden, Gone
from sync.principal import Principal
from sync.settings import Settings

SECTOR_ROLES = (Role.ranger, Role.ranger_lead)


class CursorReset(Gone):
    code = "cursor_reset"


def pull(
    session: Session,
    *,
    principal: Principal,
    cursor: str | None,
    limit: int | None,
    settings: Settings,
) -> PullResponse:
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

    handed: list[PulledChange] = []
    while len(handed) < size:
        page, position, done = _page(session, position, size - len(handed))
        handed.extend(page)
        if done:
            break
    has_more = len(handed) >= size
    device = session.get(Device, principal.device_id)
    return PullResponse(
        changes=handed,
        cursor=encode(position, key),
        has_more=has_more,
        last_seq=device.last_seq if device else None,
    )


def _page(session: Session, position: Cursor, room: int) -> tuple[list[PulledChange], Cursor, bool]:
    """One phase's next rows; the new position; whether the pull is caught up."""
    if position.phase == "live":
        rows = _entries(
            session, visible(position.scope), col(SyncEntry.change_seq) > position.seq, room
        )
        last = rows[-1].change_seq if rows else position.seq
        return [_change(r) for r in rows], replace(position, seq=last), len(rows) < room
    assert position.target is not None
    held = [visible(s) for s in (position.scope, *position.also)]
    may_hold, surely_held = sa.or_(*held), sa.and_(*held)
    new = visible(position.target)
    if position.phase == "evict":
        rows = _entries(
            session,
            sa.and_(may_hold, sa.not_(new)),
            col(SyncEntry.change_seq) > position.position,
            room,
        )
        changes = [_change(r, delete=True) for r in rows]
        if len(rows) < room:
            return changes, replace(position, phase="backfill", position=0), False
        return changes, replace(position, position=rows[-1].change_seq), False
    rows = _entries(
        session,
        sa.and_(new, sa.not_(surely_held), sa.not_(col(SyncEntry.deleted))),
        sa.and_(
            col(SyncEntry.change_seq) > position.position,
            col(SyncEntry.change_seq) <= position.seq,
        ),
        room,
    )
    changes = [_change(r) for r in rows]
    if len(rows) < room:
        caught_up = Cursor(epoch=position.epoch, seq=position.seq, scope=position.target)
        return changes, caught_up, False
    return changes, replace(position, position=rows[-1].change_seq), False


def _entries(
    session: Session, where: sa.ColumnElement[bool], after: sa.ColumnElement[bool], room: int
) -> list[SyncEntry]:
    query = select(SyncEntry).where(where, after).order_by(col(SyncEntry.change_seq)).limit(room)
    return list(session.exec(query))


def _change(entry: SyncEntry, *, delete: bool = False) -> PulledChange:
    gone = delete or entry.deleted
    return PulledChange(
        entity=entry.entity,
        id=entry.record_id,
        version=entry.version,
        op="delete" if gone else "upsert",
        fields={} if gone else entry.fields,
        updated_at=entry.updated_at,
    )


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


def visible(scope: Scope) -> sa.ColumnElement[bool]:
    """The entries ``scope`` sees, as a WHERE clause.

    Rangers and ranger leads: patrol records, sectors and communities of their sectors.
    Extension workers: people records and communities of their communities, and the
    sectors those lie in. Everyone: observation categories.
    """
    everyone = col(SyncEntry.entity) == "observation_category"
    if scope.role == "all":
        return sa.true()
    if scope.role == "sectors":
        return sa.or_(
            everyone,
            sa.and_(
                col(SyncEntry.entity).in_((*PATROL_ENTITIES, "sector", "community")),
                col(SyncEntry.sector_id).in_(_ids(scope.sector_ids)),
            ),
        )
    return sa.or_(
        everyone,
        sa.and_(
            col(SyncEntry.entity).in_((*PEOPLE_ENTITIES, "community")),
            col(SyncEntry.community_id).in_(_ids(scope.community_ids)),
        ),
        sa.and_(
            col(SyncEntry.entity) == "sector",
            col(SyncEntry.sector_id).in_(_ids(scope.sector_ids)),
        ),
    )


def _ids(ids: frozenset[uuid.UUID]) -> list[uuid.UUID]:
    return sorted(ids)
