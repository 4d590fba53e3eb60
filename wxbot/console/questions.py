"""Console: the question bank (search, edit with a chat preview, import and export, members' error
reports). Organisers keep their subtree's questions and see the school's bank read-only."""
from __future__ import annotations

from datetime import timedelta

from flask import abort, flash, g, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import func, select

from models.accounts import audit
from models.questionbank import (
    COLUMNS,
    OPTION_COLUMNS,
    answer_text,
    apply_questions,
    check_question,
    hard_questions,
    question_rows,
    question_stats,
    quiz_figures,
    read_questions,
    stale,
    template_rows,
)
from models.quiz import KINDS, Question, QuestionReport, question_text
from models.tables import TableError, xlsx_bytes
from models.timeutil import local_date
from wxbot import services
from wxbot.console import bp
from wxbot.console.charts import bar_chart, heat_grid, percent
from wxbot.console.forms import page_number, xlsx_download
from wxbot.console.members import branches_in_scope
from wxbot.console.studystats import scope_name
from wxbot.db import db

PAGE_SIZE = 50


def scoped_questions():
    """The school's bank and the questions of this account's subtree."""
    return g.scope.filter(select(Question), Question.org_unit_id, school_wide=True)


def question_in_scope(question_id: int, editing: bool = False) -> Question:
    question = db.session.scalar(scoped_questions().where(Question.id == question_id))
    if question is None or (editing and not g.scope.allows_unit(question.org_unit_id)):
        abort(404)
    return question


def editable_questions():
    """The ids of the questions this account may change: its subtree's (an admin's: all)."""
    return g.scope.filter(select(Question.id), Question.org_unit_id)


def editable(question: Question | None) -> bool:
    return question is None or g.scope.allows_unit(question.org_unit_id)


