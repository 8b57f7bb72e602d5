"""Inline SVG bar charts, drawn on the server so a page reads without JavaScript.

Each chart is a list of bars (label, dollars, and optionally the baseline's
dollars for the same tokens). Dollars are Decimal all the way to the pixel: only
the bar length is a float.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from html import escape


@dataclass(frozen=True)
class Bar:
    label: str
    dollars: Decimal
    baseline: Decimal | None = None  # what the same tokens cost on the baseline model
    unpriced: int = 0  # calls of unknown price in this bar (its dollars are the known part)


def money(d: Decimal | None) -> str:
    if d is None:
        return "unknown"
    return f"${d.quantize(Decimal('0.0001'))}"


def _bar_text(b: Bar) -> str:
    text = money(b.dollars) + (f" + {b.unpriced} unpriced" if b.unpriced else "")
    if b.baseline is not None:
        text += f" (baseline {money(b.baseline)}, saving {money(b.baseline - b.dollars)})"
    return text


def hbar_chart(title: str, bars: list[Bar], *, width: int = 920) -> str:
    """Horizontal bars, one row per label; the baseline as a thin grey bar under each."""
    if not bars:
        return f'<p class="empty">{escape(title)}: no calls recorded</p>'
    label_w, text_w, row_h = 170, 420, 30
    plot_w = width - label_w - text_w
    top = max([b.dollars for b in bars] + [b.baseline or Decimal(0) for b in bars]) or Decimal(1)
    height = 26 + row_h * len(bars)
    out = [f'<svg class="chart" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'xmlns="http://www.w3.org/2000/svg" data-chart="{escape(title)}">',
           f'<title>{escape(title)}</title>',
           f'<text x="0" y="16" class="chart-title">{escape(title)}</text>']
    for i, b in enumerate(bars):
        y = 26 + i * row_h
        w = float(b.dollars / top) * plot_w
        out.append(f'<g class="bar" data-label="{escape(b.label)}" data-dollars="{b.dollars}">'
                   f'<title>{escape(b.label)}: {escape(_bar_text(b))}</title>'
                   f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end" class="label">'
                   f'{escape(b.label[:28])}</text>'
                   f'<rect x="{label_w}" y="{y + 2}" width="{max(w, 1.0):.1f}" height="14" class="spend"/>')
        if b.baseline is not None:
            bw = float(b.baseline / top) * plot_w
            out.append(f'<rect x="{label_w}" y="{y + 18}" width="{max(bw, 1.0):.1f}" height="5" class="baseline"/>')
        out.append(f'<text x="{label_w + plot_w + 6}" y="{y + 14}" class="value">{escape(_bar_text(b))}</text></g>')
    out.append("</svg>")
    return "".join(out)


def day_chart(title: str, bars: list[Bar], *, height: int = 220) -> str:
    """Vertical bars by day; the baseline as an outline behind each day's bar."""
    if not bars:
        return f'<p class="empty">{escape(title)}: no calls recorded</p>'
    col_w, left, bottom = 34, 70, 40
    width = max(left + col_w * len(bars) + 20, 240)
    plot_h = height - bottom - 24
    top = max([b.dollars for b in bars] + [b.baseline or Decimal(0) for b in bars]) or Decimal(1)
    out = [f'<svg class="chart" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'xmlns="http://www.w3.org/2000/svg" data-chart="{escape(title)}">',
           f'<title>{escape(title)}</title>',
           f'<text x="0" y="16" class="chart-title">{escape(title)}</text>',
           f'<text x="{left - 6}" y="{24 + 10}" text-anchor="end" class="axis">{escape(money(top))}</text>',
           f'<text x="{left - 6}" y="{height - bottom}" text-anchor="end" class="axis">$0</text>',
           f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" class="axis-line"/>']
    for i, b in enumerate(bars):
        x = left + i * col_w + 4
        if b.baseline is not None:
            bh = float(b.baseline / top) * plot_h
            out.append(f'<rect x="{x}" y="{height - bottom - bh:.1f}" width="{col_w - 8}" height="{bh:.1f}" '
                       f'class="baseline-outline"/>')
        h = max(float(b.dollars / top) * plot_h, 1.0)
        out.append(f'<g class="bar" data-label="{escape(b.label)}" data-dollars="{b.dollars}">'
                   f'<title>{escape(b.label)}: {escape(_bar_text(b))}</title>'
                   f'<rect x="{x + 4}" y="{height - bottom - h:.1f}" width="{col_w - 16}" height="{h:.1f}" '
                   f'class="spend"/>'
                   f'<text x="{x + col_w / 2 - 4}" y="{height - bottom + 14}" text-anchor="end" class="label" '
                   f'transform="rotate(-40 {x + col_w / 2 - 4} {height - bottom + 14})">{escape(b.label[5:])}</text>'
                   f'</g>')
    out.append("</svg>")
    return "".join(out)
