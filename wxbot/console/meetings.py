"""Console: 三会一课. The minutes of a meeting (暂存 until submitted; attendance frozen then), where each
branch in the viewer's units stands against the required cadence (green, yellow, red), and the
cadence and exemptions, which admins change (audited)."""
from __future__ import annotations

import contextlib
import os
import uuid

from flask import abort, flash, g, redirect, render_template, request, send_file, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from models.accounts import audit
from models.meetings import (
    MEETING_KINDS,
    PERIODS,
    STATUS_LABELS,
    MeetingCadence,
    MeetingError,
    MeetingExemption,
    MinutesAttachment,
    attachment_refusal,
    attachments_of,
    cadence,
    minutes_of,
    save_minutes,
    standing,
)
from models.members import OrgUnit
from models.timeutil import local_date, utcnow
from wxbot import services
from wxbot.console import bp
from wxbot.console.events import event_in_scope
from wxbot.console.forms import db_id
from wxbot.db import db
from wxbot.study.views import upload_dir

LIGHTS = {"green": ("已完成", "success"), "yellow": ("本期未开", "warning"), "red": ("已到提醒日仍未开", "danger"),
          "exempt": ("已豁免", "secondary")}


def warn_day() -> int:
    return int(services.settings().meetings.warn_day)


@bp.get("/meetings")
@login_required
def meetings_board():
    """Each branch in scope, each required kind of meeting this period: held against required."""
    today = local_date()
    branches = db.session.scalars(g.scope.filter(select(OrgUnit).where(OrgUnit.kind == "branch"), OrgUnit.id)
                                  .order_by(OrgUnit.parent_id, OrgUnit.name)).all()
    rows = [(branch, standing(db.session, branch, today, warn_day())) for branch in branches]
    return render_template("console/meetings.html", rows=rows, lights=LIGHTS, periods=PERIODS, today=today,
                           warn_day=warn_day())


@bp.route("/events/<int:event_id>/minutes", methods=["GET", "POST"])
@login_required
def event_minutes(event_id: int):
    event = event_in_scope(event_id)
    minutes = minutes_of(db.session, event)
    editable = g.scope.allows_unit(event.org_unit_id) and (minutes is None or minutes.status != "submitted")
    if request.method == "POST":
        if not editable:
            abort(403)
        submit = request.form.get("action") == "submit"
        try:
            minutes = save_minutes(db.session, event, request.form, current_user.username, submit, utcnow())
        except MeetingError as exc:
            db.session.rollback()
            flash(str(exc), "danger")
            return render_template("console/minutes.html", event=event, minutes=minutes, form=request.form,
                                   editable=True, labels=STATUS_LABELS,
                                   files=attachments_of(db.session, event)), 400
        audit(db.session, current_user, "submit" if submit else "update", "minutes", event.id,
              f"{'提交' if submit else '暂存'}《{event.title}》的会议记录",
              after={"主持人": minutes.host, "记录人": minutes.recorder, "状态": STATUS_LABELS[minutes.status]},
              org_unit_id=event.org_unit_id)
        db.session.commit()
        flash("会议记录已提交。" if submit else "已暂存，会后可以继续填写并提交。", "success")
        return redirect(url_for("console.event_minutes", event_id=event.id))
    return render_template("console/minutes.html", event=event, minutes=minutes, form={}, editable=editable,
                           labels=STATUS_LABELS, files=attachments_of(db.session, event))


@bp.post("/events/<int:event_id>/minutes/files")
@login_required
def minutes_file_add(event_id: int):
    """Attach a file to draft minutes (the organising unit's organisers)."""
    event = event_in_scope(event_id)
    if not g.scope.allows_unit(event.org_unit_id):
        abort(403)
    upload = request.files.get("file")
    limit = services.settings().study.attachment_max_bytes
    data = upload.read(limit + 1) if upload is not None and upload.filename else b""
    refusal = attachment_refusal(db.session, event, upload.filename if upload else "", len(data), limit)
    if refusal:
        flash(refusal + "。", "danger")
        return redirect(url_for("console.event_minutes", event_id=event.id))
    os.makedirs(upload_dir(), exist_ok=True)
    stored = uuid.uuid4().hex + os.path.splitext(upload.filename)[1].lower()
    with open(os.path.join(upload_dir(), stored), "wb") as out:
        out.write(data)
    name = os.path.basename(upload.filename)[:200]
    db.session.add(MinutesAttachment(event_id=event.id, filename=name, stored_name=stored, size=len(data),
                                     uploaded_by=current_user.username))
    audit(db.session, current_user, "create", "minutes_file", event.id, f"《{event.title}》会议记录附件 {name}",
          org_unit_id=event.org_unit_id)
    db.session.commit()
    flash("附件已上传。", "success")
    return redirect(url_for("console.event_minutes", event_id=event.id))


