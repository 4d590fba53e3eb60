"""三会一课 on the record: minutes of the meetings a branch holds (built on events), the cadence the
rules require of each kind of meeting, and where each branch stands against it (green, yellow, red).

Minutes stay a draft (暂存) until submitted; submitting freezes who was expected, who came and who
was absent with the reason of their leave, taken from the event's attendance at that moment.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from dateutil.relativedelta import relativedelta
from sqlalchemy import ForeignKey, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base
from models.events import Event
from models.members import OrgUnit
from models.timeutil import local_date, local_midnight, utcnow

MEETING_KINDS = ("支部党员大会", "支委会", "党小组会", "党课", "主题党日", "组织生活会", "民主评议")
PERIODS = {"month": "每月", "quarter": "每季度", "semester": "每学期", "year": "每年"}
# The usual requirement (《中国共产党支部工作条例（试行）》 and the 三会一课 practice): kind -> (period, times).
DEFAULT_CADENCE = {"支委会": ("month", 1), "党小组会": ("month", 1), "支部党员大会": ("quarter", 1),
                   "党课": ("semester", 2), "主题党日": ("month", 1), "组织生活会": ("year", 1),
                   "民主评议": ("year", 1)}
STATUS_LABELS = {"draft": "暂存", "submitted": "已提交"}


class MeetingError(ValueError):
    """Refused, with the reason in words for the organiser."""


class Minutes(Base):
    __tablename__ = "meeting_minutes"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), unique=True)
    host: Mapped[str] = mapped_column(String(64), default="")  # 主持人
    recorder: Mapped[str] = mapped_column(String(64), default="")  # 记录人
    observers: Mapped[str] = mapped_column(Text, default="")  # 列席
    content: Mapped[str] = mapped_column(Text, default="")
    decisions: Mapped[str] = mapped_column(Text, default="")
    attendance: Mapped[str] = mapped_column(Text, default="{}")  # JSON, frozen at submission
    status: Mapped[str] = mapped_column(String(16), default="draft")
    updated_by: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    submitted_by: Mapped[str] = mapped_column(String(64), default="")
    submitted_at: Mapped[datetime | None]

    @property
    def frozen(self) -> dict:
        return json.loads(self.attendance or "{}")


class MinutesAttachment(Base):
    """A file kept with the minutes (a photo of the sign-in sheet, the slides), under instance/uploads;
    added and removed while the minutes are a draft, kept as they are once submitted."""
    __tablename__ = "minutes_attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    stored_name: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    uploaded_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


MINUTES_FILE_TYPES = (".pdf", ".doc", ".docx", ".ppt", ".pptx", ".jpg", ".jpeg", ".png")
MINUTES_FILES = 10


def attachments_of(session: Session, event: Event) -> list[MinutesAttachment]:
    return list(session.scalars(select(MinutesAttachment).where(MinutesAttachment.event_id == event.id)
                                .order_by(MinutesAttachment.id)))


def attachment_refusal(session: Session, event: Event, filename: str, size: int, limit: int) -> str | None:
    """Why this file cannot be attached now, or None."""
    minutes = minutes_of(session, event)
    if minutes is not None and minutes.status == "submitted":
        return "会议记录已提交，附件不能再改"
    if not filename:
        return "请选择文件"
    if not filename.lower().endswith(MINUTES_FILE_TYPES):
        return "只能上传 PDF、Word、PowerPoint 或 JPG、PNG 图片"
    if size > limit:
        return f"文件超过 {limit // (1024 * 1024)} MB，请压缩后再上传"
    if len(attachments_of(session, event)) >= MINUTES_FILES:
        return f"每次会议最多 {MINUTES_FILES} 个附件"
    return None


class MeetingCadence(Base):
    """How often a kind of meeting is required (the console changes it; absent: the default)."""
    __tablename__ = "meeting_cadence"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    period: Mapped[str] = mapped_column(String(16))
    times: Mapped[int] = mapped_column(Integer)  # 0: not required


class MeetingExemption(Base):
    """A unit (or, without one, every unit) excused from the cadence for a month (a vacation) or for good."""
    __tablename__ = "meeting_exemptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id", ondelete="CASCADE"), index=True)
    month: Mapped[str] = mapped_column(String(7), default="")  # YYYY-MM; empty: every month
    reason: Mapped[str] = mapped_column(String(200), default="")


# -- minutes --------------------------------------------------------------------------------------

def attendance_snapshot(session: Session, event: Event, at: datetime) -> dict:
    """应到 / 实到 / 缺席 with reasons, from the event's attendance and leave."""
    from models.attendance import attendance
    from models.eventnotices import expected_members
    from models.signups import LeaveRequest
    people = attendance(session, event, expected_members(session, event), at)
    reasons = dict(session.execute(select(LeaveRequest.member_id, LeaveRequest.reason).where(
        LeaveRequest.event_id == event.id, LeaveRequest.status == "approved")).all())
    present = [p.name for p in people if p.state in ("present", "late")]
    absent = [{"name": p.name, "reason": reasons.get(p.member_id, "请假") if p.state == "leave" else "未请假"}
              for p in people if p.state in ("leave", "absent")]
    return {"expected": len(people), "present": len(present), "present_names": present, "absent": absent}


