"""Console: 工作报告. Any unit in the viewer's scope over any period, its sub-units side by side, as a
page, an .xlsx and a .docx; the periods the committee asks reports for (deadlines, who has submitted);
submitting a frozen version and reviewing it (approve, or return with comments), audited."""
from __future__ import annotations

import io
from datetime import date

from flask import abort, flash, g, redirect, render_template, request, send_file, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from models.accounts import audit
from models.members import OrgUnit
from models.report import PERIOD_KINDS, ReportError, build_report, default_period, period_range
from models.reportdocs import tables, title_of, to_docx, to_xlsx
from models.reportflow import (
    STATUSES,
    Report,
    ReportPeriod,
    board,
    ensure_period,
    may_review,
    review,
    submit,
    versions,
)
from models.timeutil import local_date, utcnow
from wxbot import services
from wxbot.console import bp
from wxbot.console.charts import bar_chart
from wxbot.console.confirm import ask, confirmed
from wxbot.console.forms import db_id
from wxbot.db import db

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def units_in_scope() -> list[OrgUnit]:
    """The units whose report the viewer may build: their own unit and every unit below it."""
    query = select(OrgUnit).order_by(OrgUnit.kind != "school", OrgUnit.parent_id, OrgUnit.name)
    return list(db.session.scalars(g.scope.filter(query, OrgUnit.id)))


def unit_in_scope(unit_id: int | None) -> OrgUnit:
    """A unit the viewer may report on; any other is a 404 (not merely hidden)."""
    unit = db.session.get(OrgUnit, unit_id) if unit_id else None
    if unit is None or not g.scope.allows_unit(unit.id):
        abort(404)
    return unit


def home_unit() -> OrgUnit:
    if current_user.org_unit_id:
        return unit_in_scope(current_user.org_unit_id)
    root = db.session.scalar(select(OrgUnit.id).where(OrgUnit.parent_id.is_(None)).order_by(OrgUnit.id))
    return unit_in_scope(root)


def chosen_period(args) -> tuple[str, str, date, date, str]:
    kind, value = args.get("kind", ""), args.get("value", "")
    if kind not in PERIOD_KINDS or not value:
        kind, value = default_period(local_date())
    first, last, label = period_range(kind, value)
    return kind, value, first, last, label


def charts(report: dict) -> list:
    """Sub-units side by side (a college's branches, the school's colleges); a branch: its meetings."""
    from models.report import figure
    columns = report["columns"]
    if not columns:
        kinds = report["meetings"]["kinds"]
        return [bar_chart(kinds, [figure(report, f"held:{k}") for k in kinds], "各类会议已开次数")]
    names = [c["name"] for c in columns]
    result = []
    for key, title in (("present_rate", "出勤率"), ("readers_rate", "学习阅读率"), ("quiz_members_rate", "答题参与率")):
        result.append(bar_chart(names, [round(figure(report, key, c["id"])) for c in columns], title, unit="%"))
    held = [round(100 * figure(report, "meetings_held", c["id"]) / figure(report, "meetings_required", c["id"]))
            if figure(report, "meetings_required", c["id"]) else None for c in columns]
    result.append(bar_chart(names, held, "三会一课按期完成率", unit="%"))
    return result


@bp.get("/reports")
@login_required
def report_page():
    unit = unit_in_scope(db_id(request.args.get("unit"))) if request.args.get("unit") else home_unit()
    try:
        kind, value, first, last, label = chosen_period(request.args)
    except ReportError as exc:
        flash(str(exc), "danger")
        return redirect(url_for("console.report_page", unit=unit.id))
    report = build_report(db.reading_session, unit, first, last, utcnow(), services.settings())
    period = db.session.scalar(select(ReportPeriod).where(ReportPeriod.kind == kind, ReportPeriod.value == value))
    history = versions(db.session, unit.id, period.id) if period else []
    return render_template("console/report.html", report=report, tables=tables(report), unit=unit,
                           units=units_in_scope(), kind=kind, value=value, label=label, kinds=PERIOD_KINDS,
                           charts=charts(report), period=period, history=history, statuses=STATUSES,
                           may_submit=period is not None and unit.kind != "school",
                           reviewable={r.id for r in history if may_review(r, unit, current_user.role,
                                                                           current_user.org_unit_id)},
                           frozen=None)


@bp.get("/reports/<int:report_id>")
@login_required
def report_version(report_id: int):
    """A submitted (or drafted) version, exactly as it was frozen."""
    saved, unit = version_in_scope(report_id)
    period = db.session.get(ReportPeriod, saved.period_id)
    report = saved.figures
    history = versions(db.session, unit.id, period.id)
    return render_template("console/report.html", report=report, tables=tables(report), unit=unit,
                           units=units_in_scope(), kind=period.kind, value=period.value, label=period.label,
                           kinds=PERIOD_KINDS, charts=charts(report), period=period, history=history,
                           statuses=STATUSES, may_submit=False, frozen=saved,
                           reviewable={saved.id} if may_review(saved, unit, current_user.role,
                                                               current_user.org_unit_id) else set())


