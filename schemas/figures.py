"""Figures as people read them: rounded in JSON answers, exact everywhere else.

The service computes every figure exactly and keeps it exact in its models; only a
JSON answer rounds it, through the types below (a pydantic serializer used in JSON
mode only). A CSV is written from the same models' values, so a spreadsheet computes
with the exact figures and a reader of JSON is not handed fifteen decimals.

========  =========  ==============================================
type      decimals   why that many
========  =========  ==============================================
Km        2          ten metres: finer than any GPS track
Hours     2          under a minute
Rate      2          observations per 10 km
Share     3          a fraction 0 to 1, to a tenth of a percent
Hectares  2          a hundred square metres
========  =========  ==============================================

**Shares are fractions from 0 to 1, named ``*_share``** (``women_share``,
``coverage_share``): the CSV files are read by people who compute with them, and a
fraction multiplies without a ``/ 100``; a percent is a matter of display.
"""

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import PlainSerializer

KM_DIGITS = 2
HOURS_DIGITS = 2
RATE_DIGITS = 2
SHARE_DIGITS = 3
HECTARE_DIGITS = 2


def _rounding(digits: int) -> Callable[[float], float]:
    def rounded(value: float) -> float:
        return round(value, digits)

    return rounded


def _json_rounded(digits: int) -> PlainSerializer:
    return PlainSerializer(_rounding(digits), return_type=float, when_used="json")


Km = Annotated[float, _json_rounded(KM_DIGITS)]
Hours = Annotated[float, _json_rounded(HOURS_DIGITS)]
Rate = Annotated[float, _json_rounded(RATE_DIGITS)]
Share = Annotated[float, _json_rounded(SHARE_DIGITS)]
Hectares = Annotated[float, _json_rounded(HECTARE_DIGITS)]


def _digits_for(key: str) -> int | None:
    """How a figure named ``key`` is rounded; ``None`` for anything else (coordinates,
    times, counts), which is shown as it is."""
    if key == "km" or key.endswith(("_km", "_kmh")):
        return KM_DIGITS
    if key == "minutes" or key.endswith(("_minutes", "_hours")):
        return HOURS_DIGITS
    return None


def round_named_figures(value: Any, digits: int | None = None) -> Any:
    """A JSON document with the floats under figure names rounded: ``km``, ``*_km``,
    ``*_kmh``, ``minutes``, ``*_minutes``, ``*_hours``. A flag's particulars and a
    track's properties carry such figures next to latitudes, which must stay exact."""
    if isinstance(value, dict):
        return {
            key: round_named_figures(item, _digits_for(str(key))) for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [round_named_figures(item) for item in value]
    if isinstance(value, float) and digits is not None:
        return round(value, digits)
    return value


NamedFigures = Annotated[
    dict[str, Any],
    PlainSerializer(round_named_figures, return_type=dict[str, Any], when_used="json"),
]
"""A JSON object whose figures are rounded by name (``round_named_figures``)."""
