"""Console: 发展党员. The board of the viewer's units (counts per stage, each person's next step with its
dates, the lists a branch meeting needs), a person's timeline with the form that checks the rules,
undo, transfer and closing, batch 培训 and 公示, the 台账 import and export, and the local rules."""
from __future__ import annotations

from datetime import date, timedelta

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import func, select

from models.accounts import audit, subtree_ids
from models.delivery import Delivery
from models.development import (
    CLOSE_REASONS,
    DevelopmentError,
    DevRecord,
    close_record,
    history_of,
    refresh,
    reopen_record,
    rules_in_force,
    start_record,
    step_snapshot,
    undo_last,
)
from models.development import record_step as record_dev_step
from models.devrules import next_steps, parse_day, split_list, window
from models.devsheet import apply_ledger, ledger_rows, read_ledger
from models.eventnotices import notify
from models.members import Member, OrgUnit, member_by_student_no
from models.tables import TableError, xlsx_bytes
from models.timeutil import local_date, utcnow
from wxbot.console import bp
from wxbot.console.forms import db_id, page_number, xlsx_download
from wxbot.console.members import branches_in_scope
from wxbot.db import db

PIPELINE = ("入党申请人", "入党积极分子", "发展对象", "预备党员", "正式党员")
BOARD_PAGE = 50
DUE_SOON_DAYS = 30


def records_in_scope(unit_id: int | None = None):
    """Records of members in the viewer's units (optionally one unit's subtree)."""
    query = g.scope.members(select(DevRecord).join(Member, Member.id == DevRecord.member_id))
    if unit_id:
        query = query.where(Member.org_unit_id.in_(subtree_ids(db.session, unit_id)))
    return query


def record_in_scope(record_id: int) -> DevRecord:
    """A record this account may see; 404 for anyone outside its subtree (not merely hidden)."""
    record = db.session.scalar(records_in_scope().where(DevRecord.id == record_id))
    if record is None:
        abort(404)
    return record


def may_read_notes(record: DevRecord) -> bool:
    """政审 and other sensitive notes: admins and the organisers of the person's own branch only."""
    return current_user.role == "admin" or current_user.org_unit_id == record.member.org_unit_id


@bp.get("/development")
@login_required
def development_board():
    today = local_date()
    unit_id = db_id(request.args.get("unit"))
    if unit_id and not g.scope.allows_unit(unit_id):
        abort(404)
    active = records_in_scope(unit_id).where(DevRecord.status == "active")
    counts = stage_counts(active)
    overdue = count(active.where(DevRecord.next_latest < today))
    due_soon = count(active.where(DevRecord.next_latest >= today,
                                  DevRecord.next_latest <= today + timedelta(days=DUE_SOON_DAYS)))
    show = request.args.get("show", "all")
    listed = active
    if show == "overdue":
        listed = active.where(DevRecord.next_latest < today)
    elif show == "soon":
        listed = active.where(DevRecord.next_latest >= today,
                              DevRecord.next_latest <= today + timedelta(days=DUE_SOON_DAYS))
    elif show == "candidates":  # 可以确定为发展对象
        listed = active.where(DevRecord.next_step == "candidate", DevRecord.next_earliest <= today)
    elif show == "probation":  # 预备期将满
        listed = active.where(Member.stage == "预备党员", DevRecord.probation_end <= today + timedelta(days=60))
    elif show == "leaving":  # leaving school before becoming a 预备党员
        listed = active.where(DevRecord.leaves_on <= today + timedelta(days=180),
                              Member.stage.in_(("入党申请人", "入党积极分子", "发展对象")))
    elif show == "closed":
        listed = records_in_scope(unit_id).where(DevRecord.status == "closed")
    elif show in PIPELINE:
        listed = active.where(Member.stage == show)
    page = page_number(request.args)
    total = count(listed)
    rows = db.session.execute(
        listed.add_columns(Member.name, Member.student_no, Member.stage, OrgUnit.name)
        .join(OrgUnit, OrgUnit.id == Member.org_unit_id)
        .order_by(DevRecord.next_latest.is_(None), DevRecord.next_latest, DevRecord.id)
        .offset((page - 1) * BOARD_PAGE).limit(BOARD_PAGE)).all()
    lists = {"candidates": count(active.where(DevRecord.next_step == "candidate",
                                              DevRecord.next_earliest <= today)),
             "probation": count(active.where(Member.stage == "预备党员",
                                             DevRecord.probation_end <= today + timedelta(days=60))),
             "leaving": count(active.where(DevRecord.leaves_on <= today + timedelta(days=180),
                                           Member.stage.in_(("入党申请人", "入党积极分子", "发展对象"))))}
    return render_template("console/development.html", rows=rows, counts=counts, pipeline=PIPELINE,
                           overdue=overdue, due_soon=due_soon, lists=lists, show=show, total=total, page=page,
                           page_size=BOARD_PAGE, today=today, soon=today + timedelta(days=DUE_SOON_DAYS),
                           rules=rules_in_force(db.session), branches=branches_in_scope(), unit_id=unit_id)


