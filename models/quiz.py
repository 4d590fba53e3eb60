"""Quizzes: the question bank, attempts, answers, and how a question and an answer read in the chat.

A question has 2 to 6 options; its answer is the indexes of the right options ("0" for A, "0,2" for
A and C). An attempt fixes its questions and, per question, the order the options are shown in, so
that the letters a member types are mapped back to the question's own options. Each position of an
attempt is answered once (a unique key), whatever WeChat or a double tap delivers twice.
"""
from __future__ import annotations

import json
import random
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, cached_rows
from models.members import Member, units_above
from models.timeutil import local_midnight, utcnow

KINDS = {"single": "单选", "multiple": "多选", "judge": "判断"}
LETTERS = "ABCDEF"
JUDGE_OPTIONS = ["正确", "错误"]


class Shown:
    """How a question reads and is marked, from its kind, options and answer: the same for a row of
    the bank and for its snapshot in an attempt's paper (both have kind, options and answer)."""

    @property
    def option_list(self) -> list[str]:
        return JUDGE_OPTIONS if self.kind == "judge" else json.loads(self.options or "[]")

    @property
    def right(self) -> frozenset[int]:
        return frozenset(int(i) for i in self.answer.split(",") if i != "")

    @property
    def answer_letters(self) -> str:
        return "".join(LETTERS[i] for i in sorted(self.right))

    @property
    def kind_label(self) -> str:
        return KINDS.get(self.kind, self.kind)


class Question(Shown, Base):
    __tablename__ = "questions"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # single | multiple | judge
    stem: Mapped[str] = mapped_column(Text)
    options: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of option texts
    answer: Mapped[str] = mapped_column(String(32))  # indexes of the right options, "0,2"
    explanation: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(200), default="")
    tags: Mapped[str] = mapped_column(String(200), default="")  # comma separated
    difficulty: Mapped[int] = mapped_column(Integer, default=1)  # 1 to 3
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)  # policy questions go stale
    org_unit_id: Mapped[int | None] = mapped_column(Integer, index=True)  # None: the school's bank (admins')
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def tag_list(self) -> list[str]:
        return [t for t in (t.strip() for t in self.tags.replace("，", ",").split(",")) if t]


@dataclass(frozen=True)
class AskedQuestion(Shown):
    """A question as an attempt asks and marks it: a snapshot of its row, safe to keep between
    messages (see paper_questions)."""

    id: int
    kind: str
    stem: str
    options: str
    answer: str
    explanation: str
    source: str

    @classmethod
    def of(cls, question: Question) -> AskedQuestion:
        return cls(question.id, question.kind, question.stem, question.options, question.answer,
                   question.explanation or "", question.source or "")


def paper_questions(session: Session, ids: list[int]) -> dict[int, AskedQuestion]:
    """The questions of an attempt's paper by id, from the app's cache when it has one."""
    return cached_rows(session, Question.__tablename__, ids, read_questions_of)


def read_questions_of(session: Session, ids: list[int]) -> dict[int, AskedQuestion]:
    return {q.id: AskedQuestion.of(q) for q in session.scalars(select(Question).where(Question.id.in_(ids)))}


class QuizAttempt(Base):
    """One go at a quiz: the daily quiz (scored or practice), a review of wrong answers, a contest."""

    __tablename__ = "quiz_attempts"
    __table_args__ = (Index("ix_quiz_attempts_member_day", "member_id", "day"),
                      Index("ix_quiz_attempts_day", "day"))  # the report adds each day up

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    kind: Mapped[str] = mapped_column(String(16))  # daily | practice | review | contest
    contest_id: Mapped[int | None] = mapped_column(Integer, index=True)
    day: Mapped[date] = mapped_column(Date)  # local day it started
    questions: Mapped[str] = mapped_column(Text)  # JSON list of question ids, in order
    orders: Mapped[str] = mapped_column(Text)  # JSON list, per question: option indexes in shown order
    position: Mapped[int] = mapped_column(Integer, default=0)  # the question being asked (0-based)
    right_count: Mapped[int] = mapped_column(Integer, default=0)
    points: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The last answer (or the start): an attempt idle longer than quiz.state_ttl has ended.
    active_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # How it ended: "" answered to the end; left (退出); expired (idle past quiz.state_ttl);
    # time_up (a contest's time limit). Whatever way, it counts with what was answered.
    ended: Mapped[str] = mapped_column(String(16), default="", server_default="")

    @property
    def question_ids(self) -> list[int]:
        return json.loads(self.questions)

    @property
    def option_orders(self) -> list[list[int]]:
        return json.loads(self.orders)

    @property
    def total(self) -> int:
        return len(self.question_ids)

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    @property
    def last_active(self) -> datetime:
        return self.active_at or self.started_at


