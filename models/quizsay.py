"""What the quiz says, in the chat (handlers/quiz.py, contest.py) and in the mini-program (wxbot/api/quiz.py)
alike: how to answer, right or wrong, the sum at the end, what ended while the member was away."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from models.contest import Contest, reveals_answers
from models.members import Member
from models.quiz import LETTERS, Question, QuizAttempt, right_answer_text
from models.quizplay import Answered, Closed, Finished, book_summary
from models.timeutil import show


def how_to_answer(question: Question) -> str:
    """What this question takes, said plainly (a 对 to a single choice is not refused silently)."""
    last = LETTERS[len(question.option_list) - 1]
    return {"single": f"这是单选题，请回复 A–{last} 中的一个字母。",
            "multiple": f"这是多选题，请回复所有正确选项的字母（A–{last}），如 AC。",
            "judge": "这是判断题，请回复 对 或 错。"}[question.kind]




def verdict(result: Answered, reveal: bool) -> str:
    """Right or wrong; the right answer and the explanation only when `reveal` (never while a
    contest is open: the paper would reach the next attempt and friends)."""
    if not reveal:
        if result.correct and not result.skipped:
            return "✔ 回答正确！"
        return ("已跳过。" if result.skipped else "✘ 回答错误。") + "正确答案在竞赛结束后公布。"
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




def result_text(session: Session, member: Member, now: datetime, attempt: QuizAttempt, contest: Contest | None,
                done: Finished, ended: str) -> str:
    """The sum of a finished attempt (`ended`: "" at the last question, left, time_up)."""
    answered = f"（答了 {attempt.position} 题）" if attempt.position < attempt.total else ""
    score = f"答对 {done.right}/{done.total} 题{answered}"
    if attempt.kind == "contest":
        late = "时间到，" if ended == "time_up" else ""
        used = clock(attempt.finished_at - attempt.started_at)
        after = (f"发送“竞赛 {contest.id} 排行”查看排名" + ("" if reveals_answers(contest, now) else
                 f"；{show_end(contest)}竞赛结束后发送“竞赛 {contest.id} 答案”看正确答案和解析") + "。")
        return f"{late}竞赛《{contest.title}》作答结束：{score}，用时 {used}，计入成绩。\n{after}"
    if attempt.kind == "review":
        count, next_due = book_summary(session, member)
        left = f"错题本里还有 {count} 道，下一道 {next_due.strftime('%m-%d')} 复习。" if count else "错题本已经清空！"
        return f"复习结束：{score}。{left}"
    if attempt.kind == "practice":
        return f"练习结束：{score}（练习不计积分）。发送“错题”复习答错的题。"
    place = f"\n今天支部排名：第 {done.branch_rank} 名（共 {done.branch_players} 人答题）" if done.branch_rank else ""
    capped = "（今日积分已达上限）" if done.points == 0 and done.right else ""
    again = "今天再答题是练习，不计积分。" if ended else ""
    return (f"今日答题结束：{score}，获得 {done.points} 积分{capped}。{again}{place}\n\n"
            "发送“错题”复习答错的题，发送“排行”查看积分排行。")


def closed_lines(closed: list[Closed]) -> str:
    """What became of attempts that ended while the member was away (said once, before the reply)."""
    lines = []
    for item in closed:
        attempt = item.attempt
        what = {"daily": "今日答题", "practice": "练习", "review": "错题复习"}.get(attempt.kind, "竞赛")
        why = "时间到" if attempt.ended == "time_up" else "长时间没有作答"
        points = f"，获得 {item.result.points} 积分" if attempt.kind == "daily" else ""
        lines.append(f"上次的{what}因{why}已结束：答对 {item.result.right}/{item.result.total} 题{points}。")
    return "\n".join(lines) + "\n\n" if lines else ""


def clock(span) -> str:
    seconds = max(0, int(span.total_seconds()))
    return f"{seconds // 60}:{seconds % 60:02d}"


def show_end(contest: Contest) -> str:
    return f"{show(contest.ends_at, '%m-%d %H:%M')} "
