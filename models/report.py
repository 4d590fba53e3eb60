"""The report to the Party committee: one unit's work over a period (a month, a quarter, a semester, a
year or any range), every figure counted from the records it names (docs/报告.md says which).

`build_report` returns plain data (JSON-able) so that what a branch submits is a frozen snapshot of
exactly what it saw, with a digest printed on the documents. Every figure is counted per org unit in
one grouped query per section and then added up the tree, so that a school's year costs about what a
branch's month does; the sub-units of the unit are shown side by side (a college's branches, the
school's colleges).
"""
from __future__ import annotations

import hashlib
import json
import statistics
from collections import defaultdict
from datetime import date, datetime, timedelta

from dateutil.relativedelta import relativedelta
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.accounts import org_children, subtree_ids
from models.members import STAGES, Member, OrgUnit
from models.timeutil import local_date, local_midnight, show

PERIOD_KINDS = {"month": "月", "quarter": "季度", "semester": "学期", "year": "年度", "range": "自定义"}
BLANK = "（待填写）"  # what the product never invents: what was discussed, how it went


class ReportError(ValueError):
    """A period or a unit that cannot be reported on, in words for the organiser."""


# -- periods --------------------------------------------------------------------------------------

def period_range(kind: str, value: str) -> tuple[date, date, str]:
    """(first, last, label) of a period named as the console and the command line name them:
    month 2026-11, quarter 2026-Q4, semester 2026-秋 / 2027-春, year 2026, range 2026-09-01~2026-12-31."""
    from models.meetings import period_of
    value = (value or "").strip()
    try:
        if kind == "month":
            first = date.fromisoformat(value + "-01")
            return first, first + relativedelta(months=1) - timedelta(days=1), f"{first.year}年{first.month}月"
        if kind == "quarter":
            year, quarter = value.upper().split("-Q")
            first = date(int(year), 3 * (int(quarter) - 1) + 1, 1)
            return (first, first + relativedelta(months=3) - timedelta(days=1),
                    f"{first.year}年第{'一二三四'[int(quarter) - 1]}季度")
        if kind == "semester":
            year, season = value.split("-")
            start = date(int(year), 2 if season == "春" else 9, 1)
            if season not in ("春", "秋"):
                raise ValueError
            first, last = period_of("semester", start)
            return first, last, f"{year}年{season}季学期"
        if kind == "year":
            return date(int(value), 1, 1), date(int(value), 12, 31), f"{int(value)}年"
        if kind == "range":
            start, end = value.replace("至", "~").split("~")
            return check_range(date.fromisoformat(start.strip()), date.fromisoformat(end.strip()))
    except (ValueError, IndexError):
        pass
    examples = {"month": "2026-11", "quarter": "2026-Q4", "semester": "2026-秋 或 2027-春", "year": "2026",
                "range": "2026-09-01~2026-12-31"}
    raise ReportError(f"时间段写法不对，例如 {examples.get(kind, '2026-11')}")


def check_range(first: date, last: date) -> tuple[date, date, str]:
    if last < first:
        raise ReportError("结束日期早于开始日期")
    if (last - first).days > 366 * 3:
        raise ReportError("一份报告最长三年")
    return first, last, f"{first.isoformat()} 至 {last.isoformat()}"


def default_period(today: date) -> tuple[str, str]:
    """The period a report opens on: last month."""
    last_month = today.replace(day=1) - timedelta(days=1)
    return "month", last_month.strftime("%Y-%m")


# -- the figures ----------------------------------------------------------------------------------

def _bounds(first: date, last: date) -> tuple[datetime, datetime]:
    return local_midnight(first), local_midnight(last + timedelta(days=1))


class _Tree:
    """The units below the report's unit, and which column (sub-unit) each one adds up into."""

    def __init__(self, session: Session, unit: OrgUnit):
        self.unit = unit
        self.ids = subtree_ids(session, unit.id)
        self.units = {u.id: u for u in session.scalars(select(OrgUnit).where(OrgUnit.id.in_(self.ids)))}
        children = sorted((self.units[i] for i in org_children(session).get(unit.id, []) if i in self.units),
                          key=lambda u: u.name)
        self.columns = children
        self.column_of: dict[int, int] = {}
        for child in children:
            for unit_id in subtree_ids(session, child.id):
                self.column_of[unit_id] = child.id
        if children:  # the unit's own members and events (a college's office) get a column of their own
            self.column_of[unit.id] = unit.id
        self.column_ids = sorted(set(self.column_of.values()), key=list(self.column_of.values()).index)
        self.branches = sorted((u for u in self.units.values() if u.kind == "branch"), key=lambda u: u.name)


