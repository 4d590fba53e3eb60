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
    bindparam,
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
    credited again later. Four statements (the totals locked, the key and the cap read, the line
    written, the totals moved), each built once: a hall checking in or a contest ending credits
    hundreds at once."""
    day = local_date(at)
    rule_cfg = points_cfg.rules[rule]
    streak, last_day = _locked_totals(session, member.id)
    taken, earned = session.execute(_CREDITED.get(session), {"member": member.id, "rule": rule,
                                                             "reference": reference, "day": day}).one()
    if taken:
        return 0
    amount = rule_cfg["points"] if points is None else points
    amount = max(0, min(amount, rule_cfg["daily_cap"] - earned))
    if not _write_line(session, member.id, rule, amount, reference, day, at):
        return 0  # the same credit, written by a concurrent request: the unique key decides
    if rule not in STUDY_RULES or last_day == day:
        _move_totals(session, member.id, amount)
        return amount
    streak = streak + 1 if last_day == day - timedelta(days=1) else 1
    every, bonus = points_cfg.streak_bonus["every_days"], points_cfg.streak_bonus["points"]
    earns = every > 0 and bonus and streak % every == 0 and _write_line(
        session, member.id, "streak", bonus, f"streak:{day.isoformat()}", day, at, note=f"连续学习 {streak} 天")
    _move_totals(session, member.id, amount + (bonus if earns else 0), streak, day)
    return amount + (bonus if earns else 0)


def adjust(session: Session, member: Member, delta: int, note: str, actor: str, at: datetime) -> PointEntry:
    """An administrator's correction, with its reason: a new ledger line, never an edit."""
    _locked_totals(session, member.id)
    reference = f"adjust:{uuid.uuid4().hex[:12]}"
    _write_line(session, member.id, "adjust", delta, reference, local_date(at), at, note=note, actor=actor)
    _move_totals(session, member.id, delta)
    return session.scalar(select(PointEntry).where(PointEntry.reference == reference))


class _Built:
    """A statement built on first use for each database (see models.base.built)."""

    def __init__(self, name: str, build):
        self.name, self.build = name, build

    def get(self, session: Session):
        return built(session, ("points", self.name), self.build)


_TOTALS = MemberPoints.__table__
_LEDGER = PointEntry.__table__
# The member's totals row, created on first use and locked until commit (PostgreSQL): an INSERT ... ON
# CONFLICT DO UPDATE with a change that changes nothing takes the row's lock and returns it.
_LOCK = _Built("lock", lambda insert: insert(_TOTALS).on_conflict_do_update(
    index_elements=["member_id"], set_={"total": _TOTALS.c.total}).returning(_TOTALS.c.streak,
                                                                             _TOTALS.c.last_study_day))
# Whether this reference was credited, and what the rule earned today, in one read.
_CREDITED = _Built("credited", lambda _insert: select(
    func.count().filter(_LEDGER.c.reference == bindparam("reference")),
    func.coalesce(func.sum(_LEDGER.c.delta).filter(_LEDGER.c.day == bindparam("day")), 0),
).where(_LEDGER.c.member_id == bindparam("member"), _LEDGER.c.rule == bindparam("rule"),
        or_(_LEDGER.c.reference == bindparam("reference"), _LEDGER.c.day == bindparam("day"))))
_MOVE = _Built("move", lambda _insert: update(_TOTALS).where(_TOTALS.c.member_id == bindparam("member"))
               .values(total=_TOTALS.c.total + bindparam("delta")))
_MOVE_AND_STREAK = _Built("move_and_streak", lambda _insert: update(_TOTALS).where(
    _TOTALS.c.member_id == bindparam("member")).values(total=_TOTALS.c.total + bindparam("delta"),
                                                       streak=bindparam("new_streak"),
                                                       last_study_day=bindparam("study_day")))


def _locked_totals(session: Session, member_id: int) -> tuple[int, date | None]:
    """(streak, last day of study), with the member's totals row locked until commit."""
    return tuple(session.execute(_LOCK.get(session), {"member_id": member_id, "total": 0, "streak": 0}).one())


def _write_line(session: Session, member_id: int, rule: str, delta: int, reference: str, day: date, at: datetime,
                note: str = "", actor: str = "") -> bool:
    """One ledger line; False when its key was taken meanwhile."""
    return insert_if_absent(session, PointEntry, member_id=member_id, rule=rule, delta=delta, reference=reference,
                            day=day, note=note, actor=actor, created_at=at)


def _move_totals(session: Session, member_id: int, delta: int, streak: int | None = None,
                 day: date | None = None) -> None:
    """Move the total with the lines just written (and the streak with a new day of study)."""
    if streak is None:
        session.execute(_MOVE.get(session), {"member": member_id, "delta": delta})
    else:
        session.execute(_MOVE_AND_STREAK.get(session), {"member": member_id, "delta": delta, "new_streak": streak,
                                                        "study_day": day})
    loaded = session.identity_map.get(session.identity_key(MemberPoints, member_id))
    if loaded is not None:  # a copy read earlier in this session is out of date now
        session.expire(loaded)


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
