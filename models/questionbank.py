"""The question bank's files and figures: import (all or nothing, every bad row named), export that
import reads back, and per-question statistics."""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from models.quiz import KINDS, LETTERS, AnswerRecord, Question
from models.tables import UNNAMED, read_table
from models.timeutil import parse_day

OPTION_COLUMNS = tuple(f"选项{letter}" for letter in LETTERS)
# Difficulty as organisers write it: 1–3, or the words a bank from elsewhere uses.
DIFFICULTY_WORDS = {"易": "1", "容易": "1", "简单": "1", "中": "2", "中等": "2", "一般": "2", "难": "3", "困难": "3",
                    "较难": "3"}
COLUMNS = ("编号", "题型", "题干", *OPTION_COLUMNS, "答案", "解析", "来源", "标签", "难度", "生效日期", "失效日期")
REQUIRED = ("题型", "题干", "答案")
KIND_BY_LABEL = {label: kind for kind, label in KINDS.items()} | {kind: kind for kind in KINDS}


@dataclass(frozen=True)
class QuestionRow:
    line: int
    fields: dict  # the Question's columns, ready to set
    number: int | None  # 编号: an existing question to update


def read_questions(path: str, content: bytes | None = None) -> tuple[list[QuestionRow], list[tuple[int, str]]]:
    """Good rows and (row number, reason) for the bad ones; blank rows are ignored."""
    good, bad = [], []
    for line, raw in enumerate(read_table(path, content, REQUIRED, COLUMNS), start=2):
        if not any(raw.values()):
            continue
        reason = _extra_columns(raw)
        fields, reason = (None, reason) if reason else check_question(raw)
        if reason:
            bad.append((line, reason))
        else:
            number = raw.get("编号", "")
            good.append(QuestionRow(line, fields, int(number) if number.isdigit() else None))
    return good, bad


def _extra_columns(raw: dict) -> str | None:
    """A row with a 7th option (a 选项G column, or text to the right of the last column) is refused:
    dropping that text would import a different question than the one written."""
    if raw.get("选项G"):
        return "有 7 个选项（最多 6 个）"
    if raw.get(UNNAMED):
        return f"表头以外的列有内容“{raw[UNNAMED][:20]}”（选项最多 6 个：选项A 到 选项F）"
    return None


def apply_questions(session: Session, rows: list[QuestionRow], may_edit: Callable[[Question], bool], creator: str,
                    unit_id: int | None, progress: Callable[[int], None] = lambda _n: None) -> tuple[int, int]:
    """Create each row's question in `unit_id`'s bank, or update the one its 编号 names when `may_edit`
    allows (a 编号 the importer may not edit makes a new question of their own). (created, updated)."""
    created = updated = 0
    for row in rows:
        question = session.get(Question, row.number) if row.number else None
        if question is None or not may_edit(question):
            question = Question(created_by=creator, org_unit_id=unit_id)
            session.add(question)
            created += 1
        else:
            updated += 1
        for key, value in row.fields.items():
            setattr(question, key, value)
        progress(1)
    session.flush()
    return created, updated


def check_question(raw: dict) -> tuple[dict | None, str | None]:
    """The question a row describes, or why it is not one."""
    kind = KIND_BY_LABEL.get(raw.get("题型", ""))
    if kind is None:
        return None, f"题型“{raw.get('题型', '')}”应为 单选、多选 或 判断"
    stem = raw.get("题干", "")
    if not stem:
        return None, "题干为空"
    options = [raw.get(c, "") for c in OPTION_COLUMNS]
    while options and not options[-1]:
        options.pop()
    if kind != "judge" and (len(options) < 2 or "" in options):
        return None, "需要 2 到 6 个选项，且中间不能有空的选项"
    answer, reason = _answer(kind, raw.get("答案", ""), len(options) if kind != "judge" else 2)
    if reason:
        return None, reason
    difficulty = DIFFICULTY_WORDS.get(raw.get("难度", "").strip(), raw.get("难度", "").strip()) or "1"
    if difficulty not in ("1", "2", "3"):
        return None, f"难度“{difficulty}”应为 1、2、3 或 易、中、难"
    dates = {}
    for column, key in (("生效日期", "valid_from"), ("失效日期", "valid_until")):
        dates[key] = parse_day(raw.get(column)) if raw.get(column) else None
        if raw.get(column) and dates[key] is None:
            return None, f"{column}“{raw[column]}”不是日期（应为 2026-12-01）"
    if dates["valid_from"] and dates["valid_until"] and dates["valid_until"] < dates["valid_from"]:
        return None, "失效日期早于生效日期"
    return {"kind": kind, "stem": stem[:2000], "options": json.dumps(options if kind != "judge" else [],
                                                                      ensure_ascii=False),
            "answer": answer, "explanation": raw.get("解析", "")[:2000], "source": raw.get("来源", "")[:200],
            "tags": raw.get("标签", "")[:200], "difficulty": int(difficulty), **dates}, None


def _answer(kind: str, text: str, count: int) -> tuple[str, str | None]:
    text = text.strip().upper().replace(",", "").replace("，", "").replace(" ", "")
    if not text:
        return "", "答案为空"
    if kind == "judge":
        if text in ("对", "正确", "A", "√"):
            return "0", None
        if text in ("错", "错误", "B", "×"):
            return "1", None
        return "", f"判断题的答案“{text}”应为 对 或 错"
    if any(ch not in LETTERS[:count] for ch in text):
        return "", f"答案“{text}”不在选项之中（只有 {LETTERS[:count]}）"
    if kind == "single" and len(set(text)) != 1:
        return "", f"单选题只能有一个答案，得到“{text}”"
    return ",".join(str(LETTERS.index(ch)) for ch in sorted(set(text))), None


