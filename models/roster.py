"""Roster import and export: rows of 学号, 姓名, 学院, 支部, 政治面貌, 角色.

Import is all or nothing: every row is checked first, and a file with a bad row changes nothing
unless the caller chooses to skip bad rows.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, joinedload

from models.accounts import Scope, audit
from models.followers import Follower
from models.members import (
    ROLE_BY_LABEL,
    ROLES,
    STAGES,
    Member,
    OrgUnit,
    child_unit,
    new_bind_code,
    normalise_student_no,
    role_change_refusal,
    school_root,
)
from models.tables import read_table

COLUMNS = ("学号", "姓名", "学院", "支部", "政治面貌", "角色")
REQUIRED = ("学号", "姓名", "学院", "支部")


@dataclass(frozen=True)
class RosterRow:
    student_no: str
    name: str
    college: str
    branch: str
    stage: str
    role: str
    line: int = 0  # where it stood in the file
    bind_code: str = ""  # optional column 绑定码: a one-time binding code handed out with the roster


@dataclass(frozen=True)
class RowError:
    line: int  # as a spreadsheet shows it: the header is line 1
    reason: str


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    skipped: int = 0
    # (member, role before, role after) for every member whose role the file set or changed
    role_changes: list[tuple[Member, str, str]] = field(default_factory=list)


def read_roster(path: Path | str, content: bytes | None = None) -> list[dict[str, str]]:
    """The rows of a roster file (.xlsx, or .csv in UTF-8 or GBK)."""
    return read_table(path, content, REQUIRED, COLUMNS)


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
    code = raw.get("绑定码", "")
    if code and not (code.isdigit() and 6 <= len(code) <= 12):
        return None, f"绑定码“{code}”应为 6 到 12 位数字"
    return RosterRow(student_no, raw["姓名"], raw["学院"], raw["支部"], stage, role, bind_code=code), None


def _at_line(row: RosterRow, line: int) -> RosterRow:
    return replace(row, line=line)


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
            member = Member(student_no=row.student_no, role="member")
            session.add(member)
            existing[row.student_no] = member
            report.created += 1
        else:
            report.updated += 1
        if member.role != row.role:
            report.role_changes.append((member, member.role, row.role))
        member.name, member.org_unit, member.stage, member.role = row.name, branch, row.stage, row.role
        if row.bind_code:
            member.bind_code = row.bind_code
        progress(1)
    session.flush()
    return report


def audit_role_changes(session: Session, actor, report: ImportReport) -> None:
    """One audit entry per member whose role an import set or changed: who may broadcast is on record."""
    for member, before, after in report.role_changes:
        audit(session, actor, "update", "member", member.student_no,
              f"导入名单：{member.name} 的角色 {ROLES[before]} → {ROLES[after]}",
              {"角色": ROLES[before]}, {"角色": ROLES[after]}, org_unit_id=member.org_unit_id)


def authority_errors(session: Session, rows: list[RosterRow], by_admin: bool, scope: Scope) -> list[RowError]:
    """What the file's author may not do: rows outside their subtree, members of other units, and role
    changes beyond their own authority. An admin (scope None) may do everything."""
    existing = {m.student_no: m for m in session.scalars(select(Member).where(
        Member.student_no.in_([r.student_no for r in rows])))}
    branches = {(u.parent.name if u.parent else "", u.name): u.id
                for u in session.scalars(select(OrgUnit).where(OrgUnit.kind == "branch"))}
    errors = []
    from models.development import stage_refusal
    for row in rows:
        reason = _authority_error(row, existing.get(row.student_no), branches, by_admin, scope)
        if reason is None and row.student_no in existing:
            reason = stage_refusal(session, existing[row.student_no], row.stage)
        if reason:
            errors.append(RowError(row.line, reason))
    return errors


def _authority_error(row: RosterRow, member: Member | None, branches: dict, by_admin: bool,
                     scope: Scope) -> str | None:
    if not scope.everything:
        unit_id = branches.get((row.college, row.branch))
        if unit_id is None:
            return f"支部“{row.college} / {row.branch}”不存在，请先在“组织”页面新建"
        if not scope.allows_unit(unit_id):
            return f"“{row.college} / {row.branch}”不在你负责的范围内"
        if member is not None and not scope.allows_unit(member.org_unit_id):
            return f"学号 {row.student_no} 属于其他组织，不能修改"
    refusal = role_change_refusal(by_admin, member.role if member is not None else "member", row.role)
    return f"{refusal}（角色“{ROLES[row.role]}”）" if refusal else None


def roster_rows(session: Session, query: Select | None = None) -> Iterator[list[str]]:
    """The roster (or the members `query` selects) as rows in import format, header first."""
    yield list(COLUMNS)
    members = session.scalars((query if query is not None else select(Member)).order_by(Member.student_no)
                              .options(joinedload(Member.org_unit).joinedload(OrgUnit.parent)))
    for m in members:
        college = m.org_unit.parent.name if m.org_unit.parent and m.org_unit.kind == "branch" else ""
        yield [m.student_no, m.name, college, m.org_unit.name, m.stage, ROLES.get(m.role, m.role)]


def template_rows(college: str, branch: str) -> list[list[str]]:
    """An import file to fill in: the header, and one example row (not a real person)."""
    return [list(COLUMNS), ["2025123456", "张三", college, branch, "入党积极分子", "成员"]]


BIND_CODE_COLUMNS = ("学号", "姓名", "支部", "绑定码")


def bind_code_rows(session: Session, query: Select) -> list[list[str]]:
    """The members `query` selects who are not bound yet, each with a one-time binding code (kept if
    they have one, so that a list printed twice says the same), header first."""
    bound = select(Follower.member_id).where(Follower.member_id.is_not(None))
    rows = [list(BIND_CODE_COLUMNS)]
    for member in session.scalars(query.where(Member.id.not_in(bound)).order_by(Member.student_no)):
        member.bind_code = member.bind_code or new_bind_code()
        rows.append([member.student_no, member.name, member.org_unit.path(), member.bind_code])
    return rows
