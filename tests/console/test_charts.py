"""The reports' bar charts, a pure function: bars to scale from zero, labels cut and
escaped, one bar per group; table-driven."""

from __future__ import annotations

import re

import pytest

from api.console import charts
from api.console.charts import Bar


@pytest.mark.parametrize(
    ("values", "room", "expected"),
    [
        ([], 100, []),
        ([1, 2, 4], 100, [25, 50, 100]),
        ([3], 264, [264]),
        ([0, 0], 100, [0, 0]),
        ([-1, 2], 100, [0, 100]),
        ([0.5, 0.25], 80, [80, 40]),
    ],
)
def test_bars_are_to_scale_from_zero_against_the_largest(
    values: list[float], room: float, expected: list[float]
) -> None:
    assert charts.lengths(values, room) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("label", "most", "expected"),
    [
        ("mar 2026", 26, "mar 2026"),
        ("AM-01 — Alto Mayo cuenca alta", 26, "AM-01 — Alto Mayo cuenca…"),
        ("abcdef", 6, "abcdef"),
        ("abcdefg", 6, "abcde…"),
        ("abcd efg", 6, "abcd…"),
    ],
)
def test_a_long_label_is_cut_with_an_ellipsis(label: str, most: int, expected: str) -> None:
    cut = charts.short(label, most)

    assert cut == expected
    assert len(cut) <= most


def widths(svg: str) -> list[float]:
    return [float(w) for w in re.findall(r'<rect class="bar"[^>]*width="([\d.]+)"', svg)]


@pytest.mark.parametrize(
    ("bars", "expected_widths"),
    [
        ([Bar("feb 2026", 1, "1"), Bar("mar 2026", 2, "2")], [157, 314]),
        ([Bar("AM-01", 0, "0")], [0]),
        ([Bar("a", 3, "3"), Bar("b", 0, "0"), Bar("c", 1.5, "1,5")], [314, 0, 157]),
    ],
)
def test_the_chart_has_a_bar_per_group_with_its_label_and_figure(
    bars: list[Bar], expected_widths: list[float]
) -> None:
    svg = charts.bar_chart(bars, title="Observaciones por mes")

    assert svg is not None
    assert svg.startswith('<svg class="chart"')
    assert "<title>Observaciones por mes</title>" in svg
    assert widths(svg) == pytest.approx(expected_widths)
    for bar in bars:
        assert f">{bar.label}</text>" in svg
        assert f">{bar.text}</text>" in svg


def test_no_group_is_no_chart() -> None:
    assert charts.bar_chart([], title="Nada") is None


def test_labels_and_titles_are_escaped() -> None:
    svg = charts.bar_chart([Bar("<b>x</b> & y", 1, "1")], title="<i>t</i>")

    assert svg is not None
    assert "<b>" not in svg
    assert "<i>" not in svg
    assert "&lt;b&gt;x&lt;/b&gt; &amp; y" in svg