def version_in_scope(report_id: int) -> tuple[Report, OrgUnit]:
    saved = db.session.get(Report, report_id)
    if saved is None:
        abort(404)
    return saved, unit_in_scope(saved.org_unit_id)


def document(report: dict, label: str, fmt: str):
    name = f"{title_of(report, label)}.{fmt}"
    content = to_docx(report, label) if fmt == "docx" else to_xlsx(report, label)
    return send_file(io.BytesIO(content), as_attachment=True, download_name=name,
                     mimetype=DOCX if fmt == "docx" else XLSX)


@bp.get("/reports/download.<any(docx, xlsx):fmt>")
@login_required
def report_download(fmt: str):
    unit = unit_in_scope(db_id(request.args.get("unit")))
    try:
        _kind, _value, first, last, label = chosen_period(request.args)
    except ReportError:
        abort(404)
    report = build_report(db.reading_session, unit, first, last, utcnow(), services.settings())
    return document(report, label, fmt)


@bp.get("/reports/<int:report_id>/download.<any(docx, xlsx):fmt>")
@login_required
def report_version_download(report_id: int, fmt: str):
    saved, _unit = version_in_scope(report_id)
    return document(saved.figures, db.session.get(ReportPeriod, saved.period_id).label, fmt)


@bp.post("/reports/submit")
@login_required
def report_submit():
    unit = unit_in_scope(db_id(request.form.get("unit")))
    period = db.session.get(ReportPeriod, db_id(request.form.get("period")) or 0)
    if period is None:
        abort(404)
    back = url_for("console.report_page", unit=unit.id, kind=period.kind, value=period.value)
    if not confirmed():
        return ask("确认报送", f"报送“{unit.name}”{period.label}的工作报告：报送时的数字将被冻结并生成校验码，"
                   "之后的数据变化不会改变已报送的报告；审核前不能撤回。", "确认报送", back)
    try:
        saved = submit(db.session, unit, period, current_user.username, utcnow(), services.settings())
    except ReportError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return redirect(back)
    audit(db.session, current_user, "submit", "report", saved.id, f"报送“{unit.name}”{period.label}工作报告",
          after={"版本": saved.version, "校验码": saved.digest, "状态": saved.status_label}, org_unit_id=unit.id)
    db.session.commit()
    flash(f"已报送（第 {saved.version} 版，校验码 {saved.digest}）。", "success")
    return redirect(url_for("console.report_version", report_id=saved.id))


@bp.post("/reports/<int:report_id>/review")
@login_required
def report_review(report_id: int):
    saved, unit = version_in_scope(report_id)
    approve = request.form.get("action") == "approve"
    before = saved.status_label
    try:
        review(saved, unit, approve, request.form.get("comment", ""), current_user.username, current_user.role,
               current_user.org_unit_id, utcnow())
    except ReportError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return redirect(url_for("console.report_version", report_id=saved.id))
    audit(db.session, current_user, "approve" if approve else "return", "report", saved.id,
          f"{'通过' if approve else '退回'}“{unit.name}”的工作报告", {"状态": before},
          {"状态": saved.status_label, "意见": request.form.get("comment", "").strip()[:200]}, org_unit_id=unit.id)
    db.session.commit()
    flash("已通过。" if approve else "已退回，支部会看到你的意见。", "success")
    return redirect(url_for("console.report_version", report_id=saved.id))


@bp.route("/reports/periods", methods=["GET", "POST"])
@login_required
def report_periods():
    """The periods reports are asked for, with deadlines; for the latest chosen, where each unit stands."""
    if request.method == "POST":
        if current_user.role != "admin":
            abort(403)
        kind, value = request.form.get("kind", ""), request.form.get("value", "")
        try:
            deadline = date.fromisoformat(request.form.get("deadline", ""))
        except ValueError:
            deadline = None
        try:
            if kind not in PERIOD_KINDS:
                raise ReportError("请选择时间段类型")
            if deadline is None:
                raise ReportError("请填写截止日期，例如 2026-12-10")
            period = ensure_period(db.session, kind, value, deadline, current_user.username)
        except ReportError as exc:
            db.session.rollback()
            flash(str(exc), "danger")
            return redirect(url_for("console.report_periods"))
        audit(db.session, current_user, "update", "report_period", period.id,
              f"报告期 {period.label}，截止 {period.deadline.isoformat()}",
              after={"时间段": period.label, "截止日期": period.deadline.isoformat()})
        db.session.commit()
        flash("已保存。", "success")
        return redirect(url_for("console.report_periods", period=period.id))
    periods = db.session.scalars(select(ReportPeriod).order_by(ReportPeriod.last.desc())).all()
    chosen = db.session.get(ReportPeriod, db_id(request.args.get("period")) or 0) or (periods[0] if periods else None)
    units = [u for u in units_in_scope() if u.kind != "school"]
    rows = board(db.session, chosen, units) if chosen else []
    return render_template("console/report_periods.html", periods=periods, chosen=chosen, rows=rows,
                           statuses=STATUSES, kinds=PERIOD_KINDS, today=local_date())