def count(query) -> int:
    return db.session.scalar(select(func.count()).select_from(query.subquery())) or 0


def stage_counts(active) -> dict[str, int]:
    ids = active.with_only_columns(DevRecord.member_id).subquery()
    return dict(db.session.execute(select(Member.stage, func.count()).where(Member.id.in_(select(ids)))
                                   .group_by(Member.stage)).all())


@bp.route("/development/new", methods=["GET", "POST"])
@login_required
def development_new():
    """Open a record: the person (in scope) and the date the application was handed in."""
    form = request.form if request.method == "POST" else request.args
    if request.method == "POST":
        member = member_by_student_no(db.session, form.get("student_no", ""))
        applied_on, leaves_on = parse_day(form.get("applied_on")), parse_day(form.get("leaves_on"))
        try:
            if member is None or not g.scope.allows_unit(member.org_unit_id):
                raise DevelopmentError(["你负责的范围内没有这个学号（请先在“成员”中添加）"])
            if applied_on is None or applied_on > local_date():
                raise DevelopmentError(["请填写递交入党申请书的日期（不晚于今天），例如 2026-03-15"])
            if form.get("leaves_on") and leaves_on is None:
                raise DevelopmentError(["预计离校日期格式不对，例如 2028-06-30"])
            record = start_record(db.session, member, applied_on, current_user.username, leaves_on)
        except DevelopmentError as exc:
            db.session.rollback()
            flash("；".join(exc.reasons), "danger")
            return render_template("console/development_new.html", form=form), 400
        audit(db.session, current_user, "create", "development", member.student_no,
              f"新建 {member.name} 的发展记录（{applied_on.isoformat()} 递交入党申请书）",
              after={"递交入党申请书": applied_on.isoformat()}, org_unit_id=member.org_unit_id)
        db.session.commit()
        flash(f"已为 {member.name} 建立发展记录。", "success")
        return redirect(url_for("console.development_record", record_id=record.id))
    return render_template("console/development_new.html", form=form)


@bp.get("/development/<int:record_id>")
@login_required
def development_record(record_id: int):
    record = record_in_scope(record_id)
    rules = rules_in_force(db.session)
    history = history_of(record)
    upcoming = next_steps(rules, history) if record.status == "active" else []
    optional = [s for s in rules.steps if s.optional and not (s.once and history.has(s.key))
                and all(history.has(r) for r in s.requires)] if record.status == "active" else []
    last = max(record.steps, key=lambda s: (s.recorded_at, s.id), default=None)
    return render_template("console/development_record.html", record=record, rules=rules, upcoming=upcoming,
                           optional=[(s, window(rules, history, s)) for s in optional], last=last,
                           notes=may_read_notes(record), reasons=CLOSE_REASONS, branches=branches_in_scope(),
                           today=local_date())


def step_form(form) -> tuple[str, date | None, date | None, dict]:
    """What the step form sends, as the model takes it."""
    details: dict = {}
    if form.get("contacts"):
        details["contacts"] = split_list(form["contacts"])
    if form.get("introducers"):
        details["introducers"] = split_list(form["introducers"])
    if any(form.get(k) for k in ("entitled", "present", "favour")):
        details["votes"] = {k: form.get(k, "").strip() for k in ("entitled", "present", "favour")}
    for key in ("training_days", "training_hours", "months"):
        if form.get(key):
            # A number no form would hold (400 digits) is as wrong as a word: the rule refuses it.
            text = form[key].strip()[:8]
            try:
                details[key] = int(text) if key != "training_hours" else float(text)
            except ValueError:
                details[key] = -1
            if len(form[key].strip()) > 8:
                details[key] = -1
    if form.get("special"):
        details["special"] = True
    if form.get("reason"):
        details["reason"] = form["reason"].strip()[:200]
    if form.get("event_id") and db_id(form["event_id"]):
        details["event_id"] = db_id(form["event_id"])
    return form.get("key", ""), parse_day(form.get("on")), parse_day(form.get("ends_on")), details


