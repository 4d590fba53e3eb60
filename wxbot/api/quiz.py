"""The quiz from the mini-program: today's quiz, answers, skip, exit, the wrong-answer book, contests.

The attempt in the database is the truth, as in the chat: a quiz started in the chat is answered
here where it stands, and the day's scored quiz is the first started, whichever way (models/quizplay).
Each answer names its position: a repeat of an answered position is refused, never counted twice.
"""
from __future__ import annotations

import random

from flask import request

from models.contest import (
    Contest,
    attempts_used,
    limit_end,
    paper,
    refusal,
    reveals_answers,
    time_is_up,
    visible_contests,
)
from models.quiz import QuizAttempt, read_answer, right_answer_text
from models.quizplay import answer, book_summary, current, finish, live_attempt, new_attempt, start_daily, start_review
from models.quizsay import closed_lines, how_to_answer, result_text, verdict
from models.timeutil import local_date, utcnow
from wxbot import services
from wxbot.api import answers, bp, call, problem, spec
from wxbot.api.schemas import (
    AnswerIn,
    AnswerOut,
    AttemptOut,
    BookOut,
    ContestList,
    ContestOut,
    ExitIn,
    QuestionOut,
    ResultOut,
)
from wxbot.db import db

SESSION = {"session": []}
_rng = random.SystemRandom()


def question_out(attempt: QuizAttempt) -> QuestionOut | None:
    if attempt.finished_at is not None or attempt.position >= attempt.total:
        return None
    question, order = current(db.session, attempt)
    options = question.option_list
    return QuestionOut(id=question.id, kind=question.kind, stem=question.stem, options=[options[i] for i in order],
                       number=attempt.position + 1, total=attempt.total)


def attempt_out(attempt: QuizAttempt, message: str, closed=()) -> AttemptOut:
    notes = [line for line in closed_lines(list(closed)).splitlines() if line]
    contest = db.session.get(Contest, attempt.contest_id) if attempt.contest_id else None
    return AttemptOut(id=attempt.id, kind=attempt.kind, position=attempt.position, total=attempt.total,
                      question=question_out(attempt), notes=notes, message=message,
                      ends_at=limit_end(contest, attempt))


def _live(member):
    return live_attempt(db.session, member, utcnow(), services.settings())


@bp.post("/quiz/daily")
@spec.validate(resp=answers(AttemptOut, 403, 404), tags=["答题"], security=SESSION)
@call(write=True)
def daily(_user, member):
    """今日答题：继续进行中的答题，或开始今天的（当天最先开始的一次计分，公众号和小程序合计）。"""
    settings = services.settings()
    attempt, closed = _live(member)
    if attempt is not None:
        return attempt_out(attempt, f"继续：第 {attempt.position + 1}/{attempt.total} 题", closed)
    attempt = start_daily(db.session, member, utcnow(), settings, _rng)
    if attempt is None:
        raise problem(404, "no_questions", "题库里还没有适合你的题目，请稍后再来，或联系组织员。")
    bonus = settings.quiz.full_score_bonus
    intro = {"daily": f"今日答题，共 {attempt.total} 题：答对 1 题得 1 分，全对另加 {bonus} 分。",
             "practice": f"今天的计分答题已经开始过，这次是练习（{attempt.total} 题，不计积分）。"}[attempt.kind]
    return attempt_out(attempt, intro, closed)


@bp.post("/quiz/review")
@spec.validate(resp=answers(AttemptOut, 403, 404, 409), tags=["答题"], security=SESSION)
@call(write=True)
def review(_user, member):
    """错题复习：今天到期的错题。"""
    attempt, closed = _live(member)
    if attempt is not None:
        raise problem(409, "quiz_in_progress", "你正在答题。答完（或退出）后再复习错题。")
    attempt = start_review(db.session, member, utcnow(), services.settings(), _rng)
    if attempt is None:
        count, next_due = book_summary(db.session, member)
        message = (f"今天没有需要复习的错题。错题本里有 {count} 道，下一道在 {next_due:%m-%d} 复习。" if count
                   else "你的错题本是空的，继续保持！")
        raise problem(404, "nothing_due", message)
    return attempt_out(attempt, f"错题复习，共 {attempt.total} 题。", closed)


def _attempt_of(member, attempt_id: int) -> QuizAttempt:
    """The member's own open attempt (another member's id is not found, as a missing one)."""
    attempt, _closed = _live(member)
    if attempt is None or attempt.id != attempt_id:
        owned = db.session.get(QuizAttempt, attempt_id)
        if owned is not None and owned.member_id == member.id and owned.finished_at is not None:
            raise problem(409, "finished", "这次答题已经结束。")
        raise problem(404, "not_found", "没有这次答题。")
    return attempt


