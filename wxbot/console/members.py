"""Console: the member list with search and filters, editing, adding one member, unbinding a WeChat user."""
from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import func, select

from models.accounts import audit, subtree_ids
from models.development import DevRecord, stage_refusal
from models.followers import Follower
from models.members import ROLES, STAGES, Member, OrgUnit, role_change_refusal
from models.miniprogram import mini_user_of_member
from models.orgtree import TreeError, add_member, edit_member, member_snapshot, tree_rows
from models.privacy import unbind_wechat
from wxbot import services
from wxbot.console import bp
from wxbot.console.forms import db_id, page_number
from wxbot.db import db

MEMBERS_PAGE = 20


def branches_in_scope() -> list[OrgUnit]:
    return [unit for unit, _depth, _n in tree_rows(db.session, g.scope.unit_ids) if unit.kind == "branch"]


def member_in_scope(member_id: int) -> Member:
    """A member this account may see; 404 for anyone outside the subtree (not merely hidden)."""
    member = db.session.scalar(g.scope.members(select(Member).where(Member.id == member_id)))
    if member is None:
        abort(404)
    return member


def filtered_members(args):
    """The members in scope that the list's search and filters select (the list and its export)."""
    query = g.scope.members(select(Member))
    if args.get("q"):
        text = args["q"].strip()
        query = query.where(Member.name.contains(text) | Member.student_no.contains(text.upper()))
    if db_id(args.get("unit")):
        query = query.where(Member.org_unit_id.in_(subtree_ids(db.session, db_id(args["unit"]))))
    if args.get("stage") in STAGES:
        query = query.where(Member.stage == args["stage"])
    bound = select(Follower.member_id).where(Follower.member_id.is_not(None))
    if args.get("bound") == "yes":
        query = query.where(Member.id.in_(bound))
    elif args.get("bound") == "no":
        query = query.where(Member.id.not_in(bound))
    return query


@bp.get("/members")
@login_required
def members():
    """Search by name or 学号; filter by unit, 政治面貌 and whether bound; a page of MEMBERS_PAGE at a
    time (a college's hundreds of cards would make a phone's page endless)."""
    query = filtered_members(request.args)
    page, total = page_number(request.args), db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = list(db.session.scalars(query.order_by(Member.student_no).offset((page - 1) * MEMBERS_PAGE)
                                   .limit(MEMBERS_PAGE)))
    bound_ids = set(db.session.scalars(select(Follower.member_id).where(Follower.member_id.in_([m.id for m in rows]))))
    return render_template("console/members.html", rows=rows, total=total, page=page, page_size=MEMBERS_PAGE,
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
            refusal = stage_refusal(db.session, member, form.get("stage", ""))
            if refusal:
                raise TreeError(refusal)
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
    follower = db.session.scalar(select(Follower).where(Follower.member_id == member.id))
    mini = mini_user_of_member(db.session, member.id)
    record = db.session.scalar(select(DevRecord).where(DevRecord.member_id == member.id))
    return render_template("console/member_edit.html", member=member, form={}, branches=branches_in_scope(),
                           stages=STAGES, roles=grantable_roles(member.role), follower=follower, mini=mini,
                           record=record)


@bp.route("/members/new", methods=["GET", "POST"])
@login_required
def member_new():
    """Add one member (someone who joined after the roster was imported)."""
    if request.method == "POST":
        form = request.form
        unit_id = db_id(form.get("unit"))
        unit = db.session.get(OrgUnit, unit_id) if unit_id else None
        try:
            if unit is None or not g.scope.allows_unit(unit.id):
                raise TreeError("请选择你负责范围内的支部")
            member = add_member(db.session, form.get("student_no", ""), form.get("name", ""), form.get("stage", ""),
                                form.get("role", ""), unit, by_admin=current_user.role == "admin")
        except TreeError as exc:
            db.session.rollback()
            flash(str(exc), "danger")
            return render_template("console/member_edit.html", member=None, form=form, branches=branches_in_scope(),
                                   stages=STAGES, roles=grantable_roles("member")), 400
        audit(db.session, current_user, "create", "member", member.student_no, f"新增成员 {member.name}",
              after=member_snapshot(member), org_unit_id=member.org_unit_id)
        db.session.commit()
        flash(f"已新增 {member.name}（{member.student_no}），可以让他发送“绑定 学号 姓名”绑定微信。", "success")
        return redirect(url_for("console.members", q=member.student_no))
    return render_template("console/member_edit.html", member=None, form={}, branches=branches_in_scope(),
                           stages=STAGES, roles=grantable_roles("member"))


@bp.post("/members/<int:member_id>/unbind")
@login_required
def member_unbind(member_id: int):
    """Free a member's 学号 from the WeChat user bound to it (a new phone), in the chat and the
    mini-program: the follower is told first."""
    member = member_in_scope(member_id)
    if not unbind_wechat(db.session, current_user.username, member):
        flash(f"{member.name} 没有绑定微信。", "warning")
        return redirect(url_for("console.member_edit", member_id=member_id))
    audit(db.session, current_user, "unbind", "member", member.student_no, f"解除 {member.name} 的微信绑定",
          {"微信": "已绑定"}, {"微信": "未绑定"}, org_unit_id=member.org_unit_id)
    db.session.commit()
    flash(f"已解除 {member.name} 的微信绑定（公众号和小程序），并通知了原来的微信。本人可以用新的微信重新绑定。",
          "success")
    return redirect(url_for("console.member_edit", member_id=member_id))


def grantable_roles(current: str) -> dict[str, str]:
    """The roles this account may give a member whose role is `current` (only what it may do)."""
    by_admin = current_user.role == "admin"
    return {key: label for key, label in ROLES.items() if role_change_refusal(by_admin, current, key) is None}