def _add(per_unit: dict, tree: _Tree, key: str, counts: dict[int, float]) -> None:
    """Add per-unit counts into the total and into each column they roll up to."""
    for unit_id, value in counts.items():
        if unit_id not in tree.units or not value:
            continue
        per_unit["total"][key] += value
        column = tree.column_of.get(unit_id)
        if column is not None:
            per_unit[column][key] += value


def build_report(session: Session, unit: OrgUnit, first: date, last: date, now: datetime,
                 cfg=None) -> dict:
    """Every figure of the report for `unit` over [first, last] as of `now`: plain data."""
    from models.meetings import cadence
    tree = _Tree(session, unit)
    figures: dict = defaultdict(lambda: defaultdict(float))
    figures["total"]  # the whole unit, even when nothing happened
    for column in tree.columns:
        figures[column.id]
    overdue_days = int(getattr(getattr(cfg, "feedback", None), "remind_after_days", 3) or 3)
    _members(session, tree, figures)
    events = _attendance(session, tree, figures, first, last, now)
    meetings = _meetings(session, tree, figures, first, last, now, cadence(session))
    _study(session, tree, figures, first, last)
    contests = _quizzes(session, tree, figures, first, last, now)
    _checkins(session, tree, figures, first, last)
    development = _development(session, tree, figures, now)
    answer_hours = _feedback(session, tree, figures, first, last, now, overdue_days)
    for key, hours in answer_hours.items():
        figures[key]["feedback_median_hours"] = round(statistics.median(hours), 1) if hours else 0
    own = figures.pop(unit.id, None)
    columns = [{"id": c.id, "name": c.name, "kind": c.kind} for c in tree.columns]
    if own and any(own.values()):
        figures[unit.id] = own
        columns.append({"id": unit.id, "name": f"{unit.name}（本级）", "kind": unit.kind})
    for values in figures.values():
        _rates(values)
    report = {
        "unit": {"id": unit.id, "name": unit.name, "kind": unit.kind, "path": unit.path()},
        "first": first.isoformat(), "last": last.isoformat(), "generated_at": show(now, "%Y-%m-%d %H:%M"),
        "columns": columns,
        "figures": {str(key): {k: _number(v) for k, v in values.items()} for key, values in figures.items()},
        "meetings": meetings, "events": [e for e in events if e["meeting"]], "contests": contests,
        "development": development,
    }
    report["digest"] = digest(report)
    return report


def digest(report: dict) -> str:
    """The report's fingerprint, printed on its documents: any change of a figure changes it."""
    body = {k: v for k, v in report.items() if k != "digest"}
    return hashlib.sha256(json.dumps(body, ensure_ascii=False, sort_keys=True).encode()).hexdigest()[:16]


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else round(value, 1)


def _rates(values: dict) -> None:
    def rate(part: str, whole: str) -> None:
        values[part + "_rate"] = round(100 * values[part] / values[whole], 1) if values[whole] else 0
    rate("present", "expected")
    rate("readers", "members")
    rate("quiz_members", "members")
    rate("quiz_right", "quiz_answered")
    rate("feedback_answered", "feedback_received")
    scored = values["quiz_scored"]
    values["quiz_average_right"] = round(values["quiz_right"] / scored, 1) if scored else 0
    values["reading_hours"] = round(values["reading_seconds"] / 3600, 1)


def _grouped(session: Session, query) -> dict[int, float]:
    return {unit_id: value or 0 for unit_id, value in session.execute(query).all()}


def _members(session: Session, tree: _Tree, figures: dict) -> None:
    _add(figures, tree, "members", _grouped(session, select(Member.org_unit_id, func.count()).where(
        Member.org_unit_id.in_(tree.ids)).group_by(Member.org_unit_id)))
    party = ("预备党员", "正式党员")
    _add(figures, tree, "party_members", _grouped(session, select(Member.org_unit_id, func.count()).where(
        Member.org_unit_id.in_(tree.ids), Member.stage.in_(party)).group_by(Member.org_unit_id)))