@bp.post("/quiz/answer")
@spec.validate(json=AnswerIn, resp=answers(AnswerOut, 400, 403, 404, 409), tags=["答题"], security=SESSION)
@call(write=True)
def answer_question(_user, member):
    """作答当前题（或跳过）：返回对错；竞赛进行中不公布正确答案。"""
    body = request.context.json
    settings, now = services.settings(), utcnow()
    attempt = _attempt_of(member, body.attempt_id)
    contest = db.session.get(Contest, attempt.contest_id) if attempt.contest_id else None
    if body.position != attempt.position:
        raise problem(409, "answered", f"这一题已经答过了，现在是第 {attempt.position + 1}/{attempt.total} 题。")
    question, _order = current(db.session, attempt)
    if time_is_up(contest, attempt, now):
        done = finish(db.session, attempt, member, limit_end(contest, attempt), settings, "time_up")
        text = result_text(db.session, member, now, attempt, contest, done, "time_up")
        raise problem(409, "time_up", f"这一题在时间到之后才回答，没有计入。{text}")
    shown = None
    if not body.skip:
        shown = read_answer(body.answer or "", question.kind, len(question.option_list))
        if shown is None:
            raise problem(400, "unclear_answer", how_to_answer(question))
    review_from = local_date(contest.ends_at) if contest is not None else None
    result = answer(db.session, attempt, shown, now, settings, review_from)
    reveal = reveals_answers(contest, now)
    ended = None
    if attempt.position >= attempt.total or time_is_up(contest, attempt, now):
        why = "time_up" if attempt.position < attempt.total else ""
        end = limit_end(contest, attempt)
        done = finish(db.session, attempt, member, min(now, end) if end is not None else now, settings, why)
        ended = ResultOut(right=done.right, total=done.total, points=done.points,
                          message=result_text(db.session, member, now, attempt, contest, done, why))
    return AnswerOut(correct=result.correct and not result.skipped, skipped=result.skipped,
                     verdict=verdict(result, reveal),
                     right_answer=right_answer_text(result.question, result.order) if reveal else None,
                     explanation=(result.question.explanation or None) if reveal else None,
                     next=None if ended else question_out(attempt), result=ended)


@bp.post("/quiz/exit")
@spec.validate(json=ExitIn, resp=answers(ResultOut, 400, 403, 404, 409), tags=["答题"], security=SESSION)
@call(write=True)
def exit_quiz(_user, member):
    """退出：按已答的题结束；计分答题保留积分，竞赛计入作答次数。"""
    settings, now = services.settings(), utcnow()
    attempt = _attempt_of(member, request.context.json.attempt_id)
    contest = db.session.get(Contest, attempt.contest_id) if attempt.contest_id else None
    end = limit_end(contest, attempt)
    done = finish(db.session, attempt, member, min(now, end) if end is not None else now, settings, "left")
    return ResultOut(right=done.right, total=done.total, points=done.points,
                     message=result_text(db.session, member, now, attempt, contest, done, "left"))


@bp.get("/quiz/book")
@spec.validate(resp=answers(BookOut, 403), tags=["答题"], security=SESSION)
@call()
def book(_user, member):
    """错题本：错题数和下一道复习的日期。"""
    count, next_due = book_summary(db.session, member)
    return BookOut(count=count, next_due=next_due)


@bp.get("/contests")
@spec.validate(resp=answers(ContestList, 403), tags=["答题"], security=SESSION)
@call()
def contests(_user, member):
    """知识竞赛：进行中和一周内开始的竞赛，及我已用的作答次数。"""
    now = utcnow()
    items = [ContestOut(id=c.id, title=c.title, state=c.state(now), starts_at=c.starts_at, ends_at=c.ends_at,
                        attempts_used=attempts_used(db.session, c, member), attempts_allowed=c.attempts_allowed,
                        time_limit_seconds=c.time_limit_seconds or None)
             for c in visible_contests(db.session, member, now)]
    return ContestList(items=items)


@bp.post("/contests/<int:contest_id>/start")
@spec.validate(resp=answers(AttemptOut, 403, 404, 409), tags=["答题"], security=SESSION)
@call(write=True)
def start_contest(_user, member, contest_id: int):
    """参加竞赛：作答次数、时间和限时与公众号中相同（中途退出也算一次）。"""
    now = utcnow()
    contest = db.session.get(Contest, contest_id)
    if contest is None:
        raise problem(404, "not_found", "没有这个竞赛。")
    attempt, closed = _live(member)
    if attempt is not None and attempt.contest_id == contest.id:
        return attempt_out(attempt, f"竞赛《{contest.title}》进行到第 {attempt.position + 1}/{attempt.total} 题。",
                           closed)
    if attempt is not None:
        raise problem(409, "quiz_in_progress", "你正在答题。答完（或退出）后再参加竞赛。")
    reason = refusal(db.session, contest, member, now)
    if reason:
        raise problem(409, "refused", reason)
    ids = paper(db.session, contest, member, now, _rng)
    if not ids:
        raise problem(409, "no_questions", "这个竞赛还没有题目，请联系组织员。")
    attempt = new_attempt(db.session, member, "contest", ids, now, _rng, contest_id=contest.id)
    used = attempts_used(db.session, contest, member)
    limit = f"，限时 {contest.time_limit_seconds // 60} 分钟" if contest.time_limit_seconds else ""
    return attempt_out(attempt, f"竞赛《{contest.title}》，共 {attempt.total} 题{limit}，"
                                f"第 {used}/{contest.attempts_allowed} 次作答。", closed)
