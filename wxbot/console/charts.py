"""Charts drawn on the server as SVG: no script, no CDN, works offline and on phones.

The drawing is sized for a phone (about 360 units wide, labels of 12 to 13 units), so that on a
390-pixel screen the labels stay 11 pixels or more; on a desktop the same drawing is simply larger.
"""
from __future__ import annotations

from markupsafe import Markup, escape

from models.textutil import shorten

WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 360, 200, 8, 26, 22


def percent(part: int, whole: int) -> int:
    """A share as a whole percentage (0 when there is nothing to share)."""
    return round(100 * part / whole) if whole else 0


def text_width(text: str, size: float) -> float:
    """About how wide a label is drawn: a CJK character is square, a digit or letter about half."""
    return sum(size if ord(c) > 0x2E80 else size * 0.58 for c in text)


def bar_chart(labels: list[str], values: list[int | None], title: str, unit: str = "") -> Markup:
    """A bar chart scaled to the largest value. Every value is written on its bar when there is room;
    with many bars, zeros are left unwritten and the unit moves to the title. A day without data
    (None) shows "—", never a zero it is not. The labels along the bottom skip as many as needed
    never to run into each other."""
    known = [v for v in values if v is not None]
    top = max(known + [1])
    slot = (WIDTH - PAD_LEFT) / max(len(values), 1)
    plot = HEIGHT - PAD_BOTTOM - PAD_TOP
    crowded = max((text_width(f"{v}{unit}", 13) for v in known), default=0) > slot * 0.95
    if crowded and unit:
        title, unit = f"{title}（{unit}）", ""
    step = next(n for n in range(1, len(labels) + 1)
                if max((text_width(label, 12) for label in labels), default=0) + 6 <= slot * n)
    parts = [f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" class="chart">',
             f"<title>{escape(title)}</title>",
             f'<line x1="{PAD_LEFT}" y1="{HEIGHT - PAD_BOTTOM}" x2="{WIDTH}" y2="{HEIGHT - PAD_BOTTOM}" '
             'stroke="#ccc"/>']
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        height = plot * (value or 0) / top
        x, y = PAD_LEFT + i * slot + slot * 0.15, HEIGHT - PAD_BOTTOM - height
        middle = x + slot * 0.35
        if height:
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{height:.1f}" '
                         'fill="#c62828" rx="2"/>')
        shown = "—" if value is None else ("" if crowded and value == 0 else f"{value}{unit}")
        if shown:
            half = text_width(shown, 13) / 2
            centre = min(max(middle, half), WIDTH - half)  # never cut at the drawing's edges
            colour = "#999" if value is None else "#222"
            parts.append(f'<text x="{centre:.1f}" y="{max(y - 4, 14):.1f}" font-size="13" text-anchor="middle" '
                         f'fill="{colour}">{escape(shown)}</text>')
        if i % step == 0:
            half = text_width(label, 12) / 2
            centre = min(max(middle, half), WIDTH - half)
            parts.append(f'<text x="{centre:.1f}" y="{HEIGHT - 8}" font-size="12" text-anchor="middle" '
                         f'fill="#555">{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def heat_grid(rows: list[str], columns: list[str], percents: list[list[int]], title: str) -> Markup:
    """A grid of percentages, one row per label, shaded by value (e.g. completion per branch per day)."""
    label_width, cell_w, cell_h, head = 108, 40, 28, 24
    width, height = label_width + cell_w * len(columns), head + cell_h * len(rows) + 4
    # A grid of few columns is narrow: drawn at most 1.4 times its size, its text stays text-sized.
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" class="chart" '
             f'style="max-width: {width * 1.4:.0f}px">',
             f"<title>{escape(title)}</title>"]
    for j, column in enumerate(columns):
        parts.append(f'<text x="{label_width + j * cell_w + cell_w / 2}" y="16" font-size="13" '
                     f'text-anchor="middle" fill="#555">{escape(column)}</text>')
    for i, (label, values) in enumerate(zip(rows, percents, strict=True)):
        y = head + i * cell_h
        parts.append(f'<text x="{label_width - 4}" y="{y + 19}" font-size="13" text-anchor="end">'
                     f'{escape(shorten(label, 8))}</text>')
        for j, value in enumerate(values):
            shade = 0.08 + 0.85 * max(0, min(value, 100)) / 100
            parts.append(f'<rect x="{label_width + j * cell_w + 2}" y="{y + 2}" width="{cell_w - 4}" '
                         f'height="{cell_h - 4}" rx="3" fill="#c62828" fill-opacity="{shade:.2f}"/>')
            parts.append(f'<text x="{label_width + j * cell_w + cell_w / 2}" y="{y + 19}" font-size="13" '
                         f'text-anchor="middle" fill="{"#fff" if value >= 50 else "#333"}">{value}%</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
