"""答题 (the daily quiz), 错题 (the wrong-answer book) and 纠错, as one question-and-answer flow.

The flow is one state, QuizFlow.answering, holding the attempt. Each answer is recorded once per
position (the database decides), so WeChat's retries, a double tap or two identical quick messages
count once. Contests (handlers/contest.py) run through the same flow.
"""
from __future__ import annotations

import random
import time
from datetime import timedelta

from models.contest import Contest, time_is_up
from models.quiz import Question, QuestionReport, QuizAttempt, question_text, read_answer, right_answer_text
from models.quizplay import Answered, answer, book_summary, current, finish, start_daily, start_review
from models.textutil import shorten
from wxbot.conversation import State, States
from wxbot.router import Context, Router

router = Router("quiz")
_rng = random.SystemRandom()
# The question a 纠错 is about: the one just answered (its answer and explanation were on screen), or
# before any answer the first one shown; kept an hour after the quiz.
LAST_QUESTION = "quiz:last:{openid}"


QUIZ_COMMANDS = ("答题", "错题")  # typed while answering: the member wants another quiz, not to answer


class QuizFlow(States):
    answering = State("holds the attempt; waits for the answer to its current question")


@router.text("答题", who="member", help=("答题", "每日答题，答对得积分"))
def start(ctx: Context):
    """Resume the quiz in progress, or start today's (scored, or practice once done)."""
    attempt = attempt_in_progress(ctx)
    if attempt is not None:
        return f"你正在答题，已答 {attempt.position}/{attempt.total} 题，继续：\n\n{ask(ctx, attempt)}"
    attempt = start_daily(ctx.session, ctx.member, ctx.now, ctx.settings, _rng)
    if attempt is None:
        return "题库里还没有适合你的题目，请稍后再来，或联系组织员。"
    bonus = ctx.settings.quiz.full_score_bonus
    intro = {"daily": f"今日答题，共 {attempt.total} 题：答对 1 题得 1 分，全对另加 {bonus} 分。",
             "practice": f"今天的计分答题已完成，这次是练习（{attempt.total} 题，不计积分）。"}[attempt.kind]
    return enter(ctx, attempt, intro)


@router.text("错题", who="member", help=("错题", "复习答错的题，隔几天再考，直到记牢"))
def review(ctx: Context):
    """Start a review of the wrong answers due today; or say how many wait and when the next is due."""
    if attempt_in_progress(ctx) is not None:
        return "你正在答题。答完（或回复“退出”）后再复习错题。"
    attempt = start_review(ctx.session, ctx.member, ctx.now, ctx.settings, _rng)
    if attempt is None:
        count, next_due = book_summary(ctx.session, ctx.member)
        if not count:
            return "你的错题本是空的，继续保持！发送“答题”做今天的题。"
        return f"今天没有需要复习的错题。你的错题本里有 {count} 道题，下一道在 {next_due.strftime('%m-%d')} 复习。"
    return enter(ctx, attempt, f"错题复习，共 {attempt.total} 题：答对的隔几天再出现，直到记牢；答错的重新开始。")


@router.regex(r"纠错\s*(.*)", who="member", help=("纠错 说明", "答题后发现题目有误，告诉组织员"))
def report(ctx: Context, note: str):
    """Report the question just answered (or shown) as wrong; it waits in the console."""
    question_id = ctx.store.get(LAST_QUESTION.format(openid=ctx.openid))
    if not question_id:
        return "请在答题后发送“纠错 说明”，例如：纠错 第三个选项的年份不对。"
    return file_report(ctx, int(question_id), note)


@router.state(QuizFlow.answering, who="member")
def take_answer(ctx: Context):
    """Reads the answer to the current question; says right or wrong with the explanation, then asks
    the next one, or sums up at the end. 跳过 skips; 纠错 reports; anything unclear asks again."""
    attempt = attempt_in_progress(ctx)
    if attempt is None:
        ctx.conversation.finish()
        return "这次答题已经结束。发送“答题”重新开始。"
    contest = ctx.session.get(Contest, attempt.contest_id) if attempt.contest_id else None
    if time_is_up(contest, attempt, ctx.now):  # an answer after the contest's time limit does not count
        ctx.conversation.finish()
        return f"这一题在时间到之后才回答，没有计入。\n\n{summary(ctx, attempt, contest)}"
    text = ctx.inbound.raw_text.strip()
    if ctx.text.startswith("纠错"):
        return file_report(ctx, int(ctx.store.get(LAST_QUESTION.format(openid=ctx.openid)) or 0),
                           text[2:].strip()) + f"\n\n{ask(ctx, attempt)}"
    if is_double_tap(ctx, text):
        return f"（和上一条相同的回答已按一次处理）\n\n{ask(ctx, attempt)}"
    question, _order = current(ctx.session, attempt)
    if ctx.text == "跳过":
        shown = None
    else:
        shown = read_answer(text, question.kind, len(question.option_list))
        if shown is None and (ctx.text in QUIZ_COMMANDS or ctx.text.startswith("竞赛")):
            return f"你正在答题。答完或回复“退出”后再发“{text}”。\n\n{ask(ctx, attempt)}"
        if shown is None:
            return f"没看懂这个回答。\n\n{ask(ctx, attempt)}"
    ctx.conversation.update(last_text=text, last_at=time.time())
    return after_answer(ctx, attempt, answer(ctx.session, attempt, shown, ctx.now, ctx.settings))


