"""Roster import and export: rows of 学号, 姓名, 学院, 支部, 政治面貌, 角色.

Import is all or nothing: every row is checked first, and a file with a bad row changes nothing
unless the caller chooses to skip bad rows.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from openpyxl import Workbook, load_workbook
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from models.members import (ROLE_BY_LABEL, ROLES, STAGES, Member, child_unit, normalise_student_no,
                            school_root)

COLUMNS = ("学号", "姓名", "学院", "支部", "政治面貌", "角色")
REQUIRED = ("学号", "姓名", "学院", "支部")


class RosterFileError(Exception):
    """The file itself cannot be read as a roster (format, header)."""


@dataclass(frozen=True)
class RosterRow:
    student_no: str
    name: str
    college: str
    branch: str
    stage: str
    role: str
    line: int = 0  # where it stood in the file


@dataclass(frozen=True)
class RowError:
    line: int  # as a spreadsheet shows it: the header is line 1
    reason: str


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    skipped: int = 0


def read_table(path: Path | str, content: bytes | None = None) -> list[dict[str, str]]:
    """Rows of a .csv or .xlsx file as dicts keyed by the header; RosterFileError when unreadable."""
    suffix = Path(path).suffix.lower()
    data = content if content is not None else Path(path).read_bytes()
    if suffix == ".csv":
        rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    elif suffix == ".xlsx":
        try:
            sheet = load_workbook(io.BytesIO(data), read_only=True, data_only=True).active
        except Exception as exc:  # openpyxl raises many kinds for a damaged file
            raise RosterFileError(f"无法读取 Excel 文件：{exc.__class__.__name__}") from None
        rows = [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    else:
        raise RosterFileError("只支持 .xlsx 或 .csv 文件")
    if not rows:
        raise RosterFileError("文件是空的")
    header = [h.strip() for h in rows[0]]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise RosterFileError(f"缺少列：{'、'.join(missing)}（需要 {'、'.join(COLUMNS)}）")
    return [{h: (row[i].strip() if i < len(row) and row[i] else "") for i, h in enumerate(header)}
            for row in rows[1:]]


def check_rows(table: list[dict[str, str]]) -> tuple[list[RosterRow], list[RowError]]:
    """Split rows into good ones and errors with their line numbers; blank lines are ignored."""
    good, errors, seen = [], [], {}
    for line, raw in enumerate(table, start=2):
        if not any(raw.values()):
            continue
        row, reason = _check_row(raw)
        if reason is None and row.student_no in seen:
            reason = f"学号 {row.student_no} 与第 {seen[row.student_no]} 行重复"
        if reason:
            errors.append(RowError(line, reason))
        else:
            seen[row.student_no] = line
            good.append(_at_line(row, line))
    return good, errors


def _check_row(raw: dict[str, str]) -> tuple[RosterRow | None, str | None]:
    for column in REQUIRED:
        if not raw.get(column):
            return None, f"{column}为空"
    student_no = normalise_student_no(raw["学号"])
    if not student_no.replace("-", "").replace("_", "").isalnum() or len(student_no) > 32:
        return None, f"学号“{raw['学号']}”只能包含字母和数字"
    stage = raw.get("政治面貌") or "群众"
    if stage not in STAGES:
        return None, f"政治面貌“{stage}”不在 {'、'.join(STAGES)} 之中"
    role = ROLE_BY_LABEL.get(raw.get("角色") or "成员")
    if role is None:
        return None, f"角色“{raw['角色']}”应为 成员、组织员 或 管理员"
    return RosterRow(student_no, raw["姓名"], raw["学院"], raw["支部"], stage, role), None


def _at_line(row: RosterRow, line: int) -> RosterRow:
    return RosterRow(row.student_no, row.name, row.college, row.branch, row.stage, row.role, line)


def apply_rows(session: Session, rows: Iterable[RosterRow], school: str,
               progress: Callable[[int], None] = lambda n: None) -> ImportReport:
    """Upsert members by 学号, creating colleges and branches as needed."""
    report = ImportReport()
    root = school_root(session, school)
    existing = {m.student_no: m for m in session.scalars(select(Member))}
    for row in rows:
        branch = child_unit(session, child_unit(session, root, row.college, "college"), row.branch, "branch")
        member = existing.get(row.student_no)
        if member is None:
            member = Member(student_no=row.student_no)
            session.add(member)
            existing[row.student_no] = member
            report.created += 1
        else:
            report.updated += 1
        member.name, member.org_unit, member.stage, member.role = row.name, branch, row.stage, row.role
        progress(1)
    session.flush()
    return report


def roster_rows(session: Session, query: Select | None = None) -> Iterator[list[str]]:
    """The roster (or the members `query` selects) as rows in import format, header first."""
    yield list(COLUMNS)
    members = session.scalars((query if query is not None else select(Member)).order_by(Member.student_no))
    for m in members:
        college = m.org_unit.parent.name if m.org_unit.parent and m.org_unit.kind == "branch" else ""
        yield [m.student_no, m.name, college, m.org_unit.name, m.stage, ROLES.get(m.role, m.role)]


def write_table(path: Path | str, rows: Iterable[list[str]]) -> int:
    """Write rows to .xlsx or .csv by the file's suffix; returns the number of data rows."""
    rows = list(rows)
    if Path(path).suffix.lower() == ".csv":
        with open(path, "w", newline="", encoding="utf-8-sig") as f:
            csv.writer(f).writerows(rows)
    elif Path(path).suffix.lower() == ".xlsx":
        book = Workbook()
        sheet = book.active
        sheet.title = "名单"
        for row in rows:
            sheet.append(row)
        book.save(path)
    else:
        raise RosterFileError("只支持 .xlsx 或 .csv 文件")
    return len(rows) - 1
