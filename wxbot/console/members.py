"""Console: the member list with search and filters, editing, roster import and export."""
from __future__ import annotations

import io

from flask import abort, flash, g, redirect, render_template, request, send_file, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from models.accounts import audit
from models.followers import Follower
from models.members import ROLES, STAGES, Member, OrgUnit, role_change_refusal
from models.orgtree import TreeError, edit_member, member_snapshot, tree_rows
from models.roster import (
    apply_rows,
    audit_role_changes,
    authority_errors,
    bind_code_rows,
    check_rows,
    read_roster,
    roster_rows,
)
from models.tables import TableError, xlsx_bytes
from wxbot import services
from wxbot.console import bp
from wxbot.console.forms import db_id
from wxbot.db import db

LIST_LIMIT = 200


def branches_in_scope() -> list[OrgUnit]:
    return [unit for unit, _depth, _n in tree_rows(db.session, g.scope.unit_ids) if unit.kind == "branch"]


def member_in_scope(member_id: int) -> Member:
    """A member this account may see; 404 for anyone outside the subtree (not merely hidden)."""
    member = db.session.scalar(g.scope.members(select(Member).where(Member.id == member_id)))
    if member is None:
        abort(404)
    return member


@bp.get("/members")
@login_required
def members():
    """Search by name or 学号; filter by unit, 政治面貌 and whether bound."""
    args = request.args
    query = g.scope.members(select(Member))
    if args.get("q"):
        text = args["q"].strip()
        query = query.where(Member.name.contains(text) | Member.student_no.contains(text.upper()))
    if db_id(args.get("unit")):
        query = query.where(Member.org_unit_id == db_id(args["unit"]))
    if args.get("stage") in STAGES:
        query = query.where(Member.stage == args["stage"])
    bound = select(Follower.member_id).where(Follower.member_id.is_not(None))
    if args.get("bound") == "yes":
        query = query.where(Member.id.in_(bound))
    elif args.get("bound") == "no":
        query = query.where(Member.id.not_in(bound))
    rows = list(db.session.scalars(query.order_by(Member.student_no).limit(LIST_LIMIT + 1)))
    bound_ids = set(db.session.scalars(bound.where(Follower.member_id.in_([m.id for m in rows]))))
    return render_template("console/members.html", rows=rows[:LIST_LIMIT], more=len(rows) > LIST_LIMIT,
                           bound_ids=bound_ids, branches=branches_in_scope(), stages=STAGES,
                           bind_codes=services.settings().members.bind_mode == "code")


@bp.route("/members/<int:member_id>", methods=["GET", "POST"])
@login_required
def member_edit(member_id: int):
    """Edit one member; the change goes to the audit log with before and after."""
    member = member_in_scope(member_id)
    if request.method == "POST":
        before = member_snapshot(member)
        form = request.form
        unit_id = db_id(form.get("unit"))
        unit = db.session.get(OrgUnit, unit_id) if unit_id else None
        try:
            if unit is None or not g.scope.allows_unit(unit.id):
                raise TreeError("请选择你负责范围内的支部")
            edit_member(member, form.get("name", ""), form.get("stage", ""), form.get("role", ""), unit,
                        by_admin=current_user.role == "admin")
        except TreeError as exc:
            db.session.rollback()
            flash(str(exc), "danger")
            return redirect(url_for("console.member_edit", member_id=member_id))
        audit(db.session, current_user, "update", "member", member.student_no, f"修改成员 {member.name}",
              before, member_snapshot(member), org_unit_id=member.org_unit_id)
        db.session.commit()
        flash(f"已保存 {member.name} 的信息。", "success")
        return redirect(url_for("console.members", q=member.student_no))
    return render_template("console/member_edit.html", member=member, branches=branches_in_scope(),
                           stages=STAGES, roles=grantable_roles(member.role))


def grantable_roles(current: str) -> dict[str, str]:
    """The roles this account may give a member whose role is `current` (only what it may do)."""
    by_admin = current_user.role == "admin"
    return {key: label for key, label in ROLES.items() if role_change_refusal(by_admin, current, key) is None}


@bp.route("/members/import", methods=["GET", "POST"])
@login_required
def member_import():
    """Upload a roster file: row errors are shown in a table and nothing is imported."""
    if request.method == "GET":
        return render_template("console/import.html")
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        flash("请选择要导入的 .xlsx 或 .csv 文件。", "danger")
        return render_template("console/import.html"), 400
    try:
        good, errors = check_rows(read_roster(upload.filename, upload.read()))
    except TableError as exc:
        flash(str(exc), "danger")
        return render_template("console/import.html"), 400
    errors += authority_errors(db.session, good, current_user.role == "admin", g.scope)
    if errors:
        return render_template("console/import.html", errors=sorted(errors, key=lambda e: e.line)), 400
    report = apply_rows(db.session, good, services.settings().school.name)
    audit(db.session, current_user, "import", "member", "",
          f"导入名单：新增 {report.created} 人，更新 {report.updated} 人",
          after={"文件": upload.filename, "新增": report.created, "更新": report.updated},
          org_unit_id=current_user.org_unit_id)
    audit_role_changes(db.session, current_user, report)
    db.session.commit()
    flash(f"导入完成：新增 {report.created} 人，更新 {report.updated} 人。", "success")
    return redirect(url_for("console.members"))


@bp.post("/members/bind-codes.xlsx")
@login_required
def member_bind_codes():
    """One-time binding codes of the unbound members in scope (members.bind_mode: code), as .xlsx."""
    rows = bind_code_rows(db.session, g.scope.members(select(Member)))
    audit(db.session, current_user, "export", "member", "", f"导出 {len(rows) - 1} 名成员的绑定码",
          org_unit_id=current_user.org_unit_id)
    db.session.commit()
    return xlsx_download(rows, "绑定码.xlsx")


def xlsx_download(rows, filename: str):
    """Rows as an .xlsx attachment."""
    return send_file(io.BytesIO(xlsx_bytes(rows)), as_attachment=True, download_name=filename,
                     mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


@bp.get("/members/export.xlsx")
@login_required
def member_export():
    """The members in scope as an .xlsx file in import format."""
    return xlsx_download(roster_rows(db.session, g.scope.members(select(Member))), "成员名单.xlsx")
