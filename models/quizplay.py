"""Playing a quiz: starting an attempt, answering each position once, finishing with points, and the
wrong-answer book (错题本) with spaced repetition."""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Date, ForeignKey, Integer, UniqueConstraint, bindparam, func, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.orm.attributes import set_committed_value

from models.base import Base, built, insert_if_absent, upsert
from models.members import Member
from models.points import credit
from models.quiz import (
    AnswerRecord,
    AskedQuestion,
    Question,
    QuizAttempt,
    draw,
    paper_questions,
    shuffled_orders,
    to_question_options,
)
from models.timeutil import local_date, utcnow


class ReviewCard(Base):
    """A question a member got wrong, and when it comes back (spaced repetition)."""

    __tablename__ = "quiz_review_cards"
    __table_args__ = (UniqueConstraint("member_id", "question_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("questions.id"))
    stage: Mapped[int] = mapped_column(Integer, default=0)  # index into quiz.review_intervals
    due: Mapped[date] = mapped_column(Date, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- starting ---------------------------------------------------------------------------------------

def new_attempt(session: Session, member: Member, kind: str, question_ids: list[int], at: datetime,
                rng: random.Random, contest_id: int | None = None) -> QuizAttempt:
    """An attempt over these questions, each with its options in a fresh order."""
    by_id = paper_questions(session, question_ids)
    questions = [by_id[i] for i in question_ids if i in by_id]
    attempt = QuizAttempt(member_id=member.id, kind=kind, contest_id=contest_id, day=local_date(at),
                          questions=json.dumps([q.id for q in questions]),
                          orders=json.dumps(shuffled_orders(questions, rng)), started_at=at)
    session.add(attempt)
    session.flush()
    return attempt


def start_daily(session: Session, member: Member, at: datetime, cfg, rng: random.Random) -> QuizAttempt | None:
    """Today's quiz: scored while the member has started fewer than quiz.scored_per_day scored quizzes
    today (a quiz left half-way counts: the first started is the day's), then practice. Questions on
    the paper of an open contest are not drawn. None when the bank has no question for the member."""
    from models.contest import held_questions
    day = local_date(at)
    scored = session.scalar(select(func.count()).select_from(QuizAttempt).where(
        QuizAttempt.member_id == member.id, QuizAttempt.day == day, QuizAttempt.kind == "daily")) or 0
    ids = draw(session, member, cfg.quiz.questions_per_quiz, day, cfg.quiz.recent_days, rng,
               held_questions(session, at))
    if not ids:
        return None
    return new_attempt(session, member, "daily" if scored < cfg.quiz.scored_per_day else "practice", ids, at, rng)


def live_attempt(session: Session, member: Member, at: datetime, cfg) -> tuple[QuizAttempt | None, list[Closed]]:
    """The member's attempt in progress, if any; attempts that ended meanwhile (idle past
    quiz.state_ttl, or past their contest's time limit) are closed first and returned with it."""
    from models.contest import Contest, limit_end
    open_ones = session.scalars(select(QuizAttempt).where(QuizAttempt.member_id == member.id,
                                                          QuizAttempt.finished_at.is_(None))
                                .order_by(QuizAttempt.id.desc())).all()
    live, closed = None, []
    for attempt in open_ones:
        contest = session.get(Contest, attempt.contest_id) if attempt.contest_id else None
        limit = limit_end(contest, attempt)
        if limit is not None and at > limit:
            closed.append(Closed(attempt, finish(session, attempt, member, limit, cfg, "time_up")))
        elif live is None and at - attempt.last_active <= timedelta(seconds=cfg.quiz.state_ttl):
            live = attempt
        else:  # idle too long, or an older one left open beside the live one
            closed.append(Closed(attempt, finish(session, attempt, member, attempt.last_active, cfg, "expired")))
    return live, closed


def close_stale_attempts(session: Session, at: datetime, cfg) -> int:
    """Close every attempt that ended while its member was away (idle past quiz.state_ttl, or past
    its contest's time limit), so that scores, points and rankings are true without waiting for the
    member's next message. Safe to run twice at once: each close is a guarded update."""
    from models.contest import Contest, limit_end
    idle_since = at - timedelta(seconds=cfg.quiz.state_ttl)
    stale = session.execute(select(QuizAttempt, Contest).outerjoin(Contest, Contest.id == QuizAttempt.contest_id)
                            .where(QuizAttempt.finished_at.is_(None))).all()
    closed = 0
    for attempt, contest in stale:
        limit = limit_end(contest, attempt)
        if limit is not None and at > limit:
            ended, end = "time_up", limit
        elif attempt.last_active < idle_since:
            ended, end = "expired", attempt.last_active
        else:
            continue
        claimed = session.execute(update(QuizAttempt).where(QuizAttempt.id == attempt.id,
                                                            QuizAttempt.finished_at.is_(None))
                                  .values(finished_at=end, ended=ended)).rowcount
        if claimed:
            session.refresh(attempt)
            finish(session, attempt, session.get(Member, attempt.member_id), end, cfg, ended)
            closed += 1
    session.commit()
    return closed


@dataclass(frozen=True)
class Closed:
    """An attempt closed because it ended while the member was away, and what it came to."""

    attempt: QuizAttempt
    result: Finished


# --- answering --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Answered:
    question: AskedQuestion
    order: list[int]
    correct: bool
    skipped: bool
    recorded: bool  # False when this position had been answered already (a repeat counts once)


def current(session: Session, attempt: QuizAttempt) -> tuple[AskedQuestion, list[int]]:
    """The question at the attempt's position (as the bank has it now), and its options' order."""
    question_id = attempt.question_ids[attempt.position]
    return paper_questions(session, [question_id])[question_id], attempt.option_orders[attempt.position]


def answer(session: Session, attempt: QuizAttempt, shown: frozenset[int] | None, at: datetime, cfg,
           review_from: date | None = None) -> Answered:
    """Record the answer to the current position (None: skipped) and move on. The unique key on
    (attempt, position) makes a second delivery of the same answer a no-op. A wrong answer enters
    the wrong-answer book, due no earlier than `review_from` (after a contest closes: a review shows
    the right answer)."""
    question, order = current(session, attempt)
    chosen = to_question_options(shown, order) if shown is not None else frozenset()
    correct = shown is not None and chosen == question.right
    if not insert_if_absent(session, AnswerRecord, attempt_id=attempt.id, member_id=attempt.member_id,
                            question_id=question.id, position=attempt.position,
                            chosen=",".join(map(str, sorted(chosen))), correct=correct, skipped=shown is None,
                            answered_at=at):
        return Answered(question, order, correct, shown is None, recorded=False)
    _advance(session, attempt, correct, at)
    update_card(session, attempt.member_id, question.id, correct, attempt.kind == "review", local_date(at),
                cfg.quiz.review_intervals, review_from)
    return Answered(question, order, correct, shown is None, recorded=True)


def _advance(session: Session, attempt: QuizAttempt, correct: bool, at: datetime) -> None:
    """The attempt moves to its next position: one UPDATE built once (the answer's unique key has
    just said this position was not answered before), and the loaded attempt says so too without
    a flush of the session (whose bookkeeping costs more than the statement)."""
    table = QuizAttempt.__table__
    statement = built(session, ("quiz_advance",), lambda _insert: update(table).where(
        table.c.id == bindparam("attempt")).values(position=table.c.position + 1,
                                                  right_count=table.c.right_count + bindparam("right"),
                                                  active_at=bindparam("at")))
    session.execute(statement, {"attempt": attempt.id, "right": int(correct), "at": at})
    set_committed_value(attempt, "position", attempt.position + 1)
    set_committed_value(attempt, "right_count", attempt.right_count + int(correct))
    set_committed_value(attempt, "active_at", at)


# --- finishing --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Finished:
    right: int
    total: int
    points: int
    scored: bool
    branch_rank: int | None  # today's place in the branch (scored daily quizzes)
    branch_players: int


def finish(session: Session, attempt: QuizAttempt, member: Member, at: datetime, cfg, ended: str = "") -> Finished:
    """Close the attempt, however it ended (`ended`: "" to the last question, left, expired,
    time_up): it counts with what was answered. A scored daily quiz earns a point per right answer
    and the full-score bonus, once a day, through the ledger (it is also a day of study)."""
    attempt.finished_at, attempt.ended = at, ended
    points = 0
    if attempt.kind == "daily":
        bonus = cfg.quiz.full_score_bonus if attempt.right_count == attempt.total else 0
        points = credit(session, member, "quiz", f"quiz:{attempt.day.isoformat()}", at, cfg.points,
                        points=attempt.right_count + bonus)
        attempt.points = points
    rank, players = branch_place(session, attempt, member) if attempt.kind == "daily" else (None, 0)
    return Finished(attempt.right_count, attempt.total, points, attempt.kind == "daily", rank, players)


def branch_place(session: Session, attempt: QuizAttempt, member: Member) -> tuple[int, int]:
    """Today's place in the branch by right answers of the scored quiz (ties share), and how many played."""
    today = (select(QuizAttempt.member_id, QuizAttempt.right_count)
             .join(Member, Member.id == QuizAttempt.member_id)
             .where(Member.org_unit_id == member.org_unit_id, QuizAttempt.day == attempt.day,
                    QuizAttempt.kind == "daily", QuizAttempt.finished_at.is_not(None)).subquery())
    above, players = session.execute(select(
        func.count().filter(today.c.right_count > attempt.right_count), func.count())).one()
    return above + 1, players


# --- the wrong-answer book ----------------------------------------------------------------------------

def update_card(session: Session, member_id: int, question_id: int, correct: bool, in_review: bool,
                day: date, intervals: list[int], review_from: date | None = None) -> None:
    """A wrong answer (anywhere) puts the question in the book, due after the first interval (and
    not before `review_from`); a right answer in a review moves it to the next interval, or out of
    the book after the longest. A right answer outside a review changes nothing (and reads nothing)."""
    if not correct:
        due = max(day + timedelta(days=intervals[0]), review_from or day)
        upsert(session, ReviewCard, ("member_id", "question_id"), dict(member_id=member_id, question_id=question_id,
                                                                       stage=0, due=due, created_at=utcnow()),
               ("stage", "due"))
        return
    if not in_review:
        return
    card = session.scalar(select(ReviewCard).where(ReviewCard.member_id == member_id,
                                                   ReviewCard.question_id == question_id))
    if card is not None:
        if card.stage >= len(intervals) - 1:
            session.delete(card)
        else:
            card.stage += 1
            card.due = day + timedelta(days=intervals[card.stage])


def due_cards(session: Session, member: Member, day: date, limit: int) -> list[int]:
    """Questions of the member's book due today or earlier, the longest waiting first."""
    return list(session.scalars(select(ReviewCard.question_id).join(Question, Question.id == ReviewCard.question_id)
                                .where(ReviewCard.member_id == member.id, ReviewCard.due <= day,
                                       Question.active.is_(True)).order_by(ReviewCard.due, ReviewCard.id).limit(limit)))


def book_summary(session: Session, member: Member) -> tuple[int, date | None]:
    """How many questions the member's book holds, and when the next one is due."""
    count, next_due = session.execute(select(func.count(), func.min(ReviewCard.due))
                                      .where(ReviewCard.member_id == member.id)).one()
    return count or 0, next_due


def start_review(session: Session, member: Member, at: datetime, cfg, rng: random.Random) -> QuizAttempt | None:
    """A review of the wrong answers due today (up to quiz.review_size); None when none is due."""
    ids = due_cards(session, member, local_date(at), cfg.quiz.review_size)
    if not ids:
        return None
    return new_attempt(session, member, "review", ids, at, rng)


# --- the daily reminder -----------------------------------------------------------------------------

REMINDER_CREATOR = "答题提醒"
REMINDER_TEXT = "今天的 {count} 道题还没有答，回复“答题”开始，答对得积分。"


def remind_quiz(session: Session, day: date, now: datetime, count: int) -> int:
    """Remind the following members who have not finished today's quiz, once a day however often it
    runs (the day's key is claimed in the same transaction as the campaign); returns recipients."""
    from models.accounts import Scope
    from models.audience import AudienceError
    from models.delivery import create_campaign
    from models.followers import Follower
    from models.jobs import claim_once
    answered = select(QuizAttempt.member_id).where(QuizAttempt.day == day, QuizAttempt.kind == "daily")
    recipients = session.execute(select(Follower.openid, Follower.member_id).where(
        Follower.subscribed.is_(True), Follower.member_id.is_not(None), Follower.member_id.not_in(answered))).all()
    if not recipients or not claim_once(session, f"quiz-reminder:{day.isoformat()}", now):
        session.rollback()
        return 0
    try:
        campaign = create_campaign(session, REMINDER_CREATOR, Scope(None), {"everyone": True},
                                   {"text": REMINDER_TEXT.format(count=count)}, now,
                                   recipients=[tuple(r) for r in recipients])
    except AudienceError:
        session.rollback()
        return 0
    campaign.audience_label = f"今天还没答题的成员（{day.strftime('%m-%d')}）"
    session.commit()
    return len(recipients)
