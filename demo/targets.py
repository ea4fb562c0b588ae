"""The programme's figures the demo makes, at full scale or shrunk, and exact splits.

Every count is ``round(full * scale)``, at least 1 (at least 2 for the "few" things a
demo must show: duplicates, folded attendance, conflicts). The reference data — 6
sectors, 20 communities, 5 extension workers, 6 rangers — keeps its size at every
scale: it costs nothing and the stories need all of it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

SECTORS = 6
COMMUNITIES = 20
WORKERS = 5  # extension workers, four home communities each, and one visited
RANGERS = 6


def seeded(seed: str | float) -> random.Random:
    """A generator of seeded demo data (not of secrets)."""
    return random.Random(seed)  # noqa: S311


@dataclass(frozen=True)
class Targets:
    """What the demo makes; the figures the reports must show for it."""

    scale: float
    households: int
    agreements: int  # households with an agreement in force (status active, valid past today)
    participants: int  # unique coffee-training participants, 2018-2020
    women: int  # of them
    coffee_group: int  # people a coffee session is planned for, about
    financial_sessions: int
    school_sessions: int
    young_people: int  # the sum of the school sessions' headcounts
    patrols_per_ranger: int
    duplicates: int  # people registered again on a tablet that never saw them
    double_attendance: int  # attendance recorded by two tablets, folded into one
    conflicts: int  # open conflicts: two tablets editing one field from the same version

    @property
    def men(self) -> int:
        return self.participants - self.women

    @property
    def patrols(self) -> int:
        return self.patrols_per_ranger * RANGERS

    @classmethod
    def at(cls, scale: float) -> Targets:
        if not 0 < scale <= 4:
            raise ValueError("the scale is a number above 0, at most 4")

        def count(full: int, least: int = 1) -> int:
            return max(least, round(full * scale))

        made = cls(
            scale=scale,
            households=count(1600),
            agreements=count(1300),
            participants=count(2800),
            women=count(661),
            coffee_group=22,
            financial_sessions=count(60),
            school_sessions=count(80),
            young_people=count(3300),
            patrols_per_ranger=count(60),
            duplicates=count(12, 2),
            double_attendance=count(24, 2),
            conflicts=count(6, 2),
        )
        if made.households < COMMUNITIES:
            raise ValueError(
                f"at scale {scale} there are fewer households than the {COMMUNITIES} "
                f"communities; use a scale of at least {COMMUNITIES / 1600}"
            )
        if made.women > made.participants or made.young_people < made.school_sessions:
            raise ValueError(f"scale {scale} is too small for the programme's figures")
        return made


def split(total: int, parts: int, rng: random.Random, spread: float = 0.4) -> list[int]:
    """``total`` cut into ``parts`` whole numbers that sum to it exactly, each within
    about ``spread`` of the mean (largest remainders get the odd units)."""
    if parts < 1:
        raise ValueError("at least one part")
    weights = [rng.uniform(1 - spread, 1 + spread) for _ in range(parts)]
    shares = [total * weight / sum(weights) for weight in weights]
    made = [int(share) for share in shares]
    by_remainder = sorted(range(parts), key=lambda i: made[i] - shares[i])
    for index in by_remainder[: total - sum(made)]:
        made[index] += 1
    return made


def at_least_one_each(total: int, parts: int, rng: random.Random) -> list[int]:
    """``split``, with every part at least 1 when ``total`` allows it."""
    if total < parts:
        return split(total, parts, rng)
    return [1 + share for share in split(total - parts, parts, rng, spread=0.6)]
