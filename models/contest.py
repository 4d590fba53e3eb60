"""Contests between branches: a paper (fixed, or drawn by tags and difficulty), a time window, an
audience, attempts allowed, an optional time limit; results per member and per branch, where a branch
is ranked by participation and average score together, so that a big branch cannot win by size."""
from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, Integer, String, Text, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.accounts import subtree_ids
from models.base import Base
from models.members import Member, OrgUnit, in_audience, units_above
from models.quiz import Question, QuizAttempt, questions_for
from models.timeutil import local_date, parse_local_time, show, utcnow

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


def may_see_results(session: Session, contest: Contest, member: Member) -> bool:
    """Its audience, and the organisers whose scope holds the contest (admins: every contest)."""
    if may_enter(contest, member) or member.role == "admin":
        return True
    return member.role == "organiser" and member.org_unit_id is not None and contest.org_unit_id is not None \
        and contest.org_unit_id in subtree_ids(session, member.org_unit_id)


def attempts_used(session: Session, contest: Contest, member: Member) -> int:
    """Every attempt started counts, however it ended (left, timed out, or in progress)."""
    return session.scalar(select(func.count()).select_from(QuizAttempt).where(
        QuizAttempt.contest_id == contest.id, QuizAttempt.member_id == member.id)) or 0


def held_questions(session: Session, at: datetime) -> set[int]:
    """The questions on the fixed papers of contests open now: not drawn for daily quizzes, where
    their answers would be shown before the contest closes."""
    papers = session.scalars(select(Contest.question_ids).where(Contest.mode == "fixed", Contest.starts_at <= at,
                                                                 Contest.ends_at > at))
    return {int(q) for paper_ids in papers for q in json.loads(paper_ids or "[]")}


def reveals_answers(contest: Contest | None, at: datetime) -> bool:
    """Right answers and explanations are shown after each answer, except in a contest still open."""
    return contest is None or contest.state(at) == "ended"


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
    return show(at, "%m-%d %H:%M")


def limit_end(contest: Contest | None, attempt: QuizAttempt) -> datetime | None:
    """When a contest attempt's time runs out (None: no time limit)."""
    if contest is None or not contest.time_limit_seconds:
        return None
    return attempt.started_at + timedelta(seconds=contest.time_limit_seconds)


def time_is_up(contest: Contest | None, attempt: QuizAttempt, at: datetime) -> bool:
    end = limit_end(contest, attempt)
    return end is not None and at > end


@dataclass(frozen=True)
class MemberResult:
    member_id: int
    name: str
    unit_id: int
    branch: str
    best: int  # right answers of the best attempt
    total: int
    seconds: int  # time of that attempt (ties go to the faster)
    ended: str = ""  # how that attempt ended (ENDINGS)
    attempts: int = 1  # attempts finished, however they ended

    @property
    def ending(self) -> str:
        return ENDINGS.get(self.ended, self.ended)


ENDINGS = {"": "答完", "left": "中途退出", "expired": "超时未答完", "time_up": "时间到"}


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
    """Each player's best finished attempt (however it ended: a left attempt counts with what it
    scored), best first (faster first on ties)."""
    attempts = session.execute(select(QuizAttempt, Member.name, OrgUnit.id, OrgUnit.name)
                               .join(Member, Member.id == QuizAttempt.member_id)
                               .join(OrgUnit, OrgUnit.id == Member.org_unit_id)
                               .where(QuizAttempt.contest_id == contest.id, QuizAttempt.kind == "contest",
                                      QuizAttempt.finished_at.is_not(None))).all()
    best: dict[int, MemberResult] = {}
    tries: dict[int, int] = {}
    for attempt, name, unit_id, branch in attempts:
        tries[attempt.member_id] = tries.get(attempt.member_id, 0) + 1
        seconds = int((attempt.finished_at - attempt.started_at).total_seconds())
        mine = MemberResult(attempt.member_id, name, unit_id, branch, attempt.right_count, attempt.total, seconds,
                            attempt.ended)
        held = best.get(attempt.member_id)
        if held is None or (mine.best, -mine.seconds) > (held.best, -held.seconds):
            best[attempt.member_id] = mine
    best = {m: replace(r, attempts=tries[m]) for m, r in best.items()}
    return sorted(best.values(), key=lambda r: (-r.best, r.seconds, r.member_id))


def branch_results(session: Session, contest: Contest, results: list[MemberResult]) -> list[BranchResult]:
    """Per branch of the audience: size, players, average best score; ranked by their product."""
    spec = contest.audience_spec()
    query = select(Member.id, Member.org_unit_id).where(Member.org_unit_id.is_not(None))
    if spec.get("units"):
        units = set().union(*(subtree_ids(session, int(u)) for u in spec["units"]))
        query = query.where(Member.org_unit_id.in_(units))
    if spec.get("stages"):
        query = query.where(Member.stage.in_(spec["stages"]))
    branches: dict[int, list[int]] = {}
    for member_id, unit_id in session.execute(query):
        branches.setdefault(unit_id, []).append(member_id)
    names = dict(session.execute(select(OrgUnit.id, OrgUnit.name).where(OrgUnit.id.in_(branches))).all())
    played = {r.member_id: r for r in results}
    rows = []
    for unit_id, people in branches.items():
        scores = [played[m].best / played[m].total for m in people if m in played and played[m].total]
        rows.append(BranchResult(unit_id, names.get(unit_id, ""), len(people), len(scores),
                                 sum(scores) / len(scores) if scores else 0.0))
    return sorted(rows, key=lambda b: (-b.score, b.name))


