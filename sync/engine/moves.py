"""Moving a record to another sector or community, as the office does it from the
console or the API (a tablet moves one by an ordinary update, ``sync.engine.decide``).

The record takes a new version in its new scope, and so does each record that takes
its scope from it (a patrol's track and observations), as a push would make them; the
change log tells the tablets of both scopes (``sync.engine.changelog``). The mover
must hold both scopes, as a pusher must.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlmodel import Session

from sync.accounts.principal import Principal
from sync.engine import records
from sync.engine.changelog import Changelog
from sync.engine.entities import Catalog
from sync.engine.rules import Deferred, Rejected, Rules
from sync.engine.workspace import Workspace
from sync.engine.writes import ServerWrites
from sync.platform.errors import FieldProblem, NotFound, Unprocessable

# The reason of the version a record takes when the office moves it.
MOVED = "moved"


@dataclass(frozen=True)
class Moved:
    id: uuid.UUID
    version: int
    scope: uuid.UUID


def move(
    session: Session,
    *,
    catalog: Catalog,
    principal: Principal,
    entity: str,
    record_id: uuid.UUID,
    to: uuid.UUID,
) -> Moved:
    """Move a live record to the sector or community ``to`` (its kind of scope);
    nothing happens when it is there already."""
    spec = catalog[entity]
    row = records.load(session, spec, record_id, for_update=True)
    rules = Rules(Workspace(session, Changelog(session), catalog))
    if row is None or row.deleted_at is not None:
        raise NotFound(f"no such {entity}")
    before = getattr(row, spec.scope_field)
    try:
        rules.check_scope_value(principal, spec, {spec.scope_field: before})
    except Rejected:
        raise NotFound(f"no such {entity}") from None
    state = records.state_of(spec, row)
    state[spec.scope_field] = str(to)
    try:
        moved = rules.moved_scope(principal, spec, state, before=before, changed=[spec.scope_field])
        rules.check_references(spec, state)
    except Rejected as rejected:
        raise Unprocessable(
            f"this {entity} cannot move there",
            errors=[
                FieldProblem(e.field.removeprefix("fields."), e.code, e.message)
                for e in rejected.errors
            ],
        ) from None
    except Deferred:  # its parent is gone from under it: nothing to move with
        raise NotFound(f"no such {entity}") from None
    if moved is None:
        return Moved(row.id, row.version, before)
    setattr(row, spec.scope_field, moved)
    writes = ServerWrites(session, user_id=principal.user_id)
    writes.save(spec, row, op="update", reason=MOVED, changed=[spec.scope_field])
    writes.move_children(catalog, spec, row)
    writes.publish()  # last: it takes the clock
    return Moved(row.id, row.version, moved)