def _attendance(session: Session, tree: _Tree, figures: dict, first: date, last: date, now: datetime) -> list[dict]:
    """Events the units organised that have ended in the period: 应到 (expected, on leave or checked
    in), 实到 (checked in, late included), 请假 (approved leave, not checked in), 缺席 (the rest), as the
    event's own attendance page counts them."""
    from models.checkins import CheckIn
    from models.events import Event
    from models.meetings import MEETING_KINDS, Minutes
    from models.signups import TAKING_PLACES, LeaveRequest, Registration
    start, end = _bounds(first, last)
    chosen = select(Event.id).where(Event.org_unit_id.in_(tree.ids), Event.status != "cancelled",
                                    Event.starts_at >= start, Event.starts_at < end, Event.ends_at <= now)
    rows = session.execute(select(Event.id, Event.org_unit_id, Event.kind, Event.title, Event.starts_at,
                                  Event.signup_required, Event.audience, Minutes.status)
                           .outerjoin(Minutes, Minutes.event_id == Event.id)
                           .where(Event.id.in_(chosen)).order_by(Event.starts_at)).all()
    # Counted in the database per event and per the member's unit (a few rows per event, not a row per
    # person): who came, who was on leave without coming, and who signed up but did neither.
    came, late = defaultdict(int), defaultdict(int)
    came_in: dict[int, dict[int, int]] = defaultdict(dict)
    for event_id, member_unit, number, number_late in session.execute(
            select(CheckIn.event_id, Member.org_unit_id, func.count(), func.count().filter(CheckIn.late))
            .select_from(CheckIn).join(Member, Member.id == CheckIn.member_id)
            .where(CheckIn.event_id.in_(chosen)).group_by(CheckIn.event_id, Member.org_unit_id)):
        came[event_id] += number
        late[event_id] += number_late
        came_in[event_id][member_unit] = number
    checked_in = select(CheckIn.id).where(CheckIn.event_id == LeaveRequest.event_id,
                                          CheckIn.member_id == LeaveRequest.member_id).exists()
    leave, leave_in = defaultdict(int), defaultdict(dict)
    for event_id, member_unit, number in session.execute(
            select(LeaveRequest.event_id, Member.org_unit_id, func.count()).select_from(LeaveRequest)
            .join(Member, Member.id == LeaveRequest.member_id)
            .where(LeaveRequest.event_id.in_(chosen), LeaveRequest.status == "approved", ~checked_in)
            .group_by(LeaveRequest.event_id, Member.org_unit_id)):
        leave[event_id] += number
        leave_in[event_id][member_unit] = number
    on_leave = select(LeaveRequest.id).where(LeaveRequest.event_id == Registration.event_id,
                                             LeaveRequest.member_id == Registration.member_id,
                                             LeaveRequest.status == "approved").exists()
    came_too = select(CheckIn.id).where(CheckIn.event_id == Registration.event_id,
                                        CheckIn.member_id == Registration.member_id).exists()
    signed_absent = dict(session.execute(
        select(Registration.event_id, func.count()).where(Registration.event_id.in_(chosen),
                                                          Registration.status.in_(TAKING_PLACES), ~on_leave,
                                                          ~came_too).group_by(Registration.event_id)).all())
    audiences: dict[str, tuple] = {}
    events, per_unit = [], defaultdict(lambda: defaultdict(int))
    for event_id, unit_id, kind, title, starts_at, signup_required, audience, minutes in rows:
        if signup_required:
            absent = signed_absent.get(event_id, 0)
        else:
            if audience not in audiences:  # the branch's meetings share one audience: read it once
                audiences[audience] = _audience(session, json.loads(audience or "{}"))
            units, size, members = audiences[audience]
            if units is not None:  # an audience of whole units: who came from them, by unit
                absent = size - sum(n for u, n in came_in[event_id].items() if u in units) \
                    - sum(n for u, n in leave_in[event_id].items() if u in units)
            else:  # stages, roles, 学号: person by person, for this event only
                absent = len(members - _people(session, CheckIn, event_id)
                             - _people(session, LeaveRequest, event_id))
        present, excused = came[event_id], leave[event_id]
        counts = {"events": 1, "expected": present + excused + absent, "present": present,
                  "late": late[event_id], "leave": excused, "absent": absent}
        for key, value in counts.items():
            per_unit[key][unit_id] += value
        meeting = kind in MEETING_KINDS
        per_unit["meetings_without_minutes"][unit_id] += meeting and minutes != "submitted"
        per_unit["events_without_attendance"][unit_id] += not present and not excused
        events.append({"id": event_id, "unit_id": unit_id, "kind": kind, "title": title,
                       "date": show(starts_at, "%Y-%m-%d"), "meeting": meeting,
                       "minutes": minutes or "", **counts})
    for key, counts in per_unit.items():
        _add(figures, tree, key, counts)
    return events


