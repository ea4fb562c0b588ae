"""The programme's charts as inline SVG: pure functions of the figures, no script, no
style attribute (the console's pages allow only its own style sheet), drawn by the
classes of ``static/console.css``.

Every text is handed in already said and formatted in the viewer's language; the
functions only place it. Each chart has its title for screen readers, and the page
shows the same figures in a table beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

WIDTH = 520
"""Narrow enough that the text (14 units, ``.figures-chart``) stays legible on a phone."""
SERIES_CLASSES = 4
"""Series are drawn ``series-0`` … ``series-3``, then again from the first."""
LABEL_CHARACTERS = 24
CHARACTER_WIDTH = 8.0
"""About how wide a character of the charts' text is, to cut a legend to its room."""


@dataclass(frozen=True)
class Series:
    """One kind of bar in every group: its name in the legend, a value per group and
    each value as written above its bar."""

    label: str
    values: Sequence[float]
    texts: Sequence[str]


@dataclass(frozen=True)
class Share:
    """One bar of a share chart: a fraction 0 to 1 (None: nothing to divide by)."""

    label: str
    value: float | None
    text: str


def _text(x: float, y: float, words: str, *, anchor: str = "start", kind: str = "") -> str:
    kind_attribute = f' class="{kind}"' if kind else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{kind_attribute}>'
        f"{escape(words)}</text>"
    )


def _short(label: str, characters: int = LABEL_CHARACTERS) -> str:
    return label if len(label) <= characters else label[: characters - 1].rstrip() + "…"


def _svg(height: float, title: str, body: list[str]) -> Markup:
    return Markup(  # noqa: S704 (every text above went through escape)
        f'<svg class="chart figures-chart" viewBox="0 0 {WIDTH} {height:.0f}" '
        f'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def grouped_bars(groups: Sequence[str], series: Sequence[Series], *, title: str) -> Markup:
    """Bars side by side in each group (a year), one per series (a programme), on one
    scale from zero; a legend above. Groups without any value still take their place."""
    top, bottom, left, right = 46.0, 26.0, 8.0, 8.0
    height = 260.0
    plot_height = height - top - bottom
    largest = max((v for s in series for v in s.values), default=0.0) or 1.0
    body: list[str] = []
    room = (WIDTH - left - right) / max(len(series), 1)
    for index, one in enumerate(series):  # the legend
        x = left + index * room
        body.append(
            f'<rect class="series-{index % SERIES_CLASSES}" x="{x:.1f}" y="6" '
            'width="14" height="14"/>'
        )
        body.append(_text(x + 18, 18, _short(one.label, int((room - 24) / CHARACTER_WIDTH))))
    body.append(
        f'<line class="axis" x1="{left}" y1="{height - bottom}" '
        f'x2="{WIDTH - right}" y2="{height - bottom}"/>'
    )
    slot = (WIDTH - left - right) / max(len(groups), 1)
    bar = slot * 0.8 / max(len(series), 1)
    for position, group in enumerate(groups):
        start = left + position * slot + slot * 0.1
        for index, one in enumerate(series):
            value = one.values[position] if position < len(one.values) else 0.0
            tall = plot_height * value / largest
            x, y = start + index * bar, height - bottom - tall
            body.append(
                f'<rect class="series-{index % SERIES_CLASSES}" x="{x:.1f}" y="{y:.1f}" '
                f'width="{max(bar - 1, 1):.1f}" height="{tall:.1f}"/>'
            )
            if value and position < len(one.texts):
                body.append(_text(x + bar / 2, y - 4, one.texts[position], anchor="middle"))
        body.append(_text(start + slot * 0.4, height - 6, group, anchor="middle"))
    return _svg(height, title, body)


def share_bars(shares: Sequence[Share], *, title: str) -> Markup:
    """One bar per row (a community) from 0 to 1, the share written after it; a row
    with nothing to divide by has no bar, only its text."""
    row, label_width, text_width = 24.0, 200.0, 60.0
    height = row * len(shares) + 10
    scale = WIDTH - label_width - text_width - 10
    body = [f'<line class="axis" x1="{label_width}" y1="0" x2="{label_width}" y2="{height:.0f}"/>']
    for index, share in enumerate(shares):
        y = 5 + index * row
        body.append(_text(label_width - 6, y + 17, _short(share.label), anchor="end"))
        length = scale * min(max(share.value or 0.0, 0.0), 1.0)
        if share.value is not None:
            body.append(
                f'<rect class="series-0" x="{label_width:.1f}" y="{y + 3:.1f}" '
                f'width="{length:.1f}" height="{row - 6:.1f}"/>'
            )
        body.append(_text(label_width + length + 6, y + 17, share.text))
    return _svg(height, title, body)
