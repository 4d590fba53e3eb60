"""答题 (the daily quiz), 错题 (the wrong-answer book) and 纠错, as one question-and-answer flow.

The flow is one state, QuizFlow.answering, pointing at an attempt; the attempt in the database is
the truth (the conversation only remembers which one is being answered). Each answer is recorded
once per position (the database decides), so WeChat's retries and a double tap count once. The
flow takes only what has the shape of an answer: another feature's command runs in the middle of a
quiz, and `答题` resumes it where it was. Contests (handlers/contest.py) run through the same flow.
"""
from __future__ import annotations

import random
import time

from models.contest import Contest, limit_end, reveals_answers, time_is_up
from models.quiz import (
    Question,
    QuestionReport,
    QuizAttempt,
    looks_like_answer,
    question_text,
    read_answer,
)
from models.quizplay import (
    Answered,
    answer,
    book_summary,
    current,
    finish,
    live_attempt,
    start_daily,
    start_review,
)
from models.quizsay import clock, closed_lines, how_to_answer, result_text, verdict
from models.textutil import shorten
from models.timeutil import local_date
from wxbot.conversation import State, States
from wxbot.router import Context, Router

router = Router("quiz", topic="答题", display=("答题", "错题", "纠错 说明"))
_rng = random.SystemRandom()
# The question a 纠错 is about: the one just answered (its answer and explanation were on screen), or
# before any answer the first one shown; kept an hour after the quiz.
LAST_QUESTION = "quiz:last:{openid}"


def takes_answer(text: str, _data: dict) -> bool:
    return looks_like_answer(text)


def where_we_are(data: dict) -> str:
    """答题进行到第 3/5 题，发送“答题”继续。"""
    what = "竞赛" if data.get("kind") == "contest" else "答题"
    return f"{what}进行到第 {data.get('position', 0) + 1}/{data.get('total', '?')} 题，发送“答题”继续。"


class QuizFlow(States):
    answering = State("holds the attempt; waits for the answer to its current question",
                      takes=takes_answer, resume=where_we_are)


@router.text("答题", who="member", help=("答题", "每日答题，答对得积分"))
def start(ctx: Context):
    """Resume the quiz in progress where it was, or start today's (the first started today is
    scored; later ones are practice)."""
    attempt, closed = live_attempt(ctx.session, ctx.member, ctx.now, ctx.settings)
    before = closed_lines(closed)
    if attempt is not None:
        return before + resume(ctx, attempt)
    attempt = start_daily(ctx.session, ctx.member, ctx.now, ctx.settings, _rng)
    if attempt is None:
        return before + "题库里还没有适合你的题目，请稍后再来，或联系组织员。"
    bonus = ctx.settings.quiz.full_score_bonus
    intro = {"daily": f"今日答题，共 {attempt.total} 题：答对 1 题得 1 分，全对另加 {bonus} 分。",
             "practice": f"今天的计分答题已经开始过，这次是练习（{attempt.total} 题，不计积分）。"}[attempt.kind]
    return before + enter(ctx, attempt, intro)


@router.text("错题", who="member", help=("错题", "复习答错的题，隔几天再考，直到记牢"))
def review(ctx: Context):
    """Start a review of the wrong answers due today; or say how many wait and when the next is due."""
    attempt, closed = live_attempt(ctx.session, ctx.member, ctx.now, ctx.settings)
    if attempt is not None:
        return f"你正在答题。答完（或回复“退出”）后再复习错题。\n\n{resume(ctx, attempt)}"
    before = closed_lines(closed)
    attempt = start_review(ctx.session, ctx.member, ctx.now, ctx.settings, _rng)
    if attempt is None:
        count, next_due = book_summary(ctx.session, ctx.member)
        if not count:
            return before + "你的错题本是空的，继续保持！发送“答题”做今天的题。"
        return before + (f"今天没有需要复习的错题。你的错题本里有 {count} 道题，"
                         f"下一道在 {next_due.strftime('%m-%d')} 复习。")
    intro = f"错题复习，共 {attempt.total} 题：答对的隔几天再出现，直到记牢；答错的重新开始。"
    return before + enter(ctx, attempt, intro)


@router.regex(r"纠错\s*(.*)", who="member", help=("纠错 说明", "答题后发现题目有误，告诉组织员"))
def report(ctx: Context, note: str):
    """Report the question just answered (or shown) as wrong; it waits in the console."""
    question_id = ctx.store.get(LAST_QUESTION.format(openid=ctx.openid))
    if not question_id:
        return "请在答题后发送“纠错 说明”，例如：纠错 第三个选项的年份不对。"
    return file_report(ctx, int(question_id), note)