def minutes_file_in_scope(event_id: int, file_id: int):
    event = event_in_scope(event_id)
    found = db.session.get(MinutesAttachment, file_id)
    if found is None or found.event_id != event.id:
        abort(404)
    return event, found


@bp.get("/events/<int:event_id>/minutes/files/<int:file_id>")
@login_required
def minutes_file(event_id: int, file_id: int):
    _event, found = minutes_file_in_scope(event_id, file_id)
    path = os.path.join(upload_dir(), found.stored_name)
    if not os.path.exists(path):
        abort(404)
    return send_file(path, as_attachment=True, download_name=found.filename)


@bp.post("/events/<int:event_id>/minutes/files/<int:file_id>/delete")
@login_required
def minutes_file_delete(event_id: int, file_id: int):
    event, found = minutes_file_in_scope(event_id, file_id)
    minutes = minutes_of(db.session, event)
    if not g.scope.allows_unit(event.org_unit_id) or (minutes is not None and minutes.status == "submitted"):
        abort(403)
    audit(db.session, current_user, "delete", "minutes_file", event.id, f"《{event.title}》删除附件 {found.filename}",
          org_unit_id=event.org_unit_id)
    db.session.delete(found)
    db.session.commit()
    with contextlib.suppress(OSError):  # the row is gone: the file is unreachable either way
        os.remove(os.path.join(upload_dir(), found.stored_name))
    return redirect(url_for("console.event_minutes", event_id=event.id))


@bp.route("/meetings/cadence", methods=["GET", "POST"])
@login_required
def meetings_cadence():
    """The required cadence per kind and the exemptions; admins change them."""
    if request.method == "POST":
        if current_user.role != "admin":
            abort(403)
        before = {kind: list(rule) for kind, rule in cadence(db.session).items()}
        problems = []
        for kind in MEETING_KINDS:
            period, times = request.form.get(f"period-{kind}", ""), request.form.get(f"times-{kind}", "")
            if period not in PERIODS or not times.isdigit() or int(times) > 31:
                problems.append(f"{kind}：请选择周期，次数填 0 到 31 的整数")
                continue
            row = db.session.get(MeetingCadence, kind) or MeetingCadence(kind=kind)
            row.period, row.times = period, int(times)
            db.session.add(row)
        if problems:
            db.session.rollback()
            for problem in problems:
                flash(problem, "danger")
            return redirect(url_for("console.meetings_cadence"))
        audit(db.session, current_user, "update", "meeting_cadence", "", "修改组织生活的频次要求", before,
              {kind: list(rule) for kind, rule in cadence(db.session).items()})
        db.session.commit()
        flash("已保存。", "success")
        return redirect(url_for("console.meetings_cadence"))
    exemptions = db.session.execute(select(MeetingExemption, OrgUnit.name).outerjoin(
        OrgUnit, OrgUnit.id == MeetingExemption.org_unit_id).order_by(MeetingExemption.month.desc())).all()
    units = db.session.scalars(select(OrgUnit).where(OrgUnit.kind.in_(("college", "branch")))
                               .order_by(OrgUnit.parent_id, OrgUnit.name)).all()
    return render_template("console/meetings_cadence.html", rules=cadence(db.session), kinds=MEETING_KINDS,
                           periods=PERIODS, exemptions=exemptions, units=units)


@bp.post("/meetings/exemptions")
@login_required
def meetings_exemption():
    """Add (or remove) an exemption: a unit or every unit, for a month (a vacation) or for good."""
    if current_user.role != "admin":
        abort(403)
    back = url_for("console.meetings_cadence")
    remove = db_id(request.form.get("remove"))
    if remove:
        row = db.session.get(MeetingExemption, remove)
        if row is not None:
            audit(db.session, current_user, "delete", "meeting_exemption", row.id, "取消组织生活豁免",
                  {"月份": row.month or "长期", "原因": row.reason})
            db.session.delete(row)
            db.session.commit()
        return redirect(back)
    unit_id, month = db_id(request.form.get("unit")), request.form.get("month", "").strip()
    reason = request.form.get("reason", "").strip()[:200]
    if request.form.get("unit") and unit_id is None:  # not "the whole school": a unit that cannot exist
        abort(404)
    import re
    if month and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        flash("月份请写成 2027-02 这样的格式（空表示长期）", "danger")
        return redirect(back)
    if not reason:
        flash("请写明豁免原因（如“寒假”）", "danger")
        return redirect(back)
    if unit_id and db.session.get(OrgUnit, unit_id) is None:
        abort(404)
    row = MeetingExemption(org_unit_id=unit_id, month=month, reason=reason)
    db.session.add(row)
    audit(db.session, current_user, "create", "meeting_exemption", "", f"组织生活豁免：{month or '长期'} {reason}",
          after={"组织": unit_id or "全校", "月份": month or "长期", "原因": reason}, org_unit_id=unit_id)
    db.session.commit()
    flash("已添加豁免。", "success")
    return redirect(back)
