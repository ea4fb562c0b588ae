"""The server's own writes of records: a review, a conflict's resolution, a merge of
people, an admin's edit of reference data. One path for all of them, as for a push:
the record's new version number, the version in the change log (who, why), its pull
entry; and ``publish()`` last, which takes the clock (``sync.engine.changelog``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from schemas.records import SyncedColumns
from schemas.types import utcnow
from sync.engine import records
from sync.engine.changelog import MOVED_WITH_PARENT, Changelog, PendingEntry, row_entry
from sync.engine.entities import Catalog, EntitySpec


class ServerWrites:
    """New versions the server makes for ``user_id`` (None: an admin's command),
    published together."""

    def __init__(
        self, session: Session, *, user_id: uuid.UUID | None = None, now: datetime | None = None
    ) -> None:
        self.session = session
        self.user_id = user_id
        self.now = now or utcnow()
        self.log = Changelog(session)

    def save(
        self,
        spec: EntitySpec,
        row: SyncedColumns,
        *,
        op: str,
        reason: str,
        changed: Iterable[str],
    ) -> dict[str, Any]:
        """``row``, changed in place by the caller, as its next version; its state."""
        row.version += 1
        row.updated_at = self.now
        self.session.add(row)
        self.session.flush()
        state = records.state_of(spec, row)
        self.log.version(
            entity=spec.name,
            record_id=row.id,
            version=row.version,
            op=op,
            fields=state,
            changed=sorted(changed),
            user_id=self.user_id,
            device_id=None,
            change_id=None,
            reason=reason,
            recorded_at=None,
            now=self.now,
        )
        self.log.touch(row_entry(spec, row, state))
        return state

    def move_children(self, catalog: Catalog, spec: EntitySpec, row: SyncedColumns) -> None:
        """Move with ``row``, which moved scope, the live records that take their scope
        from it, each as a new version of its own, and theirs in turn."""
        scope = getattr(row, spec.scope_field)
        for child_spec, link in catalog.children_of(spec.name):
            table = child_spec.table
            children = self.session.exec(
                select(table)
                .where(getattr(table, link.field) == row.id, col(table.deleted_at).is_(None))
                .order_by(col(table.id))
                .with_for_update()
            ).all()
            for child in children:
                if getattr(child, child_spec.scope_field) == scope:
                    continue
                setattr(child, child_spec.scope_field, scope)
                self.save(
                    child_spec,
                    child,
                    op="update",
                    reason=MOVED_WITH_PARENT,
                    changed=[child_spec.scope_field],
                )
                self.move_children(catalog, child_spec, child)

    def touch(self, entry: PendingEntry) -> None:
        """Queue the pull entry of a row that keeps no version history (reference data)."""
        self.log.touch(entry)

    def publish(self) -> None:
        """Write the versions and stamp the entries; last, as it takes the clock."""
        self.log.publish()