@bp.get("/questions")
@login_required
def questions():
    """Search by text and tag, filter by kind and by stale (past valid_until), with each one's figures."""
    args, today = request.args, local_date()
    query = scoped_questions().where(Question.active.is_(args.get("retired") != "1"))
    if args.get("q"):
        query = query.where(Question.stem.contains(args["q"].strip()))
    if args.get("tag"):
        query = query.where(Question.tags.contains(args["tag"].strip()))
    if args.get("kind") in KINDS:
        query = query.where(Question.kind == args["kind"])
    if args.get("stale") == "1":
        query = query.where(Question.valid_until < today)
    page = page_number(args)
    rows = db.session.scalars(query.order_by(Question.id.desc()).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
    open_reports = db.session.scalar(select(func.count()).select_from(QuestionReport).where(
        QuestionReport.status == "open", QuestionReport.question_id.in_(editable_questions()))) or 0
    return render_template("console/questions.html", rows=rows, stats=question_stats(db.session, [q.id for q in rows]),
                           kinds=KINDS, today=today, stale=stale, editable=editable, page=page,
                           page_size=PAGE_SIZE, open_reports=open_reports)


def form_row(form) -> dict:
    """The edit form's fields under the import file's column names (one check for both)."""
    row = {"题型": KINDS.get(form.get("kind", ""), ""), "题干": form.get("stem", "").strip(),
           "答案": form.get("answer", ""), "解析": form.get("explanation", "").strip(),
           "来源": form.get("source", "").strip(), "标签": form.get("tags", "").strip(),
           "难度": form.get("difficulty", "1"), "生效日期": form.get("valid_from", ""),
           "失效日期": form.get("valid_until", "")}
    row.update({column: form.get(column, "").strip() for column in OPTION_COLUMNS})
    return row


@bp.route("/questions/new", methods=["GET", "POST"])
@bp.route("/questions/<int:question_id>", methods=["GET", "POST"])
@login_required
def question_edit(question_id: int | None = None):
    question = question_in_scope(question_id, editing=request.method == "POST") if question_id else None
    if request.method == "POST":
        fields, reason = check_question(form_row(request.form))
        if reason:
            flash(f"没有保存：{reason}", "danger")
            return render_template("console/question.html", question=question, form=request.form, kinds=KINDS,
                                   columns=OPTION_COLUMNS, editable=True), 400
        created = question is None
        if created:
            question = Question(created_by=current_user.username, org_unit_id=current_user.org_unit_id)
            db.session.add(question)
        for key, value in fields.items():
            setattr(question, key, value)
        db.session.flush()
        audit(db.session, current_user, "create" if created else "update", "question", question.id,
              f"{'新建' if created else '修改'}题目 #{question.id}：{question.stem}", org_unit_id=question.org_unit_id)
        db.session.commit()
        flash("题目已保存。", "success")
        return redirect(url_for("console.question_edit", question_id=question.id))
    return render_template("console/question.html", question=question, form=None, kinds=KINDS, columns=OPTION_COLUMNS,
                           editable=editable(question), answer_text=question and answer_text(question),
                           preview=question and chat_preview(question),
                           stats=question and question_stats(db.session, [question.id])[question.id])


@bp.post("/questions/preview")
@login_required
def question_preview():
    """How the question being edited reads in the chat (the edit page calls this as you type)."""
    fields, reason = check_question(form_row(request.form))
    if reason:
        return jsonify({"error": reason})
    text, answer = chat_preview(Question(**fields))
    return jsonify({"text": text, "answer": answer})


def chat_preview(question: Question) -> tuple[str, str]:
    """The question as the chat shows it (options in the bank's order), and its answer's letters."""
    return question_text(question, list(range(len(question.option_list))), 1, 5), question.answer_letters


@bp.post("/questions/<int:question_id>/<any(retire, restore):action>")
@login_required
def question_state(question_id: int, action: str):
    """Retire a question (never drawn again; its answers and figures stay), or bring it back."""
    question = question_in_scope(question_id, editing=True)
    question.active = action == "restore"
    audit(db.session, current_user, action, "question", question.id,
          f"{'停用' if action == 'retire' else '恢复'}题目 #{question.id}：{question.stem}",
          org_unit_id=question.org_unit_id)
    db.session.commit()
    flash("已停用，不会再出现在答题中。" if action == "retire" else "已恢复。", "success")
    return redirect(url_for("console.question_edit", question_id=question.id))


@bp.route("/questions/import", methods=["GET", "POST"])
@login_required
def question_import():
    """A bank from .xlsx or .csv: every bad row listed; nothing imported while any row is bad, unless the
    organiser ticks "跳过错误行"."""
    if request.method == "GET":
        return render_template("console/question_import.html", errors=None, columns=COLUMNS)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        flash("请选择 .xlsx 或 .csv 文件。", "danger")
        return render_template("console/question_import.html", errors=None, columns=COLUMNS), 400
    try:
        good, bad = read_questions(upload.filename, upload.read())
    except TableError as exc:
        flash(str(exc), "danger")
        return render_template("console/question_import.html", errors=None, columns=COLUMNS), 400
    if bad and request.form.get("skip_bad") != "1":
        return render_template("console/question_import.html", errors=bad, columns=COLUMNS), 400
    created, updated = apply_questions(db.session, good, editable, current_user.username, current_user.org_unit_id)
    audit(db.session, current_user, "import", "question", "", f"导入题库：新增 {created} 道，更新 {updated} 道",
          after={"文件": upload.filename, "跳过错误行": len(bad)}, org_unit_id=current_user.org_unit_id)
    db.session.commit()
    flash(f"导入完成：新增 {created} 道，更新 {updated} 道" + (f"，跳过 {len(bad)} 行有错误的" if bad else "") + "。",
          "success")
    return redirect(url_for("console.questions"))


@bp.get("/questions/export.xlsx")
@login_required
def question_export():
    """The bank in scope, in the import format (编号 included: importing it back updates in place)."""
    rows = question_rows(db.session.scalars(scoped_questions().where(Question.active.is_(True)).order_by(Question.id)))
    return xlsx_download(xlsx_bytes(rows), "题库.xlsx")


@bp.get("/questions/template.xlsx")
@login_required
def question_template():
    return xlsx_download(xlsx_bytes(template_rows()), "题库导入模板.xlsx")


@bp.get("/questions/reports")
@login_required
def question_reports():
    """Members' error reports, open first."""
    rows = db.session.execute(select(QuestionReport, Question).join(Question, Question.id == QuestionReport.question_id)
                              .where(Question.id.in_(scoped_questions().with_only_columns(Question.id)))
                              .order_by(QuestionReport.status.desc(), QuestionReport.id.desc()).limit(200)).all()
    return render_template("console/question_reports.html", rows=rows, editable=editable)


@bp.post("/questions/reports/<int:report_id>/resolve")
@login_required
def question_report_resolve(report_id: int):
    report = db.session.get(QuestionReport, report_id)
    if report is None:
        abort(404)
    question = question_in_scope(report.question_id, editing=True)
    report.status, report.handled_by = "resolved", current_user.username
    audit(db.session, current_user, "resolve", "question", question.id, f"处理题目 #{question.id} 的纠错",
          after={"纠错": report.note}, org_unit_id=question.org_unit_id)
    db.session.commit()
    flash("已标记为处理完毕。", "success")
    return redirect(url_for("console.question_reports"))



STATS_DAYS = 14


@bp.get("/questions/statistics")
@login_required
def question_statistics():
    """Hard questions to review, and the quiz per branch and over the last two weeks, as charts."""
    cfg, today = services.settings().quiz, local_date()
    first = today - timedelta(days=STATS_DAYS - 1)
    in_scope = scoped_questions().where(Question.active.is_(True)).with_only_columns(Question.id)
    hard = hard_questions(db.session, in_scope, cfg.hard_question_rate, cfg.hard_question_min_answers)
    questions_by_id = {q.id: q for q in db.session.scalars(select(Question).where(
        Question.id.in_([qid for qid, _ in hard])))}
    branches = branches_in_scope()
    figures = quiz_figures(db.session, [b.id for b in branches], first, today)
    days = [first + timedelta(days=n) for n in range(STATS_DAYS)]
    where = scope_name()
    answers_chart = bar_chart([f"{d.day}" for d in days], [figures.per_day.get(d, (0, 0))[0] for d in days],
                              f"{where}近 {STATS_DAYS} 天每日答题数（按日）")
    rate_chart = bar_chart([f"{d.day}" for d in days],  # a day nobody answered has no rate: "—", not 0%
                           [percent(right, n) if n else None
                            for n, right in (figures.per_day.get(d, (0, 0)) for d in days)],
                           f"{where}近 {STATS_DAYS} 天每日正确率（按日）", unit="%")
    by_branch = [(b, figures.sizes.get(b.id, 0), *figures.per_branch.get(b.id, (0, 0, 0))) for b in branches]
    grid = heat_grid([b.name for b, *_ in by_branch], ["参与率", "正确率"],
                     [[percent(players, size), percent(right, answers)]
                      for _b, size, players, answers, right in by_branch], f"{where}各支部近 {STATS_DAYS} 天答题")
    return render_template("console/question_stats.html", hard=hard, questions_by_id=questions_by_id, cfg=cfg,
                           answers_chart=answers_chart, rate_chart=rate_chart, grid=grid, by_branch=by_branch,
                           days=STATS_DAYS, where=where)

