"""A patrol's quality flags as its page shows them: each flag's particulars read back
from the detail's JSON values, its times written short in the viewer's language and
zone (the hour alone on the day the patrol started, the date too on another day),
and the observation a flag names given its number on the map.

What each flag means is said in the page's words (``templates/patrols/flags.html``),
after docs/ranger-lead.md: a flag is a question for the ranger, not a verdict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Any

from babel.dates import format_datetime, format_time

from schemas.patrols import PatrolDetail

TIMES = frozenset({"started_at", "ended_at", "from_at", "to_at"})


@dataclass(frozen=True)
class FlagView:
    """One flag: its ``code`` and its particulars, ready for the page."""

    code: str
    facts: Mapping[str, Any]


def when(value: Any, *, day: date | None, zone: tzinfo, lang: str) -> str:
    """A flag's time, short: ``9:45`` on ``day``, ``27/2/26 9:45`` on another."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(moment, datetime):
        return "—"
    if moment.astimezone(zone).date() == day:
        return format_time(moment, format="short", tzinfo=zone, locale=lang)
    return format_datetime(moment, format="short", tzinfo=zone, locale=lang)


def facts_of(
    flag: Mapping[str, Any],
    numbers: Mapping[str, int],
    *,
    day: date | None,
    zone: tzinfo,
    lang: str,
) -> dict[str, Any]:
    """A flag's particulars, times written short; ``observation_number`` beside an
    ``observation_id``, as the list under the map numbers it."""
    facts = {
        key: when(value, day=day, zone=zone, lang=lang) if key in TIMES else value
        for key, value in flag.items()
    }
    observation = flag.get("observation_id")
    if observation is not None:
        facts["observation_number"] = numbers.get(str(observation))
    return facts


def flag_views(detail: PatrolDetail, *, zone: tzinfo, lang: str) -> list[FlagView]:
    """The detail's flags in its order, each ready for the page."""
    numbers = {str(o.id): number for number, o in enumerate(detail.observations, start=1)}
    started = detail.patrol.started_at
    day = started.astimezone(zone).date() if started else None
    return [
        FlagView(
            code=str(flag.get("code")),
            facts=facts_of(flag, numbers, day=day, zone=zone, lang=lang),
        )
        for flag in detail.effort.flags
    ]


__all__ = ["FlagView", "facts_of", "flag_views", "when"]
