"""Console: the feedback inbox of the viewer's units (masked), the review of held posts (approve, or
reject with a reason the author is told), answers that reach the member through the delivery engine,
closing, the time to first answer per unit, and the word lists' problems. Admins may reveal a post's
personal data, on the record."""
from __future__ import annotations

import json

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import func, select

from models.accounts import audit
from models.audience import describe_audience
from models.eventnotices import notify
from models.feedback import STATES, STATUSES, Post, Topic, answer_post, review
from models.members import STAGES, Member, OrgUnit
from models.screening import SEVERITY
from models.timeutil import utcnow
from wxbot.console import bp
from wxbot.console.materials import audience_from, units_in_scope
from wxbot.db import db
from wxbot.screeninglists import current_screener, list_folder


def scoped_posts():
    """Posts of the viewer's units that exist to others (a blocked attempt is listed apart)."""
    return g.scope.filter(select(Post).where(Post.status != "blocked"), Post.org_unit_id)


def feedback_only(query):
    """留言 only: topic replies are moderated here when held, never awaiting an answer."""
    return query.where(Post.topic_id.is_(None))


def post_in_scope(post_id: int) -> Post:
    post = db.session.scalar(scoped_posts().where(Post.id == post_id))
    if post is None:
        abort(404)
    return post


@bp.get("/feedback")
@login_required
def feedback_inbox():
    show = request.args.get("show", "new")
    query = scoped_posts()
    if show == "held":
        query = query.where(Post.status == "held")
    elif show == "blocked":  # what screening stopped, with what matched: read only
        query = g.scope.filter(select(Post).where(Post.status == "blocked"), Post.org_unit_id)
    elif show in STATES:
        query = feedback_only(query.where(Post.status == "visible", Post.state == show))
    else:
        query = feedback_only(query)
    rows = db.session.execute(query.add_columns(Member.name, OrgUnit.name).join(Member, Member.id == Post.member_id)
                              .join(OrgUnit, OrgUnit.id == Post.org_unit_id)
                              .order_by(Post.id.desc()).limit(100)).all()
    held = db.session.scalar(select(func.count()).select_from(scoped_posts().where(Post.status == "held")
                                                              .subquery())) or 0
    list_folder().current(0)  # the lists' problems, as of now
    return render_template("console/feedback.html", rows=rows, show=show, states=STATES, statuses=STATUSES,
                           held=held, first_answer=first_answer_hours(), list_errors=list_folder().errors,
                           revealed=set(), waited=waited)


