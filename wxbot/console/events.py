"""Console: events (create, edit, import a term, cancel), leave decisions, the check-in screen to
project in the room, attendance with its export, 送学, and attendance rates over a term.

An organiser runs the events of their subtree and sees the school's events with their own members."""
from __future__ import annotations

import base64
import json
import time
from datetime import timedelta

from flask import abort, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import func, select

from models.accounts import audit
from models.attendance import ATTENDANCE, attendance
from models.audience import describe_audience
from models.checkins import CheckIn, code_for, scene_for, slot_of
from models.eventforms import check_event, event_form_values, import_events, read_events, template_rows
from models.eventnotices import absent_members, cancel_event, expected_members, notify, tell_leave_decision
from models.events import KINDS, THREE_MEETINGS, Event
from models.meetings import MEETING_KINDS
from models.members import STAGES, Member, OrgUnit
from models.signups import LeaveRequest, Registration
from models.study import Material
from models.tables import TableError, xlsx_bytes, xlsx_sheets
from models.timeutil import local_date, parse_day, show, utcnow
from wxbot import services
from wxbot.api.events import CHECKIN_PAGE, mini_scene
from wxbot.api.wechat import NotConfigured, wxa_code
from wxbot.console import bp
from wxbot.console.confirm import ask, confirmed
from wxbot.console.forms import xlsx_download
from wxbot.console.materials import audience_from, units_in_scope
from wxbot.db import db
from wxbot.screeninglists import refused_publication

QR_CACHE = "checkin:qr:{event_id}:{slot}"
MINI_CACHE = "checkin:mini:{event_id}:{slot}"


def scoped_events():
    return g.scope.filter(select(Event), Event.org_unit_id, school_wide=True)


def event_in_scope(event_id: int, editing: bool = False) -> Event:
    event = db.session.scalar(scoped_events().where(Event.id == event_id))
    if event is None or (editing and not g.scope.allows_unit(event.org_unit_id)):
        abort(404)
    return event


@bp.get("/events")
@login_required
def events():
    now = utcnow()
    past = request.args.get("past") == "1"
    query = scoped_events().where(Event.ends_at <= now if past else Event.ends_at > now)
    rows = db.session.scalars(query.order_by(Event.starts_at.desc() if past else Event.starts_at).limit(200)).all()
    counts = dict(db.session.execute(select(CheckIn.event_id, func.count()).where(
        CheckIn.event_id.in_([e.id for e in rows])).group_by(CheckIn.event_id)).all())
    return render_template("console/events.html", rows=rows, past=past, now=now, checked=counts)


@bp.route("/events/new", methods=["GET", "POST"])
@bp.route("/events/<int:event_id>/edit", methods=["GET", "POST"])
@login_required
def event_edit(event_id: int | None = None):
    event = event_in_scope(event_id, editing=True) if event_id else None
    if event is not None and event.status != "active":
        flash("活动已取消，不能再修改。", "warning")
        return redirect(url_for("console.event_detail", event_id=event.id))
    if request.method == "GET":
        values = event_form_values(event) if event else {"kind": "主题党日", "signup_required": "1",
                                                          "checkin_before_min": "30", "checkin_after_min": "30",
                                                          "late_after_min": "10", "points": "0"}
        return _form_page(event, values, event.audience_spec() if event else {})
    spec = audience_from(request.form)
    if request.form.get("student_nos", "").strip():
        spec["student_nos"] = [n for n in request.form["student_nos"].replace("，", ",").replace("\n", ",").split(",")
                               if n.strip()]
    fields, reason = check_event(request.form, utcnow())
    materials = _materials(request.form.get("material_ids", ""))
    if reason is None and materials is None:
        reason = "学习材料编号不存在或不可用"
    if reason is None:  # its title, place and topic reach members in every reminder and notice
        reason = refused_publication(f"{fields['title']}\n{fields['place']}\n{fields.get('topic', '')}", request.form)
    if reason:
        flash(f"没有保存：{reason}", "danger")
        return _form_page(event, request.form, spec, 400)
    created = event is None
    if created:
        event = Event(created_by=current_user.username, org_unit_id=current_user.org_unit_id)
        db.session.add(event)
    for key, value in fields.items():
        setattr(event, key, value)
    event.audience, event.material_ids = json.dumps(spec, ensure_ascii=False), json.dumps(materials)
    db.session.flush()
    audit(db.session, current_user, "create" if created else "update", "event", event.id,
          f"{'新建' if created else '修改'}活动《{event.title}》",
          after={"时间": event.when(), "地点": event.place, "对象": describe_audience(db.session, spec)},
          org_unit_id=event.org_unit_id)
    db.session.commit()
    flash("活动已保存。", "success")
    return redirect(url_for("console.event_detail", event_id=event.id))


