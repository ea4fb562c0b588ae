"""The data model's versions, step by step: how each record type's fields changed.

The data model has one version for the whole app — a change's ``schema_version``, a
tablet's reported ``schema_version`` and a pull's ``?schema_version=`` all name it.
Version ``OLDEST`` is where the history starts; each ``Step`` of ``STEPS`` makes the
next one, and the last makes ``CURRENT``, the version of the fields models in
``schemas/records.py``.

A step holds, per record type whose fields it changes, a ``Cast``:

- ``up``, the *upcaster*: the ``fields`` of a change written in the step's old
  version, as the same change reads in the new one. An ``update`` carries only the
  fields the device changed, so an upcaster converts the fields it is given and adds
  nothing for those it is not (no default for an absent field: the record keeps its
  value). It may refuse what the old version could not hold (``Unconvertible``).
- ``down``, the *downcaster* (optional): a record's whole state in the new version,
  as the old version holds it — what a pull answers a tablet still on the old one.

Record types a step does not name pass through it unchanged. Both are pure functions
of their argument, never mutating it; ``sync.engine.versions`` runs them.
``docs/schema_versions.md`` says how to add the next step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Caster = Callable[[Mapping[str, Any]], dict[str, Any]]


class Unconvertible(ValueError):
    """A change cannot be read in the version it names: ``field`` and ``code`` say why,
    as a rejected change's error does."""

    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Cast:
    """One record type's fields across one step: ``up`` a change's fields, old to new;
    ``down`` a whole record's state, new to old (``None``: the old version cannot be
    answered any more)."""

    up: Caster
    down: Caster | None = None


@dataclass(frozen=True)
class Step:
    """The step that makes version ``makes`` out of ``makes - 1``."""

    makes: int
    summary: str
    casts: Mapping[str, Cast] = field(default_factory=dict)


# ---------------------------------------------------------------- 1 → 2


def observation_gps_up(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Version 1's ``accuracy_m`` (metres) becomes version 2's ``gps: {accuracy_m,
    fix}``. Version 1 did not say how the position was fixed, so ``fix`` is null
    (unknown); an ``accuracy_m`` of null, no accuracy, is no ``gps`` at all."""
    if "gps" in fields:
        raise Unconvertible(
            "fields.gps",
            "unknown_field",
            "gps is a field of schema version 2 and later; this change says version 1",
        )
    if "accuracy_m" not in fields:
        return dict(fields)
    moved = {name: value for name, value in fields.items() if name != "accuracy_m"}
    accuracy = fields["accuracy_m"]
    moved["gps"] = None if accuracy is None else {"accuracy_m": accuracy, "fix": None}
    return moved


def observation_gps_down(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Version 2's ``gps`` as version 1 holds it: its ``accuracy_m`` alone (``fix`` has
    no place in version 1)."""
    if "gps" not in fields:
        return dict(fields)
    moved = {name: value for name, value in fields.items() if name != "gps"}
    gps = fields["gps"]
    moved["accuracy_m"] = gps.get("accuracy_m") if isinstance(gps, Mapping) else None
    return moved


# ---------------------------------------------------------------- the history

OLDEST = 1
STEPS: tuple[Step, ...] = (
    Step(
        2,
        "observation.accuracy_m becomes gps: {accuracy_m, fix}",
        {"observation": Cast(up=observation_gps_up, down=observation_gps_down)},
    ),
)
# Each step makes the version after the one before it (tests/test_versions.py holds it).
CURRENT = OLDEST + len(STEPS)
