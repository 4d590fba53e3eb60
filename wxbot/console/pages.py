"""Console pages: dashboard, org tree, message log, audit log. Every query goes through the scope."""
from __future__ import annotations

from datetime import timedelta

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import and_, case, func, select

from models.accounts import AuditLog, audit, audit_in_scope
from models.followers import Follower
from models.members import Member, OrgUnit
from models.messagelog import MessageLog
from models.orgtree import KIND_LABELS, TreeError, add_unit, delete_unit, move_unit, rename_unit, tree_rows
from models.timeutil import local_date, local_midnight, parse_day
from wxbot.console import bp
from wxbot.console.charts import bar_chart
from wxbot.console.forms import db_id, page_number
from wxbot.db import db

PAGE_SIZE = 100


def scoped_followers():
    """Followers this account may count: all for an admin, bound members of the subtree otherwise."""
    query = select(func.count()).select_from(Follower).where(Follower.subscribed.is_(True))
    if g.scope.everything:
        return query
    return g.scope.members(query.join(Member, Follower.member_id == Member.id))


def scoped_messages(query):
    """Messages of members in this account's scope (all for an admin)."""
    if g.scope.everything:
        return query
    return g.scope.members(query.join(Member, MessageLog.member_id == Member.id))


def counts_per_day(query, column, days) -> list[int]:
    """For a count query, the count on each local day, in one statement (a sum per day)."""
    sums = [func.sum(case((and_(column >= local_midnight(day), column < local_midnight(day + timedelta(days=1))), 1),
                          else_=0)) for day in days]
    row = db.session.execute(query.with_only_columns(*sums).where(column >= local_midnight(days[0]))).one()
    return [int(n or 0) for n in row]


@bp.get("/")
@login_required
def dashboard():
    """Followers, bound members, active members and messages per day, for this account's scope."""
    session, today = db.session, local_date()
    count = lambda query: session.scalar(query) or 0  # noqa: E731
    figures = {
        "关注者": count(scoped_followers()),
        "已绑定成员": count(scoped_followers().where(Follower.member_id.is_not(None))),
        "今日活跃": count(scoped_followers().where(Follower.last_interaction_at >= local_midnight(today))),
        "30 天活跃": count(scoped_followers().where(
            Follower.last_interaction_at >= local_midnight(today - timedelta(days=29)))),
    }
    days = [today - timedelta(days=n) for n in range(13, -1, -1)]
    per_day = counts_per_day(scoped_messages(select(func.count()).select_from(MessageLog))
                             .where(MessageLog.direction == "in"), MessageLog.created_at, days)
    where = current_user.org_unit.name if current_user.org_unit else "全校"
    chart = bar_chart([d.strftime("%m-%d") for d in days], per_day, f"{where}每日收到的消息（条）")
    from models.timeutil import utcnow
    from wxbot.health import system_health
    health = system_health(session, utcnow(), current_app.config["WXBOT"])
    return render_template("console/dashboard.html", figures=figures, chart=chart, health=health)


def unit_in_scope(unit_id: int) -> OrgUnit:
    unit = db.session.get(OrgUnit, unit_id)
    if unit is None or not g.scope.allows_unit(unit.id):
        abort(404)
    return unit


@bp.get("/org")
@login_required
def org_tree():
    rows = tree_rows(db.session, g.scope.unit_ids)
    return render_template("console/org.html", rows=rows, kinds=KIND_LABELS)


@bp.post("/org/<int:unit_id>/<action>")
@login_required
def org_change(unit_id: int, action: str):
    """Add a unit below, rename, move or delete; every change is audited."""
    unit = unit_in_scope(unit_id)
    before = {"名称": unit.name, "上级": unit.parent.name if unit.parent else ""}
    try:
        summary = _apply_org_change(unit, action)
    except TreeError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return redirect(url_for("console.org_tree"))
    after = {} if action == "delete" else {"名称": unit.name, "上级": unit.parent.name if unit.parent else ""}
    audit(db.session, current_user, action, "org_unit", unit_id, summary, before, after,
          org_unit_id=unit.parent_id if action in ("delete", "add") else unit.id)
    db.session.commit()
    flash(summary, "success")
    return redirect(url_for("console.org_tree"))


def _apply_org_change(unit: OrgUnit, action: str) -> str:
    name = request.form.get("name", "")
    if action == "add":
        child = add_unit(db.session, unit, name)
        return f"已在“{unit.name}”下新建“{child.name}”"
    if action == "rename":
        old = unit.name
        rename_unit(db.session, unit, name)
        return f"已把“{old}”改名为“{unit.name}”"
    if action == "move":
        target = request.form.get("parent_id", "")
        move_unit(db.session, unit, unit_in_scope(db_id(target)) if db_id(target) else abort(400))
        return f"已把“{unit.name}”移到“{unit.parent.name}”下"
    if action == "delete":
        if not g.scope.everything and current_user.org_unit_id == unit.id:
            raise TreeError("不能删除自己负责的组织")
        delete_unit(db.session, unit)
        return f"已删除“{unit.name}”"
    abort(404)


@bp.get("/messages")
@login_required
def message_log():
    """What members sent and what the account answered: by member, text and date."""
    args = request.args
    query = scoped_messages(select(MessageLog))
    if args.get("member"):
        who = args["member"].strip()
        ids = select(Member.id).where((Member.name == who) | (Member.student_no == who.upper()))
        query = query.where(MessageLog.member_id.in_(ids))
    if args.get("text"):
        query = query.where(MessageLog.content.contains(args["text"].strip()))
    query = _date_range(query, MessageLog.created_at, args)
    page = page_number(args)
    if args.get("flagged"):  # what the word lists catch in members' messages (the latest 5,000 looked at)
        from wxbot.screeninglists import current_screener
        screener = current_screener()
        recent = db.session.scalars(query.where(MessageLog.direction == "in").order_by(MessageLog.id.desc())
                                    .limit(5000))
        caught = [r for r in recent if screener.screen(r.content).action != "pass"]
        rows = caught[(page - 1) * PAGE_SIZE:page * PAGE_SIZE]
    else:
        rows = list(db.session.scalars(query.order_by(MessageLog.id.desc())
                                       .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)))
    member_ids = {r.member_id for r in rows if r.member_id}
    members = {m.id: m for m in db.session.scalars(select(Member).where(Member.id.in_(member_ids)))}
    return render_template("console/messages.html", rows=rows, members=members, page=page, page_size=PAGE_SIZE)


@bp.get("/audit")
@login_required
def audit_log():
    """Who changed what, when: filter by user, object and date."""
    args = request.args
    query = audit_in_scope(select(AuditLog), g.scope)
    if args.get("actor"):
        query = query.where(AuditLog.actor == args["actor"].strip())
    if args.get("object_type"):
        query = query.where(AuditLog.object_type == args["object_type"])
    query = _date_range(query, AuditLog.created_at, args)
    page = page_number(args)
    rows = list(db.session.scalars(query.order_by(AuditLog.id.desc()).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)))
    return render_template("console/audit.html", rows=rows, page=page, page_size=PAGE_SIZE)


def _date_range(query, column, args):
    """Limit to Asia/Shanghai days `start`..`end` (YYYY-MM-DD); bad dates are ignored."""
    for name, bound in (("start", 0), ("end", 1)):
        day = parse_day(args.get(name))
        if day is None:
            continue
        edge = local_midnight(day + timedelta(days=bound))
        query = query.where(column >= edge) if bound == 0 else query.where(column < edge)
    return query