@bp.post("/development/<int:record_id>/step")
@login_required
def development_step(record_id: int):
    """Record the next step; a refusal lists each rule that refuses, and nothing changes."""
    record = record_in_scope(record_id)
    key, on, ends_on, details = step_form(request.form)
    back = url_for("console.development_record", record_id=record_id)
    stage_before = record.member.stage
    try:
        if on is None:
            raise DevelopmentError(["请填写日期，例如 2026-03-15"])
        if on > local_date():
            raise DevelopmentError(["只能记录已经发生的步骤（日期不晚于今天）"])
        step = record_dev_step(db.session, record, key, on, current_user.username, ends_on, details,
                               request.form.get("document", ""), request.form.get("note", ""))
    except DevelopmentError as exc:
        db.session.rollback()
        for reason in exc.reasons:
            flash(reason, "danger")
        return redirect(back)
    rules = rules_in_force(db.session)
    member = record.member
    after = step_snapshot(step, rules) | ({"政治面貌": member.stage} if member.stage != stage_before else {})
    audit(db.session, current_user, "record", "development", member.student_no,
          f"{member.name}：{rules.name(key)}（{on.isoformat()}）", {"政治面貌": stage_before}, after,
          org_unit_id=member.org_unit_id)
    db.session.commit()
    late = f"（晚于规定 {step.late_days} 天，已标注）" if step.late_days else ""
    flash(f"已记录：{rules.name(key)} {on.isoformat()}{late}。", "success" if not late else "warning")
    return redirect(back)


@bp.post("/development/<int:record_id>/undo")
@login_required
def development_undo(record_id: int):
    record = record_in_scope(record_id)
    rules, member, stage_before = rules_in_force(db.session), record.member, record.member.stage
    try:
        step = undo_last(db.session, record)
    except DevelopmentError as exc:
        db.session.rollback()
        flash("；".join(exc.reasons), "danger")
        return redirect(url_for("console.development_record", record_id=record_id))
    audit(db.session, current_user, "undo", "development", member.student_no,
          f"撤销 {member.name} 的“{rules.name(step.key)}”", step_snapshot(step, rules) | {"政治面貌": stage_before},
          {"政治面貌": member.stage}, org_unit_id=member.org_unit_id)
    db.session.commit()
    flash(f"已撤销“{rules.name(step.key)}”。", "success")
    return redirect(url_for("console.development_record", record_id=record_id))


@bp.post("/development/<int:record_id>/<any(close, reopen, leaves):action>")
@login_required
def development_status(record_id: int, action: str):
    """Close (毕业离校, 出国…) or reopen a record, or set the expected date of leaving school."""
    record = record_in_scope(record_id)
    member, back = record.member, url_for("console.development_record", record_id=record_id)
    before = {"状态": record.status, "原因": record.closed_reason,
              "预计离校": record.leaves_on.isoformat() if record.leaves_on else ""}
    try:
        if action == "close":
            reason = request.form.get("reason", "")
            if request.form.get("detail"):
                reason = f"{reason}：{request.form['detail'].strip()}"
            close_record(db.session, record, reason)
            summary = f"关闭 {member.name} 的发展记录：{record.closed_reason}"
        elif action == "reopen":
            reopen_record(db.session, record)
            summary = f"重新打开 {member.name} 的发展记录"
        else:
            leaves_on = parse_day(request.form.get("leaves_on"))
            if request.form.get("leaves_on") and leaves_on is None:
                raise DevelopmentError(["日期格式不对，例如 2028-06-30"])
            record.leaves_on = leaves_on
            refresh(record, rules_in_force(db.session))
            summary = f"{member.name} 预计离校：{leaves_on.isoformat() if leaves_on else '未填'}"
    except DevelopmentError as exc:
        db.session.rollback()
        flash("；".join(exc.reasons), "danger")
        return redirect(back)
    audit(db.session, current_user, action, "development", member.student_no, summary, before,
          {"状态": record.status, "原因": record.closed_reason,
           "预计离校": record.leaves_on.isoformat() if record.leaves_on else ""}, org_unit_id=member.org_unit_id)
    db.session.commit()
    flash(summary, "success")
    return redirect(back)


