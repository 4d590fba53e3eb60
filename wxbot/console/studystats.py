"""Console: who studied (学习情况), per day and per branch, and reminders for those who have not."""
from __future__ import annotations

from datetime import timedelta

from flask import flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from models.audience import AudienceError
from models.delivery import audit_campaign, create_campaign
from models.members import Member
from models.points import studied, study_stats
from models.timeutil import local_date, utcnow
from wxbot.console import bp
from wxbot.console.charts import bar_chart, heat_grid, percent
from wxbot.console.confirm import ask, confirmed
from wxbot.console.members import branches_in_scope
from wxbot.db import db

IDLE_LIST = 500



@bp.get("/study")
@login_required
def study_dashboard():
    today = local_date()
    week_start = today - timedelta(days=today.weekday())
    days = [today - timedelta(days=n) for n in range(6, -1, -1)]
    branches = branches_in_scope()
    stats = study_stats(db.session, [b.id for b in branches], min(days[0], week_start), today)
    week = study_stats(db.session, [b.id for b in branches], week_start, today)
    total = sum(stats.sizes.values())
    where = scope_name()
    chart = bar_chart([d.strftime("%m-%d") for d in days], [percent(stats.day_total(d), total) for d in days],
                      f"{where}每日学习完成率", unit="%")
    grid = heat_grid([b.name for b in branches], [d.strftime("%m-%d") for d in days],
                     [[percent(stats.per_day.get((b.id, d), 0), stats.sizes.get(b.id, 0)) for d in days]
                      for b in branches], f"{where}各支部每日学习完成率")
    by_branch = [(b, week.sizes.get(b.id, 0), week.per_period.get(b.id, 0)) for b in branches]
    idle = db.session.scalars(g.scope.members(select(Member)).where(Member.id.not_in(studied(week_start, today)))
                              .order_by(Member.org_unit_id, Member.student_no).limit(IDLE_LIST)).all()
    return render_template("console/study.html", chart=chart, grid=grid, by_branch=by_branch, idle=idle,
                           week_start=week_start, where=where, reach=push_reach(today))


def push_reach(day) -> dict:
    """How the day's study push reached the viewer's members: sent by channel, waiting for their next
    interaction, expired, unreachable, read. A read is a read: a recipient who opened the day's study
    by any way (the push's link, `学习`, `往期`) counts, not only one who tapped the push."""
    from sqlalchemy import case, func, or_

    from models.delivery import Campaign, Delivery
    from models.study import Reading
    from wxbot.delivery.channels import CHANNEL_LABELS
    readers = select(Reading.member_id).where(Reading.plan_day == day)
    opened = case((or_(Delivery.read_at.is_not(None), Delivery.member_id.in_(readers)), 1))
    rows = db.session.execute(g.scope.members(
        select(Delivery.status, Delivery.channel, func.count(), func.count(opened))
        .join(Campaign, Campaign.id == Delivery.campaign_id).join(Member, Member.id == Delivery.member_id)
        .where(Campaign.push_day == day)).group_by(Delivery.status, Delivery.channel)).all()
    reach = {"total": 0, "read": 0, "by_channel": {}, "waiting": 0, "expired": 0, "unreachable": 0, "pending": 0}
    for status, channel, number, read in rows:
        reach["total"] += number
        reach["read"] += read
        if status == "sent":
            label = CHANNEL_LABELS.get(channel, channel)
            reach["by_channel"][label] = reach["by_channel"].get(label, 0) + number
        elif status in ("waiting", "expired", "unreachable"):
            reach[status] += number
        else:
            reach["pending"] += number
    return reach


def scope_name() -> str:
    """What the viewer's figures cover, for titles: their unit, or the whole school."""
    return current_user.org_unit.name if current_user.org_unit else "全校"


@bp.post("/study/remind")
@login_required
def study_remind():
    """Remind this week's non-studying members through the delivery engine."""
    today = local_date()
    week_start = today - timedelta(days=today.weekday())
    numbers = db.session.scalars(g.scope.members(select(Member.student_no)).where(
        Member.id.not_in(studied(week_start, today)))).all()
    if not numbers:
        flash("本周所有成员都已学习。", "info")
        return redirect(url_for("console.study_dashboard"))
    text = request.form.get("text", "").strip() or "本周你还没有完成学习，回复“学习”阅读今天的学习内容。"
    if not confirmed():
        return ask("确认发送学习提醒", f"发给本周还没有学习的成员（已关注公众号的才能收到）：\n{text}", "确认发送",
                   url_for("console.study_dashboard"), len(numbers))
    try:
        campaign = create_campaign(db.session, current_user.username, g.scope, {"student_nos": numbers},
                                   {"text": text}, utcnow(), current_user.org_unit_id)
    except AudienceError as exc:
        db.session.rollback()
        flash(str(exc), "warning")
        return redirect(url_for("console.study_dashboard"))
    audit_campaign(db.session, current_user, campaign, f"学习提醒 #{campaign.id}", {"人数": len(numbers), "内容": text})
    db.session.commit()
    return redirect(url_for("console.campaign_detail", campaign_id=campaign.id))