def _materials(text: str) -> list[int] | None:
    ids = [int(n) for n in text.replace("，", ",").split(",") if n.strip().isdigit()]
    if not ids:
        return []
    found = set(db.session.scalars(select(Material.id).where(Material.id.in_(ids), Material.status == "published")))
    return ids if found == set(ids) else None


def _form_page(event, values, spec, status: int = 200):
    materials = db.session.execute(select(Material.id, Material.title).where(Material.status == "published")
                                   .order_by(Material.id.desc()).limit(500)).all()
    return render_template("console/event_edit.html", event=event, values=values, spec=spec, kinds=KINDS,
                           units=units_in_scope(), stages=STAGES, materials=[tuple(m) for m in materials]), status


@bp.get("/events/<int:event_id>")
@login_required
def event_detail(event_id: int):
    event = event_in_scope(event_id)
    people = _scoped(attendance(db.session, event, expected_members(db.session, event), utcnow()))
    regs = db.session.execute(select(Registration, Member).join(Member, Member.id == Registration.member_id)
                              .where(Registration.event_id == event.id).order_by(Registration.joined_at)).all()
    leaves = db.session.execute(select(LeaveRequest, Member).join(Member, Member.id == LeaveRequest.member_id)
                                .where(LeaveRequest.event_id == event.id).order_by(LeaveRequest.created_at)).all()
    regs = [(r, m) for r, m in regs if g.scope.allows_unit(m.org_unit_id)]
    leaves = [(lv, m) for lv, m in leaves if g.scope.allows_unit(m.org_unit_id)]
    totals = {key: sum(1 for p in people if p.state == key) for key in ATTENDANCE}
    now = utcnow()
    return render_template("console/event.html", event=event, people=people, regs=regs, leaves=leaves,
                           totals=totals, labels=ATTENDANCE, now=now, editable=g.scope.allows_unit(event.org_unit_id),
                           audience=event_audience(event), host=host_of(event), meeting_kinds=MEETING_KINDS,
                           absent=len(absent_members(db.session, event)) if now >= event.ends_at else 0)


def event_audience(event: Event) -> str:
    """Who the event is for, in words: an empty audience is the whole school."""
    return describe_audience(db.session, event.audience_spec()) if event.audience_spec() else "全校成员"


def host_of(event: Event) -> str:
    unit = db.session.get(OrgUnit, event.org_unit_id) if event.org_unit_id else None
    return unit.name if unit else "学校（管理员）"


def _scoped(people):
    return [p for p in people if g.scope.allows_unit(p.unit_id)]


@bp.post("/events/<int:event_id>/leaves/<int:leave_id>")
@login_required
def event_leave(event_id: int, leave_id: int):
    """Approve or refuse a leave request of a member in the viewer's scope; the member is told."""
    event = event_in_scope(event_id)
    leave = db.session.get(LeaveRequest, leave_id)
    member = db.session.get(Member, leave.member_id) if leave and leave.event_id == event.id else None
    if member is None or not g.scope.allows_unit(member.org_unit_id):
        abort(404)
    verdict = request.form.get("verdict")
    if verdict not in ("approve", "refuse"):
        abort(400)
    if leave.status == "pending":
        leave.status = "approved" if verdict == "approve" else "refused"
        leave.decided_by, leave.decided_at = current_user.username, utcnow()
        tell_leave_decision(db.session, event, leave, utcnow())
        audit(db.session, current_user, "update", "event_leave", leave.id,
              f"{'批准' if verdict == 'approve' else '不批准'}{member.name}《{event.title}》的请假",
              org_unit_id=member.org_unit_id)
        db.session.commit()
        flash(f"已{'批准' if verdict == 'approve' else '拒绝'}{member.name}的请假，并通知了本人。", "success")
    return redirect(url_for("console.event_detail", event_id=event.id))


