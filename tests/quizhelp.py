"""Question factories and a way to read the chat's quiz replies (shared by the quiz tests)."""
from __future__ import annotations

import json
import re

from models.quiz import LETTERS, Question, QuizAttempt

PURPOSE = ("实事求是", "全心全意为人民服务", "艰苦奋斗", "解放思想")


def make_question(session, stem="党的根本宗旨是什么？", options=PURPOSE, answer="1", kind="single", **kw) -> Question:
    question = Question(kind=kind, stem=stem, options=json.dumps(list(options) if kind != "judge" else [],
                                                                 ensure_ascii=False),
                        answer=answer, explanation=kw.pop("explanation", "党章总纲。"), **kw)
    session.add(question)
    session.commit()
    return question


def bank(session, count=6) -> list[Question]:
    """`count` single-choice questions whose right option's text is "对的选项"."""
    return [make_question(session, stem=f"第{n}道题干", options=("错的选项甲", "对的选项", "错的选项乙", "错的选项丙"),
                          answer="1") for n in range(count)]


def letter_of(reply: str, option_text: str) -> str:
    """The letter the chat shows for an option (the options are shuffled per attempt)."""
    found = re.search(rf"^([A-F])\. {re.escape(option_text)}$", reply, re.M)
    assert found, reply
    return found.group(1)


def wrong_letter(reply: str, right_text: str = "对的选项") -> str:
    right = letter_of(reply, right_text)
    shown = re.findall(r"^([A-F])\. ", reply, re.M)
    return next(letter for letter in shown if letter != right)


def latest_attempt(session) -> QuizAttempt:
    session.expire_all()
    return session.query(QuizAttempt).order_by(QuizAttempt.id.desc()).first()


def all_letters(count: int) -> str:
    return LETTERS[:count]
