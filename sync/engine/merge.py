"""Pure decisions of the sync engine: how a device's update meets the server's record.

No database here: the engine gathers what it needs (the record now, which fields
other devices changed since the version the device last saw) and these functions
decide. Their tests are tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Outcome = Literal["applied", "merged", "conflict"]


@dataclass(frozen=True)
class Merge:
    """What to do with an update: the fields to write, and those in conflict as
    ``{field: (server value, device value)}``."""

    status: Outcome
    apply: dict[str, Any] = field(default_factory=dict)
    conflicts: dict[str, tuple[Any, Any]] = field(default_factory=dict)


def merge_update(
    *, incoming: Mapping[str, Any], current: Mapping[str, Any], changed_by_others: set[str]
) -> Merge:
    """Three-way, field by field.

    ``changed_by_others`` are the fields changed on the server since the device's
    ``base_version`` by anyone but this device: a device never conflicts with itself.

    - A field nobody else changed takes the device's value.
    - A field someone else changed, to the value the device sends too, agrees.
    - A field someone else changed to another value is a conflict: the server keeps
      its value, the device's is kept in the conflict.
    """
    apply: dict[str, Any] = {}
    conflicts: dict[str, tuple[Any, Any]] = {}
    for name, value in incoming.items():
        if name in changed_by_others and current.get(name) != value:
            conflicts[name] = (current.get(name), value)
        else:
            apply[name] = value
    if conflicts:
        return Merge("conflict", apply, conflicts)
    return Merge("merged" if changed_by_others else "applied", apply)


def changed_fields(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """The fields whose value differs, in a stable order."""
    names = sorted(set(before) | set(after))
    return [name for name in names if before.get(name) != after.get(name)]
