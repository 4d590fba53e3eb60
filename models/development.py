"""发展党员 records: one per person on the path, every step dated with who recorded it, and the
derived next step (with its earliest and latest dates) kept on the record in the same transaction,
so that the board is a query, not a computation over every history.

The rules and the date engine are in models/devrules.py. `Member.stage` (used to target broadcasts)
follows the recorded steps: a stage moves only when an organiser records the step that makes it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from models.base import Base
from models.devrules import Done, History, Rules, check_local, current_stage, late_by, load_rules, main_next
from models.devrules import probation_end as probation_end_of
from models.devrules import refusals as rule_refusals
from models.members import Member
from models.timeutil import utcnow

CLOSE_REASONS = ("毕业离校", "出国（境）", "转出本校", "本人放弃", "其他")
FULL_MEMBER = "正式党员"


class DevelopmentError(ValueError):
    """The step is refused: `reasons` says which rule and why, one line each."""

    def __init__(self, reasons: list[str]):
        super().__init__("；".join(reasons))
        self.reasons = reasons


class DevRecord(Base):
    __tablename__ = "dev_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active, closed
    closed_reason: Mapped[str] = mapped_column(String(200), default="")
    leaves_on: Mapped[date | None] = mapped_column(Date)  # expected to leave school
    stage_before: Mapped[str] = mapped_column(String(16), default="群众")  # 政治面貌 before the application
    # Derived from the steps and the rules (refresh()): what the board lists and sorts by.
    next_step: Mapped[str] = mapped_column(String(32), default="", index=True)
    next_earliest: Mapped[date | None] = mapped_column(Date)
    next_latest: Mapped[date | None] = mapped_column(Date, index=True)
    provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    probation_end: Mapped[date | None] = mapped_column(Date, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    member: Mapped[Member] = relationship()
    steps: Mapped[list[DevStep]] = relationship(order_by="DevStep.id", cascade="all, delete-orphan",
                                                back_populates="record")


class DevStep(Base):
    __tablename__ = "dev_steps"

    id: Mapped[int] = mapped_column(primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("dev_records.id"), index=True)
    key: Mapped[str] = mapped_column(String(32))
    done_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    details: Mapped[str] = mapped_column(Text, default="{}")  # JSON: contacts, introducers, votes, training ...
    document: Mapped[str] = mapped_column(String(200), default="")  # 文号 or file reference
    note: Mapped[str] = mapped_column(Text, default="")  # for a sensitive step: read by few (may_read_notes)
    late_days: Mapped[int] = mapped_column(Integer, default=0)
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)

    record: Mapped[DevRecord] = relationship(back_populates="steps")

    @property
    def detail(self) -> dict:
        return json.loads(self.details or "{}")


class DevLocalRule(Base):
    """A school's local rule setting (see development_rules.yaml, local_defaults)."""
    __tablename__ = "dev_local_rules"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)  # JSON
    changed_by: Mapped[str] = mapped_column(String(64), default="")
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


# -- the rules in force ---------------------------------------------------------------------------

RULES_CACHE = "wxbot.dev_rules"


def rules_in_force(session: Session) -> Rules:
    """The shipped rules with this school's local settings; read once per session (a request, a job run)."""
    rules = session.info.get(RULES_CACHE)
    if rules is None:
        local = {row.key: json.loads(row.value) for row in session.scalars(select(DevLocalRule))}
        rules = session.info[RULES_CACHE] = load_rules(local)
    return rules


def change_local_rules(session: Session, values: dict, by: str) -> tuple[dict, dict]:
    """Store the local settings; (before, after) for the audit log. Every record's next step is
    recomputed under the new rules in the same transaction."""
    clean, errors = check_local(values)
    if errors:
        raise DevelopmentError(errors)
    before = dict(rules_in_force(session).local)
    for key, value in clean.items():
        row = session.get(DevLocalRule, key) or DevLocalRule(key=key)
        row.value, row.changed_by, row.changed_at = json.dumps(value), by, utcnow()
        session.add(row)
    session.info.pop(RULES_CACHE, None)
    session.flush()
    rules = rules_in_force(session)
    for record in session.scalars(select(DevRecord).where(DevRecord.status == "active")):
        refresh(record, rules)
    return before, dict(rules.local)