def minutes_of(session: Session, event: Event) -> Minutes | None:
    return session.scalar(select(Minutes).where(Minutes.event_id == event.id))


def save_minutes(session: Session, event: Event, fields: dict, by: str, submit: bool, at: datetime) -> Minutes:
    """Keep the minutes as a draft, or submit them (attendance frozen); submitted minutes are final."""
    if event.kind not in MEETING_KINDS:
        raise MeetingError(f"“{event.kind}”不是组织生活会议，不需要会议记录")
    if event.status == "cancelled":
        raise MeetingError("活动已取消，不能填写会议记录")
    minutes = minutes_of(session, event) or Minutes(event_id=event.id)
    if minutes.status == "submitted":
        raise MeetingError("会议记录已提交，不能再修改")
    for key in ("host", "recorder", "observers", "content", "decisions"):
        limit = 64 if key in ("host", "recorder") else 20_000
        setattr(minutes, key, (fields.get(key) or "").strip()[:limit])
    minutes.updated_by, minutes.updated_at = by, at
    if submit:
        missing = [label for key, label in (("host", "主持人"), ("recorder", "记录人"), ("content", "会议内容"))
                   if not getattr(minutes, key)]
        if missing:
            raise MeetingError(f"提交前请填写：{'、'.join(missing)}（可以先暂存）")
        if at < event.ends_at:
            raise MeetingError("会议结束后才能提交记录（出席情况到那时才确定）；现在可以暂存")
        minutes.attendance = json.dumps(attendance_snapshot(session, event, at), ensure_ascii=False)
        minutes.status, minutes.submitted_by, minutes.submitted_at = "submitted", by, at
    session.add(minutes)
    session.flush()
    return minutes


# -- the cadence ----------------------------------------------------------------------------------

def cadence(session: Session) -> dict[str, tuple[str, int]]:
    """kind -> (period, times) in force."""
    rules = dict(DEFAULT_CADENCE)
    for row in session.scalars(select(MeetingCadence)):
        rules[row.kind] = (row.period, row.times)
    return rules


def period_of(kind_period: str, day: date) -> tuple[date, date]:
    """The first and last day of the period containing `day`. A semester: 春季 from February, 秋季 from
    September (January belongs to the autumn semester before it, July and August to the spring one)."""
    if kind_period == "month":
        first = day.replace(day=1)
        return first, first + relativedelta(months=1) - timedelta(days=1)
    if kind_period == "quarter":
        first = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
        return first, first + relativedelta(months=3) - timedelta(days=1)
    if kind_period == "semester":
        if 2 <= day.month <= 8:
            return date(day.year, 2, 1), date(day.year, 8, 31)
        start_year = day.year if day.month >= 9 else day.year - 1
        return date(start_year, 9, 1), date(start_year + 1, 1, 31)
    return date(day.year, 1, 1), date(day.year, 12, 31)