@bp.post("/events/<int:event_id>/cancel")
@login_required
def event_cancel(event_id: int):
    """Cancel an event and tell everyone signed up, waiting or expected, after confirming the count."""
    event = event_in_scope(event_id, editing=True)
    back = url_for("console.event_detail", event_id=event.id)
    if event.status != "active" or utcnow() >= event.ends_at:
        flash("这个活动已经取消或已经结束。", "info")
        return redirect(back)
    people = len(expected_members(db.session, event))
    if not confirmed():
        return ask("确认取消活动", f"取消《{event.title}》（{event.when()}），并通知已报名、候补和应参加的成员。",
                   "确认取消并通知", back, people)
    campaign = cancel_event(db.session, event, utcnow())
    audit(db.session, current_user, "update", "event", event.id, f"取消活动《{event.title}》",
          after={"通知": campaign.id if campaign else "无人可通知"}, org_unit_id=event.org_unit_id)
    db.session.commit()
    flash("活动已取消，通知已交给发送引擎。", "success")
    return redirect(back)


@bp.post("/events/<int:event_id>/study")
@login_required
def event_study(event_id: int):
    """送学: the event's materials to those absent or on leave, once, after confirming the count."""
    event = event_in_scope(event_id, editing=True)
    back = url_for("console.event_detail", event_id=event.id)
    people = absent_members(db.session, event)
    if event.study_campaign_id or not event.materials() or utcnow() < event.ends_at or not people:
        flash("送学在活动结束后对缺席和请假的成员进行，需要活动附有学习材料，且每个活动只送一次。", "info")
        return redirect(back)
    if not confirmed():
        return ask("确认送学", f"把《{event.title}》的学习材料发给缺席和请假的成员。", "确认发送", back, len(people))
    first = None
    for material in db.session.scalars(select(Material).where(Material.id.in_(event.materials()))):
        campaign = notify(db.session, people, "", f"《{event.title}》送学：{material.title}", utcnow(),
                          event.org_unit_id, {"title": f"送学｜{material.title}",
                                              "description": f"你没能参加《{event.title}》，请补学这篇材料。",
                                              "link_kind": "study", "link_ref": material.id})
        first = first or campaign
    event.study_campaign_id = first.id if first else None
    audit(db.session, current_user, "create", "event", event.id, f"《{event.title}》送学给 {len(people)} 人",
          org_unit_id=event.org_unit_id)
    db.session.commit()
    flash(f"已把学习材料交给发送引擎，发给 {len(people)} 名缺席或请假的成员。", "success")
    return redirect(back)


@bp.get("/events/<int:event_id>/attendance.xlsx")
@login_required
def event_attendance_export(event_id: int):
    event = event_in_scope(event_id)
    people = _scoped(attendance(db.session, event, expected_members(db.session, event), utcnow()))
    rows = [["姓名", "学号", "支部", "出勤", "签到时间", "备注"]] + [
        [p.name, p.student_no, p.branch, ATTENDANCE[p.state], show(p.at, "%Y-%m-%d %H:%M:%S") if p.at else "",
         p.flag] for p in people]
    audit(db.session, current_user, "export", "event", event.id, f"导出《{event.title}》出勤",
          org_unit_id=event.org_unit_id)
    db.session.commit()
    return xlsx_download(xlsx_bytes(rows, "出勤"), f"出勤-{event.id}.xlsx")


# ---- the check-in screen ----