def _audience(session: Session, spec: dict) -> tuple[frozenset[int] | None, int, frozenset[int]]:
    """An event's audience: (its units, how many members they hold, -) when it is whole units (or
    everyone), else (None, -, its members one by one)."""
    from models.audience import audience_members
    if set(spec) - {"units"}:
        return None, 0, frozenset(session.scalars(audience_members(session, spec)))
    units = frozenset().union(*(subtree_ids(session, int(u)) for u in spec["units"])) if spec.get("units") \
        else frozenset(session.scalars(select(OrgUnit.id)))
    size = session.scalar(select(func.count()).select_from(Member).where(Member.org_unit_id.in_(units))) or 0
    return units, size, frozenset()


def _people(session: Session, table, event_id: int) -> set[int]:
    """Who checked in (CheckIn) or had leave approved (LeaveRequest) at one event."""
    query = select(table.member_id).where(table.event_id == event_id)
    if hasattr(table, "status"):
        query = query.where(table.status == "approved")
    return set(session.scalars(query))


def _meetings(session: Session, tree: _Tree, figures: dict, first: date, last: date, now: datetime,
              rules: dict) -> dict:
    """Required meetings against those held, per kind. A branch owes a kind's meetings for each period
    of its cadence that ends inside the report's range (a quarterly meeting shows in the report of the
    quarter's last month); what it held in that whole period counts against it. A period in which
    every month is exempt owes nothing. Each shortfall is named (branch, kind, period)."""
    from models.events import Event
    from models.meetings import MEETING_KINDS, PERIODS, MeetingExemption, period_of
    today = local_date(now)
    exemptions = session.execute(select(MeetingExemption.org_unit_id, MeetingExemption.month)).all()

    def excused(branch: OrgUnit, month_first: date) -> bool:
        month = month_first.strftime("%Y-%m")
        return any((unit_id is None or unit_id in (branch.id, branch.parent_id)) and exempt_month in ("", month)
                   for unit_id, exempt_month in exemptions)

    due: list[tuple[str, date, date, int]] = []  # kind, period first, period last, times
    for kind in MEETING_KINDS:
        period, times = rules.get(kind, ("month", 0))
        if times <= 0:
            continue
        day = first
        while day <= last:
            p_first, p_last = period_of(period, day)
            if first <= p_last <= last and p_last < today:
                due.append((kind, p_first, p_last, times))
            day = p_last + timedelta(days=1)
    span_first = min((d[1] for d in due), default=first)
    start, end = _bounds(min(span_first, first), last)
    held: dict[tuple[int, str], list[date]] = defaultdict(list)
    for unit_id, kind, starts_at in session.execute(select(Event.org_unit_id, Event.kind, Event.starts_at).where(
            Event.org_unit_id.in_([b.id for b in tree.branches]), Event.kind.in_(MEETING_KINDS),
            Event.status != "cancelled", Event.starts_at >= start, Event.starts_at < end,
            Event.starts_at < now)):
        held[(unit_id, kind)].append(local_date(starts_at))
    required, counted = defaultdict(lambda: defaultdict(int)), defaultdict(lambda: defaultdict(int))
    missing = []
    for branch in tree.branches:
        for kind, p_first, p_last, times in due:
            months = []
            month = p_first
            while month <= p_last:
                months.append(month)
                month += relativedelta(months=1)
            if all(excused(branch, m) for m in months):
                continue
            done = sum(p_first <= d <= p_last for d in held[(branch.id, kind)])
            required[kind][branch.id] += times
            counted[kind][branch.id] += min(done, times)
            if done < times:
                missing.append({"unit_id": branch.id, "unit": branch.name, "kind": kind,
                                "period": f"{p_first.isoformat()} 至 {p_last.isoformat()}",
                                "cadence": PERIODS[rules[kind][0]], "required": times, "held": done})
    for kind in MEETING_KINDS:
        _add(figures, tree, f"required:{kind}", dict(required[kind]))
        _add(figures, tree, f"held:{kind}", dict(counted[kind]))
        _add(figures, tree, "meetings_required", dict(required[kind]))
        _add(figures, tree, "meetings_held", dict(counted[kind]))
    return {"kinds": [k for k in MEETING_KINDS if rules.get(k, ("", 0))[1] > 0], "missing": missing,
            "cadence": {k: [PERIODS[p], t] for k, (p, t) in rules.items() if t > 0}}