# -- a person's record ----------------------------------------------------------------------------

def history_of(record: DevRecord) -> History:
    return History([Done(s.key, s.done_on, s.ends_on, s.detail) for s in record.steps], record.leaves_on)


def refresh(record: DevRecord, rules: Rules) -> None:
    """Recompute the derived columns and the member's 政治面貌 from the steps."""
    history = history_of(record)
    following = main_next(rules, history) if record.status == "active" else None
    record.next_step = following.key if following else ""
    record.next_earliest = following.window.earliest if following else None
    record.next_latest = following.window.latest if following else None
    record.provisional = bool(following and following.window.provisional)
    record.probation_end = probation_end_of(rules, history)
    record.member.stage = current_stage(rules, history, record.stage_before)


def start_record(session: Session, member: Member, applied_on: date, by: str,
                 leaves_on: date | None = None) -> DevRecord:
    """Open the record of someone who handed in an application (递交入党申请书 on `applied_on`)."""
    if session.scalar(select(DevRecord).where(DevRecord.member_id == member.id)):
        raise DevelopmentError([f"{member.name} 已有发展记录"])
    if member.stage in ("预备党员", FULL_MEMBER):
        raise DevelopmentError([f"{member.name} 已是{member.stage}，不需要新建发展记录（可以导入已有台账）"])
    record = DevRecord(member=member, member_id=member.id, leaves_on=leaves_on,
                       stage_before=member.stage if member.stage in ("群众", "共青团员") else "群众")
    session.add(record)
    session.flush()
    record_step(session, record, "apply", applied_on, by)
    return record


@dataclass
class StepInput:
    """What a form, an import row or a batch action gives for one step."""
    key: str
    on: date
    ends_on: date | None = None
    document: str = ""
    note: str = ""
    details: dict | None = None


def record_step(session: Session, record: DevRecord, key: str, on: date, by: str, ends_on: date | None = None,
                details: dict | None = None, document: str = "", note: str = "", check_people: bool = True) -> DevStep:
    """Record one step after the rules and the people it names are checked; the refusal names each
    rule that refuses. The member's 政治面貌 follows in the same transaction. An imported 台账 names
    介绍人 and 培养联系人 as written (`check_people` off): they may have left the school since."""
    rules, details = rules_in_force(session), dict(details or {})
    if record.status != "active":
        raise DevelopmentError(["这条发展记录已关闭（" + (record.closed_reason or "已结束") + "），不能再记录步骤"])
    history = history_of(record)
    problems = rule_refusals(rules, history, key, on, ends_on, details)
    if not problems and check_people:
        problems = people_refusals(session, record, rules.step(key).fields, details)
    if problems:
        raise DevelopmentError(problems)
    step = DevStep(record=record, record_id=record.id, key=key, done_on=on, ends_on=ends_on,
                   details=json.dumps(details, ensure_ascii=False), document=document.strip()[:200],
                   note=note.strip(), late_days=late_by(rules, history, key, on), recorded_by=by)
    session.add(step)
    record.steps.append(step)
    refresh(record, rules)
    session.flush()
    return step


def people_refusals(session: Session, record: DevRecord, fields: tuple[str, ...], details: dict) -> list[str]:
    """The people and numbers a step names: 培养联系人, 介绍人, the votes of a 支部大会, the 培训's length."""
    problems = []
    if "contacts" in fields:
        problems += _full_members(session, record, details.get("contacts", []), "培养联系人", 1, 2, "第十条")
    if "introducers" in fields:
        problems += _full_members(session, record, details.get("introducers", []), "入党介绍人", 2, 2, "第十四条")
    if "votes" in fields:
        problems += vote_refusals(details.get("votes") or {})
    if "training" in fields:
        days, hours = details.get("training_days") or 0, details.get("training_hours") or 0
        if days < 3 and hours < 24:
            problems.append("《中国共产党发展党员工作细则》第十六条：集中培训时间一般不少于 3 天（或不少于 24 个学时）")
    return problems


