"""The extension workers' records as the engine syncs them: people, households and
conservation agreements, in the community they live in.

A person merged into another (``sync.people.duplicates``) lives on in the person
kept: an edit a tablet made offline to the merged one lands on the kept one. A
person's name is also kept folded (no accents, no case), for the office's search.
"""

from __future__ import annotations

from typing import Any

from schemas.enums import Role
from schemas.records import (
    Agreement,
    AgreementFields,
    Household,
    HouseholdFields,
    Person,
    PersonFields,
)
from schemas.text import name_key
from sync.engine.entities import EntitySpec, Parent, Policy, ScopeKind
from sync.engine.rules import as_uuid
from sync.engine.workspace import Record, Workspace

PUSHED_BY = frozenset({Role.admin, Role.coordinator, Role.extension_worker})


class PersonPolicy(Policy):
    def redirect(self, ws: Workspace, row: Record) -> Record | None:
        """The live person ``row`` was merged into, if it was."""
        kept_id = row.values.get("merged_into")
        if kept_id is None:
            return None
        kept = ws.record(row.spec, as_uuid(kept_id), lock=True)
        return kept if kept is not None and not kept.deleted else None


def _folded_name(person: Any) -> dict[str, Any]:
    return {
        "name_key": name_key(
            person["given_names"], person["paternal_surname"], person["maternal_surname"]
        )
    }


PERSON = EntitySpec(
    "person",
    Person,
    PersonFields,
    ScopeKind.community,
    PUSHED_BY,
    policy=PersonPolicy(),
    server_fields=("merged_into",),
    derived=_folded_name,
    derived_columns=("name_key",),
)
HOUSEHOLD = EntitySpec("household", Household, HouseholdFields, ScopeKind.community, PUSHED_BY)
AGREEMENT = EntitySpec(
    "agreement",
    Agreement,
    AgreementFields,
    ScopeKind.community,
    PUSHED_BY,
    parents=(Parent("household_id", "household"),),
)
ENTITIES = (PERSON, HOUSEHOLD, AGREEMENT)