@bp.post("/development/<int:record_id>/transfer")
@login_required
def development_transfer(record_id: int):
    """Move the person to another branch: every date stays, both branches' organisers are told."""
    record = record_in_scope(record_id)
    member = record.member
    unit = db.session.get(OrgUnit, db_id(request.form.get("unit")) or 0)
    back = url_for("console.development_record", record_id=record_id)
    if unit is None or unit.kind != "branch" or not g.scope.allows_unit(unit.id):
        flash("请选择你负责范围内的支部（转到其他学院请由管理员或接收学院办理）", "danger")
        return redirect(back)
    if unit.id == member.org_unit_id:
        flash("已经在这个支部。", "info")
        return redirect(back)
    old = member.org_unit
    member.org_unit, member.org_unit_id = unit, unit.id
    text = (f"{member.name}（{member.student_no}）的组织关系由“{old.path()}”转至“{unit.path()}”，"
            f"当前为{member.stage}，发展记录的各步日期已随之转入。")
    told = tell_branch_organisers(db.session, {old.id, unit.id}, text, member)
    audit(db.session, current_user, "transfer", "development", member.student_no, f"{member.name} 转支部",
          {"支部": old.path()}, {"支部": unit.path(), "已通知组织员": told}, org_unit_id=unit.id, reach=[old.id])
    db.session.commit()
    flash(f"已转至 {unit.path()}，通知了 {told} 位组织员。", "success")
    return redirect(back)


def tell_branch_organisers(session, unit_ids: set[int], text: str, about: Member) -> int:
    """The organisers (members with the organiser or admin role) of these branches and above, by WeChat."""
    wanted = set()
    for unit_id in unit_ids:
        unit = session.get(OrgUnit, unit_id)
        while unit is not None:
            wanted.add(unit.id)
            unit = unit.parent
    organisers = session.scalars(select(Member.id).where(Member.role.in_(("organiser", "admin")),
                                                         Member.org_unit_id.in_(wanted),
                                                         Member.id != about.id)).all()
    campaign = notify(session, list(organisers), text, "发展党员：组织关系转接", utcnow(), about.org_unit_id)
    return 0 if campaign is None else session.scalar(
        select(func.count()).select_from(Delivery).where(Delivery.campaign_id == campaign.id)) or 0


@bp.route("/development/batch", methods=["GET", "POST"])
@login_required
def development_batch():
    """One step for a class at once: 集中培训 attended by a list, 公示 of several 发展对象. All or nothing:
    a refusal for anyone (named by 学号) records nobody."""
    if request.method == "GET":
        return render_template("console/development_batch.html", form=request.args, problems=[])
    key, on, ends_on, details = step_form(request.form)
    numbers = split_list(request.form.get("student_nos", ""))
    problems = []
    if key == "training" and details.get("event_id"):
        event_problem = training_from_event(details, numbers)
        if event_problem:
            problems.append(event_problem)
        on = on or details.pop("event_starts", None)
        ends_on = ends_on or details.pop("event_ends", None)
        details.pop("event_starts", None), details.pop("event_ends", None)
    if key not in ("training", "publicity"):
        problems.append("批量只用于集中培训和公示")
    if on is None or on > local_date():
        problems.append("请填写开始日期（不晚于今天）")
    if not numbers and not problems:
        problems.append("请填写学号，每行一个或用逗号分开（或填活动编号，按签到名单记录）")
    done = []
    if not problems:
        for number in numbers:
            member = member_by_student_no(db.session, number)
            record = db.session.scalar(records_in_scope().where(DevRecord.member_id == member.id)) if member else None
            if record is None:
                problems.append(f"{number}：你负责的范围内没有这个人的发展记录")
                continue
            try:
                done.append(record_dev_step(db.session, record, key, on, current_user.username, ends_on, details,
                                            request.form.get("document", "")))
            except DevelopmentError as exc:
                problems += [f"{number} {member.name}：{reason}" for reason in exc.reasons]
    if problems:
        db.session.rollback()
        return render_template("console/development_batch.html", form=request.form, problems=problems), 400
    rules = rules_in_force(db.session)
    for step in done:
        member = step.record.member
        audit(db.session, current_user, "record", "development", member.student_no,
              f"{member.name}：{rules.name(key)}（{on.isoformat()}，批量）", after=step_snapshot(step, rules),
              org_unit_id=member.org_unit_id)
    db.session.commit()
    flash(f"已为 {len(done)} 人记录“{rules.name(key)}”。", "success")
    return redirect(url_for("console.development_board"))


