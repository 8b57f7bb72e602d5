"""The cost-quality picture: resolved % (with its 95% interval) against $ per task, one point per
policy. Hand-written SVG: no plotting library, opens in any browser and renders on GitHub."""

from __future__ import annotations

import math
from decimal import Decimal
from xml.sax.saxutils import escape

from anvil.bench.stats import PolicySummary

W, H = 640, 420
LEFT, RIGHT, TOP, BOTTOM = 70, 30, 50, 60
COLOURS = ("#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#be185d", "#4b5563")


def _nice_max(x: float) -> float:
    if x <= 0:
        return 0.01
    step = 10 ** math.floor(math.log10(x))
    for m in (1, 2, 2.5, 5, 10):
        if m * step >= x:
            return m * step
    return x


def frontier_svg(summaries: list[PolicySummary], title: str = "anvil bench: resolved % against $ per task") -> str:
    points = [(s, float(s.per_task or Decimal(0))) for s in summaries if s.tasks]
    x_max = _nice_max(max((x for _, x in points), default=0.0) * 1.15)
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + pw * x / x_max

    def py(rate: float) -> float:
        return TOP + ph * (1 - rate)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           'font-family="Helvetica, Arial, sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">{escape(title)}</text>']
    for i in range(6):  # horizontal grid: 0..100 %
        y = py(i / 5)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        out.append(f'<text x="{LEFT - 8}" y="{y + 4:.1f}" text-anchor="end">{i * 20}%</text>')
    for i in range(5):  # vertical grid: dollars
        x = px(x_max * i / 4)
        out.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + ph}" stroke="#f3f4f6"/>')
        out.append(f'<text x="{x:.1f}" y="{TOP + ph + 18}" text-anchor="middle">${x_max * i / 4:.4g}</text>')
    out.append(f'<line x1="{LEFT}" y1="{TOP + ph}" x2="{W - RIGHT}" y2="{TOP + ph}" stroke="#111827"/>')
    out.append(f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + ph}" stroke="#111827"/>')
    out.append(f'<text x="{LEFT + pw / 2}" y="{H - 18}" text-anchor="middle">$ per task</text>')
    out.append(f'<text transform="translate(18 {TOP + ph / 2}) rotate(-90)" text-anchor="middle">'
               'resolved (95% interval)</text>')
    for i, (s, x) in enumerate(points):
        colour = COLOURS[i % len(COLOURS)]
        lo, hi = s.interval
        cx, cy = px(x), py(s.rate)
        label = f"{s.policy}: {s.resolved}/{s.tasks} ({s.rate:.0%}), ${x:.4g}/task"
        out.append(f'<g class="policy" data-policy="{escape(s.policy)}">')
        out.append(f'<title>{escape(label)}</title>')
        out.append(f'<line x1="{cx:.1f}" y1="{py(lo):.1f}" x2="{cx:.1f}" y2="{py(hi):.1f}" stroke="{colour}" '
                   'stroke-width="2" opacity="0.5"/>')
        out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="6" fill="{colour}"/>')
        anchor, dx = ("end", -10) if cx > LEFT + pw * 0.7 else ("start", 10)
        out.append(f'<text x="{cx + dx:.1f}" y="{cy - 8 - 14 * (i % 2):.1f}" text-anchor="{anchor}" '
                   f'fill="{colour}">{escape(label)}</text>')
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"
