"""The record types devices sync, and what the engine needs to know of each.

A spec says which table holds the record, which model validates its fields, which
scope it lives in (a sector for patrol records, a community for people records),
which records it hangs from (a change that names a parent the server has not
received yet is deferred until it arrives), and its policy (append-only).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import Any

import sqlalchemy as sa

from schemas.enums import Role
from schemas.records import (
    Agreement,
    AgreementFields,
    Attendance,
    AttendanceFields,
    Fields,
    Household,
    HouseholdFields,
    Observation,
    ObservationFields,
    Patrol,
    PatrolFields,
    Person,
    PersonFields,
    SyncedColumns,
    TrackSegment,
    TrackSegmentFields,
    TrainingSession,
    TrainingSessionFields,
)
from schemas.text import name_key


class Domain(StrEnum):
    patrol = "patrol"  # scoped by sector: rangers and ranger leads
    people = "people"  # scoped by community: extension workers


@dataclass(frozen=True)
class Parent:
    """A record this one hangs from, named by ``field``; ``scope`` when the child takes
    its scope from it (a track segment lies in its patrol's sector)."""

    field: str
    entity: str
    scope: bool = False


@dataclass(frozen=True)
class EntitySpec:
    name: str
    table: type[SyncedColumns]
    fields: type[Fields]
    domain: Domain
    parents: tuple[Parent, ...] = ()
    append_only: bool = False
    # Server-owned columns shown to devices besides the fields (review, merges, scope).
    server_fields: tuple[str, ...] = ()
    # Columns the server derives from the fields in JSON form (a person's folded
    # name), named in ``derived_columns``; never shown to devices.
    derived: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None
    derived_columns: tuple[str, ...] = ()

    @cached_property
    def scope_field(self) -> str:
        return "sector_id" if self.domain is Domain.patrol else "community_id"

    @cached_property
    def settable(self) -> frozenset[str]:
        return frozenset(self.fields.model_fields)

    @cached_property
    def columns(self) -> tuple[str, ...]:
        """Every column of the record's table."""
        return tuple(self.table.__table__.columns.keys())  # type: ignore[attr-defined]

    @cached_property
    def documents(self) -> frozenset[str]:
        """The settable fields stored as JSON documents (members, points, consent)."""
        table = self.table.__table__  # type: ignore[attr-defined]
        return frozenset(n for n in self.settable if isinstance(table.c[n].type, sa.JSON))


ENTITIES: dict[str, EntitySpec] = {
    spec.name: spec
    for spec in (
        EntitySpec(
            "patrol",
            Patrol,
            PatrolFields,
            Domain.patrol,
            server_fields=("reviewed_by", "reviewed_at", "review_comment"),
        ),
        EntitySpec(
            "track_segment",
            TrackSegment,
            TrackSegmentFields,
            Domain.patrol,
            parents=(Parent("patrol_id", "patrol", scope=True),),
            append_only=True,
            server_fields=("sector_id", "point_count"),
        ),
        EntitySpec(
            "observation",
            Observation,
            ObservationFields,
            Domain.patrol,
            parents=(Parent("patrol_id", "patrol", scope=True),),
        ),
        EntitySpec(
            "person",
            Person,
            PersonFields,
            Domain.people,
            server_fields=("merged_into",),
            derived=lambda person: {
                "name_key": name_key(
                    person["given_names"], person["paternal_surname"], person["maternal_surname"]
                )
            },
            derived_columns=("name_key",),
        ),
        EntitySpec("household", Household, HouseholdFields, Domain.people),
        EntitySpec(
            "agreement",
            Agreement,
            AgreementFields,
            Domain.people,
            parents=(Parent("household_id", "household"),),
        ),
        EntitySpec("training_session", TrainingSession, TrainingSessionFields, Domain.people),
        EntitySpec(
            "attendance",
            Attendance,
            AttendanceFields,
            Domain.people,
            parents=(
                Parent("session_id", "training_session", scope=True),
                Parent("person_id", "person"),
            ),
            server_fields=("community_id", "merged_into"),
        ),
    )
}

# Reference data is pulled like records but made only by admins, never pushed.
REFERENCE_ENTITIES = ("sector", "community", "observation_category")

PATROL_ENTITIES = tuple(name for name, spec in ENTITIES.items() if spec.domain is Domain.patrol)
PEOPLE_ENTITIES = tuple(name for name, spec in ENTITIES.items() if spec.domain is Domain.people)

# Which domains each role may push to (admins and coordinators: all).
PUSHABLE: dict[Role, frozenset[Domain]] = {
    Role.admin: frozenset(Domain),
    Role.coordinator: frozenset(Domain),
    Role.ranger_lead: frozenset({Domain.patrol}),
    Role.ranger: frozenset({Domain.patrol}),
    Role.extension_worker: frozenset({Domain.people}),
}
