"""Console: the roster's import (with its template), export, and one-time binding codes."""
from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from models.accounts import audit
from models.members import Member
from models.roster import (
    apply_rows,
    audit_role_changes,
    authority_errors,
    bind_code_rows,
    check_rows,
    read_roster,
    roster_rows,
    template_rows,
)
from models.tables import TableError, xlsx_bytes
from wxbot import services
from wxbot.console import bp
from wxbot.console.forms import xlsx_download
from wxbot.console.members import branches_in_scope, filtered_members
from wxbot.db import db


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
    return xlsx_download(xlsx_bytes(rows), "绑定码.xlsx")


@bp.get("/members/template.xlsx")
@login_required
def member_template():
    """An import file to fill in, with the columns and an example row of the viewer's first branch."""
    branch = next(iter(branches_in_scope()), None)
    college = branch.parent.name if branch is not None and branch.parent is not None else "计算机学院"
    rows = template_rows(college, branch.name if branch else "本科生第一党支部")
    return xlsx_download(xlsx_bytes(rows), "名单导入模板.xlsx")


@bp.get("/members/export.xlsx")
@login_required
def member_export():
    """The members the list shows (its search and filters), as an .xlsx file in import format."""
    return xlsx_download(xlsx_bytes(roster_rows(db.session, filtered_members(request.args))), "成员名单.xlsx")