# --- the flow, shared with contests --------------------------------------------------------------------

def attempt_in_progress(ctx: Context) -> QuizAttempt | None:
    if ctx.conversation.state != QuizFlow.answering.name:
        return None
    attempt = ctx.session.get(QuizAttempt, ctx.conversation.data.get("attempt"))
    return attempt if attempt is not None and not attempt.finished and attempt.member_id == ctx.member.id else None


def enter(ctx: Context, attempt: QuizAttempt, intro: str) -> str:
    """Start the flow on an attempt: the introduction and the first question."""
    ctx.conversation.enter(QuizFlow.answering, ttl=ctx.settings.quiz.state_ttl, attempt=attempt.id)
    first, _order = current(ctx.session, attempt)
    ctx.store.set(LAST_QUESTION.format(openid=ctx.openid), str(first.id), 3600)
    return f"{intro}\n\n{ask(ctx, attempt)}"


def ask(ctx: Context, attempt: QuizAttempt) -> str:
    question, order = current(ctx.session, attempt)
    return question_text(question, order, attempt.position + 1, attempt.total)


def is_double_tap(ctx: Context, text: str) -> bool:
    """The same answer again within quiz.double_tap_seconds: a second tap, not an answer to the next."""
    data = ctx.conversation.data
    return data.get("last_text") == text and time.time() - data.get("last_at", 0) < ctx.settings.quiz.double_tap_seconds


def after_answer(ctx: Context, attempt: QuizAttempt, result: Answered) -> str:
    ctx.store.set(LAST_QUESTION.format(openid=ctx.openid), str(result.question.id), 3600)
    contest = ctx.session.get(Contest, attempt.contest_id) if attempt.contest_id else None
    parts = [verdict(result)]
    if attempt.position >= attempt.total or time_is_up(contest, attempt, ctx.now):
        parts.append(summary(ctx, attempt, contest))
        ctx.conversation.finish()
    else:
        parts.append(ask(ctx, attempt))
    return "\n\n".join(parts)


def verdict(result: Answered) -> str:
    right = right_answer_text(result.question, result.order)
    if result.skipped:
        line = f"已跳过。正确答案：{right}"
    elif result.correct:
        line = "✔ 回答正确！"
    else:
        line = f"✘ 回答错误。正确答案：{right}"
    if result.question.explanation:
        line += f"\n解析：{result.question.explanation}"
    if result.question.source:
        line += f"（{result.question.source}）"
    return line


def summary(ctx: Context, attempt: QuizAttempt, contest: Contest | None) -> str:
    late = time_is_up(contest, attempt, ctx.now)
    # A contest attempt past its limit ends at the limit: its time is never more than the limit.
    ended = attempt.started_at + timedelta(seconds=contest.time_limit_seconds) if late else ctx.now
    done = finish(ctx.session, attempt, ctx.member, ended, ctx.settings)
    score = f"答对 {done.right}/{done.total} 题"
    if attempt.kind == "contest":
        minutes, seconds = divmod(int((ended - attempt.started_at).total_seconds()), 60)
        late = "时间到，" if late else ""
        return (f"{late}竞赛《{contest.title}》答完：{score}，用时 {minutes}:{seconds:02d}。\n"
                f"发送“竞赛 {contest.id} 排行”查看排名。")
    if attempt.kind == "review":
        count, next_due = book_summary(ctx.session, ctx.member)
        left = f"错题本里还有 {count} 道，下一道 {next_due.strftime('%m-%d')} 复习。" if count else "错题本已经清空！"
        return f"复习结束：{score}。{left}"
    if attempt.kind == "practice":
        return f"练习结束：{score}（练习不计积分）。发送“错题”复习答错的题。"
    place = f"\n今天支部排名：第 {done.branch_rank} 名（共 {done.branch_players} 人答题）" if done.branch_rank else ""
    capped = "（今日积分已达上限）" if done.points == 0 and done.right else ""
    return (f"今日答题结束：{score}，获得 {done.points} 积分{capped}。{place}\n\n"
            "发送“错题”复习答错的题，发送“排行”查看积分排行。")


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
