"""发展党员 reminders, once per step and due date whatever runs them (two schedulers, a restart, a
catch-up run): each reminded item is claimed in `done_once` in the transaction that creates its
message, and messages go through the delivery engine as one-to-one notices (never a mass send).

  organisers   one grouped message a day: the steps in their units due within `remind_within_days`
               or overdue that they have not been told about (soon and overdue are told once each);
  members      a 预备党员 `probation_notice_days` before the 预备期 ends (hand in 转正申请); a 思想汇报
               each quarter when the school's local rules ask for it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.accounts import scope_of
from models.development import DevRecord, history_of, rules_in_force
from models.devrules import next_steps
from models.eventnotices import automated_notice
from models.followers import Follower
from models.jobs import claim_once
from models.members import Member
from models.timeutil import local_date

REPORT_STAGES = ("入党积极分子", "发展对象", "预备党员")


@dataclass(frozen=True)
class DueItem:
    record_id: int
    member_id: int
    org_unit_id: int
    name: str
    step_key: str
    step_name: str
    due: date

    def words(self, today: date) -> str:
        late = (today - self.due).days
        when = f"已逾期 {late} 天" if late > 0 else ("今天到期" if late == 0 else f"{self.due.isoformat()} 前")
        return f"{self.name}：{self.step_name}（{when}）"


def due_items(session: Session, today: date, within_days: int) -> list[DueItem]:
    """Every step of an active record due by today + within_days (main line and recurring ones)."""
    rules, horizon, items = rules_in_force(session), today + timedelta(days=within_days), []
    records = session.scalars(select(DevRecord).where(DevRecord.status == "active")).all()
    for record in records:
        for due in next_steps(rules, history_of(record)):
            if due.window.latest and due.window.latest <= horizon:
                items.append(DueItem(record.id, record.member_id, record.member.org_unit_id, record.member.name,
                                     due.step.key, due.step.name, due.window.latest))
    return sorted(items, key=lambda i: (i.due, i.name))


def remind_development(session: Session, now: datetime, settings) -> dict:
    today = local_date(now)
    items = due_items(session, today, int(settings.remind_within_days))
    done = {"organisers": remind_organisers(session, items, today, now),
            "probation": remind_probation(session, today, now, int(settings.probation_notice_days)),
            "reports": remind_reports(session, today, now)}
    session.commit()
    return done


def remind_organisers(session: Session, items: list[DueItem], today: date, now: datetime) -> int:
    """One message per organiser with the items new to them; the organiser reads only their units."""
    if not items:
        return 0
    told = 0
    following = select(Follower.member_id).where(Follower.subscribed.is_(True), Follower.member_id.is_not(None))
    organisers = session.scalars(select(Member).where(Member.role.in_(("organiser", "admin")),
                                                      Member.id.in_(following))).all()
    for organiser in organisers:
        scope = scope_of(session, organiser.role, organiser.org_unit_id)
        fresh = []
        for item in items:
            if item.member_id == organiser.id or not scope.allows_unit(item.org_unit_id):
                continue
            kind = "overdue" if item.due < today else "soon"
            key = f"dev:{organiser.id}:{item.record_id}:{item.step_key}:{item.due.isoformat()}:{kind}"
            if claim_once(session, key, now):
                fresh.append(item)
        if not fresh:
            continue
        lines = [f"发展党员提醒：{len(fresh)} 项步骤即将到期或已逾期"]
        lines += [f"· {item.words(today)}" for item in fresh[:15]]
        if len(fresh) > 15:
            lines.append(f"……另有 {len(fresh) - 15} 项")
        lines.append("请到管理后台“发展党员”查看和记录。")
        if automated_notice(session, [organiser.id], "\n".join(lines), "发展党员到期提醒", now,
                            organiser.org_unit_id):
            told += 1
    return told


def remind_probation(session: Session, today: date, now: datetime, notice_days: int) -> int:
    """预备党员 whose 预备期 ends within notice_days and who have not handed in 转正申请."""
    told = 0
    records = session.scalars(select(DevRecord).where(
        DevRecord.status == "active", DevRecord.probation_end.is_not(None),
        DevRecord.probation_end >= today, DevRecord.probation_end <= today + timedelta(days=notice_days))).all()
    for record in records:
        if any(step.key == "full_application" for step in record.steps):
            continue
        if not claim_once(session, f"dev-probation:{record.member_id}:{record.probation_end.isoformat()}", now):
            continue
        text = (f"你的预备期将于 {record.probation_end.isoformat()} 期满。请在此之前向党支部提交书面转正申请，"
                "支部将按期讨论你的转正。发送“我的发展”查看进度。")
        if automated_notice(session, [record.member_id], text, "转正申请提醒", now, record.member.org_unit_id):
            told += 1
    return told


def remind_reports(session: Session, today: date, now: datetime) -> int:
    """A 思想汇报 reminder once a quarter (local rule thought_report_quarterly)."""
    if not rules_in_force(session).local.get("thought_report_quarterly"):
        return 0
    quarter = f"{today.year}Q{(today.month - 1) // 3 + 1}"
    told = 0
    rows = session.execute(select(DevRecord.member_id, Member.org_unit_id)
                           .join(Member, Member.id == DevRecord.member_id)
                           .where(DevRecord.status == "active", Member.stage.in_(REPORT_STAGES))).all()
    for member_id, unit_id in rows:
        if not claim_once(session, f"dev-report:{member_id}:{quarter}", now):
            continue
        text = "本季度的思想汇报请按时交给党支部（培养联系人）。发送“我的发展”查看进度。"
        if automated_notice(session, [member_id], text, "思想汇报提醒", now, unit_id):
            told += 1
    return told
