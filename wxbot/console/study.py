"""Console: study materials (editor, preview, attachments, review, publishing), the study plan
calendar with .xlsx import, the study dashboard with reminders, and the points ledger."""
from __future__ import annotations

import calendar
import json
import os
import uuid
from datetime import date, timedelta

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import func, select

from models.accounts import audit
from models.audience import AudienceError
from models.delivery import audit_campaign, create_campaign
from models.members import STAGES, Member
from models.points import RULE_LABELS, adjust
from models.study import MATERIAL_STATES, Attachment, Material, PlanEntry, PointEntry, read_plan
from models.tables import TableError
from models.timeutil import local_date, parse_day, parse_month, utcnow
from wxbot.console import bp
from wxbot.console.charts import bar_chart, heat_grid
from wxbot.console.forms import db_id, db_ids
from wxbot.console.members import branches_in_scope
from wxbot.db import db
from wxbot.study.views import render_body, upload_dir

ATTACHMENT_TYPES = (".pdf", ".doc", ".docx", ".ppt", ".pptx")


# --- materials -----------------------------------------------------------------------------------

def scoped_materials():
    """An organiser sees the materials of their subtree and the school-wide ones (read only)."""
    query = select(Material)
    if g.scope.unit_ids is None:
        return query
    return query.where(Material.org_unit_id.in_(g.scope.unit_ids) | Material.org_unit_id.is_(None))


def material_in_scope(material_id: int, editing: bool = False) -> Material:
    material = db.session.scalar(scoped_materials().where(Material.id == material_id))
    if material is None or (editing and not g.scope.allows_unit(material.org_unit_id)):
        abort(404)
    return material


@bp.get("/materials")
@login_required
def materials():
    rows = db.session.scalars(scoped_materials().order_by(Material.id.desc()).limit(200)).all()
    return render_template("console/materials.html", rows=rows)