def exempt(session: Session, unit: OrgUnit, month: str) -> str | None:
    """The reason this unit is excused for the month (YYYY-MM), or None."""
    ids = {unit.id, unit.parent_id}
    for row in session.scalars(select(MeetingExemption)):
        if (row.org_unit_id is None or row.org_unit_id in ids) and row.month in ("", month):
            return row.reason or "已豁免"
    return None


@dataclass
class KindStanding:
    kind: str
    period: str
    first: date
    last: date
    required: int
    held: int
    light: str  # green, yellow, red, exempt
    events: list[int]


def held_events(session: Session, unit: OrgUnit, kind: str, first: date, last: date, today: date) -> list[int]:
    """Meetings of this kind the unit organised in the period that have taken place (not cancelled)."""
    return list(session.scalars(select(Event.id).where(
        Event.org_unit_id == unit.id, Event.kind == kind, Event.status != "cancelled",
        Event.starts_at >= local_midnight(first),
        Event.starts_at < local_midnight(min(last, today) + timedelta(days=1)))))


def standing(session: Session, unit: OrgUnit, today: date | None = None, warn_day: int = 20) -> list[KindStanding]:
    """Each required kind for the period containing today: how many were held, and the light: green
    when done; red once the month has passed its `warn_day` (or a longer period its last month) with
    none held; yellow before that."""
    today = today or local_date()
    rules, result = cadence(session), []
    excused = exempt(session, unit, today.strftime("%Y-%m"))
    for kind in MEETING_KINDS:
        period, times = rules.get(kind, ("month", 0))
        if times <= 0:
            continue
        first, last = period_of(period, today)
        events = held_events(session, unit, kind, first, last, today)
        if len(events) >= times:
            light = "green"
        elif excused:
            light = "exempt"
        else:
            last_month = last.replace(day=1)
            late = today >= last_month.replace(day=min(warn_day, 28)) if period != "month" else today.day >= warn_day
            light = "red" if late else "yellow"
        result.append(KindStanding(kind, period, first, last, times, len(events), light, events))
    return result


def warn_missing(session: Session, now: datetime, warn_day: int) -> int:
    """Tell each branch's organisers, once per branch, kind and period, of a required meeting not held
    by the warning day; whatever runs the job (claimed in done_once)."""
    from models.eventnotices import automated_notice
    from models.followers import Follower
    from models.jobs import claim_once
    from models.members import Member
    today, told = local_date(now), 0
    following = select(Follower.member_id).where(Follower.subscribed.is_(True), Follower.member_id.is_not(None))
    for branch in session.scalars(select(OrgUnit).where(OrgUnit.kind == "branch")).all():
        late = [s for s in standing(session, branch, today, warn_day) if s.light == "red"]
        if not late:
            continue
        organisers = session.scalars(select(Member.id).where(
            Member.org_unit_id.in_([branch.id, branch.parent_id]), Member.role.in_(("organiser", "admin")),
            Member.id.in_(following))).all()
        if not organisers:
            continue
        fresh = [s for s in late
                 if claim_once(session, f"meeting-warn:{branch.id}:{s.kind}:{s.first.isoformat()}", now)]
        if not fresh:
            continue
        lines = [f"“{branch.name}”还有组织生活没有按期开展："]
        lines += [f"· {s.kind}：{PERIODS[s.period]}至少 {s.required} 次，本期（{s.first.isoformat()} 至 "
                  f"{s.last.isoformat()}）已开 {s.held} 次" for s in fresh]
        lines.append("请在管理后台“活动”中安排，会后填写会议记录。")
        if automated_notice(session, list(organisers), "\n".join(lines), "组织生活提醒", now, branch.id):
            told += 1
    session.commit()
    return told
