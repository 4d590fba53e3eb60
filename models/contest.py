"""Contests between branches: a paper (fixed, or drawn by tags and difficulty), a time window, an
audience, attempts allowed, an optional time limit; results per member and per branch, where a branch
is ranked by participation and average score together, so that a big branch cannot win by size."""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, Integer, String, Text, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.audience import in_audience, units_above
from models.base import Base
from models.members import Member, OrgUnit
from models.quiz import Question, QuizAttempt, questions_for
from models.timeutil import local_date, utcnow

MODES = {"fixed": "固定试卷", "random": "随机抽题"}


class Contest(Base):
    __tablename__ = "contests"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    mode: Mapped[str] = mapped_column(String(16), default="random")  # fixed | random
    question_ids: Mapped[str] = mapped_column(Text, default="[]")  # JSON, the fixed paper
    tags: Mapped[str] = mapped_column(String(200), default="")  # the random draw: any of these tags ("": any)
    difficulty: Mapped[int | None] = mapped_column(Integer)  # the random draw: this difficulty (None: any)
    count: Mapped[int] = mapped_column(Integer, default=10)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    audience: Mapped[str] = mapped_column(Text, default="{}")  # audience spec: units, stages
    attempts_allowed: Mapped[int] = mapped_column(Integer, default=1)
    time_limit_seconds: Mapped[int | None] = mapped_column(Integer)
    org_unit_id: Mapped[int | None] = mapped_column(Integer, index=True)  # the organiser's unit
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))  # its announcement

    def audience_spec(self) -> dict:
        return json.loads(self.audience or "{}")

    def fixed_paper(self) -> list[int]:
        return json.loads(self.question_ids or "[]")

    def state(self, at: datetime) -> str:
        return "upcoming" if at < self.starts_at else ("ended" if at >= self.ends_at else "open")


def may_enter(contest: Contest, member: Member) -> bool:
    return in_audience(member, contest.audience_spec(), units_above(member))


def visible_contests(session: Session, member: Member, at: datetime) -> list[Contest]:
    """Contests of the member's audience that are open or start within a week, soonest first."""
    rows = session.scalars(select(Contest).where(Contest.ends_at > at, Contest.starts_at < at + timedelta(days=7))
                           .order_by(Contest.starts_at, Contest.id))
    return [c for c in rows if may_enter(c, member)]


def attempts_used(session: Session, contest: Contest, member: Member) -> int:
    return session.scalar(select(func.count()).select_from(QuizAttempt).where(
        QuizAttempt.contest_id == contest.id, QuizAttempt.member_id == member.id,
        QuizAttempt.kind == "contest")) or 0


def paper(session: Session, contest: Contest, member: Member, at: datetime, rng: random.Random) -> list[int]:
    """The contest's questions for this member: the fixed paper, or a draw by tags and difficulty."""
    if contest.mode == "fixed":
        return contest.fixed_paper()
    query = questions_for(member, local_date(at))
    if contest.difficulty:
        query = query.where(Question.difficulty == contest.difficulty)
    candidates = list(session.scalars(query))
    wanted = {t.strip() for t in contest.tags.replace("，", ",").split(",") if t.strip()}
    ids = [q.id for q in candidates if not wanted or wanted & set(q.tag_list())]
    rng.shuffle(ids)
    return ids[:contest.count]


def refusal(session: Session, contest: Contest, member: Member, at: datetime) -> str | None:
    """Why the member may not start the contest now, in their words; None when they may."""
    state = contest.state(at)
    if not may_enter(contest, member):
        return "这个竞赛不面向你所在的组织。"
    if state == "upcoming":
        return f"竞赛《{contest.title}》还没开始，{_when(contest.starts_at)} 开始。"
    if state == "ended":
        return f"竞赛《{contest.title}》已经结束。发送“竞赛 {contest.id} 排行”查看结果。"
    if attempts_used(session, contest, member) >= contest.attempts_allowed:
        return f"你已答过 {contest.attempts_allowed} 次，次数已用完。发送“竞赛 {contest.id} 排行”查看排名。"
    return None


def _when(at: datetime) -> str:
    from models.timeutil import show
    return show(at, "%m-%d %H:%M")


def time_is_up(contest: Contest | None, attempt: QuizAttempt, at: datetime) -> bool:
    return bool(contest and contest.time_limit_seconds
                and at > attempt.started_at + timedelta(seconds=contest.time_limit_seconds))


@dataclass(frozen=True)
class MemberResult:
    member_id: int
    name: str
    branch: str
    best: int  # right answers of the best attempt
    total: int
    seconds: int  # time of that attempt (ties go to the faster)


@dataclass(frozen=True)
class BranchResult:
    unit_id: int
    name: str
    audience: int  # members of the branch the contest is for
    players: int
    average: float  # average best score of those who played, as a share of the paper

    @property
    def participation(self) -> float:
        return self.players / self.audience if self.audience else 0.0

    @property
    def score(self) -> float:
        """What branches are ranked by: participation times average score (0 to 100)."""
        return round(100 * self.participation * self.average, 1)


def member_results(session: Session, contest: Contest) -> list[MemberResult]:
    """Each player's best finished attempt, best first (faster first on ties)."""
    attempts = session.execute(select(QuizAttempt, Member.name, OrgUnit.name)
                               .join(Member, Member.id == QuizAttempt.member_id)
                               .join(OrgUnit, OrgUnit.id == Member.org_unit_id)
                               .where(QuizAttempt.contest_id == contest.id, QuizAttempt.kind == "contest",
                                      QuizAttempt.finished_at.is_not(None))).all()
    best: dict[int, MemberResult] = {}
    for attempt, name, branch in attempts:
        seconds = int((attempt.finished_at - attempt.started_at).total_seconds())
        mine = MemberResult(attempt.member_id, name, branch, attempt.right_count, attempt.total, seconds)
        held = best.get(attempt.member_id)
        if held is None or (mine.best, -mine.seconds) > (held.best, -held.seconds):
            best[attempt.member_id] = mine
    return sorted(best.values(), key=lambda r: (-r.best, r.seconds, r.member_id))


def branch_results(session: Session, contest: Contest, results: list[MemberResult]) -> list[BranchResult]:
    """Per branch of the audience: size, players, average best score; ranked by their product."""
    spec = contest.audience_spec()
    members = [m for m in session.scalars(select(Member).join(OrgUnit, OrgUnit.id == Member.org_unit_id))
               if in_audience(m, spec, units_above(m))]
    played = {r.member_id: r for r in results}
    branches: dict[int, list[Member]] = {}
    for member in members:
        branches.setdefault(member.org_unit_id, []).append(member)
    rows = []
    for unit_id, people in branches.items():
        scores = [played[m.id].best / played[m.id].total for m in people if m.id in played and played[m.id].total]
        rows.append(BranchResult(unit_id, people[0].org_unit.name, len(people), len(scores),
                                 sum(scores) / len(scores) if scores else 0.0))
    return sorted(rows, key=lambda b: (-b.score, b.name))
