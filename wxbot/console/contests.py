"""Console: contests between branches (create, edit before the start, announce, results, export).

An organiser runs contests for their subtree and sees the school's contests with the results of
their own branches and members only."""
from __future__ import annotations

import json

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from models.accounts import audit
from models.audience import AudienceError, count_audience, count_unreached, describe_audience, unreached_note
from models.contest import (
    MODES,
    Contest,
    announcement,
    branch_results,
    check_contest,
    contest_form_values,
    member_results,
)
from models.delivery import BROADCAST, audit_campaign, create_campaign
from models.members import STAGES
from models.quiz import Question
from models.tables import xlsx_sheets
from models.textutil import shorten
from models.timeutil import show, utcnow
from wxbot.console import bp
from wxbot.console.confirm import ask, confirmed
from wxbot.console.forms import xlsx_download
from wxbot.console.materials import audience_from, units_in_scope
from wxbot.console.questions import scoped_questions
from wxbot.db import db
from wxbot.delivery.reach import audience_forecast

STATES = {"upcoming": "未开始", "open": "进行中", "ended": "已结束"}


def scoped_contests():
    return g.scope.filter(select(Contest), Contest.org_unit_id, school_wide=True)


def contest_in_scope(contest_id: int, editing: bool = False) -> Contest:
    contest = db.session.scalar(scoped_contests().where(Contest.id == contest_id))
    if contest is None or (editing and not g.scope.allows_unit(contest.org_unit_id)):
        abort(404)
    return contest


@bp.get("/contests")
@login_required
def contests():
    rows = db.session.scalars(scoped_contests().order_by(Contest.starts_at.desc()).limit(200)).all()
    return render_template("console/contests.html", rows=rows, now=utcnow(), states=STATES, modes=MODES)


@bp.route("/contests/new", methods=["GET", "POST"])
@bp.route("/contests/<int:contest_id>/edit", methods=["GET", "POST"])
@login_required
def contest_edit(contest_id: int | None = None):
    """Create a contest, or change one that has not started (after the start, its paper and rules are
    what members played, so they stay)."""
    contest = contest_in_scope(contest_id, editing=True) if contest_id else None
    now = utcnow()
    if contest is not None and contest.state(now) != "upcoming":
        flash("竞赛已经开始，不能再修改。", "warning")
        return redirect(url_for("console.contest_detail", contest_id=contest.id))
    if request.method == "GET":
        return _form_page(contest, contest_form_values(contest) if contest else _defaults(),
                          contest.audience_spec() if contest else {})
    spec = audience_from(request.form)
    fields, reason = check_contest(request.form, now, _paper_questions())
    if reason:
        flash(f"没有保存：{reason}", "danger")
        return _form_page(contest, request.form, spec, 400)
    created = contest is None
    if created:
        contest = Contest(created_by=current_user.username, org_unit_id=current_user.org_unit_id)
        db.session.add(contest)
    for key, value in fields.items():
        setattr(contest, key, value)
    contest.audience = json.dumps(spec, ensure_ascii=False)
    db.session.flush()
    audit(db.session, current_user, "create" if created else "update", "contest", contest.id,
          f"{'新建' if created else '修改'}竞赛《{contest.title}》",
          after={"时间": f"{show(contest.starts_at)} ~ {show(contest.ends_at)}", "题数": contest.count,
                 "对象": describe_audience(db.session, spec) or "全部"}, org_unit_id=contest.org_unit_id)
    db.session.commit()
    flash("竞赛已保存。", "success")
    return redirect(url_for("console.contest_detail", contest_id=contest.id))


def _paper_questions() -> set[int]:
    """The active questions this account may put on a fixed paper: its subtree's and the school's."""
    return set(db.session.scalars(scoped_questions().where(Question.active.is_(True)).with_only_columns(Question.id)))


def _defaults() -> dict:
    return {"mode": "random", "count": "10", "attempts_allowed": "1"}


def _form_page(contest, values, spec, status: int = 200):
    questions = db.session.execute(scoped_questions().where(Question.active.is_(True)).order_by(Question.id)
                                   .with_only_columns(Question.id, Question.stem, Question.tags)).all()
    return render_template("console/contest_edit.html", contest=contest, values=values, spec=spec,
                           units=units_in_scope(), stages=STAGES, modes=MODES,
                           questions=[(qid, shorten(stem, 40) + (f"（{tags}）" if tags else ""))
                                      for qid, stem, tags in questions]), status


