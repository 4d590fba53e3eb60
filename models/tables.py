"""The one table reader and writer of every import and export (roster, plan, questions, events ...).

Reads .xlsx, and .csv in UTF-8 (with or without BOM) or GBK/GB18030, as Excel and WPS save them on
Chinese Windows; an unreadable file is one clear sentence. Writes .xlsx and .csv so that no cell is
ever run as a formula by the spreadsheet that opens it.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path

from openpyxl import Workbook, load_workbook

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class TableError(Exception):
    """The file itself cannot be read as the table asked for (format, encoding, header)."""


def decode_text(data: bytes) -> str:
    """A text file as Excel and WPS save it: UTF-8 with or without BOM, or GBK/GB18030."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise TableError("无法识别文件的编码，请在 Excel 中“另存为”CSV UTF-8 或 .xlsx 后重新上传")


def read_table(path: Path | str, content: bytes | None = None, required: Iterable[str] = (),
               columns: Iterable[str] = ()) -> list[dict[str, str]]:
    """Rows of a .csv or .xlsx file as dicts keyed by the header (values trimmed strings; dates as
    YYYY-MM-DD); TableError when the file cannot be read or lacks a `required` column."""
    data = content if content is not None else Path(path).read_bytes()
    rows = _raw_rows(Path(path).suffix.lower(), data)
    if not rows:
        raise TableError("文件是空的")
    header = [h.strip() for h in rows[0]]
    missing = [c for c in required if c not in header]
    if missing:
        raise TableError(f"缺少列：{'、'.join(missing)}（需要 {'、'.join(columns or required)}）")
    return [_row_dict(header, row) for row in rows[1:]]


# The key under which a row carries what it holds in columns without a header (a 7th option typed
# next to the 6th, say), so that an import can refuse it rather than silently drop it.
UNNAMED = "（无表头的列）"


def _row_dict(header: list[str], row: list[str]) -> dict[str, str]:
    cells = {h: (row[i].strip() if i < len(row) and row[i] else "") for i, h in enumerate(header) if h}
    unnamed = [v.strip() for i, v in enumerate(row) if v and v.strip() and (i >= len(header) or not header[i])]
    if unnamed:
        cells[UNNAMED] = "、".join(unnamed)
    return cells


def _raw_rows(suffix: str, data: bytes) -> list[list[str]]:
    if suffix == ".csv":
        try:
            return [[_from_text_cell(v) for v in row] for row in csv.reader(io.StringIO(decode_text(data)))]
        except csv.Error:
            raise TableError("CSV 文件格式不对，请在 Excel 中另存为 .xlsx 后重新上传") from None
    if suffix == ".xlsx":
        try:
            sheet = load_workbook(io.BytesIO(data), read_only=True, data_only=True).active
            return [[_cell_text(v) for v in row] for row in sheet.iter_rows(values_only=True)]
        except Exception as exc:  # openpyxl raises many kinds for a damaged file
            raise TableError(f"无法读取 Excel 文件（{exc.__class__.__name__}），请确认是 .xlsx 格式") from None
    raise TableError("只支持 .xlsx 或 .csv 文件")


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat(" ", "minutes")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def as_text_cell(value):
    """A CSV cell that a spreadsheet will not run as a formula: leading = + - @ tab CR get a quote."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def _from_text_cell(value: str) -> str:
    """Undo as_text_cell: an exported "'=x" reads back as "=x"."""
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_STARTS) else value


def write_table(path: Path | str, rows: Iterable[list], sheet_title: str = "Sheet1") -> int:
    """Write rows to .xlsx or .csv by the file's suffix; returns the number of data rows. Text that
    looks like a formula (a member named =HYPERLINK(...)) is written as text, never as a formula."""
    rows = list(rows)
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        with open(path, "w", newline="", encoding="utf-8-sig") as f:
            csv.writer(f).writerows([as_text_cell(v) for v in row] for row in rows)
    elif suffix == ".xlsx":
        Path(path).write_bytes(xlsx_bytes(rows, sheet_title))
    else:
        raise TableError("只支持 .xlsx 或 .csv 文件")
    return len(rows) - 1


def xlsx_bytes(rows: Iterable[list], sheet_title: str = "Sheet1") -> bytes:
    """Rows as the bytes of an .xlsx workbook, every string cell typed as text."""
    return xlsx_sheets({sheet_title: rows})


def xlsx_sheets(sheets: dict[str, Iterable[list]]) -> bytes:
    """A workbook with one sheet per title, every string cell typed as text."""
    book = Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(list(row))
            for cell in sheet[sheet.max_row]:
                if isinstance(cell.value, str):
                    cell.data_type = "s"  # openpyxl makes any "=..." a formula unless told otherwise
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
