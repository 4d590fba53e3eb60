"""Console: the member list with search and filters, editing, roster import and export."""
from __future__ import annotations

import io
import tempfile
from pathlib import Path

from flask import abort, current_app, flash, g, redirect, render_template, request, send_file, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from models.accounts import audit
from models.followers import Follower
from models.members import ROLES, STAGES, Member, OrgUnit
from models.orgtree import TreeError, edit_member, member_snapshot, tree_rows
from models.roster import RosterFileError, RowError, apply_rows, check_rows, read_table, roster_rows, write_table
from wxbot.console import bp
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
    if args.get("unit", "").isdigit():
        query = query.where(Member.org_unit_id == int(args["unit"]))
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
                           bound_ids=bound_ids, branches=branches_in_scope(), stages=STAGES)


@bp.route("/members/<int:member_id>", methods=["GET", "POST"])
@login_required
def member_edit(member_id: int):
    """Edit one member; the change goes to the audit log with before and after."""
    member = member_in_scope(member_id)
    if request.method == "POST":
        before = member_snapshot(member)
        form = request.form
        unit_id = form.get("unit", "")
        unit = db.session.get(OrgUnit, int(unit_id)) if unit_id.isdigit() else None
        try:
            if unit is None or not g.scope.allows_unit(unit.id):
                raise TreeError("请选择你负责范围内的支部")
            edit_member(member, form.get("name", ""), form.get("stage", ""), form.get("role", ""), unit)
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
                           stages=STAGES, roles=ROLES)


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
        good, errors = check_rows(read_table(upload.filename, upload.read()))
    except RosterFileError as exc:
        flash(str(exc), "danger")
        return render_template("console/import.html"), 400
    errors += _scope_errors(good)
    if errors:
        return render_template("console/import.html", errors=sorted(errors, key=lambda e: e.line)), 400
    report = apply_rows(db.session, good, current_app.config["WXBOT"].school.name)
    audit(db.session, current_user, "import", "member", "", f"导入名单：新增 {report.created} 人，更新 {report.updated} 人",
          after={"文件": upload.filename, "新增": report.created, "更新": report.updated},
          org_unit_id=current_user.org_unit_id)
    db.session.commit()
    flash(f"导入完成：新增 {report.created} 人，更新 {report.updated} 人。", "success")
    return redirect(url_for("console.members"))


def _scope_errors(rows) -> list[RowError]:
    """An organiser may only import into their own subtree; existing members outside it are off limits."""
    if g.scope.unit_ids is None:
        return []
    allowed = {(u.parent.name, u.name) for u in branches_in_scope()}
    outside = {m.student_no for m in db.session.scalars(select(Member).where(
        Member.student_no.in_([r.student_no for r in rows]), Member.org_unit_id.not_in(g.scope.unit_ids)))}
    errors = []
    for row in rows:
        if (row.college, row.branch) not in allowed:
            errors.append(RowError(row.line, f"“{row.college} / {row.branch}”不在你负责的范围内"))
        elif row.student_no in outside:
            errors.append(RowError(row.line, f"学号 {row.student_no} 属于其他组织，不能修改"))
    return errors


@bp.get("/members/export.xlsx")
@login_required
def member_export():
    """The members in scope as an .xlsx file in import format."""
    rows = roster_rows(db.session, g.scope.members(select(Member)))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "members.xlsx"
        write_table(path, rows)
        data = io.BytesIO(path.read_bytes())
    return send_file(data, as_attachment=True, download_name="成员名单.xlsx",
                     mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