def waited(since) -> str:
    """How long a post has waited, in the unit that reads best: 3 小时, 2 天."""
    hours = int((utcnow() - since).total_seconds() // 3600)
    return f"{hours // 24} 天" if hours >= 48 else (f"{hours} 小时" if hours else "不到 1 小时")


def first_answer_hours() -> list[tuple[str, int, float]]:
    """(unit, answered posts, average hours to the answer) for the viewer's units."""
    rows = db.session.execute(g.scope.filter(
        select(OrgUnit.name, Post.created_at, Post.answered_at).join(OrgUnit, OrgUnit.id == Post.org_unit_id)
        .where(Post.answered_at.is_not(None), Post.topic_id.is_(None)), Post.org_unit_id)).all()
    per_unit: dict[str, list[float]] = {}
    for name, created, answered in rows:
        per_unit.setdefault(name, []).append((answered - created).total_seconds() / 3600)
    return sorted((name, len(hours), round(sum(hours) / len(hours), 1)) for name, hours in per_unit.items())


@bp.post("/feedback/<int:post_id>/<any(approve, reject, answer, close, reveal):action>")
@login_required
def feedback_action(post_id: int, action: str):
    post = post_in_scope(post_id)
    now, back = utcnow(), url_for("console.feedback_inbox", show=request.form.get("show", "new"))
    if action == "reveal":
        if current_user.role != "admin":
            abort(403)
        audit(db.session, current_user, "reveal", "post", post.id, f"查看留言 #{post.number} 的原文（含个人信息）",
              org_unit_id=post.org_unit_id)
        db.session.commit()
        return render_template("console/feedback_reveal.html", post=post)
    if action in ("approve", "reject"):
        if post.status != "held":
            flash("这条留言不在待审核状态。", "info")
            return redirect(back)
        reason = request.form.get("reason", "").strip()
        if action == "reject" and not reason:
            flash("不通过时请写明原因，留言人会收到。", "warning")
            return redirect(back)
        review(post, action == "approve", current_user.username, now, reason)
        if action == "reject":
            notify(db.session, [post.member_id], f"你的留言 #{post.number} 没有通过审核：{reason}",
                   f"留言 #{post.number} 审核结果", now, post.org_unit_id, creator=current_user.username)
        verdict = "通过" if action == "approve" else "不通过"
        summary = f"{verdict}留言 #{post.number}" + (f"：{reason}" if reason else "")
    elif action == "answer":
        text = request.form.get("answer", "").strip()
        if not text or post.status != "visible" or post.topic_id is not None:
            flash("请写回复内容（待审核的留言先审核）。", "warning")
            return redirect(back)
        answer_post(post, text, current_user.username, now)
        notify(db.session, [post.member_id], f"组织员回复了你的留言 #{post.number}：\n{text}",
               f"留言 #{post.number} 的回复", now, post.org_unit_id, creator=current_user.username)
        summary = f"回复留言 #{post.number}"
    else:
        post.state = "closed"
        summary = f"关闭留言 #{post.number}"
    audit(db.session, current_user, "update", "post", post.id, summary, org_unit_id=post.org_unit_id)
    db.session.commit()
    flash(f"已{summary}。", "success")
    return redirect(back)


# ---- topics ----

@bp.get("/topics")
@login_required
def topics():
    rows = db.session.scalars(g.scope.filter(select(Topic), Topic.org_unit_id, school_wide=True)
                              .order_by(Topic.pinned.desc(), Topic.id.desc()).limit(100)).all()
    counts = dict(db.session.execute(select(Post.topic_id, func.count()).where(
        Post.topic_id.in_([t.id for t in rows]), Post.status == "visible").group_by(Post.topic_id)).all())
    return render_template("console/topics.html", rows=rows, counts=counts, units=units_in_scope(), stages=STAGES,
                           spec={})


@bp.post("/topics")
@login_required
def topic_create():
    title, question = request.form.get("title", "").strip(), request.form.get("question", "").strip()
    if not title or not question:
        flash("请填写话题标题和要讨论的问题。", "danger")
        return redirect(url_for("console.topics"))
    verdict = current_screener().screen(f"{title}\n{question}")
    if verdict.action != "pass" and request.form.get("override") != "1":
        flash(f"话题中有词表里的词：{'、'.join(verdict.words)}。请修改；确需发布请由管理员勾选“仍然发布”。", "warning")
        return redirect(url_for("console.topics"))
    if verdict.action != "pass" and current_user.role != "admin":
        abort(403)
    spec = audience_from(request.form)
    topic = Topic(title=title[:100], question=question[:2000], org_unit_id=current_user.org_unit_id,
                  audience=json.dumps(spec, ensure_ascii=False), created_by=current_user.username)
    db.session.add(topic)
    db.session.flush()
    audit(db.session, current_user, "create", "topic", topic.id, f"发起话题《{topic.title}》",
          after={"对象": describe_audience(db.session, spec), "筛查": verdict.words or "无"},
          org_unit_id=topic.org_unit_id)
    db.session.commit()
    flash("话题已发起。成员发送“话题”即可看到。", "success")
    return redirect(url_for("console.topics"))


@bp.post("/topics/<int:topic_id>/<any(close, reopen, pin, unpin):action>")
@login_required
def topic_action(topic_id: int, action: str):
    topic = db.session.get(Topic, topic_id)
    if topic is None or not g.scope.allows_unit(topic.org_unit_id):
        abort(404)
    if action in ("close", "reopen"):
        topic.status = "closed" if action == "close" else "open"
    else:
        topic.pinned = action == "pin"
    verb = {"close": "结束", "reopen": "重新开放", "pin": "置顶", "unpin": "取消置顶"}[action]
    audit(db.session, current_user, "update", "topic", topic.id, f"{verb}话题《{topic.title}》",
          org_unit_id=topic.org_unit_id)
    db.session.commit()
    return redirect(url_for("console.topics"))


# ---- monitoring (网络监控) ----

@bp.get("/monitoring")
@login_required
def monitoring():
    """What screening caught in posts over the last 30 days: per day, per category, per unit."""
    from datetime import timedelta

    from models.timeutil import local_date, show
    from wxbot.console.charts import bar_chart
    since = utcnow() - timedelta(days=30)
    rows = db.session.execute(g.scope.filter(
        select(Post.created_at, Post.screening, Post.status, OrgUnit.name).join(OrgUnit, OrgUnit.id == Post.org_unit_id)
        .where(Post.created_at >= since, Post.screening != "[]"), Post.org_unit_id)).all()
    days = [local_date() - timedelta(days=n) for n in range(29, -1, -1)]
    per_day = {d: 0 for d in days}
    per_category: dict[str, int] = {}
    per_unit: dict[str, dict[str, int]] = {}
    for created, screening, _status, unit in rows:
        day = local_date(created)
        if day in per_day:
            per_day[day] += 1
        hits = json.loads(screening)
        for hit in hits:
            per_category[hit["category"]] = per_category.get(hit["category"], 0) + 1
        # What screening decided when it was posted (a held post approved later was still caught as held).
        action = max((h["action"] for h in hits), key=SEVERITY.__getitem__)
        unit_counts = per_unit.setdefault(unit, {"blocked": 0, "held": 0, "flagged": 0})
        unit_counts[{"block": "blocked", "hold": "held"}.get(action, "flagged")] += 1
    chart = bar_chart([d.strftime("%m-%d") for d in days], list(per_day.values()), "近 30 天每天命中词表的帖子数",
                      unit="条")
    categories = bar_chart(list(per_category), list(per_category.values()), "按类别", unit="次") \
        if per_category else None
    return render_template("console/monitoring.html", chart=chart, categories=categories,
                           per_unit=sorted(per_unit.items()), since=show(since, "%Y-%m-%d"),
                           list_errors=list_folder().errors)
