"""The 发展党员工作台账 as a spreadsheet: export in the columns branches keep, and import of an existing
台账 (the same columns) with every row replayed through the rules. Nothing is imported while a row
is bad; each bad row is reported by its number as the spreadsheet shows it."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.development import (
    DevelopmentError,
    DevRecord,
    record_step,
    refresh,
    rules_in_force,
)
from models.devrules import Rules, parse_day, split_list
from models.members import member_by_student_no, normalise_name
from models.roster import RowError
from models.tables import read_table

REQUIRED = ("学号", "姓名", "递交入党申请书")
LEAVES = "预计离校"
STATUS = "状态"
PUBLICITY_END = "公示结束"
TRAINING_END = "集中培训结束"
CONTACTS = "培养联系人"
INTRODUCERS = "入党介绍人"
VOTES = "支部大会表决（应到/实到/赞成）"
EXTENSION = "延长预备期（月）"
RECURRING_SEPARATOR = "；"


def columns(rules: Rules) -> list[str]:
    """The 台账's columns: who, then one date per step in the rules' order, then the step details."""
    steps = [s.name for s in rules.steps if s.key != "apply"]
    return ["学号", "姓名", "支部", LEAVES, STATUS, "递交入党申请书", *steps, PUBLICITY_END, TRAINING_END,
            CONTACTS, INTRODUCERS, VOTES, EXTENSION]


def ledger_rows(records: list[DevRecord], rules: Rules) -> list[list]:
    """Header and one row per record (recurring steps: their dates joined by ；)."""
    header = columns(rules)
    rows = [header]
    for record in records:
        member, by_key = record.member, {}
        for step in sorted(record.steps, key=lambda s: (s.done_on, s.id)):
            by_key.setdefault(step.key, []).append(step)
        row = {"学号": member.student_no, "姓名": member.name, "支部": member.org_unit.path(),
               LEAVES: record.leaves_on.isoformat() if record.leaves_on else "",
               STATUS: "在培养" if record.status == "active" else f"已关闭：{record.closed_reason}"}
        for step in rules.steps:
            done = by_key.get(step.key, [])
            row[step.name if step.key != "apply" else "递交入党申请书"] = RECURRING_SEPARATOR.join(
                s.done_on.isoformat() for s in done)
        for key, column in (("publicity", PUBLICITY_END), ("training", TRAINING_END)):
            ended = by_key.get(key, [])
            row[column] = ended[0].ends_on.isoformat() if ended and ended[0].ends_on else ""
        details = {key: steps[0].detail for key, steps in by_key.items()}
        row[CONTACTS] = "、".join(details.get("contacts", {}).get("contacts", []))
        row[INTRODUCERS] = "、".join(details.get("branch_meeting", {}).get("introducers", []))
        votes = details.get("branch_meeting", {}).get("votes")
        row[VOTES] = "/".join(str(votes.get(k, "")) for k in ("entitled", "present", "favour")) if votes else ""
        row[EXTENSION] = str(details.get("extension", {}).get("months", "")) if "extension" in details else ""
        rows.append([row.get(column, "") for column in header])
    return rows


def read_ledger(path: Path | str, content: bytes | None = None) -> list[dict[str, str]]:
    return read_table(path, content, REQUIRED, REQUIRED)


@dataclass
class LedgerReport:
    records: int = 0
    steps: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)


def apply_ledger(session: Session, table: list[dict[str, str]], by: str, scope) -> LedgerReport:
    """Create the records of the rows, replaying each row's steps in the rules' order through the rules (the
    people named as 介绍人 or 培养联系人 are kept as written: they may have left). A row whose person
    already has a record is skipped when its dates are the ones recorded, and refused otherwise.
    The caller rolls back when `errors` is not empty."""
    rules, report, seen = rules_in_force(session), LedgerReport(), {}
    for line, raw in enumerate(table, start=2):
        if not any(raw.values()):
            continue
        try:
            added = _apply_row(session, rules, raw, by, scope, seen, line)
        except DevelopmentError as exc:
            report.errors.append(RowError(line, "；".join(exc.reasons)))
            continue
        if added is None:
            report.unchanged += 1
        else:
            report.records += 1
            report.steps += added
    return report


def _apply_row(session: Session, rules: Rules, raw: dict, by: str, scope, seen: dict, line: int) -> int | None:
    member = member_by_student_no(session, raw.get("学号", ""))
    if member is None or not scope.allows_unit(member.org_unit_id):
        raise DevelopmentError([f"学号 {raw.get('学号', '')} 不在你负责范围内的名单中（请先导入名单）"])
    if normalise_name(member.name) != normalise_name(raw.get("姓名", "")):
        raise DevelopmentError([f"姓名与名单不符（名单中为 {member.name}）"])
    if member.id in seen:
        raise DevelopmentError([f"与第 {seen[member.id]} 行是同一人"])
    seen[member.id] = line
    steps = _row_steps(rules, raw)
    existing = session.scalar(select(DevRecord).where(DevRecord.member_id == member.id))
    if existing is not None:
        recorded = sorted((s.key, s.done_on) for s in existing.steps)
        if recorded == sorted((key, on) for key, on, _e, _d in steps):
            return None
        raise DevelopmentError([f"{member.name} 已有发展记录且日期不同：请在页面上逐步修改"])
    leaves_on = parse_day(raw.get(LEAVES)) if raw.get(LEAVES) else None
    if raw.get(LEAVES) and leaves_on is None:
        raise DevelopmentError([f"{LEAVES}“{raw[LEAVES]}”不是日期（例如 2028-06-30）"])
    record = DevRecord(member=member, member_id=member.id, leaves_on=leaves_on,
                       stage_before=member.stage if member.stage in ("群众", "共青团员") else "群众")
    session.add(record)
    session.flush()
    order = {step.key: n for n, step in enumerate(rules.steps)}
    for key, on, ends_on, details in sorted(steps, key=lambda s: (order[s[0]], s[1])):  # a date out of order is named
        try:
            record_step(session, record, key, on, by, ends_on, details, check_people=False)
        except DevelopmentError as exc:
            raise DevelopmentError([f"{rules.name(key)}：{reason}" for reason in exc.reasons]) from None
    status = raw.get(STATUS, "")
    if status.startswith("已关闭"):
        record.status, record.closed_reason = "closed", status.partition("：")[2] or "导入时已关闭"
        refresh(record, rules)
    return len(steps)


def _row_steps(rules: Rules, raw: dict) -> list[tuple[str, date, date | None, dict]]:
    """(step, date, end date, details) for every date the row gives; a cell that is not a date refuses."""
    problems, steps = [], []
    for step in rules.steps:
        column = "递交入党申请书" if step.key == "apply" else step.name
        cell = (raw.get(column) or "").strip()
        if not cell:
            continue
        for part in [p for p in cell.replace(";", RECURRING_SEPARATOR).split(RECURRING_SEPARATOR) if p.strip()]:
            day = parse_day(part)
            if day is None:
                problems.append(f"{column}“{part}”不是日期（例如 2026-03-15 或 2026年3月15日）")
                continue
            steps.append((step.key, day, None, {}))
    details = {key: {} for key in ("contacts", "branch_meeting", "extension", "training", "publicity")}
    for key, column in (("publicity", PUBLICITY_END), ("training", TRAINING_END)):
        if raw.get(column):
            details[key]["ends_on"] = parse_day(raw[column])
            if details[key]["ends_on"] is None:
                problems.append(f"{column}“{raw[column]}”不是日期")
    if raw.get(CONTACTS):
        details["contacts"]["contacts"] = split_list(raw[CONTACTS])
    if raw.get(INTRODUCERS):
        details["branch_meeting"]["introducers"] = split_list(raw[INTRODUCERS])
    if raw.get(VOTES):
        numbers = [p.strip() for p in raw[VOTES].replace("／", "/").split("/")]
        if len(numbers) != 3 or not all(n.isdigit() for n in numbers):
            problems.append(f"{VOTES}“{raw[VOTES]}”应写成 应到/实到/赞成，例如 30/28/27")
        else:
            details["branch_meeting"]["votes"] = dict(zip(("entitled", "present", "favour"), map(int, numbers),
                                                          strict=True))
    if raw.get(EXTENSION):
        if raw[EXTENSION].strip().isdigit():
            details["extension"]["months"] = int(raw[EXTENSION].strip())
        else:
            problems.append(f"{EXTENSION}“{raw[EXTENSION]}”应是月数，例如 6")
    if problems:
        raise DevelopmentError(problems)
    out = []
    for key, on, _ends, _details in steps:
        extra = dict(details.get(key, {}))
        ends_on = extra.pop("ends_on", None)
        out.append((key, on, ends_on, extra))
    return out