# --- the organiser's form -------------------------------------------------------------------------

MAX_QUESTIONS, MAX_ATTEMPTS, MAX_MINUTES = 100, 10, 180


def check_contest(raw: dict, now: datetime, known_questions: set[int]) -> tuple[dict | None, str | None]:
    """The contest a form describes, or why it is not one. `known_questions`: the active questions the
    organiser may put on a fixed paper."""
    title = raw.get("title", "").strip()
    if not title:
        return None, "请填写竞赛名称"
    mode = raw.get("mode", "random")
    if mode not in MODES:
        return None, "请选择固定试卷或随机抽题"
    fields: dict = {"title": title[:100], "mode": mode, "tags": "", "difficulty": None, "question_ids": "[]"}
    if mode == "fixed":
        numbers = [n for n in re.split(r"[\s,，、;；]+", raw.get("question_ids", "")) if n]
        if not numbers or not all(n.isdigit() for n in numbers):
            return None, "固定试卷请填写题目编号，用逗号分隔，例如 12, 15, 31"
        ids = list(dict.fromkeys(int(n) for n in numbers))
        unknown = [str(n) for n in ids if n not in known_questions]
        if unknown:
            return None, f"题库中没有这些可用的题目：{'、'.join(unknown[:10])}"
        if len(ids) > MAX_QUESTIONS:
            return None, f"一份试卷最多 {MAX_QUESTIONS} 题"
        fields.update(question_ids=json.dumps(ids), count=len(ids))
    else:
        count = _whole(raw.get("count", ""))
        if count is None or not 1 <= count <= MAX_QUESTIONS:
            return None, f"题目数量应为 1 到 {MAX_QUESTIONS}"
        difficulty = raw.get("difficulty", "")
        if difficulty not in ("", "1", "2", "3"):
            return None, "难度应为 1、2、3 或不限"
        fields.update(count=count, tags=raw.get("tags", "").strip()[:200],
                      difficulty=int(difficulty) if difficulty else None)
    starts, ends = parse_local_time(raw.get("starts_at"), FORM_TIME), parse_local_time(raw.get("ends_at"), FORM_TIME)
    if starts is None or ends is None:
        return None, "请填写开始和结束时间"
    if ends <= starts:
        return None, "结束时间要晚于开始时间"
    if ends <= now:
        return None, "结束时间已经过去了"
    attempts = _whole(raw.get("attempts_allowed", ""))
    if attempts is None or not 1 <= attempts <= MAX_ATTEMPTS:
        return None, f"每人可答次数应为 1 到 {MAX_ATTEMPTS}"
    minutes = raw.get("time_limit", "").strip()
    if minutes and (_whole(minutes) is None or not 1 <= int(minutes) <= MAX_MINUTES):
        return None, f"限时应为 1 到 {MAX_MINUTES} 分钟，不限时请留空"
    fields.update(starts_at=starts, ends_at=ends, attempts_allowed=attempts,
                  time_limit_seconds=int(minutes) * 60 if minutes else None)
    return fields, None


FORM_TIME = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends


def _whole(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(text) if text.isdigit() and len(text) < 6 else None


def contest_form_values(contest: Contest) -> dict:
    """A contest as its form shows it (the inverse of check_contest)."""
    return {"title": contest.title, "mode": contest.mode, "question_ids": ", ".join(map(str, contest.fixed_paper())),
            "tags": contest.tags, "difficulty": str(contest.difficulty or ""), "count": str(contest.count),
            "starts_at": show(contest.starts_at, FORM_TIME), "ends_at": show(contest.ends_at, FORM_TIME),
            "attempts_allowed": str(contest.attempts_allowed),
            "time_limit": str(contest.time_limit_seconds // 60) if contest.time_limit_seconds else ""}


def announcement(contest: Contest) -> str:
    """The message that tells the audience a contest is coming."""
    limit = f"，限时 {contest.time_limit_seconds // 60} 分钟" if contest.time_limit_seconds else ""
    return (f"知识竞赛《{contest.title}》{show(contest.starts_at, '%m月%d日 %H:%M')} 开始，"
            f"{show(contest.ends_at, '%m月%d日 %H:%M')} 截止，共 {contest.count} 题{limit}，"
            f"每人可答 {contest.attempts_allowed} 次。到时回复“竞赛 {contest.id}”参加，"
            f"回复“竞赛 {contest.id} 排行”看各支部排名。")
