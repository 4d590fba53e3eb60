"""Charts drawn on the server as SVG: no script, no CDN, works offline and on phones."""
from __future__ import annotations

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 640, 220, 36, 28, 16


def bar_chart(labels: list[str], values: list[int], title: str) -> Markup:
    """A bar chart with a value on each bar, scaled to the largest value."""
    top = max(values + [1])
    slot = (WIDTH - PAD_LEFT) / max(len(values), 1)
    plot = HEIGHT - PAD_BOTTOM - PAD_TOP
    parts = [f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" class="chart">',
             f"<title>{escape(title)}</title>",
             f'<line x1="{PAD_LEFT}" y1="{HEIGHT - PAD_BOTTOM}" x2="{WIDTH}" y2="{HEIGHT - PAD_BOTTOM}" stroke="#ccc"/>']
    for i, (label, value) in enumerate(zip(labels, values)):
        height = plot * value / top
        x, y = PAD_LEFT + i * slot + slot * 0.15, HEIGHT - PAD_BOTTOM - height
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{height:.1f}" fill="#c62828" rx="2"/>')
        parts.append(f'<text x="{x + slot * 0.35:.1f}" y="{y - 3:.1f}" font-size="11" text-anchor="middle">{value}</text>')
        parts.append(f'<text x="{x + slot * 0.35:.1f}" y="{HEIGHT - 10}" font-size="10" text-anchor="middle" '
                     f'fill="#666">{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