def _study(session: Session, tree: _Tree, figures: dict, first: date, last: date) -> None:
    """The study pushed (days, deliveries by how they reached the members), the reading, the daily quiz
    (each day's scored one): sums from reportdays, members counted once each over the period."""
    from models.checkins import CheckIn
    from models.delivery import CHANNEL_LABELS
    from models.events import Event
    from models.quiz import QuizAttempt
    from models.reportdays import additive_figures
    from models.study import Reading
    values, days = additive_figures(session, tree.ids, first, last)
    per_key: dict = defaultdict(dict)
    for (unit_id, key), value in values.items():
        if key.startswith("sent:"):
            key = "sent:" + CHANNEL_LABELS.get(key[5:], key[5:])
        per_key[key][unit_id] = per_key[key].get(unit_id, 0) + value
    for key, per_unit in per_key.items():
        _add(figures, tree, key, per_unit)
    figures["total"]["push_days"] = len(set().union(*days.values())) if days else 0
    for column in tree.column_ids:
        figures[column]["push_days"] = len(set().union(*(d for u, d in days.items()
                                                         if tree.column_of.get(u) == column)))
    start, end = _bounds(first, last)
    # Who read, who took the daily quiz: each member once, found through the (member, time) indexes.
    read = select(Reading.id).where(Reading.member_id == Member.id, Reading.opened_at >= start,
                                    Reading.opened_at < end).exists()
    quizzed = select(QuizAttempt.id).where(QuizAttempt.member_id == Member.id, QuizAttempt.day >= first,
                                           QuizAttempt.day <= last, QuizAttempt.kind == "daily").exists()
    for key, condition in (("readers", read), ("quiz_members", quizzed)):
        _add(figures, tree, key, _grouped(session, select(Member.org_unit_id, func.count()).where(
            Member.org_unit_id.in_(tree.ids), condition).group_by(Member.org_unit_id)))
    _add(figures, tree, "event_hours", _grouped(session, select(Member.org_unit_id, func.sum(Event.study_hours))
                                                .select_from(CheckIn)
                                                .join(Member, Member.id == CheckIn.member_id)
                                                .join(Event, Event.id == CheckIn.event_id)
                                                .where(CheckIn.at >= start, CheckIn.at < end,
                                                       Member.org_unit_id.in_(tree.ids))
                                                .group_by(Member.org_unit_id)))


def _quizzes(session: Session, tree: _Tree, figures: dict, first: date, last: date, now: datetime) -> list[dict]:
    """The contests in the period the units' members took part in (the daily quiz is with the study)."""
    from models.contest import Contest, branch_results, member_results
    start, end = _bounds(first, last)
    contests = []
    for contest in session.scalars(select(Contest).where(Contest.starts_at < end, Contest.ends_at >= start)
                                   .order_by(Contest.starts_at)):
        results = member_results(session, contest)
        mine = [r for r in results if r.unit_id in tree.ids]
        if not mine:
            continue
        ranking = branch_results(session, contest, results)
        places = {b.unit_id: i + 1 for i, b in enumerate(ranking)}
        contests.append({
            "id": contest.id, "title": contest.title, "date": show(contest.starts_at, "%Y-%m-%d"),
            "ended": contest.ends_at <= now, "members": len(mine),
            "average": round(sum(r.best for r in mine) / len(mine), 1) if mine else 0,
            "branches": [{"unit": b.name, "place": places[b.unit_id], "of": len(ranking),
                          "players": b.players, "audience": b.audience, "average": round(100 * b.average, 1)}
                         for b in ranking if b.unit_id in tree.ids]})
    figures["total"]["contests"] = len(contests)
    return contests