def _full_members(session: Session, record: DevRecord, student_nos: list[str], role: str, low: int, high: int,
                  article: str) -> list[str]:
    from models.members import member_by_student_no
    rule = f"《中国共产党发展党员工作细则》{article}"
    wanted = [no for no in dict.fromkeys(n.strip() for n in student_nos) if no]
    if not low <= len(wanted) <= high:
        count = f"{low} 名" if low == high else f"{low} 至 {high} 名"
        return [f"{rule}：{role}应为 {count}正式党员（填写学号）"]
    problems = []
    for student_no in wanted:
        person = member_by_student_no(session, student_no)
        if person is None:
            problems.append(f"{role}：名单中没有学号 {student_no}")
        elif person.id == record.member_id:
            problems.append(f"{role}不能是本人")
        elif person.stage != FULL_MEMBER:
            problems.append(f"{rule}：{role}须为正式党员，{person.name}（{student_no}）是{person.stage}")
    return problems


def vote_refusals(votes: dict) -> list[str]:
    """A 支部大会's numbers: those entitled to vote, present, and in favour (第二十一条)."""
    try:
        entitled, present, favour = (int(votes.get(k)) for k in ("entitled", "present", "favour"))
    except (TypeError, ValueError):
        return ["支部大会：请填写应到会、实到会和赞成的有表决权正式党员人数"]
    rule = "《中国共产党发展党员工作细则》第二十一条"
    if not 0 < entitled <= 10_000 or not 0 <= favour <= present <= entitled:
        return ["支部大会：人数不合理（应满足 赞成 ≤ 实到 ≤ 应到）"]
    problems = []
    if present * 2 <= entitled:
        problems.append(f"{rule}：到会有表决权的正式党员须超过应到会人数的半数（应到 {entitled}，实到 {present}）")
    if favour * 2 <= entitled:
        problems.append(f"{rule}：赞成人数须超过应到会有表决权正式党员的半数（应到 {entitled}，赞成 {favour}）")
    return problems


def undo_last(session: Session, record: DevRecord) -> DevStep:
    """Take back the step recorded last (a mistake); the application itself is removed with the record."""
    if not record.steps:
        raise DevelopmentError(["没有可以撤销的步骤"])
    last = max(record.steps, key=lambda s: (s.recorded_at, s.id))
    if last.key == "apply":
        raise DevelopmentError(["递交申请书是这条记录的起点，不能撤销；如需删除，请关闭记录并注明原因"])
    record.steps.remove(last)
    session.delete(last)
    refresh(record, rules_in_force(session))
    session.flush()
    return last


def close_record(session: Session, record: DevRecord, reason: str) -> None:
    """Close a record (毕业离校, 出国…) with its reason; its steps and dates are kept."""
    if not reason.strip():
        raise DevelopmentError(["请写明关闭原因"])
    record.status, record.closed_reason = "closed", reason.strip()[:200]
    refresh(record, rules_in_force(session))


def reopen_record(session: Session, record: DevRecord) -> None:
    record.status, record.closed_reason = "active", ""
    refresh(record, rules_in_force(session))


def record_of(session: Session, member: Member) -> DevRecord | None:
    return session.scalar(select(DevRecord).where(DevRecord.member_id == member.id))


def step_snapshot(step: DevStep, rules: Rules) -> dict:
    """A step as the audit log records it (without a sensitive note's text)."""
    snapshot = {"步骤": rules.name(step.key), "日期": step.done_on.isoformat()}
    if step.ends_on:
        snapshot["结束日期"] = step.ends_on.isoformat()
    if step.document:
        snapshot["文件"] = step.document
    if step.detail:
        snapshot["详情"] = step.detail
    if step.note:
        snapshot["备注"] = "（敏感内容不记入日志）" if rules.step(step.key).sensitive else step.note
    return snapshot


def stage_refusal(session: Session, member: Member, stage: str) -> str | None:
    """Why a form or an import may not set this member's 政治面貌: on the path it follows the recorded
    steps, so that the dates and the stage never disagree."""
    if stage == member.stage or member.id is None:
        return None
    if session.scalar(select(DevRecord.id).where(DevRecord.member_id == member.id)) is None:
        return None
    return f"{member.name} 的政治面貌由发展党员记录决定（现为{member.stage}），请在“发展党员”中记录相应步骤"
