"""The report's additive figures of the biggest tables (a delivery per follower per day, a reading,
a daily quiz), added up once per day and unit when the day has settled, so that a school's year reads
a few hundred thousand sums instead of millions of rows.

A day settles `settle_days` after it ended (a push's deliveries may wait for the member's next
interaction for delivery.inbox_days). Until then, and for any day not yet added up, the report counts
the records themselves; both ways give the same figures (tests/test_report.py). The sums are derived
data: `settle` rebuilds any day whose marker is removed. A member who moves to another branch after a
day settled stays counted in the branch they were in then.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta

from sqlalchemy import Date, Float, Integer, String, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base
from models.members import Member
from models.timeutil import local_date, local_midnight, utcnow


class DailyFigure(Base):
    __tablename__ = "daily_figures"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    org_unit_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(48), primary_key=True)
    value: Mapped[float] = mapped_column(Float)


class SettledDay(Base):
    """A day whose figures are in daily_figures (its key: what makes it added up once)."""
    __tablename__ = "daily_figures_settled"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    settled_at: Mapped[datetime] = mapped_column(default=utcnow)


def raw_figures(session: Session, unit_ids, first: date, last: date) -> tuple[dict, dict]:
    """From the records: {(unit, key): value} over [first, last], and {unit: {push days}}; the units
    `unit_ids` (None: every unit)."""
    from models.delivery import Campaign, Delivery
    from models.quiz import QuizAttempt
    from models.study import Reading
    start, end = local_midnight(first), local_midnight(last + timedelta(days=1))
    values: dict = defaultdict(float)
    days: dict = defaultdict(set)
    in_units = Member.org_unit_id.in_(unit_ids) if unit_ids is not None else Member.org_unit_id.is_not(None)
    campaigns = select(Campaign.id, Campaign.push_day).where(Campaign.push_day >= first,
                                                            Campaign.push_day <= last).subquery()
    for unit_id, day, status, channel, number in session.execute(
            select(Member.org_unit_id, campaigns.c.push_day, Delivery.status, Delivery.channel, func.count())
            .select_from(Delivery).join(campaigns, campaigns.c.id == Delivery.campaign_id)
            .join(Member, Member.id == Delivery.member_id).where(in_units)
            .group_by(Member.org_unit_id, campaigns.c.push_day, Delivery.status, Delivery.channel)):
        days[unit_id].add(day)
        values[(unit_id, "pushed")] += number
        if status == "sent":
            values[(unit_id, f"sent:{channel}")] += number
            values[(unit_id, "sent")] += number
        elif status in ("waiting", "expired", "unreachable"):
            values[(unit_id, status)] += number
    for unit_id, reads, seconds, credited in session.execute(
            select(Member.org_unit_id, func.count(), func.coalesce(func.sum(Reading.seconds), 0),
                   func.count(Reading.credited_at))
            .select_from(Reading).join(Member, Member.id == Reading.member_id)
            .where(Reading.opened_at >= start, Reading.opened_at < end, in_units)
            .group_by(Member.org_unit_id)):
        values[(unit_id, "reads")] += reads
        values[(unit_id, "reading_seconds")] += seconds
        values[(unit_id, "credited_reads")] += credited
    # An attempt's position is the number of questions answered (skipped ones included): the count of
    # its answer records, without reading that much bigger table.
    for unit_id, scored, right, answered in session.execute(
            select(Member.org_unit_id, func.count(), func.coalesce(func.sum(QuizAttempt.right_count), 0),
                   func.coalesce(func.sum(QuizAttempt.position), 0))
            .select_from(QuizAttempt).join(Member, Member.id == QuizAttempt.member_id)
            .where(QuizAttempt.kind == "daily", QuizAttempt.day >= first, QuizAttempt.day <= last,
                   in_units).group_by(Member.org_unit_id)):
        values[(unit_id, "quiz_scored")] += scored
        values[(unit_id, "quiz_right")] += right
        values[(unit_id, "quiz_answered")] += answered
    return values, days


def additive_figures(session: Session, unit_ids, first: date, last: date) -> tuple[dict, dict]:
    """The same as raw_figures, from the daily sums for the settled days and the records for the rest."""
    settled = set(session.scalars(select(SettledDay.day).where(SettledDay.day >= first, SettledDay.day <= last)))
    values: dict = defaultdict(float)
    days: dict = defaultdict(set)
    if settled:
        for day, unit_id, key, value in session.execute(
                select(DailyFigure.day, DailyFigure.org_unit_id, DailyFigure.key, DailyFigure.value).where(
                    DailyFigure.day >= first, DailyFigure.day <= last, DailyFigure.org_unit_id.in_(unit_ids))):
            if day not in settled:  # left from a day being added up again
                continue
            values[(unit_id, key)] += value
            if key == "pushed":
                days[unit_id].add(day)
    for run_first, run_last in _runs(first, last, settled):
        more, more_days = raw_figures(session, unit_ids, run_first, run_last)
        for key, value in more.items():
            values[key] += value
        for unit_id, found in more_days.items():
            days[unit_id] |= found
    return values, days


def _runs(first: date, last: date, settled: set[date]) -> list[tuple[date, date]]:
    """The stretches of days in [first, last] that are not settled."""
    runs, start, day = [], None, first
    while day <= last:
        if day not in settled and start is None:
            start = day
        if day in settled and start is not None:
            runs.append((start, day - timedelta(days=1)))
            start = None
        day += timedelta(days=1)
    if start is not None:
        runs.append((start, last))
    return runs


def settle(session: Session, now: datetime, settle_days: int, limit: int = 400) -> int:
    """Add up every day that ended `settle_days` ago or more and is not added up yet (from the first
    day with records), once whatever runs it: the day's marker is its key."""
    from models.delivery import Campaign
    from models.quiz import QuizAttempt
    from models.study import Reading
    cutoff = local_date(now) - timedelta(days=settle_days + 1)
    starts = [session.scalar(select(func.min(Campaign.push_day))),
              session.scalar(select(func.min(QuizAttempt.day))),
              session.scalar(select(func.min(Reading.opened_at)))]
    known = [d if isinstance(d, date) and not isinstance(d, datetime) else local_date(d) for d in starts if d]
    if not known:
        return 0
    done = set(session.scalars(select(SettledDay.day).where(SettledDay.day >= min(known))))
    day, settled = min(known), 0
    while day <= cutoff and settled < limit:
        if day not in done:
            settled += _settle_day(session, day, now)
        day += timedelta(days=1)
    return settled


def _settle_day(session: Session, day: date, now: datetime) -> int:
    try:
        with session.begin_nested():
            session.add(SettledDay(day=day, settled_at=now))
            session.flush()
    except IntegrityError:  # another scheduler added it up first
        session.rollback()
        return 0
    session.execute(delete(DailyFigure).where(DailyFigure.day == day))
    values, _days = raw_figures(session, None, day, day)
    session.add_all(DailyFigure(day=day, org_unit_id=unit_id, key=key, value=value)
                    for (unit_id, key), value in values.items() if value)
    session.commit()
    return 1