@bp.route("/materials/new", methods=["GET", "POST"])
@bp.route("/materials/<int:material_id>", methods=["GET", "POST"])
@login_required
def material_edit(material_id: int | None = None):
    material = material_in_scope(material_id, editing=request.method == "POST") if material_id else None
    if request.method == "POST":
        form = request.form
        title = form.get("title", "").strip()
        if not title:
            flash("标题不能为空。", "danger")
            return redirect(request.url)
        if material is None:
            material = Material(author=current_user.username, org_unit_id=current_user.org_unit_id, status="draft")
            db.session.add(material)
        before = {"标题": material.title, "状态": material.status_label} if material.id else None
        material.title, material.summary = title[:100], form.get("summary", "").strip()[:300]
        material.body, material.cover = form.get("body", ""), form.get("cover", "").strip()[:500]
        material.source, material.tags = form.get("source", "").strip()[:100], form.get("tags", "").strip()[:200]
        material.audience = json.dumps(_audience_from(form), ensure_ascii=False)
        if material.status != "draft":  # a changed text must be reviewed again
            material.status, material.reviewer, material.reviewed_at = "draft", "", None
        db.session.flush()
        audit(db.session, current_user, "update" if before else "create", "material", material.id,
              f"{'修改' if before else '新建'}学习材料《{material.title}》", before, {"标题": material.title},
              org_unit_id=material.org_unit_id)
        db.session.commit()
        flash("已保存为草稿；审核并发布后成员才能看到。", "success")
        return redirect(url_for("console.material_edit", material_id=material.id))
    spec = material.audience_spec() if material else {}
    return render_template("console/material.html", material=material, spec=spec, branches=branches_in_scope(),
                           stages=STAGES, preview=render_body(material.body) if material else "",
                           states=MATERIAL_STATES, editable=material is None or g.scope.allows_unit(material.org_unit_id),
                           max_mb=current_app.config["WXBOT"].study.attachment_max_bytes // (1024 * 1024))


def _audience_from(form) -> dict:
    units = [u for u in db_ids(form.getlist("units")) if g.scope.allows_unit(u)]
    if not units and g.scope.unit_ids is not None and current_user.org_unit_id:
        units = [current_user.org_unit_id]  # an organiser's material stays within their subtree
    return {"units": units, "stages": [s for s in form.getlist("stages") if s in STAGES]}


@bp.post("/materials/<int:material_id>/<any(review, publish, withdraw):action>")
@login_required
def material_state(material_id: int, action: str):
    """draft -> reviewed -> published; withdraw takes a material back to draft."""
    material = material_in_scope(material_id, editing=True)
    before = {"状态": material.status_label}
    if action == "review":
        if material.status != "draft":
            flash("只有草稿需要审核。", "warning")
            return redirect(url_for("console.material_edit", material_id=material_id))
        if current_app.config["WXBOT"].study.review_by_other and material.author == current_user.username:
            flash("按照规定，材料需要由作者以外的人审核。", "danger")
            return redirect(url_for("console.material_edit", material_id=material_id))
        material.status, material.reviewer, material.reviewed_at = "reviewed", current_user.username, utcnow()
    elif action == "publish":
        if material.status != "reviewed":
            flash("材料审核通过后才能发布。", "danger")
            return redirect(url_for("console.material_edit", material_id=material_id))
        material.status, material.published_at = "published", utcnow()
    else:
        material.status, material.reviewer, material.reviewed_at = "draft", "", None
    audit(db.session, current_user, action, "material", material.id, f"学习材料《{material.title}》：{material.status_label}",
          before, {"状态": material.status_label}, org_unit_id=material.org_unit_id)
    db.session.commit()
    flash(f"《{material.title}》{material.status_label}。", "success")
    return redirect(url_for("console.material_edit", material_id=material_id))


@bp.post("/materials/<int:material_id>/attachments")
@login_required
def material_attach(material_id: int):
    material = material_in_scope(material_id, editing=True)
    upload = request.files.get("file")
    limit = current_app.config["WXBOT"].study.attachment_max_bytes
    if upload is None or not upload.filename:
        flash("请选择文件。", "danger")
    elif not upload.filename.lower().endswith(ATTACHMENT_TYPES):
        flash("只能上传 PDF、Word 或 PowerPoint 文件。", "danger")
    else:
        data = upload.read(limit + 1)
        if len(data) > limit:
            flash(f"文件超过 {limit // (1024 * 1024)} MB，请压缩后再上传。", "danger")
        else:
            os.makedirs(upload_dir(), exist_ok=True)
            stored = uuid.uuid4().hex + os.path.splitext(upload.filename)[1].lower()
            with open(os.path.join(upload_dir(), stored), "wb") as f:
                f.write(data)
            db.session.add(Attachment(material_id=material.id, filename=os.path.basename(upload.filename)[:200],
                                      stored_name=stored, size=len(data)))
            audit(db.session, current_user, "create", "attachment", material.id,
                  f"《{material.title}》上传附件 {upload.filename}", org_unit_id=material.org_unit_id)
            db.session.commit()
            flash("附件已上传。", "success")
    return redirect(url_for("console.material_edit", material_id=material_id))


# --- the plan calendar ---------------------------------------------------------------------------

def scoped_plan():
    query = select(PlanEntry)
    if g.scope.unit_ids is None:
        return query
    return query.where(PlanEntry.org_unit_id.in_(g.scope.unit_ids) | PlanEntry.org_unit_id.is_(None))


@bp.get("/plan")
@login_required
def study_plan():
    today = local_date()
    first = parse_month(request.args.get("month", today.strftime("%Y-%m")))
    if first is None:
        abort(400)
    last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
    entries = db.session.scalars(scoped_plan().where(PlanEntry.day >= first, PlanEntry.day <= last)
                                 .order_by(PlanEntry.day, PlanEntry.id)).all()
    by_day: dict[date, list[PlanEntry]] = {}
    for entry in entries:
        by_day.setdefault(entry.day, []).append(entry)
    weeks = calendar.Calendar(firstweekday=0).monthdatescalendar(first.year, first.month)
    published = db.session.scalars(scoped_materials().where(Material.status == "published")
                                   .order_by(Material.id.desc())).all()
    previous, following = first - timedelta(days=1), last + timedelta(days=1)
    return render_template("console/plan.html", weeks=weeks, by_day=by_day, first=first, today=today,
                           materials=published, branches=branches_in_scope(), previous=previous.strftime("%Y-%m"),
                           following=following.strftime("%Y-%m"))


@bp.post("/plan")
@login_required
def plan_add():
    form = request.form
    day = parse_day(form.get("day"))
    if day is None:
        flash("请选择日期。", "danger")
        return redirect(url_for("console.study_plan"))
    material = material_in_scope(db_id(form.get("material_id")) or 0)
    message = _add_entry(day, material, db_ids(form.getlist("units")))
    db.session.commit()
    flash(message, "success" if message.startswith("已") else "warning")
    return redirect(url_for("console.study_plan", month=day.strftime("%Y-%m")))


def _add_entry(day: date, material: Material, units: list[int] | None = None) -> str:
    """One plan entry; an organiser's entry reaches only their own subtree (the material's audience
    is used as it is when an admin picks no unit)."""
    if material.status != "published":
        return f"《{material.title}》尚未发布，不能排进计划。"
    owner = current_user.org_unit_id
    exists = db.session.scalar(select(PlanEntry).where(
        PlanEntry.day == day, PlanEntry.material_id == material.id,
        PlanEntry.org_unit_id.is_(None) if owner is None else PlanEntry.org_unit_id == owner))
    if exists is not None:
        return f"{day} 已安排《{material.title}》。"
    units = [u for u in units or [] if g.scope.allows_unit(u)]
    if not units and g.scope.unit_ids is not None:
        units = [current_user.org_unit_id]
    audience = dict(material.audience_spec(), units=units) if units else {}
    entry = PlanEntry(day=day, material_id=material.id, created_by=current_user.username,
                      org_unit_id=current_user.org_unit_id, audience=json.dumps(audience, ensure_ascii=False))
    db.session.add(entry)
    db.session.flush()
    audit(db.session, current_user, "create", "plan", entry.id, f"{day} 学习《{material.title}》",
          org_unit_id=current_user.org_unit_id)
    return f"已安排 {day} 学习《{material.title}》。"


@bp.post("/plan/<int:entry_id>/delete")
@login_required
def plan_delete(entry_id: int):
    entry = db.session.scalar(scoped_plan().where(PlanEntry.id == entry_id))
    if entry is None or not g.scope.allows_unit(entry.org_unit_id):
        abort(404)
    month = entry.day.strftime("%Y-%m")
    if entry.day <= local_date():
        flash("今天及以前的计划已经推送，不能删除。", "warning")
        return redirect(url_for("console.study_plan", month=month))
    audit(db.session, current_user, "delete", "plan", entry.id, f"删除 {entry.day} 的《{entry.material.title}》",
          org_unit_id=entry.org_unit_id)
    db.session.delete(entry)
    db.session.commit()
    flash("已删除。", "success")
    return redirect(url_for("console.study_plan", month=month))


@bp.post("/plan/import")
@login_required
def plan_import():
    """A term's plan from .xlsx or .csv: columns 日期 and 材料标题 (published materials); all or nothing."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        flash("请选择文件（.xlsx 或 .csv，两列：日期、材料标题）。", "danger")
        return redirect(url_for("console.study_plan"))
    titles = {m.title: m for m in db.session.scalars(scoped_materials().where(Material.status == "published"))}
    try:
        planned, errors = read_plan(upload.filename, upload.read(), titles)
    except TableError as exc:
        flash(str(exc), "danger")
        return redirect(url_for("console.study_plan"))
    if errors:  # all or nothing: a half-imported term is harder to fix than a file
        flash("没有导入，请修改后重新上传：" + "；".join(errors[:10]), "danger")
        return redirect(url_for("console.study_plan"))
    messages = [_add_entry(day, material) for day, material in planned]
    db.session.commit()
    flash(f"已导入 {sum(m.startswith('已') for m in messages)} 条计划（重复的已跳过）。", "success")
    return redirect(url_for("console.study_plan", month=planned[0][0].strftime("%Y-%m") if planned else None))


# --- the study dashboard -------------------------------------------------------------------------

def _studied_members(first: date, last: date):
    return select(PointEntry.member_id).where(PointEntry.rule == "read", PointEntry.day >= first,
                                              PointEntry.day <= last).distinct()


@bp.get("/study")
@login_required
def study_dashboard():
    today = local_date()
    week_start = today - timedelta(days=today.weekday())
    days = [today - timedelta(days=n) for n in range(6, -1, -1)]
    branches = branches_in_scope()
    members = g.scope.members(select(func.count()).select_from(Member))
    total = db.session.scalar(members) or 0
    per_day = dict(db.session.execute(
        g.scope.members(select(PointEntry.day, func.count(func.distinct(PointEntry.member_id)))
                        .join(Member, Member.id == PointEntry.member_id)
                        .where(PointEntry.rule == "read", PointEntry.day >= days[0]).group_by(PointEntry.day))).all())
    chart = bar_chart([d.strftime("%m-%d") for d in days],
                      [round(100 * per_day.get(d, 0) / total) if total else 0 for d in days], "每日学习完成率（%）")
    sizes = dict(db.session.execute(select(Member.org_unit_id, func.count()).where(
        Member.org_unit_id.in_([b.id for b in branches])).group_by(Member.org_unit_id)).all())
    studied = db.session.execute(
        select(Member.org_unit_id, PointEntry.day, func.count(func.distinct(PointEntry.member_id)))
        .join(Member, Member.id == PointEntry.member_id)
        .where(Member.org_unit_id.in_([b.id for b in branches]), PointEntry.rule == "read",
               PointEntry.day >= min(days[0], week_start)).group_by(Member.org_unit_id, PointEntry.day)).all()
    per_branch_day = {(unit, day): count for unit, day, count in studied}
    grid = heat_grid([b.name for b in branches], [d.strftime("%m-%d") for d in days],
                     [[round(100 * per_branch_day.get((b.id, d), 0) / sizes[b.id]) if sizes.get(b.id) else 0
                       for d in days] for b in branches], "各支部每日学习完成率")
    week_done = dict(db.session.execute(
        select(Member.org_unit_id, func.count(func.distinct(PointEntry.member_id)))
        .join(Member, Member.id == PointEntry.member_id)
        .where(Member.org_unit_id.in_([b.id for b in branches]), PointEntry.rule == "read",
               PointEntry.day >= week_start).group_by(Member.org_unit_id)).all())
    by_branch = [(b, sizes.get(b.id, 0), week_done.get(b.id, 0)) for b in branches]
    idle = db.session.scalars(g.scope.members(select(Member)).where(
        Member.id.not_in(_studied_members(week_start, today))).order_by(Member.org_unit_id, Member.student_no)
        .limit(500)).all()
    return render_template("console/study.html", chart=chart, grid=grid, by_branch=by_branch, idle=idle,
                           week_start=week_start)


@bp.post("/study/remind")
@login_required
def study_remind():
    """Remind this week's non-studying members through the delivery engine."""
    today = local_date()
    week_start = today - timedelta(days=today.weekday())
    numbers = db.session.scalars(g.scope.members(select(Member.student_no)).where(
        Member.id.not_in(_studied_members(week_start, today)))).all()
    if not numbers:
        flash("本周所有成员都已学习。", "info")
        return redirect(url_for("console.study_dashboard"))
    text = request.form.get("text", "").strip() or "本周你还没有完成学习，回复“学习”阅读今天的学习内容。"
    try:
        campaign = create_campaign(db.session, current_user.username, g.scope, {"student_nos": numbers},
                                   {"text": text}, utcnow(), current_user.org_unit_id)
    except AudienceError as exc:
        db.session.rollback()
        flash(str(exc), "warning")
        return redirect(url_for("console.study_dashboard"))
    audit_campaign(db.session, current_user, campaign, f"学习提醒 #{campaign.id}", {"人数": len(numbers), "内容": text})
    db.session.commit()
    return redirect(url_for("console.campaign_detail", campaign_id=campaign.id))


# --- the points ledger ---------------------------------------------------------------------------

@bp.get("/points")
@login_required
def points_ledger():
    query = g.scope.members(select(PointEntry, Member).join(Member, Member.id == PointEntry.member_id))
    student_no = request.args.get("student_no", "").strip()
    if student_no:
        query = query.where(Member.student_no == student_no)
    rows = db.session.execute(query.order_by(PointEntry.id.desc()).limit(200)).all()
    return render_template("console/points.html", rows=rows, labels=RULE_LABELS, student_no=student_no)


@bp.post("/points/adjust")
@login_required
def points_adjust():
    if current_user.role != "admin":
        abort(403)
    form = request.form
    member = db.session.scalar(select(Member).where(Member.student_no == form.get("student_no", "").strip()))
    reason = form.get("reason", "").strip()
    try:
        delta = int(form.get("delta", ""))
    except ValueError:
        delta = 0
    if member is None or not delta or not reason:
        flash("请填写存在的学号、非零的分数和调整原因。", "danger")
        return redirect(url_for("console.points_ledger"))
    adjust(db.session, member, delta, reason[:200], current_user.username, utcnow())
    audit(db.session, current_user, "adjust", "points", member.id, f"{member.name} 积分 {delta:+d}：{reason}",
          after={"学号": member.student_no, "分数": delta, "原因": reason}, org_unit_id=member.org_unit_id)
    db.session.commit()
    flash(f"已为 {member.name} 调整 {delta:+d} 分。", "success")
    return redirect(url_for("console.points_ledger", student_no=member.student_no))