def _checkins(session: Session, tree: _Tree, figures: dict, first: date, last: date) -> None:
    from models.checkins import CheckIn
    start, end = _bounds(first, last)
    _add(figures, tree, "checkins", _grouped(session, select(Member.org_unit_id, func.count())
                                             .select_from(CheckIn).join(Member, Member.id == CheckIn.member_id)
                                             .where(CheckIn.at >= start, CheckIn.at < end,
                                                    Member.org_unit_id.in_(tree.ids)).group_by(Member.org_unit_id)))


def _development(session: Session, tree: _Tree, figures: dict, now: datetime) -> dict:
    """发展党员 as of the report's making: open records by the stage their member is at, and the next
    steps past their latest date."""
    from models.development import DevRecord
    today = local_date(now)
    rows = session.execute(select(Member.org_unit_id, Member.stage, func.count(),
                                  func.count(DevRecord.next_latest).filter(DevRecord.next_latest < today))
                           .select_from(DevRecord).join(Member, Member.id == DevRecord.member_id)
                           .where(DevRecord.status == "active", Member.org_unit_id.in_(tree.ids))
                           .group_by(Member.org_unit_id, Member.stage)).all()
    stages = [s for s in STAGES if s not in ("群众", "共青团员")]
    for stage in stages:
        _add(figures, tree, f"dev:{stage}", {r[0]: r[2] for r in rows if r[1] == stage})
    by_unit: dict[int, int] = defaultdict(int)
    late: dict[int, int] = defaultdict(int)
    for unit_id, _stage, number, overdue in rows:
        by_unit[unit_id] += number
        late[unit_id] += overdue
    _add(figures, tree, "dev_records", by_unit)
    _add(figures, tree, "dev_overdue", late)
    return {"stages": stages}


def _feedback(session: Session, tree: _Tree, figures: dict, first: date, last: date, now: datetime,
              overdue_days: int) -> dict:
    """留言 (not replies to a topic) from the units' members in the period that reached the organisers
    (screening did not block them): answered, the median hours to the first answer, and those still
    unanswered after feedback.remind_after_days."""
    from models.feedback import Post
    start, end = _bounds(first, last)
    rows = session.execute(select(Post.org_unit_id, Post.created_at, Post.answered_at).where(
        Post.topic_id.is_(None), Post.status.in_(("visible", "held")), Post.created_at >= start,
        Post.created_at < end, Post.org_unit_id.in_(tree.ids))).all()
    counts, hours = defaultdict(lambda: defaultdict(int)), defaultdict(list)
    for unit_id, created, answered in rows:
        counts["feedback_received"][unit_id] += 1
        column = tree.column_of.get(unit_id)
        if answered is not None:
            counts["feedback_answered"][unit_id] += 1
            waited = (answered - created).total_seconds() / 3600
            hours["total"].append(waited)
            if column is not None:
                hours[column].append(waited)
        elif now - created > timedelta(days=overdue_days):
            counts["feedback_overdue"][unit_id] += 1
    for key, per_unit in counts.items():
        _add(figures, tree, key, per_unit)
    return {key: hours.get(key, []) for key in ["total", *tree.column_ids]}


# -- reading the report ---------------------------------------------------------------------------

def figure(report: dict, key: str, column: int | str = "total") -> float:
    return report["figures"].get(str(column), {}).get(key, 0)


def channel_keys(report: dict) -> list[str]:
    keys = {k for values in report["figures"].values() for k in values if k.startswith("sent:")}
    return sorted(keys)


def missing_of(report: dict, unit_id: int | None = None) -> list[dict]:
    return [m for m in report["meetings"]["missing"] if unit_id is None or m["unit_id"] == unit_id]

