"""The programme's SVG charts: where bars go, what they say, and that no text a person
typed can break out of its element."""

from __future__ import annotations

import re
from xml.etree import ElementTree

import pytest

from api.console.figures_charts import Series, Share, grouped_bars, share_bars

SVG = "{http://www.w3.org/2000/svg}"


def parsed(svg: str) -> ElementTree.Element:
    return ElementTree.fromstring(svg)  # noqa: S314 (the charts' own SVG)


def bars(svg: str) -> list[dict[str, str]]:
    """The bars drawn, the legend's swatches (at y=6) left out."""
    return [rect.attrib for rect in parsed(svg).iter(f"{SVG}rect") if rect.attrib.get("y") != "6"]


def texts(svg: str) -> list[str]:
    return [text.text or "" for text in parsed(svg).iter(f"{SVG}text")]


def test_grouped_bars_share_one_scale_from_zero() -> None:
    svg = grouped_bars(
        ["2019", "2020"],
        [
            Series("Café", [100.0, 50.0], ["100", "50"]),
            Series("Finanzas", [0.0, 25.0], ["0", "25"]),
        ],
        title="Participantes",
    )

    heights = [float(bar["height"]) for bar in bars(svg)]
    assert heights == [188.0, 0.0, 94.0, 47.0]  # 2019 café, finanzas; 2020 café, finanzas
    assert [bar["class"] for bar in bars(svg)] == ["series-0", "series-1"] * 2
    assert texts(svg) == ["Café", "Finanzas", "100", "2019", "50", "25", "2020"]  # no "0" label
    title = parsed(svg).find(f"{SVG}title")
    assert title is not None
    assert title.text == "Participantes"


@pytest.mark.parametrize(
    ("shares", "widths", "written"),
    [
        ([Share("Yarau", 0.5, "50 %")], [125.0], ["Yarau", "50 %"]),
        ([Share("Yarau", 1.2, "120 %")], [250.0], ["Yarau", "120 %"]),  # never past the end
        ([Share("Yarau", None, "—")], [], ["Yarau", "—"]),  # nothing to divide: no bar
        ([Share("Nueva Alianza del Alto Mayo Norte", 0.0, "0 %")], [0.0],
         ["Nueva Alianza del Alto…", "0 %"]),
    ],
)  # fmt: skip
def test_share_bars_go_from_zero_to_one(
    shares: list[Share], widths: list[float], written: list[str]
) -> None:
    svg = share_bars(shares, title="Cobertura")

    assert [float(bar["width"]) for bar in bars(svg)] == widths
    assert texts(svg) == written


def test_labels_are_escaped() -> None:
    svg = share_bars([Share('<script>"x"</script>', 0.1, "10 %")], title='a "b" <c>')

    assert "<script>" not in svg
    assert re.search(r'aria-label="a &quot;b&quot; &lt;c&gt;"', svg)
    assert texts(svg)[0] == '<script>"x"</script>'


def test_no_group_and_no_series_still_draw() -> None:
    assert "<svg" in grouped_bars([], [], title="Vacío")
    assert "<svg" in share_bars([], title="Vacío")
