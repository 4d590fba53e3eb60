"""Console: the study plan calendar, entries per day and unit, and a term's import."""
from __future__ import annotations

import calendar
import json
from datetime import date, timedelta

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import func, select

from models.accounts import audit
from models.study import Material, PlanEntry, read_plan
from models.tables import TableError
from models.timeutil import local_date, parse_day, parse_month, utcnow
from wxbot.console import bp
from wxbot.console.forms import db_id, db_ids
from wxbot.console.materials import material_in_scope, scoped_materials, units_in_scope
from wxbot.db import db


def scoped_plan():
    """An organiser sees their subtree's plan entries and the school-wide ones."""
    return g.scope.filter(select(PlanEntry), PlanEntry.org_unit_id, school_wide=True)


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
    from wxbot.study.push import push_forecast
    reach = push_forecast(db.session, today, utcnow()) if g.scope.everything else None
    return render_template("console/plan.html", weeks=weeks, by_day=by_day, first=first, today=today, reach=reach,
                           may_delete=lambda entry: entry.day > today and g.scope.allows_unit(entry.org_unit_id),
                           materials=published, units=units_in_scope(), previous=previous.strftime("%Y-%m"),
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
    message = _add_entry(day, material, db_ids(form.getlist("units")), form.get("by_mass") == "1")
    db.session.commit()
    flash(message, "success" if message.startswith("已") else "warning")
    return redirect(url_for("console.study_plan", month=day.strftime("%Y-%m")))


def _add_entry(day: date, material: Material, units: list[int] | None = None, by_mass: bool = False) -> str:
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
    if not units and not g.scope.everything:
        units = [current_user.org_unit_id]
    audience = dict(material.audience_spec(), units=units) if units else {}
    entry = PlanEntry(day=day, material_id=material.id, created_by=current_user.username, by_mass=by_mass,
                      org_unit_id=current_user.org_unit_id, audience=json.dumps(audience, ensure_ascii=False))
    db.session.add(entry)
    db.session.flush()
    audit(db.session, current_user, "create", "plan", entry.id, f"{day} 学习《{material.title}》",
          org_unit_id=current_user.org_unit_id)
    others = db.session.scalar(select(func.count()).select_from(PlanEntry).where(PlanEntry.day == day,
                                                                                 PlanEntry.id != entry.id)) or 0
    together = f"这一天共 {others + 1} 篇：同时是两篇对象的成员会在同一条推送里看到它们。" if others else ""
    return f"已安排 {day} 学习《{material.title}》。{together}"


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
