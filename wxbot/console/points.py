"""Console: the points ledger, and administrators' adjustments."""
from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import func, select

from models.accounts import audit
from models.members import Member
from models.points import RULE_LABELS, PointEntry, adjust
from models.timeutil import parse_day, utcnow
from wxbot import services
from wxbot.console import bp
from wxbot.console.confirm import ask, confirmed
from wxbot.db import db


@bp.get("/points")
@login_required
def points_ledger():
    """The ledger, newest first, filtered by 学号 and by day; with each member's sum over the filter."""
    args = request.args
    query = g.scope.members(select(PointEntry, Member).join(Member, Member.id == PointEntry.member_id))
    student_no = args.get("student_no", "").strip()
    if student_no:
        query = query.where(Member.student_no == student_no.upper())
    first, last = parse_day(args.get("start")), parse_day(args.get("end"))
    if first:
        query = query.where(PointEntry.day >= first)
    if last:
        query = query.where(PointEntry.day <= last)
    rows = db.session.execute(query.order_by(PointEntry.created_at.desc(), PointEntry.id.desc()).limit(200)).all()
    sums = query.with_only_columns(Member.student_no, Member.name, func.sum(PointEntry.delta), func.count()) \
        .group_by(Member.id, Member.student_no, Member.name).order_by(func.sum(PointEntry.delta).desc()).limit(50)
    return render_template("console/points.html", rows=rows, totals=db.session.execute(sums).all(),
                           labels=RULE_LABELS, student_no=student_no,
                           max_adjustment=services.settings().points.max_adjustment)


@bp.post("/points/adjust")
@login_required
def points_adjust():
    """An administrator's correction: a reason, a bound (points.max_adjustment), and one confirmation."""
    if current_user.role != "admin":
        abort(403)
    form = request.form
    member = db.session.scalar(select(Member).where(Member.student_no == form.get("student_no", "").strip()))
    reason = form.get("reason", "").strip()
    limit = services.settings().points.max_adjustment
    try:
        delta = int(form.get("delta", ""))
    except ValueError:
        delta = 0
    if member is None or not delta or not reason:
        flash("请填写存在的学号、非零的分数和调整原因。", "danger")
        return redirect(url_for("console.points_ledger"))
    if abs(delta) > limit:
        flash(f"一次最多调整 {limit} 分（points.max_adjustment）。", "danger")
        return redirect(url_for("console.points_ledger", student_no=member.student_no))
    if not confirmed():
        return ask("确认调整积分", f"{member.name}（{member.student_no}）{delta:+d} 分\n原因：{reason}", "确认调整",
                   url_for("console.points_ledger", student_no=member.student_no))
    adjust(db.session, member, delta, reason[:200], current_user.username, utcnow())
    audit(db.session, current_user, "adjust", "points", member.id, f"{member.name} 积分 {delta:+d}：{reason}",
          after={"学号": member.student_no, "分数": delta, "原因": reason}, org_unit_id=member.org_unit_id)
    db.session.commit()
    flash(f"已为 {member.name} 调整 {delta:+d} 分。", "success")
    return redirect(url_for("console.points_ledger", student_no=member.student_no))
