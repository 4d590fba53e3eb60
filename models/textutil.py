"""Cutting text for a list, a title or a log line: always with an ellipsis, so nobody mistakes the cut
for the whole (the full text is kept wherever it is stored)."""
from __future__ import annotations


def shorten(text: str, limit: int) -> str:
    """`text` in at most `limit` characters, ending in "…" when cut."""
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