class AnswerRecord(Base):
    __tablename__ = "quiz_answers"
    __table_args__ = (UniqueConstraint("attempt_id", "position"),
                      Index("ix_quiz_answers_member_question", "member_id", "question_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("quiz_attempts.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    question_id: Mapped[int] = mapped_column(ForeignKey("questions.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    chosen: Mapped[str] = mapped_column(String(32), default="")  # the question's own option indexes, "0,2"
    correct: Mapped[bool] = mapped_column(Boolean, default=False)
    skipped: Mapped[bool] = mapped_column(Boolean, default=False)
    answered_at: Mapped[datetime] = mapped_column(default=utcnow)


class QuestionReport(Base):
    """A member says a question is wrong (纠错); it waits in the console until handled."""

    __tablename__ = "question_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("questions.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    note: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | resolved
    handled_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- which questions a member may be asked ---------------------------------------------------------

def valid_questions(day: date):
    """Active questions valid on `day` (policy questions past valid_until are never drawn)."""
    return select(Question).where(Question.active.is_(True),
                                  (Question.valid_from.is_(None)) | (Question.valid_from <= day),
                                  (Question.valid_until.is_(None)) | (Question.valid_until >= day))


def questions_for(member: Member, day: date):
    """The valid questions of the member's audience: the school's bank and their units' (and above)."""
    units = units_above(member)
    return valid_questions(day).where(Question.org_unit_id.is_(None) | Question.org_unit_id.in_(units))


def draw(session: Session, member: Member, count: int, day: date, recent_days: int, rng: random.Random,
         held: set[int] = frozenset()) -> list[int]:
    """`count` question ids for the member in random order, preferring ones they have not answered in
    the last `recent_days`; when those run out, the ones seen longest ago. `held`: questions that may
    not be drawn now (the papers of open contests)."""
    candidates = [q for q in session.scalars(questions_for(member, day).with_only_columns(Question.id))
                  if q not in held]
    seen = dict(session.execute(
        select(AnswerRecord.question_id, func.max(AnswerRecord.answered_at))
        .where(AnswerRecord.member_id == member.id, AnswerRecord.question_id.in_(candidates))
        .group_by(AnswerRecord.question_id)).all())
    recent = local_midnight(day - timedelta(days=recent_days))
    rng.shuffle(candidates)
    fresh = [q for q in candidates if q not in seen or seen[q] < recent]
    again = sorted((q for q in candidates if q in seen and seen[q] >= recent), key=lambda q: seen[q])
    return (fresh + again)[:count]


def shuffled_orders(questions: list[Question], rng: random.Random) -> list[list[int]]:
    """Per question, its options in a new order for this attempt (true/false keeps 正确, 错误)."""
    orders = []
    for question in questions:
        order = list(range(len(question.option_list)))
        if question.kind != "judge":
            rng.shuffle(order)
        orders.append(order)
    return orders


# --- reading an answer ------------------------------------------------------------------------------

TRUE_WORDS = {"对", "√", "✓", "✔", "正确", "是", "T", "TRUE", "Y"}
FALSE_WORDS = {"错", "×", "✗", "✘", "X", "错误", "否", "F", "FALSE", "N"}
SEPARATORS = " ,，、;；.。/"


def read_answer(text: str, kind: str, option_count: int) -> frozenset[int] | None:
    """The shown options (0 for A) an answer picks, or None when it is not a clear answer to this
    question: "A", "a", "Ａ"; "AC", "A,C", "a c", "CA" for multiple choice; 对 错 √ × 正确 错误 A B for
    true/false. "E" to a four-option question, "好的", two letters to a single choice: None."""
    cleaned = unicodedata.normalize("NFKC", text or "").strip().upper()
    if kind == "judge":
        if cleaned in TRUE_WORDS or cleaned == "A":
            return frozenset({0})
        if cleaned in FALSE_WORDS or cleaned == "B":
            return frozenset({1})
        return None
    letters = "".join(ch for ch in cleaned if ch not in SEPARATORS)
    if not letters or any(ch not in LETTERS[:option_count] for ch in letters):
        return None
    picked = frozenset(LETTERS.index(ch) for ch in letters)
    if kind == "single" and len(picked) != 1:
        return None
    return picked


def looks_like_answer(text: str) -> bool:
    """Whether a message has the shape of an answer to some question (letters, a true/false word,
    跳过, 纠错 …), without knowing the question: anything else may be another feature's command."""
    cleaned = unicodedata.normalize("NFKC", text or "").strip().upper()
    if cleaned in TRUE_WORDS or cleaned in FALSE_WORDS or cleaned.startswith(("跳过", "纠错")):
        return True
    letters = "".join(ch for ch in cleaned if ch not in SEPARATORS)
    return 0 < len(letters) <= len(LETTERS) and all(ch in LETTERS for ch in letters)


def to_question_options(shown: frozenset[int], order: list[int]) -> frozenset[int]:
    """Shown positions mapped back to the question's own option indexes."""
    return frozenset(order[i] for i in shown)


# --- how it reads in the chat ------------------------------------------------------------------------

def question_text(question: Question, order: list[int], number: int, total: int) -> str:
    """One question as the chat shows it: 第 2/5 题（单选）, the stem, one option a line."""
    options = question.option_list
    lines = [f"第 {number}/{total} 题（{question.kind_label}）", question.stem]
    lines += [f"{LETTERS[shown]}. {options[original]}" for shown, original in enumerate(order)]
    how = {"single": "回复一个字母作答，如 A", "multiple": "回复所有正确选项的字母，如 AC",
           "judge": "回复 对 或 错（也可以回复 A 或 B）"}[question.kind]
    lines.append(f"（{how}；跳过、退出、纠错 说明）")
    return "\n".join(lines)


def right_answer_text(question: Question, order: list[int]) -> str:
    """The right answer in this attempt's letters, with the options' words."""
    return options_text(question, order, question.right)


def options_text(question: Question, order: list[int], chosen: frozenset[int]) -> str:
    """Some of the question's own options, in this attempt's letters, with their words."""
    options = question.option_list
    shown = sorted(order.index(i) for i in chosen)
    return "、".join(f"{LETTERS[i]}. {options[order[i]]}" for i in shown)