def training_from_event(details: dict, numbers: list[str]) -> str | None:
    """A 培训班 run as an event: its study hours, its dates, and (when no list is given) those who
    checked in and have a record in the viewer's units. Returns what is wrong, or None."""
    from models.checkins import CheckIn
    from models.events import Event
    from models.timeutil import local_date as day_of
    event = db.session.scalar(g.scope.filter(select(Event).where(Event.id == details["event_id"]),
                                             Event.org_unit_id, school_wide=True))
    if event is None:
        return f"你负责的范围内没有编号为 {details['event_id']} 的活动"
    if not details.get("training_hours") and event.study_hours:
        details["training_hours"] = event.study_hours
    details["event_starts"], details["event_ends"] = day_of(event.starts_at), day_of(event.ends_at)
    if not details.get("training_days"):
        details["training_days"] = (details["event_ends"] - details["event_starts"]).days + 1
    if not numbers:
        attended = records_in_scope().join(CheckIn, CheckIn.member_id == DevRecord.member_id).where(
            CheckIn.event_id == event.id, DevRecord.status == "active")
        numbers.extend(db.session.scalars(attended.with_only_columns(Member.student_no)).all())
        if not numbers:
            return f"活动“{event.title}”还没有有发展记录的人签到"
    return None


@bp.route("/development/rules", methods=["GET", "POST"])
@login_required
def development_rules():
    """The rules in force; admins change the local ones (audited), every record is recomputed."""
    from models.development import change_local_rules
    if request.method == "POST":
        if current_user.role != "admin":
            abort(403)
        values = {"activist_after_apply_months": request.form.get("activist_after_apply_months", "0"),
                  "intake_months": request.form.get("intake_months", ""),
                  "thought_report_quarterly": bool(request.form.get("thought_report_quarterly"))}
        try:
            before, after = change_local_rules(db.session, values, current_user.username)
        except DevelopmentError as exc:
            db.session.rollback()
            for reason in exc.reasons:
                flash(reason, "danger")
            return redirect(url_for("console.development_rules"))
        audit(db.session, current_user, "update", "development_rules", "", "修改发展党员本地规则", before, after)
        db.session.commit()
        flash("本地规则已保存，所有发展记录的下一步日期已按新规则重新计算。", "success")
        return redirect(url_for("console.development_rules"))
    return render_template("console/development_rules.html", rules=rules_in_force(db.session))


@bp.route("/development/import", methods=["GET", "POST"])
@login_required
def development_import():
    """Existing 台账 (.xlsx or CSV): every row checked against the rules; nothing imported while a row is bad."""
    if request.method == "GET":
        return render_template("console/development_import.html", errors=[])
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        flash("请选择要导入的 .xlsx 或 .csv 文件。", "danger")
        return render_template("console/development_import.html", errors=[]), 400
    try:
        rows = read_ledger(upload.filename, upload.read())
    except TableError as exc:
        flash(str(exc), "danger")
        return render_template("console/development_import.html", errors=[]), 400
    report = apply_ledger(db.session, rows, current_user.username, g.scope)
    if report.errors:
        db.session.rollback()
        return render_template("console/development_import.html", errors=report.errors), 400
    audit(db.session, current_user, "import", "development", "",
          f"导入发展党员台账：{report.records} 人，{report.steps} 个步骤",
          after={"文件": upload.filename, "人数": report.records, "步骤": report.steps},
          org_unit_id=current_user.org_unit_id)
    db.session.commit()
    flash(f"导入完成：{report.records} 人，{report.steps} 个步骤。", "success")
    return redirect(url_for("console.development_board"))


@bp.get("/development/ledger.xlsx")
@login_required
def development_export():
    """发展党员工作台账 of the viewer's units, in the import's columns (it imports back)."""
    unit_id = db_id(request.args.get("unit"))
    if unit_id and not g.scope.allows_unit(unit_id):
        abort(404)
    records = db.session.scalars(records_in_scope(unit_id).order_by(DevRecord.id)).all()
    return xlsx_download(xlsx_bytes(ledger_rows(records, rules_in_force(db.session))), "发展党员工作台账.xlsx")