@bp.get("/contests/<int:contest_id>")
@login_required
def contest_detail(contest_id: int):
    """The contest, its state, and its results so far (the viewer's branches and members only)."""
    contest = contest_in_scope(contest_id)
    people, branches = scoped_results(contest)
    return render_template("console/contest.html", contest=contest, people=people, branches=branches,
                           state=contest.state(utcnow()), states=STATES, modes=MODES,
                           editable=g.scope.allows_unit(contest.org_unit_id),
                           audience=describe_audience(db.session, contest.audience_spec()) or "全部成员")


def scoped_results(contest: Contest):
    people = member_results(db.session, contest)
    branches = branch_results(db.session, contest, people)
    if not g.scope.everything:
        people = [r for r in people if g.scope.allows_unit(r.unit_id)]
        branches = [b for b in branches if g.scope.allows_unit(b.unit_id)]
    return people, branches


@bp.get("/contests/<int:contest_id>/results.xlsx")
@login_required
def contest_export(contest_id: int):
    """Results as a workbook: one sheet of members, one of branches."""
    contest = contest_in_scope(contest_id)
    people, branches = scoped_results(contest)
    members = [["名次", "姓名", "支部", "答对", "题数", "用时（秒）", "这次作答", "作答次数"]] + [
        [n, r.name, r.branch, r.best, r.total, r.seconds, r.ending, r.attempts] for n, r in enumerate(people, 1)]
    units = [["名次", "支部", "应参加人数", "参加人数", "参与率", "平均正确率", "得分（满分 100）"]] + [
        [n, b.name, b.audience, b.players, f"{round(100 * b.participation)}%", f"{round(100 * b.average)}%", b.score]
        for n, b in enumerate(branches, 1)]
    audit(db.session, current_user, "export", "contest", contest.id, f"导出竞赛《{contest.title}》成绩",
          org_unit_id=contest.org_unit_id)
    db.session.commit()
    return xlsx_download(xlsx_sheets({"个人成绩": members, "支部排名": units}), f"竞赛成绩-{contest.id}.xlsx")


@bp.post("/contests/<int:contest_id>/announce")
@login_required
def contest_announce(contest_id: int):
    """Tell the contest's audience it is coming, through the delivery engine, once, after confirming."""
    contest = contest_in_scope(contest_id, editing=True)
    back = url_for("console.contest_detail", contest_id=contest.id)
    if contest.campaign_id:
        flash("这个竞赛已经通知过了。", "info")
        return redirect(back)
    if contest.state(utcnow()) == "ended":
        flash("竞赛已经结束，不用再通知。", "warning")
        return redirect(back)
    spec = contest.audience_spec() or ({"units": [current_user.org_unit_id]} if current_user.org_unit_id
                                       else {"everyone": True})
    text = announcement(contest)
    if not confirmed():
        missing = unreached_note(count_unreached(db.session, spec, g.scope))
        reach = audience_forecast(db.session, spec, g.scope, utcnow()).text()
        return ask("确认发送竞赛通知", f"发给竞赛对象中已关注公众号的成员{'（' + missing + '）' if missing else ''}："
                   f"\n{text}\n{reach}", "确认发送", back, count_audience(db.session, spec, g.scope))
    try:
        campaign = create_campaign(db.session, current_user.username, g.scope, spec, {"text": text}, utcnow(),
                                   current_user.org_unit_id, excluded=BROADCAST)
    except AudienceError as exc:
        db.session.rollback()
        flash(str(exc), "warning")
        return redirect(back)
    contest.campaign_id = campaign.id
    audit_campaign(db.session, current_user, campaign, f"竞赛通知 #{campaign.id}：《{contest.title}》",
                   {"竞赛": contest.id, "内容": text})
    db.session.commit()
    return redirect(url_for("console.campaign_detail", campaign_id=campaign.id))


@bp.post("/contests/<int:contest_id>/delete")
@login_required
def contest_delete(contest_id: int):
    """Withdraw a contest that has not started (nobody has played it)."""
    contest = contest_in_scope(contest_id, editing=True)
    if contest.state(utcnow()) != "upcoming":
        flash("竞赛已经开始，不能删除；成绩会一直保留。", "warning")
        return redirect(url_for("console.contest_detail", contest_id=contest.id))
    audit(db.session, current_user, "delete", "contest", contest.id, f"删除未开始的竞赛《{contest.title}》",
          org_unit_id=contest.org_unit_id)
    db.session.delete(contest)
    db.session.commit()
    flash("竞赛已删除。", "success")
    return redirect(url_for("console.contests"))