def question_rows(questions) -> list[list]:
    """The bank as rows in import format, header first (import reads them back)."""
    rows = [list(COLUMNS)]
    for q in questions:
        options = q.option_list if q.kind != "judge" else []
        rows.append([q.id, q.kind_label, q.stem, *(options + [""] * 6)[:6], answer_text(q), q.explanation,
                     q.source, q.tags, q.difficulty, q.valid_from.isoformat() if q.valid_from else "",
                     q.valid_until.isoformat() if q.valid_until else ""])
    return rows


def answer_text(question: Question) -> str:
    """The answer as the import file and the edit form write it: B, AC, 对."""
    return ("对" if question.right == {0} else "错") if question.kind == "judge" else question.answer_letters


def template_rows() -> list[list]:
    """An import file to fill in: the columns and one example row."""
    example = ["", "单选", "中国共产党第一次全国代表大会于哪一年召开？", "1919 年", "1921 年", "1927 年",
               "1949 年", "", "", "B", "1921 年 7 月，中共一大在上海召开。", "中共党史", "党史", 1, "", ""]
    return [list(COLUMNS), example]


# --- statistics --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class QuestionStats:
    answered: int
    right: int
    wrong_choice: str  # the wrong option chosen most often, as its letter in the bank ("" when none)

    @property
    def rate(self) -> float:
        return self.right / self.answered if self.answered else 0.0


def question_stats(session: Session, question_ids: list[int]) -> dict[int, QuestionStats]:
    """Times answered, times right and the most chosen wrong option, per question (two queries)."""
    totals = {qid: (n, r or 0) for qid, n, r in session.execute(
        select(AnswerRecord.question_id, func.count(), func.sum(case((AnswerRecord.correct.is_(True), 1), else_=0)))
        .where(AnswerRecord.question_id.in_(question_ids), AnswerRecord.skipped.is_(False))
        .group_by(AnswerRecord.question_id))}
    wrong: dict[int, list[tuple[int, str]]] = {}
    for qid, chosen, n in session.execute(
            select(AnswerRecord.question_id, AnswerRecord.chosen, func.count())
            .where(AnswerRecord.question_id.in_(question_ids), AnswerRecord.correct.is_(False),
                   AnswerRecord.skipped.is_(False)).group_by(AnswerRecord.question_id, AnswerRecord.chosen)):
        wrong.setdefault(qid, []).append((n, chosen))
    stats = {}
    for qid in question_ids:
        answered, right = totals.get(qid, (0, 0))
        top = max(wrong.get(qid, []), default=(0, ""))[1]
        stats[qid] = QuestionStats(answered, right, "".join(LETTERS[int(i)] for i in top.split(",") if i))
    return stats


def stale(question: Question, day: date) -> bool:
    """Past its valid_until: never drawn again (the console lists these for renewal)."""
    return question.valid_until is not None and question.valid_until < day


@dataclass(frozen=True)
class QuizFigures:
    """Answers by members of some branches over some days: per day and per branch."""
    per_day: dict  # day -> (answers, right)
    per_branch: dict  # branch id -> (members who answered, answers, right)
    sizes: dict  # branch id -> members


def quiz_figures(session: Session, branch_ids: list[int], first: date, last: date) -> QuizFigures:
    """Scored and practice answers (not skipped) of these branches' members, by the attempt's local day."""
    from models.members import Member
    from models.quiz import QuizAttempt
    answers = (select(Member.org_unit_id, QuizAttempt.day, AnswerRecord.member_id, AnswerRecord.correct)
               .join(QuizAttempt, QuizAttempt.id == AnswerRecord.attempt_id)
               .join(Member, Member.id == AnswerRecord.member_id)
               .where(Member.org_unit_id.in_(branch_ids), QuizAttempt.day >= first, QuizAttempt.day <= last,
                      AnswerRecord.skipped.is_(False)).subquery())
    right = func.sum(case((answers.c.correct.is_(True), 1), else_=0))
    per_day = {day: (n, r or 0) for day, n, r in session.execute(
        select(answers.c.day, func.count(), right).group_by(answers.c.day))}
    per_branch = {unit: (players, n, r or 0) for unit, players, n, r in session.execute(
        select(answers.c.org_unit_id, func.count(func.distinct(answers.c.member_id)), func.count(), right)
        .group_by(answers.c.org_unit_id))}
    sizes = dict(session.execute(select(Member.org_unit_id, func.count()).where(Member.org_unit_id.in_(branch_ids))
                                 .group_by(Member.org_unit_id)).all())
    return QuizFigures(per_day, per_branch, sizes)


def hard_questions(session: Session, question_ids, rate: float, min_answers: int) -> list[tuple[int, QuestionStats]]:
    """Questions answered right less than `rate` of the time, once answered at least `min_answers` times
    (fewer answers say little), hardest first."""
    ids = list(session.scalars(
        select(AnswerRecord.question_id).where(AnswerRecord.question_id.in_(question_ids),
                                               AnswerRecord.skipped.is_(False))
        .group_by(AnswerRecord.question_id).having(func.count() >= min_answers)))
    stats = question_stats(session, ids)
    return sorted(((qid, s) for qid, s in stats.items() if s.rate < rate), key=lambda item: (item[1].rate, item[0]))
