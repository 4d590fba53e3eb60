"""The points ledger: each credit once, within the day's cap, with study streaks; and the standings
that 积分 and 排行 show. Days are local days (models/timeutil).

Points are one append-only ledger with a unique key per (member, rule, reference): whatever retries,
a credit is written once. Each member's total and streak are kept in `member_points`, updated in the
same transaction as the ledger row, so that 积分 and 排行 never sum a year of entries. Every feature
that awards points (reading, quizzes, events) credits through `credit`.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import (
    Date,
    ForeignKey,
    Index,
    Integer,
    Select,
    String,
    UniqueConstraint,
    case,
    func,
    literal,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import Mapped, Session, aliased, mapped_column

from models.base import Base, built, insert_if_absent
from models.members import Member, OrgUnit
from models.timeutil import local_date, utcnow


class PointEntry(Base):
    """One line of the points ledger; never changed or deleted (an adjustment is a new line)."""

    __tablename__ = "points_ledger"
    __table_args__ = (UniqueConstraint("member_id", "rule", "reference"),
                      Index("ix_points_ledger_member_day", "member_id", "day"))

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    rule: Mapped[str] = mapped_column(String(32))  # read, streak, adjust, ...
    delta: Mapped[int] = mapped_column(Integer)
    reference: Mapped[str] = mapped_column(String(100))
    day: Mapped[date] = mapped_column(Date, index=True)  # local day of the entry
    note: Mapped[str] = mapped_column(String(200), default="")
    actor: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MemberPoints(Base):
    """A member's running total and study streak, kept with every ledger line (for 积分 and 排行)."""

    __tablename__ = "member_points"
    __table_args__ = (Index("ix_member_points_total", "total"),)

    # The branch is read from the member each time: a member moved to another branch is ranked
    # there at once, not when they next earn points.
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    total: Mapped[int] = mapped_column(Integer, default=0)
    streak: Mapped[int] = mapped_column(Integer, default=0)
    last_study_day: Mapped[date | None] = mapped_column(Date)


STUDY_RULES = ("read", "quiz")  # rules whose credit makes the day a study day (a finished daily quiz too)
RULE_LABELS = {"read": "阅读学习材料", "quiz": "每日答题", "contest": "竞赛", "event": "参加活动",
               "streak": "连续学习奖励", "adjust": "管理员调整"}


def credit(session: Session, member: Member, rule: str, reference: str, at: datetime, points_cfg,
           points: int | None = None) -> int:
    """Credit `rule` for `reference` once: the rule's points (or `points`, e.g. a quiz's right answers),
    within the rule's daily cap; returns the points added (0 if credited before or capped).

    A capped credit is still written, with 0 points: the study counts for the streak and is not
    credited again later."""
    day = local_date(at)
    rule_cfg = points_cfg.rules[rule]
    totals = _locked_totals(session, member)
    # Whether this reference was credited, and what the rule earned today, in one read.
    taken, earned = session.execute(select(
        func.count().filter(PointEntry.reference == reference),
        func.coalesce(func.sum(PointEntry.delta).filter(PointEntry.day == day), 0),
    ).where(PointEntry.member_id == member.id, PointEntry.rule == rule,
            or_(PointEntry.reference == reference, PointEntry.day == day))).one()
    if taken:
        return 0
    amount = rule_cfg["points"] if points is None else points
    amount = max(0, min(amount, rule_cfg["daily_cap"] - earned))
    if not _append(session, member, rule, amount, reference, day, at):
        return 0
    added = amount
    if rule in STUDY_RULES:
        added += _extend_streak(session, member, totals, day, at, points_cfg.streak_bonus)
    return added


def adjust(session: Session, member: Member, delta: int, note: str, actor: str, at: datetime) -> PointEntry:
    """An administrator's correction, with its reason: a new ledger line, never an edit."""
    _locked_totals(session, member)
    reference = f"adjust:{uuid.uuid4().hex[:12]}"
    _append(session, member, "adjust", delta, reference, local_date(at), at, note=note, actor=actor)
    return session.scalar(select(PointEntry).where(PointEntry.reference == reference))


def _append(session: Session, member: Member, rule: str, delta: int, reference: str, day: date, at: datetime,
            note: str = "", actor: str = "") -> bool:
    """Write one ledger line and move the total with it; False when the key was taken meanwhile."""
    if not insert_if_absent(session, PointEntry, member_id=member.id, rule=rule, delta=delta, reference=reference,
                            day=day, note=note, actor=actor, created_at=at):
        return False  # the same credit, written by a concurrent request: the unique key decides
    session.execute(update(MemberPoints).where(MemberPoints.member_id == member.id)
                    .values(total=MemberPoints.total + delta))
    return True


def _locked_totals(session: Session, member: Member) -> MemberPoints:
    """The member's totals row, created on first use and locked until commit (PostgreSQL): one
    INSERT ... ON CONFLICT DO UPDATE (a no-op change that takes the row's lock) ... RETURNING."""
    statement = built(session, ("locked_totals",), lambda insert: insert(MemberPoints).on_conflict_do_update(
        index_elements=["member_id"], set_={"total": MemberPoints.__table__.c.total}).returning(MemberPoints))
    return session.scalars(statement, {"member_id": member.id, "total": 0, "streak": 0},
                           execution_options={"populate_existing": True}).one()


