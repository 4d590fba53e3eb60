"""After a contest closes, each member may see the right answers to what they missed: during the
contest the chat only says right or wrong, so that the paper does not reach the next attempt or a
friend's phone."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.contest import Contest
from models.members import Member
from models.quiz import AnswerRecord, Question, QuizAttempt, options_text, right_answer_text
from models.textutil import shorten

SHOWN = 6  # questions per reply: a chat message holds about 2,000 bytes


def best_attempt(session: Session, contest: Contest, member: Member) -> QuizAttempt | None:
    """The member's best finished attempt (the one the results count), faster first on ties."""
    attempts = session.scalars(select(QuizAttempt).where(QuizAttempt.contest_id == contest.id,
                                                         QuizAttempt.member_id == member.id,
                                                         QuizAttempt.finished_at.is_not(None))).all()
    return min(attempts, key=lambda a: (-a.right_count, a.finished_at - a.started_at, a.id), default=None)


def answer_sheet(session: Session, contest: Contest, member: Member) -> str:
    """The questions of the best attempt answered wrong, skipped or not reached, with the right answer."""
    attempt = best_attempt(session, contest, member)
    if attempt is None:
        return f"你没有参加竞赛《{contest.title}》。发送“竞赛 {contest.id} 排行”查看结果。"
    records = session.scalars(select(AnswerRecord).where(AnswerRecord.attempt_id == attempt.id))
    answered = {r.position: r for r in records}
    questions = {q.id: q for q in session.scalars(select(Question).where(Question.id.in_(attempt.question_ids)))}
    missed = [p for p in range(attempt.total) if p not in answered or not answered[p].correct]
    head = f"竞赛《{contest.title}》你计入成绩的一次：答对 {attempt.right_count}/{attempt.total} 题。"
    if not missed:
        return head + "全部答对！"
    lines = [head, "答错、跳过或没有答到的题："]
    for position in missed[:SHOWN]:
        question, order = questions.get(attempt.question_ids[position]), attempt.option_orders[position]
        if question is None:
            continue
        lines.append(miss_text(question, order, position, answered.get(position)))
    if len(missed) > SHOWN:
        lines.append(f"另有 {len(missed) - SHOWN} 道，可在题库练习中再遇到。")
    return "\n\n".join(lines)


def miss_text(question: Question, order: list[int], position: int, record: AnswerRecord | None) -> str:
    if record is None:
        yours = "没有答到"
    elif record.skipped:
        yours = "跳过"
    else:
        yours = options_text(question, order, frozenset(int(i) for i in record.chosen.split(",") if i))
    text = (f"{position + 1}. {shorten(question.stem, 60)}\n你的答案：{yours}\n"
            f"正确答案：{right_answer_text(question, order)}")
    if question.explanation:
        text += f"\n解析：{shorten(question.explanation, 80)}"
    return text