@bp.get("/events/<int:event_id>/screen")
@login_required
def event_screen(event_id: int):
    """Made to be projected: the rotating QR code, the 6-digit code, the count and the latest names.
    Any organiser who sees the event may run its check-in (a school-wide lecture is checked in by
    whoever stands at the door); changing or cancelling it is for its host's organisers."""
    event = event_in_scope(event_id)
    return render_template("console/event_screen.html", event=event,
                           rotate=services.settings().events.code_rotate_seconds)


@bp.get("/events/<int:event_id>/screen.json")
@login_required
def event_screen_state(event_id: int):
    event = event_in_scope(event_id)
    now = utcnow()
    seconds = services.settings().events.code_rotate_seconds
    slot = slot_of(now, seconds)
    open_now = event.checkin_opens <= now <= event.checkin_closes and event.status == "active"
    names = db.session.execute(select(Member.name, CheckIn.at, CheckIn.late)
                               .join(Member, Member.id == CheckIn.member_id).where(CheckIn.event_id == event.id)
                               .order_by(CheckIn.at.desc()).limit(12)).all()
    count = db.session.scalar(select(func.count()).select_from(CheckIn).where(CheckIn.event_id == event.id)) or 0
    state = {"open": open_now, "count": count, "slot": slot,
             "next_in": seconds - int(now.timestamp()) % seconds,
             "recent": [{"name": n, "at": show(at, "%H:%M:%S"), "late": late} for n, at, late in names],
             "window": f"{show(event.checkin_opens, '%H:%M')}–{show(event.checkin_closes, '%H:%M')}"}
    if open_now:
        secret = current_app.config["SECRET_KEY"]
        state.update(code=code_for(secret, event.id, slot), qr=_qr_image(event, slot, seconds),
                     mini=_mini_image(event, slot, seconds))
    return jsonify(state)


def _qr_image(event: Event, slot: int, seconds: int) -> str | None:
    """The slot's QR code from WeChat (qrcode/create with the signed scene), made once per slot however
    many screens or workers ask; None when WeChat cannot make one now (the 6-digit code still works)."""
    store = services.store()
    key = QR_CACHE.format(event_id=event.id, slot=slot)
    cached = store.get(key)
    if cached:
        return cached
    from wxbot.outbound import wechat_client
    try:
        client = wechat_client()
        result = client.qrcode.create({"expire_seconds": 3 * seconds, "action_name": "QR_STR_SCENE",
                                       "action_info": {"scene": {"scene_str": scene_for(
                                           current_app.config["SECRET_KEY"], event.id, slot)}}})
        url = client.qrcode_image_url(result["ticket"])
    except Exception as exc:  # noqa: BLE001 - the screen keeps its code; the error goes to the log
        from wxbot.errors import report_failure
        report_failure(f"check-in QR code for event {event.id}", exc)
        return None
    store.set(key, url, 3 * seconds)
    return url


def _mini_image(event: Event, slot: int, seconds: int) -> str | None:
    """The slot's mini-program code (getwxacodeunlimit, the same signed scene in 32 characters) as a
    data URL, made once per slot for every screen and worker: the first asker makes it, the others
    wait a moment for it. None when the mini-program is not set up or WeChat cannot make one now."""
    store = services.store()
    key = MINI_CACHE.format(event_id=event.id, slot=slot)
    cached = store.get(key)
    if cached:
        return cached
    if not store.add(key + ":making", "1", 10):
        for _ in range(20):  # another screen or worker is making it
            time.sleep(0.1)
            cached = store.get(key)
            if cached:
                return cached
        return None
    try:
        image = wxa_code(mini_scene(scene_for(current_app.config["SECRET_KEY"], event.id, slot)), CHECKIN_PAGE)
    except NotConfigured:
        return None
    except Exception as exc:  # noqa: BLE001 - the screen keeps its other ways; the error goes to the log
        from wxbot.errors import report_failure
        report_failure(f"check-in mini-program code for event {event.id}", exc)
        return None
    finally:
        store.delete(key + ":making")
    url = "data:image/png;base64," + base64.b64encode(image).decode()
    store.set(key, url, 3 * seconds)
    return url


# ---- import a term's schedule ----

