"""The report up the tree: a branch submits its report for a period set by the Party committee (with
a deadline); what it submitted is frozen (the figures as they were, with their digest); the college
committee approves it or returns it with comments, then the school. A returned report is submitted
again as a new version; every version stays. Reminders go to branches that have not submitted and to
committees that have not reviewed, once each; a draft of last month's report waits for every branch.
"""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta

from sqlalchemy import Date, ForeignKey, Integer, String, Text, UniqueConstraint, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base
from models.members import Member, OrgUnit
from models.report import ReportError, build_report, period_range
from models.timeutil import local_date, show, utcnow

STATUSES = {"draft": "草稿（未提交）", "college_review": "待学院党委审核", "school_review": "待校党委审核",
            "approved": "已通过", "returned": "已退回"}
UNDER_REVIEW = ("college_review", "school_review")


class ReportPeriod(Base):
    """A period the committee asks reports for, with its deadline."""
    __tablename__ = "report_periods"
    __table_args__ = (UniqueConstraint("kind", "value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # month | quarter | semester | year | range
    value: Mapped[str] = mapped_column(String(32))  # 2026-11, 2026-Q4, 2026-秋, 2026, 2026-09-01~2026-12-31
    label: Mapped[str] = mapped_column(String(64))
    first: Mapped[date] = mapped_column(Date)
    last: Mapped[date] = mapped_column(Date)
    deadline: Mapped[date] = mapped_column(Date)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Report(Base):
    """One version of a unit's report for a period: the frozen figures and where it stands."""
    __tablename__ = "reports"
    __table_args__ = (UniqueConstraint("org_unit_id", "period_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="CASCADE"), index=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("report_periods.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    snapshot: Mapped[str] = mapped_column(Text)  # JSON: build_report's result at that moment
    digest: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    submitted_by: Mapped[str] = mapped_column(String(64), default="")
    submitted_at: Mapped[datetime | None]
    reviews: Mapped[str] = mapped_column(Text, default="[]")  # JSON [{level, action, by, at, comment}]

    @property
    def figures(self) -> dict:
        return json.loads(self.snapshot)

    @property
    def review_list(self) -> list[dict]:
        return json.loads(self.reviews or "[]")

    @property
    def status_label(self) -> str:
        return STATUSES.get(self.status, self.status)



def ensure_period(session: Session, kind: str, value: str, deadline: date | None, by: str) -> ReportPeriod:
    """The period (created when new; its deadline changed when given)."""
    first, last, label = period_range(kind, value)
    value = value.strip() if kind != "range" else f"{first.isoformat()}~{last.isoformat()}"
    period = session.scalar(select(ReportPeriod).where(ReportPeriod.kind == kind, ReportPeriod.value == value))
    if period is None:
        period = ReportPeriod(kind=kind, value=value, label=label, first=first, last=last, created_by=by,
                              deadline=deadline or last + timedelta(days=10))
        session.add(period)
    elif deadline:
        period.deadline = deadline
    session.flush()
    return period


def versions(session: Session, unit_id: int, period_id: int) -> list[Report]:
    return list(session.scalars(select(Report).where(Report.org_unit_id == unit_id, Report.period_id == period_id)
                                .order_by(Report.version.desc())))


def latest(session: Session, unit_id: int, period_id: int) -> Report | None:
    found = versions(session, unit_id, period_id)
    return found[0] if found else None


def first_review(unit: OrgUnit) -> str:
    """A branch of a college is reviewed by the college first; anything else by the school."""
    return "college_review" if unit.kind == "branch" and unit.parent and unit.parent.kind == "college" \
        else "school_review"


def submit(session: Session, unit: OrgUnit, period: ReportPeriod, by: str, now: datetime, cfg=None) -> Report:
    """Freeze the unit's figures for the period as they are now and send them up."""
    if unit.kind == "school":
        raise ReportError("全校的报告不需要向上报送")
    current = latest(session, unit.id, period.id)
    if current and current.status in UNDER_REVIEW:
        raise ReportError(f"已报送（{current.status_label}），审核前不能重复报送")
    if current and current.status == "approved":
        raise ReportError("报告已通过审核，不能再次报送")
    figures = build_report(session, unit, period.first, period.last, now, cfg)
    if current and current.status == "draft":
        report = current
    else:
        report = Report(org_unit_id=unit.id, period_id=period.id, version=(current.version + 1) if current else 1)
    report.snapshot, report.digest = json.dumps(figures, ensure_ascii=False), figures["digest"]
    report.status, report.submitted_by, report.submitted_at = first_review(unit), by, now
    try:
        with session.begin_nested():
            session.add(report)
    except IntegrityError:  # the same unit submitted the same period at the same moment elsewhere
        raise ReportError("报告刚刚已由他人报送，请刷新页面查看") from None
    return report


def review_level(report: Report) -> str | None:
    return {"college_review": "college", "school_review": "school"}.get(report.status)


def may_review(report: Report, unit: OrgUnit, role: str, account_unit_id: int | None) -> bool:
    """The college committee (its organisers) reviews its branches' reports; the school (admins)
    reviews what the colleges passed and the colleges' own reports. An admin may act for a college."""
    level = review_level(report)
    if level is None:
        return False
    if role == "admin":
        return True
    return level == "college" and account_unit_id is not None and account_unit_id == unit.parent_id


def review(report: Report, unit: OrgUnit, approve: bool, comment: str, by: str, role: str,
           account_unit_id: int | None, now: datetime) -> None:
    if not may_review(report, unit, role, account_unit_id):
        raise ReportError("这份报告现在不由你审核")
    comment = (comment or "").strip()[:2000]
    if not approve and not comment:
        raise ReportError("退回时请写明意见，支部据此修改后重新报送")
    level = review_level(report)
    entries = report.review_list
    entries.append({"level": "学院党委" if level == "college" else "校党委", "action": "通过" if approve else "退回",
                    "by": by, "at": show(now, "%Y-%m-%d %H:%M"), "comment": comment})
    report.reviews = json.dumps(entries, ensure_ascii=False)
    if not approve:
        report.status = "returned"
    else:
        report.status = "school_review" if level == "college" else "approved"


def board(session: Session, period: ReportPeriod, units: list[OrgUnit]) -> list[tuple[OrgUnit, Report | None]]:
    """Each unit with its latest report for the period (None: nothing yet)."""
    newest = select(Report.org_unit_id, func.max(Report.version).label("v")).where(
        Report.period_id == period.id).group_by(Report.org_unit_id).subquery()
    reports = {r.org_unit_id: r for r in session.scalars(select(Report).join(
        newest, (newest.c.org_unit_id == Report.org_unit_id) & (newest.c.v == Report.version)).where(
        Report.period_id == period.id))}
    return [(unit, reports.get(unit.id)) for unit in units]


# -- the scheduler's part -------------------------------------------------------------------------

def _organisers(session: Session, unit_ids: list[int], roles=("organiser", "admin")) -> list[int]:
    from models.followers import Follower
    following = select(Follower.member_id).where(Follower.subscribed.is_(True), Follower.member_id.is_not(None))
    return list(session.scalars(select(Member.id).where(Member.org_unit_id.in_(unit_ids), Member.role.in_(roles),
                                                        Member.id.in_(following))))


def remind_reports(session: Session, now: datetime, days_before: int) -> int:
    """Tell branches that have not submitted (from `days_before` the deadline, and once more when it has
    passed) and committees that have not reviewed once it has passed; each once, whatever runs the job."""
    from models.eventnotices import automated_notice
    from models.jobs import claim_once
    today, told = local_date(now), 0
    open_periods = session.scalars(select(ReportPeriod).where(
        ReportPeriod.deadline <= today + timedelta(days=days_before),
        ReportPeriod.deadline >= today - timedelta(days=60))).all()
    branches = session.scalars(select(OrgUnit).where(OrgUnit.kind == "branch")).all()
    for period in open_periods:
        late = today > period.deadline
        stage = "late" if late else "due"
        for branch, report in board(session, period, branches):
            if report is not None and report.status not in ("draft", "returned"):
                continue
            people = _organisers(session, [branch.id, branch.parent_id])
            if not people or not claim_once(session, f"report-{stage}:{period.id}:{branch.id}", now):
                continue
            returned = report is not None and report.status == "returned"
            what = "已退回，请按意见修改后重新报送" if returned else "尚未报送"
            when = f"已过截止日期 {period.deadline.isoformat()}" if late else f"截止日期 {period.deadline.isoformat()}"
            text = (f"“{branch.name}”{period.label}党建工作报告{what}（{when}）。"
                    "请在管理后台“工作报告”中核对数据、填写后报送。")
            told += bool(automated_notice(session, people, text, "报告提醒", now, branch.id))
        if not late:
            continue
        waiting = session.execute(select(Report, OrgUnit).join(OrgUnit, OrgUnit.id == Report.org_unit_id).where(
            Report.period_id == period.id, Report.status.in_(UNDER_REVIEW))).all()
        committees: dict[tuple[str, int | None], int] = {}
        for report, unit in waiting:
            key = ("college", unit.parent_id) if report.status == "college_review" else ("school", None)
            committees[key] = committees.get(key, 0) + 1
        for (level, unit_id), count in committees.items():
            people = (_organisers(session, [unit_id], ("organiser",)) if level == "college"
                      else list(session.scalars(select(Member.id).where(Member.role == "admin"))))
            if not people or not claim_once(session, f"report-review:{period.id}:{level}:{unit_id or 0}", now):
                continue
            text = f"{period.label}党建工作报告有 {count} 份等待审核（截止日期 {period.deadline.isoformat()} 已过）。"
            told += bool(automated_notice(session, people, text, "报告审核提醒", now, unit_id))
    session.commit()
    return told


def monthly_drafts(session: Session, now: datetime, deadline_day: int, cfg=None) -> int:
    """At the start of a month: last month's period (deadline on `deadline_day` of this month) and a
    draft of its report for every branch that has none yet, built once whatever runs the job."""
    from models.jobs import claim_once
    today = local_date(now)
    last_month = (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    if not claim_once(session, f"report-drafts:{last_month}", now):
        session.rollback()
        return 0
    deadline = today.replace(day=min(max(deadline_day, 1), 28))
    period = ensure_period(session, "month", last_month, None, "系统")
    if period.deadline != deadline and period.created_by == "系统":
        period.deadline = deadline
    made = 0
    for branch in session.scalars(select(OrgUnit).where(OrgUnit.kind == "branch").order_by(OrgUnit.id)).all():
        if latest(session, branch.id, period.id) is not None:
            continue
        figures = build_report(session, branch, period.first, period.last, now, cfg)
        session.add(Report(org_unit_id=branch.id, period_id=period.id, version=1, status="draft",
                           snapshot=json.dumps(figures, ensure_ascii=False), digest=figures["digest"]))
        made += 1
    session.commit()
    return made