def _extend_streak(session: Session, member: Member, totals: MemberPoints, day: date, at: datetime, bonus_cfg) -> int:
    if totals.last_study_day == day:
        return 0
    totals.streak = totals.streak + 1 if totals.last_study_day == day - timedelta(days=1) else 1
    totals.last_study_day = day
    every, bonus = bonus_cfg["every_days"], bonus_cfg["points"]
    earns = every > 0 and bonus and totals.streak % every == 0
    if earns and _append(session, member, "streak", bonus, f"streak:{day.isoformat()}", day, at,
                         note=f"连续学习 {totals.streak} 天"):
        return bonus
    return 0


def studied(first: date, last: date) -> Select:
    """Members with a day of study (a credit of a study rule, even a capped one) from first to last."""
    return select(PointEntry.member_id).where(PointEntry.rule.in_(STUDY_RULES), PointEntry.day >= first,
                                              PointEntry.day <= last).distinct()


@dataclass(frozen=True)
class StudyStats:
    """Who studied, per branch: members per branch, members who studied per branch and day, and per
    branch in the whole period."""

    sizes: dict[int, int]
    per_day: dict[tuple[int, date], int]
    per_period: dict[int, int]

    def day_total(self, day: date) -> int:
        return sum(n for (_unit, d), n in self.per_day.items() if d == day)


def study_stats(session: Session, branch_ids: list[int], first: date, last: date) -> StudyStats:
    """StudyStats of these branches from first to last, in three grouped queries."""
    studies = (select(Member.org_unit_id, PointEntry.day, PointEntry.member_id)
               .join(Member, Member.id == PointEntry.member_id)
               .where(Member.org_unit_id.in_(branch_ids), PointEntry.rule.in_(STUDY_RULES),
                      PointEntry.day >= first, PointEntry.day <= last).subquery())
    members = func.count(func.distinct(studies.c.member_id))
    per_day = session.execute(select(studies.c.org_unit_id, studies.c.day, members)
                              .group_by(studies.c.org_unit_id, studies.c.day)).all()
    per_period = session.execute(select(studies.c.org_unit_id, members)
                                 .group_by(studies.c.org_unit_id)).all()
    sizes = session.execute(select(Member.org_unit_id, func.count()).where(Member.org_unit_id.in_(branch_ids))
                            .group_by(Member.org_unit_id)).all()
    return StudyStats(dict(sizes), {(unit, day): n for unit, day, n in per_day}, dict(per_period))


@dataclass(frozen=True)
class Standing:
    today: int
    total: int
    streak: int
    branch_rank: int
    branch_size: int
    school_rank: int
    studied_today: bool = False


def current_streak(totals: MemberPoints | None, today: date) -> int:
    """A streak still counts today if the member studied today or yesterday."""
    if totals is None or totals.last_study_day is None or totals.last_study_day < today - timedelta(days=1):
        return 0
    return totals.streak


def standing(session: Session, member: Member, at: datetime) -> Standing:
    """One round trip: the member's totals, today's points and both ranks (indexes on total)."""
    today = local_date(at)
    mine = select(MemberPoints).where(MemberPoints.member_id == member.id)
    total = func.coalesce(mine.with_only_columns(MemberPoints.total).scalar_subquery(), 0)
    above = select(func.count()).select_from(MemberPoints).where(MemberPoints.total > total)
    row = session.execute(select(
        total,
        mine.with_only_columns(MemberPoints.streak).scalar_subquery(),
        mine.with_only_columns(MemberPoints.last_study_day).scalar_subquery(),
        select(func.coalesce(func.sum(PointEntry.delta), 0)).where(
            PointEntry.member_id == member.id, PointEntry.day == today).scalar_subquery(),
        above.join(Member, Member.id == MemberPoints.member_id)
        .where(Member.org_unit_id == member.org_unit_id).scalar_subquery(),
        above.scalar_subquery(),
        select(func.count()).select_from(Member).where(Member.org_unit_id == member.org_unit_id).scalar_subquery(),
    )).one()
    total_now, streak, last_day, earned, above_branch, above_school, branch_size = row
    totals = MemberPoints(streak=streak or 0, last_study_day=last_day) if last_day else None
    return Standing(earned or 0, total_now or 0, current_streak(totals, today), above_branch + 1, branch_size,
                    above_school + 1, last_day == today)


def leader_boards(session: Session, org_unit_id: int, limit: int = 10):
    """The top (name, branch, total) of a branch and of the whole school, in one round trip; ties by
    member id. On the school's board the branch is named with its college ("计算机学院 · 本科生党支部"):
    two colleges may each have a 本科生党支部, and two members the same name."""
    college = aliased(OrgUnit)

    def board(name: str, unit_id: int | None):
        named = case((OrgUnit.kind == "branch", func.coalesce(college.name + " · ", "") + OrgUnit.name),
                     else_=OrgUnit.name)
        where = OrgUnit.name if unit_id is not None else named
        query = (select(literal(name).label("board"), Member.name, where.label("branch"), MemberPoints.total,
                        MemberPoints.member_id)
                 .join(Member, Member.id == MemberPoints.member_id).join(OrgUnit, OrgUnit.id == Member.org_unit_id)
                 .outerjoin(college, college.id == OrgUnit.parent_id)
                 .where(MemberPoints.total > 0)
                 .order_by(MemberPoints.total.desc(), MemberPoints.member_id).limit(limit))
        if unit_id is not None:
            query = query.where(Member.org_unit_id == unit_id)
        return select(query.subquery())
    boards: dict[str, list] = {"branch": [], "school": []}
    for which, name, branch, total, member_id in session.execute(union_all(board("branch", org_unit_id),
                                                                           board("school", None))):
        boards[which].append((-total, member_id, name, branch))
    # A union keeps no order: sort each board's ten again.
    return tuple([(name, branch, -negative) for negative, _id, name, branch in sorted(rows)]
                 for rows in boards.values())
