"""Reading what console forms and query strings send: ids, page numbers, days. Whatever a browser (or
someone typing a URL) sends, the answer is a value in range or None, never an exception; views turn
None into a 400 or a sentence."""
from __future__ import annotations

import io
from collections.abc import Iterable

from flask import send_file
from werkzeug.routing import IntegerConverter

MAX_DB_ID = 2**31 - 1  # PostgreSQL's integer; larger numbers are no row's id
MAX_PAGE = 10_000


def db_id(text: str | None) -> int | None:
    """A row id someone sent, or None when it cannot be one."""
    text = (text or "").strip()
    if text.isascii() and text.isdigit() and len(text) <= 10 and 0 < int(text) <= MAX_DB_ID:
        return int(text)
    return None


def db_ids(values: Iterable[str]) -> list[int]:
    """The ids among `values`; the rest are dropped."""
    return [n for n in map(db_id, values) if n is not None]


def page_number(args) -> int:
    """The `page` query argument, 1 when absent or absurd."""
    page = db_id(args.get("page"))
    return min(page, MAX_PAGE) if page else 1


class DbIdConverter(IntegerConverter):
    """<int:...> in URLs: an id past the database's integer is a 404, not a database error."""

    def __init__(self, url_map, fixed_digits=0, min=None, max=MAX_DB_ID, signed=False):
        super().__init__(url_map, fixed_digits, min, max, signed)


def xlsx_download(content: bytes, filename: str):
    """An .xlsx workbook as a download."""
    return send_file(io.BytesIO(content), as_attachment=True, download_name=filename,
                     mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
