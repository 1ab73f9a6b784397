"""Small server-side SVG charts: no JavaScript, nothing fetched, readable by screen readers.

Each chart is an `<svg role="img">` labelled by its `<title>` and described by its
`<desc>`; every bar carries its own `<title>` (a tooltip, and what a screen reader reads
on it). The pages put a data table next to each chart as its text alternative. Amounts
become pixels only here (floats are fine for geometry); the figures shown are formatted
by the caller's `fmt` from the exact Decimals.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from math import floor, log10

from markupsafe import Markup, escape

# Colours with at least 3:1 contrast against white (WCAG 1.4.11 for graphics), told
# apart by more than hue alone in the legend (each has its label and the table).
PALETTE = ("#1f5fa8", "#b34700", "#2e7d32", "#7b3fa0", "#a61c3c", "#00695c", "#5d4037")
AGEING_COLOURS = ("#2e7d32", "#8a6d00", "#b34700", "#a61c3c", "#6d1030")

Fmt = Callable[[Decimal], str]


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: Sequence[Decimal]
    colour: str


def nice_max(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10^k at or above `value` (1 for nothing)."""
    if value <= 0:
        return 1.0
    power = 10 ** floor(log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return float(step * power)
    return float(10 * power)  # pragma: no cover (10 always fits)


def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _head(chart_id: str, width: int, height: int, title: str, desc: str, css: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {escape(css)}" '
        f'id="{escape(chart_id)}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc" '
        f'preserveAspectRatio="xMidYMid meet">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-desc">{escape(desc)}</desc>',
    ]


def stacked_bars(
    *,
    chart_id: str,
    title: str,
    desc: str,
    labels: Sequence[str],
    series: Sequence[Series],
    fmt: Fmt,
    width: int = 760,
    height: int = 280,
    label_every: int = 5,
) -> Markup:
    """One vertical bar per label, its series stacked bottom-up in the given order."""
    left, right, top, bottom = 78, 8, 10, 46
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(labels), 1)
    totals = [sum((s.values[i] for s in series), Decimal(0)) for i in range(len(labels))]
    top_value = nice_max(float(max(totals, default=Decimal(0))))
    slot = plot_w / n
    bar_w = max(slot * 0.72, 1.0)
    out = _head(chart_id, width, height, title, desc, "chart-stacked")
    out.append('<g class="axis" aria-hidden="true">')
    for k in range(5):
        tick = top_value * k / 4
        y = top + plot_h - plot_h * k / 4
        out.append(
            f'<line x1="{left}" x2="{width - right}" y1="{_num(y)}" y2="{_num(y)}" '
            f'class="grid"/>'
            f'<text x="{left - 6}" y="{_num(y + 4)}" text-anchor="end">'
            f"{escape(fmt(Decimal(str(tick))))}</text>"
        )
    for i, label in enumerate(labels):
        if i % label_every == 0 or i == len(labels) - 1:
            x = left + slot * i + slot / 2
            out.append(
                f'<text x="{_num(x)}" y="{height - bottom + 16}" text-anchor="middle">'
                f"{escape(label)}</text>"
            )
    out.append("</g>")
    out.append('<g class="bars">')
    for i, label in enumerate(labels):
        x = left + slot * i + (slot - bar_w) / 2
        base = float(top + plot_h)
        parts = [f'<g class="bar" data-label="{escape(label)}" data-total="{totals[i]}">']
        parts.append(f"<title>{escape(label)}: {escape(fmt(totals[i]))}</title>")
        for s in series:
            amount = s.values[i]
            if amount <= 0:
                continue
            h = plot_h * float(amount) / top_value
            base -= h
            parts.append(
                f'<rect x="{_num(x)}" y="{_num(base)}" width="{_num(bar_w)}" '
                f'height="{_num(h)}" fill="{escape(s.colour)}">'
                f"<title>{escape(label)} · {escape(s.name)}: {escape(fmt(amount))}</title></rect>"
            )
        parts.append("</g>")
        out.append("".join(parts))
    out.append("</g>")
    out.append("</svg>")
    return Markup("\n".join(out))  # noqa: S704 (every interpolated value is escaped)


def horizontal_bars(
    *,
    chart_id: str,
    title: str,
    desc: str,
    labels: Sequence[str],
    values: Sequence[Decimal],
    colours: Sequence[str],
    fmt: Fmt,
    width: int = 760,
    row: int = 34,
) -> Markup:
    """One horizontal bar per label, its value written after it."""
    left, right, top = 120, 150, 6
    height = top * 2 + row * len(labels)
    plot_w = width - left - right
    top_value = nice_max(float(max(values, default=Decimal(0))))
    out = _head(chart_id, width, height, title, desc, "chart-hbars")
    out.append('<g class="bars">')
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = top + row * i
        w = plot_w * float(value) / top_value if value > 0 else 0.0
        colour = colours[i % len(colours)]
        out.append(
            f'<g class="bar" data-label="{escape(label)}" data-total="{value}">'
            f"<title>{escape(label)}: {escape(fmt(value))}</title>"
            f'<text x="{left - 8}" y="{_num(y + row / 2 + 5)}" text-anchor="end" '
            f'aria-hidden="true">{escape(label)}</text>'
            f'<rect x="{left}" y="{_num(y + 5)}" width="{_num(w)}" height="{row - 10}" '
            f'fill="{escape(colour)}"/>'
            f'<text x="{_num(left + w + 8)}" y="{_num(y + row / 2 + 5)}" '
            f'aria-hidden="true">{escape(fmt(value))}</text></g>'
        )
    out.append("</g>")
    out.append("</svg>")
    return Markup("\n".join(out))  # noqa: S704 (every interpolated value is escaped)
