"""The SVG charts: scale, bars, stacking, accessibility attributes and escaping."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from lxml import etree

from recaudo.web import charts

SVG = "{http://www.w3.org/2000/svg}"


def fmt(value: Decimal) -> str:
    return f"$ {value:.0f}"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, 1.0), (-5, 1.0), (1, 1.0), (1.01, 2.0), (2, 2.0), (2.4, 2.5), (3, 5.0), (5.5, 10.0),
     (99, 100.0), (4600, 5000.0), (0.03, 0.05)],
)  # fmt: skip
def test_nice_max(value: float, expected: float) -> None:
    assert charts.nice_max(value) == pytest.approx(expected)


def test_stacked_bars_geometry_and_text() -> None:
    series = [
        charts.Series("Oficina", [Decimal(100), Decimal(0), Decimal(300)], "#1f5fa8"),
        charts.Series("Banco <b>&", [Decimal(100), Decimal(0), Decimal(100)], "#b34700"),
    ]
    svg = str(
        charts.stacked_bars(
            chart_id="c1",
            title="Título <x>",
            desc="Descripción",
            labels=["01-03", "02-03", "03-03"],
            series=series,
            fmt=fmt,
            width=400,
            height=200,
        )
    )
    root = etree.fromstring(svg.encode())  # well-formed XML: everything escaped
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "c1-title c1-desc"
    assert root.find(f"{SVG}title").text == "Título <x>"
    bars = root.findall(f"{SVG}g[@class='bars']/{SVG}g")
    assert [b.get("data-total") for b in bars] == ["200", "0", "400"]
    assert [b.find(f"{SVG}title").text for b in bars] == [
        "01-03: $ 200",
        "02-03: $ 0",
        "03-03: $ 400",
    ]
    rects = root.iter(f"{SVG}rect")
    heights = [(r.get("fill"), float(r.get("height"))) for r in rects]
    # Plot height 200 - 10 - 46 = 144 for 500 (the scale's top above 400): 100 -> 28.8.
    assert heights == [("#1f5fa8", 28.8), ("#b34700", 28.8), ("#1f5fa8", 86.4), ("#b34700", 28.8)]
    assert "Banco &lt;b&gt;&amp;: $ 100" in svg
    # Stacked: the second segment sits on top of the first.
    first, second = [r for r in root.iter(f"{SVG}rect")][:2]
    assert float(second.get("y")) + 28.8 == pytest.approx(float(first.get("y")))


def test_horizontal_bars() -> None:
    svg = str(
        charts.horizontal_bars(
            chart_id="a",
            title="Antigüedad",
            desc="d",
            labels=["Al día", "1 a 30 días"],
            values=[Decimal(0), Decimal(250)],
            colours=charts.AGEING_COLOURS,
            fmt=fmt,
        )
    )
    root = etree.fromstring(svg.encode())
    bars = root.findall(f"{SVG}g[@class='bars']/{SVG}g")
    assert [b.get("data-label") for b in bars] == ["Al día", "1 a 30 días"]
    widths = [float(r.get("width")) for r in root.iter(f"{SVG}rect")]
    assert widths == [0.0, 760 - 120 - 150]  # 250 is the scale's top (nice_max: 250)
    assert re.search(r"aria-hidden=\"true\">\$ 250</text>", svg)
