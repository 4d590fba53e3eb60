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
             f'<line x1="{PAD_LEFT}" y1="{HEIGHT - PAD_BOTTOM}" x2="{WIDTH}" y2="{HEIGHT - PAD_BOTTOM}" '
             'stroke="#ccc"/>']
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        height = plot * value / top
        x, y = PAD_LEFT + i * slot + slot * 0.15, HEIGHT - PAD_BOTTOM - height
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{height:.1f}" '
                     'fill="#c62828" rx="2"/>')
        parts.append(f'<text x="{x + slot * 0.35:.1f}" y="{y - 3:.1f}" font-size="11" '
                     f'text-anchor="middle">{value}</text>')
        parts.append(f'<text x="{x + slot * 0.35:.1f}" y="{HEIGHT - 10}" font-size="10" text-anchor="middle" '
                     f'fill="#666">{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def heat_grid(rows: list[str], columns: list[str], percents: list[list[int]], title: str) -> Markup:
    """A grid of percentages, one row per label, shaded by value (e.g. completion per branch per day)."""
    label_width, cell_w, cell_h, head = 150, 64, 26, 24
    width, height = label_width + cell_w * len(columns), head + cell_h * len(rows) + 4
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" class="chart">',
             f"<title>{escape(title)}</title>"]
    for j, column in enumerate(columns):
        parts.append(f'<text x="{label_width + j * cell_w + cell_w / 2}" y="16" font-size="11" text-anchor="middle" '
                     f'fill="#666">{escape(column)}</text>')
    for i, (label, values) in enumerate(zip(rows, percents, strict=True)):
        y = head + i * cell_h
        parts.append(f'<text x="{label_width - 6}" y="{y + 17}" font-size="12" '
                     f'text-anchor="end">{escape(label[:12])}</text>')
        for j, value in enumerate(values):
            shade = 0.08 + 0.85 * max(0, min(value, 100)) / 100
            parts.append(f'<rect x="{label_width + j * cell_w + 2}" y="{y + 2}" width="{cell_w - 4}" '
                         f'height="{cell_h - 4}" rx="3" fill="#c62828" fill-opacity="{shade:.2f}"/>')
            parts.append(f'<text x="{label_width + j * cell_w + cell_w / 2}" y="{y + 17}" font-size="11" '
                         f'text-anchor="middle" fill="{"#fff" if value >= 50 else "#333"}">{value}%</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
