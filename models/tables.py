"""The one table reader and writer of every import and export (roster, plan, questions, events ...).

Reads .xlsx, and .csv in UTF-8 (with or without BOM) or GBK/GB18030, as Excel and WPS save them on
Chinese Windows; an unreadable file is one clear sentence. Writes .xlsx and .csv so that no cell is
ever run as a formula by the spreadsheet that opens it.

What one import may read is capped (LIMITS), and a file over a cap is refused at once with a sentence
naming it: an .xlsx is a zip whose sheet may declare a million rows of 16,384 columns in a few bytes,
so the reader never trusts the sheet's declared size and reads only the cells the file holds.
"""
from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from openpyxl import Workbook, load_workbook
from openpyxl.worksheet._reader import WorkSheetParser

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Limits:
    """What one import reads at most (a university's roster fits in one file; a term's plan in far less)."""

    rows: int = 50_000  # data rows, the header not counted
    columns: int = 60
    file_bytes: int = 32 * 1024 * 1024  # the file as uploaded or read from disk
    unpacked_bytes: int = 64 * 1024 * 1024  # an .xlsx's parts once unzipped
    sheets: int = 20
    parts: int = 1000  # files inside an .xlsx


LIMITS = Limits()


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
    data = content if content is not None else _read_file(Path(path))
    if len(data) > LIMITS.file_bytes:
        raise TableError(f"文件太大：每次最多导入 {LIMITS.file_bytes // 2**20} MB，请分成几个文件")
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


def _read_file(path: Path) -> bytes:
    if path.stat().st_size > LIMITS.file_bytes:
        raise TableError(f"文件太大：每次最多导入 {LIMITS.file_bytes // 2**20} MB，请分成几个文件")
    return path.read_bytes()


def _raw_rows(suffix: str, data: bytes) -> list[list[str]]:
    if suffix == ".csv":
        return _csv_rows(data)
    if suffix == ".xlsx":
        _check_package(data)
        try:
            book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
            if len(book.sheetnames) > LIMITS.sheets:
                raise TableError(f"工作簿有 {len(book.sheetnames)} 张工作表，最多 {LIMITS.sheets} 张；"
                                 "只有第一张会被导入，请删去其余的")
            return _sheet_rows(book.active)
        except TableError:
            raise
        except Exception as exc:  # openpyxl raises many kinds for a damaged file
            raise TableError(f"无法读取 Excel 文件（{exc.__class__.__name__}），请确认是 .xlsx 格式") from None
    raise TableError("只支持 .xlsx 或 .csv 文件")


def _csv_rows(data: bytes) -> list[list[str]]:
    rows = []
    try:
        for row in csv.reader(io.StringIO(decode_text(data))):
            if any(v.strip() for v in row):
                _within_limits(len(rows) + 1, len(row))
            rows.append([_from_text_cell(v) for v in row])
    except csv.Error:
        raise TableError("CSV 文件格式不对，请在 Excel 中另存为 .xlsx 后重新上传") from None
    return rows


def _check_package(data: bytes) -> None:
    """Refuse an .xlsx whose parts unzip to more than the limit, before anything is unzipped."""
    try:
        parts = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except zipfile.BadZipFile:
        raise TableError("无法读取 Excel 文件（不是有效的 .xlsx），请确认是 .xlsx 格式") from None
    if len(parts) > LIMITS.parts:
        raise TableError(f"Excel 文件里有 {len(parts)} 个部件，超过 {LIMITS.parts} 个，不像是一张普通的表格")
    if sum(p.file_size for p in parts) > LIMITS.unpacked_bytes:
        raise TableError(f"Excel 文件解压后超过 {LIMITS.unpacked_bytes // 2**20} MB，请删去不需要的内容或分成几个文件")


def _sheet_rows(sheet) -> list[list[str]]:
    """The cells the sheet's XML holds, row by row (a row it skips reads as empty). Its declared
    dimension is never used to pad rows or columns: only what is there is read, up to the limits.
    Uses openpyxl's own row parser (pinned version) under its read-only worksheet."""
    rows: list[list[str]] = []
    with sheet._get_source() as source:
        parser = WorkSheetParser(source, sheet._shared_strings, data_only=True, epoch=sheet.parent.epoch,
                                 date_formats=sheet.parent._date_formats,
                                 timedelta_formats=sheet.parent._timedelta_formats)
        for number, cells in parser.parse():
            values = {c["column"]: c["value"] for c in cells if c["value"] not in (None, "")}
            if not values:
                continue
            _within_limits(number, max(values))
            rows.extend([] for _ in range(number - 1 - len(rows)))
            rows.append([_cell_text(values.get(column)) for column in range(1, max(values) + 1)])
    return rows


def _within_limits(row_number: int, columns: int) -> None:
    """Row `row_number` (1 is the header) holds something in `columns` columns."""
    if row_number > LIMITS.rows + 1:
        raise TableError(f"表格超过 {LIMITS.rows} 行（不含表头），每次最多导入 {LIMITS.rows} 行，请分成几个文件")
    if columns > LIMITS.columns:
        raise TableError(f"第 {row_number} 行有内容写到了第 {columns} 列，每行最多读 {LIMITS.columns} 列，"
                         "请删去多余的列")


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