@bp.route("/events/import", methods=["GET", "POST"])
@login_required
def events_import():
    if request.method == "GET":
        if request.args.get("template"):
            return xlsx_download(xlsx_bytes(template_rows(), "活动"), "活动导入模板.xlsx")
        return render_template("console/events_import.html", errors=[])
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        flash("请选择 .xlsx 或 .csv 文件。", "warning")
        return render_template("console/events_import.html", errors=[]), 400
    try:
        good, bad = read_events(upload.filename, upload.read(), utcnow())
    except TableError as exc:
        flash(str(exc), "danger")
        return render_template("console/events_import.html", errors=[]), 400
    count = import_events(db.session, good, bad, current_user.username, current_user.org_unit_id, g.scope.allows_unit)
    if bad:
        db.session.rollback()
        return render_template("console/events_import.html", errors=sorted(bad)), 400
    audit(db.session, current_user, "import", "event", None, f"导入活动 {count} 个",
          org_unit_id=current_user.org_unit_id)
    db.session.commit()
    flash(f"已导入 {count} 个活动。", "success")
    return redirect(url_for("console.events"))


# ---- over a term ----

@bp.get("/events/stats")
@login_required
def events_stats():
    """Attendance rates per branch and per member over a period (a term by default), and the
    三会一课 record."""
    today = local_date()
    first = parse_day(request.args.get("from")) or today - timedelta(days=120)
    last = parse_day(request.args.get("to")) or today
    branches, members, record = term_figures(first, last)
    if request.args.get("format") == "xlsx":
        return xlsx_download(xlsx_sheets({
            "三会一课记录": [["日期", "类型", "名称", "组织", "应到", "出席", "迟到", "请假", "缺席", "主题"]] + record,
            "支部出勤率": [["支部", "应到人次", "出席人次", "出勤率"]] + [
                [b["name"], b["expected"], b["came"], f"{b['rate']}%"] for b in branches],
            "个人出勤率": [["姓名", "学号", "支部", "应到", "出席", "请假", "出勤率"]] + [
                [m["name"], m["student_no"], m["branch"], m["expected"], m["came"], m["leave"], f"{m['rate']}%"]
                for m in members]}), f"活动出勤-{first}-{last}.xlsx")
    return render_template("console/events_stats.html", branches=branches, members=members, record=record,
                           first=first, last=last)


def term_figures(first, last):
    from models.timeutil import day_range
    start, end = day_range(first, last)
    rows = db.session.scalars(scoped_events().where(Event.status == "active", Event.starts_at >= start,
                                                    Event.starts_at < end, Event.ends_at <= utcnow())
                              .order_by(Event.starts_at)).all()
    per_branch, per_member, record = {}, {}, []
    for event in rows:
        people = _scoped(attendance(db.session, event, expected_members(db.session, event), utcnow()))
        counts = {key: sum(1 for p in people if p.state == key) for key in ATTENDANCE}
        if event.kind in THREE_MEETINGS or event.kind == "主题党日":
            unit = db.session.get(OrgUnit, event.org_unit_id) if event.org_unit_id else None
            record.append([show(event.starts_at, "%Y-%m-%d"), event.kind, event.title, unit.name if unit else "全校",
                           len(people), counts["present"], counts["late"], counts["leave"], counts["absent"],
                           event.topic])
        for p in people:
            came = p.state in ("present", "late")
            b = per_branch.setdefault(p.unit_id, {"name": p.branch, "expected": 0, "came": 0})
            b["expected"] += 1
            b["came"] += came
            m = per_member.setdefault(p.member_id, {"name": p.name, "student_no": p.student_no, "branch": p.branch,
                                                    "expected": 0, "came": 0, "leave": 0})
            m["expected"] += 1
            m["came"] += came
            m["leave"] += p.state == "leave"
    for item in (*per_branch.values(), *per_member.values()):
        item["rate"] = round(100 * item["came"] / item["expected"]) if item["expected"] else 0
    branches = sorted(per_branch.values(), key=lambda b: -b["rate"])
    members = sorted(per_member.values(), key=lambda m: (m["rate"], m["branch"], m["student_no"]))
    return branches, members, record

