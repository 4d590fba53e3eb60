"""The question bank's files and figures: import (all or nothing, every bad row named), export that
import reads back, and per-question statistics."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from models.quiz import KINDS, LETTERS, AnswerRecord, Question
from models.tables import read_table
from models.timeutil import parse_day

OPTION_COLUMNS = tuple(f"选项{letter}" for letter in LETTERS)
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
        reason = "有 7 个或更多选项（最多 6 个）" if raw.get("选项G") else None
        fields, reason = (None, reason) if reason else check_question(raw)
        if reason:
            bad.append((line, reason))
        else:
            number = raw.get("编号", "")
            good.append(QuestionRow(line, fields, int(number) if number.isdigit() else None))
    return good, bad


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
    difficulty = raw.get("难度", "") or "1"
    if difficulty not in ("1", "2", "3"):
        return None, f"难度“{difficulty}”应为 1、2 或 3"
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
        answer = ("对" if q.right == {0} else "错") if q.kind == "judge" else q.answer_letters
        rows.append([q.id, q.kind_label, q.stem, *(options + [""] * 6)[:6], answer, q.explanation, q.source, q.tags,
                     q.difficulty, q.valid_from.isoformat() if q.valid_from else "",
                     q.valid_until.isoformat() if q.valid_until else ""])
    return rows


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
