"""Small bar charts drawn on the server as SVG, for the reports' pages: no script, so
they show at a ranger post and print as they are.

A chart is one bar per group, laid sideways: a group's name on the left (cut with
``…`` past ``LABEL_CHARACTERS``, whole in its tooltip), its bar, and its figure as
the page writes it (in the viewer's language) at the bar's end. Bars are drawn to
scale from zero against the largest; a chart reads beside the table that holds
the same figures, which a screen reader and a spreadsheet are given instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 560
ROW = 22
BAR = 14
LABEL_WIDTH = 190
VALUE_WIDTH = 56
LABEL_CHARACTERS = 26


@dataclass(frozen=True)
class Bar:
    """One group of a chart: its name, its figure, and the figure as the page writes it."""

    label: str
    value: float
    text: str


def _n(value: float) -> str:
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def short(label: str, most: int = LABEL_CHARACTERS) -> str:
    """``label`` cut to ``most`` characters, the last one ``…`` when cut."""
    return label if len(label) <= most else label[: most - 1].rstrip() + "…"


def lengths(values: Sequence[float], room: float) -> list[float]:
    """Each bar's length in ``room`` px, to scale from zero against the largest; a
    negative figure (none is expected) is drawn as none."""
    largest = max((value for value in values if value > 0), default=0.0)
    if largest <= 0:
        return [0.0 for _ in values]
    return [max(0.0, value) / largest * room for value in values]


def bar_chart(bars: Sequence[Bar], *, title: str, width: int = WIDTH) -> Markup | None:
    """The chart of ``bars`` as an inline ``<svg>``; ``None`` when there is no bar."""
    if not bars:
        return None
    room = width - LABEL_WIDTH - VALUE_WIDTH
    height = len(bars) * ROW + 4
    body = [f'<line class="axis" x1="{LABEL_WIDTH}" y1="0" x2="{LABEL_WIDTH}" y2="{height}"/>']
    for row, (bar, length) in enumerate(
        zip(bars, lengths([b.value for b in bars], room), strict=True)
    ):
        top = 2 + row * ROW
        middle = top + ROW / 2 + 4
        body.append(
            f"<g><title>{escape(bar.label)}: {escape(bar.text)}</title>"
            f'<text x="{LABEL_WIDTH - 6}" y="{_n(middle)}" text-anchor="end">'
            f"{escape(short(bar.label))}</text>"
            f'<rect class="bar" x="{LABEL_WIDTH}" y="{_n(top + (ROW - BAR) / 2)}" '
            f'width="{_n(length)}" height="{BAR}"/>'
            f'<text x="{_n(LABEL_WIDTH + length + 4)}" y="{_n(middle)}">{escape(bar.text)}</text>'
            "</g>"
        )
    # Every text in it went through escape(); the rest is numbers and fixed markup.
    return Markup(  # noqa: S704
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


__all__ = ["Bar", "bar_chart", "lengths", "short"]