@router.state(QuizFlow.answering, who="member")
def take_answer(ctx: Context):
    """Reads the answer to the current question; says right or wrong (with the right answer and the
    explanation, except in an open contest), then asks the next one, or sums up at the end.
    跳过 skips; 纠错 reports; anything unclear asks again; a double tap counts once."""
    attempt = flow_attempt(ctx)
    if attempt is None:
        ctx.conversation.finish()
        return "这次答题已经结束。发送“答题”重新开始。"
    contest = contest_of(ctx, attempt)
    if time_is_up(contest, attempt, ctx.now):  # an answer after the contest's time limit does not count
        ctx.conversation.finish()
        return f"这一题在时间到之后才回答，没有计入。\n\n{summary(ctx, attempt, contest, 'time_up')}"
    text = ctx.inbound.raw_text.strip()
    if ctx.text.startswith("纠错"):
        return file_report(ctx, int(ctx.store.get(LAST_QUESTION.format(openid=ctx.openid)) or 0),
                           text[2:].strip()) + f"\n\n{ask(ctx, attempt)}"
    if is_double_tap(ctx, text):
        return f"（连点了两次：相同的回答只算一次）\n\n{ask(ctx, attempt)}"
    question, _order = current(ctx.session, attempt)
    shown = None if ctx.text == "跳过" else read_answer(text, question.kind, len(question.option_list))
    if shown is None and ctx.text != "跳过":
        return f"没看懂这个回答：{how_to_answer(question)}\n\n{ask(ctx, attempt)}"
    review_from = local_date(contest.ends_at) if contest is not None else None
    result = answer(ctx.session, attempt, shown, ctx.now, ctx.settings, review_from)
    reply = after_answer(ctx, attempt, contest, result)
    if ctx.conversation.state == QuizFlow.answering.name:
        ctx.conversation.update(last_text=text, replied_at=time.time(), position=attempt.position)
    return reply


@router.leave(QuizFlow.answering)
def leave(ctx: Context):
    """退出: the attempt ends with what was answered; a scored quiz keeps its points, and a contest
    attempt counts against the attempts allowed and in the results."""
    attempt = flow_attempt(ctx) if ctx.member is not None else None
    ctx.conversation.finish()
    if attempt is None:
        return "已退出当前操作。"
    return "已退出。" + summary(ctx, attempt, contest_of(ctx, attempt), "left")


# --- the flow, shared with contests --------------------------------------------------------------------

def flow_attempt(ctx: Context) -> QuizAttempt | None:
    """The attempt the conversation points at, while it is the member's and still open."""
    attempt = ctx.session.get(QuizAttempt, ctx.conversation.data.get("attempt"))
    return attempt if attempt is not None and not attempt.finished and attempt.member_id == ctx.profile.member_id \
        else None


def contest_of(ctx: Context, attempt: QuizAttempt) -> Contest | None:
    return ctx.session.get(Contest, attempt.contest_id) if attempt.contest_id else None


def enter(ctx: Context, attempt: QuizAttempt, intro: str) -> str:
    """Start (or resume) the flow on an attempt: the introduction and the current question."""
    ctx.conversation.enter(QuizFlow.answering, ttl=ctx.settings.quiz.state_ttl, attempt=attempt.id,
                           kind=attempt.kind, position=attempt.position, total=attempt.total)
    question, _order = current(ctx.session, attempt)
    ctx.conversation.note(LAST_QUESTION.format(openid=ctx.openid), str(question.id), 3600)
    return f"{intro}\n\n{ask(ctx, attempt)}"


def resume(ctx: Context, attempt: QuizAttempt) -> str:
    """Back to the attempt in progress, at its current question (a contest keeps its clock)."""
    contest = contest_of(ctx, attempt)
    what = f"竞赛《{contest.title}》" if contest is not None else {"review": "错题复习", "practice": "练习"}.get(
        attempt.kind, "今日答题")
    end = limit_end(contest, attempt)
    left = f"，还剩 {clock(end - ctx.now)}" if end is not None else ""
    return enter(ctx, attempt, f"{what}进行到第 {attempt.position + 1}/{attempt.total} 题{left}，继续：")


def ask(ctx: Context, attempt: QuizAttempt) -> str:
    question, order = current(ctx.session, attempt)
    return question_text(question, order, attempt.position + 1, attempt.total)


def is_double_tap(ctx: Context, text: str) -> bool:
    """The same answer as the last one, sent before the reply to it went out: a second tap, not an
    answer to the next question (which the member had not seen yet)."""
    data = ctx.conversation.data
    return data.get("last_text") == text and ctx.inbound.received_at < data.get("replied_at", 0)


def after_answer(ctx: Context, attempt: QuizAttempt, contest: Contest | None, result: Answered) -> str:
    ctx.conversation.note(LAST_QUESTION.format(openid=ctx.openid), str(result.question.id), 3600)
    parts = [verdict(result, reveals_answers(contest, ctx.now))]
    if attempt.position >= attempt.total or time_is_up(contest, attempt, ctx.now):
        parts.append(summary(ctx, attempt, contest, "time_up" if attempt.position < attempt.total else ""))
        ctx.conversation.finish()
    else:
        parts.append(ask(ctx, attempt))
    return "\n\n".join(parts)


def summary(ctx: Context, attempt: QuizAttempt, contest: Contest | None, ended: str) -> str:
    """Close the attempt (`ended`: "" at the last question, left, time_up) and sum it up."""
    end = limit_end(contest, attempt)
    at = min(ctx.now, end) if end is not None else ctx.now  # an attempt past its limit ends at the limit
    done = finish(ctx.session, attempt, ctx.member, at, ctx.settings, ended)
    return result_text(ctx.session, ctx.member, ctx.now, attempt, contest, done, ended)


def file_report(ctx: Context, question_id: int, note: str) -> str:
    if not question_id:
        return "请在答题后发送“纠错 说明”。"
    if not note:
        return "请写明哪里有误，例如：纠错 第三个选项的年份不对。"
    question = ctx.session.get(Question, question_id)
    if question is None:
        return "没有找到要纠错的题目。"
    ctx.session.add(QuestionReport(question_id=question_id, member_id=ctx.member.id, note=note[:500],
                                   created_at=ctx.now))
    return f"已收到你对“{shorten(question.stem, 16)}”的纠错，组织员会尽快核对。谢谢！"
