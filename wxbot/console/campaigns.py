"""Console: compose a broadcast (live recipient count, preview to one member), follow its progress,
cancel it, and list past ones. Every campaign query goes through the account's scope."""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import abort, flash, g, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select, update

from models.accounts import audit
from models.audience import (
    EVENT_GROUPS,
    AudienceError,
    count_audience,
    count_unreached,
    describe_audience,
    event_spec,
    unreached_note,
)
from models.delivery import (
    BROADCAST,
    CAMPAIGN_STATUSES,
    Campaign,
    ContentRefused,
    Delivery,
    audit_campaign,
    campaign_counts,
    campaigns_counts,
    check_content,
    create_campaign,
    resend_unknown,
    unknown_count,
)
from models.events import Event
from models.members import ROLES, STAGES
from models.textutil import shorten
from models.timeutil import parse_local_time, utcnow
from wxbot.console import bp
from wxbot.console.confirm import ask, confirmed
from wxbot.console.forms import db_ids
from wxbot.console.members import branches_in_scope
from wxbot.db import db
from wxbot.delivery.channels import CHANNEL_LABELS
from wxbot.delivery.reach import audience_forecast
from wxbot.screeninglists import current_screener, override_by, refusal


def scoped_campaigns(previews: bool = False):
    """The campaigns in this account's scope; previews and channel tests are listed apart."""
    return g.scope.filter(select(Campaign).where(Campaign.preview.is_(previews)), Campaign.org_unit_id)


def campaign_in_scope(campaign_id: int) -> Campaign:
    """A campaign of this account's scope, a preview or a channel test too (their progress pages)."""
    campaign = db.session.scalar(g.scope.filter(select(Campaign), Campaign.org_unit_id)
                                 .where(Campaign.id == campaign_id))
    if campaign is None:
        abort(404)
    return campaign


def events_in_scope():
    """Events whose people the viewer may address: their units', the school's, and those of the units
    above theirs (a college's meeting, for a branch). Who is selected stays within their scope."""
    if g.scope.everything:
        return select(Event)
    above, unit = set(), current_user.org_unit
    while unit is not None:
        above.add(unit.id)
        unit = unit.parent
    return select(Event).where(Event.org_unit_id.is_(None) | Event.org_unit_id.in_(above | set(g.scope.unit_ids)))


def audience_from_form(form) -> dict:
    """The audience spec the compose form describes ('everyone' is the account's whole scope)."""
    numbers = [n for n in form.get("student_nos", "").replace("，", ",").replace("\n", ",").split(",") if n.strip()]
    event = form.get("event", "")
    visible = event.isdigit() and db.session.scalar(events_in_scope().where(Event.id == int(event))) is not None
    return {"everyone": form.get("everyone") == "1",
            "units": [u for u in db_ids(form.getlist("units")) if g.scope.allows_unit(u)],
            "stages": [s for s in form.getlist("stages") if s in STAGES],
            "roles": [r for r in form.getlist("roles") if r in ROLES],
            "student_nos": [n.strip() for n in numbers],
            "event": event_spec(event, form.get("event_who", "")) if visible else None}


def content_from_form(form) -> dict:
    return {key: form.get(key, "").strip() for key in ("text", "title", "description", "url", "cover")}


@bp.get("/campaigns")
@login_required
def campaigns():
    previews = request.args.get("show") == "previews"
    rows = db.session.scalars(scoped_campaigns(previews).order_by(Campaign.id.desc()).limit(100)).all()
    counts = campaigns_counts(db.session, [c.id for c in rows])
    return render_template("console/campaigns.html", rows=rows, counts=counts, statuses=CAMPAIGN_STATUSES,
                           previews=previews)


@bp.get("/campaigns/new")
@login_required
def campaign_new():
    return compose_page(request.form)


def compose_page(form, status: int = 200):
    """The compose form, filled in with `form` (a draft survives a preview or a refused send)."""
    recent = utcnow() - timedelta(days=60)
    events = db.session.scalars(events_in_scope().where(Event.ends_at >= recent).order_by(Event.starts_at.desc())
                                .limit(50)).all()
    return render_template("console/campaign_new.html", branches=branches_in_scope(), stages=STAGES, roles=ROLES,
                           draft=form, events=events, event_groups=EVENT_GROUPS), status


@bp.post("/campaigns/count")
@login_required
def campaign_count():
    """The live count for the audience picker."""
    spec = audience_from_form(request.form)
    if not any(spec.values()):
        return jsonify({"count": 0, "unreached": 0})
    return jsonify({"count": count_audience(db.session, spec, g.scope),
                    "unreached": count_unreached(db.session, spec, g.scope)})


@bp.post("/campaigns")
@login_required
def campaign_create():
    """Send now or at a time, after one confirmation with the count; or preview to one member (by
    学号), which keeps the draft on the page."""
    form = request.form
    if form.get("action") == "preview":
        return _preview(form)
    spec = audience_from_form(form)
    if not any(spec.values()):
        flash("请选择发送对象。", "danger")
        return compose_page(form, 400)
    try:
        when = _scheduled_time(form.get("at", ""))
        content = content_from_form(form)
        check_content(content)
        words = current_screener().screen(f"{content['title']}\n{content['description']}\n{content['text']}").words
        if words and override_by(form) is None:  # said before the confirmation; create_campaign checks again
            flash(refusal(words), "danger")
            return compose_page(form, 400)
        if not confirmed():
            count = count_audience(db.session, spec, g.scope)
            what = content["title"] or shorten(content["text"], 60)
            reach = audience_forecast(db.session, spec, g.scope, utcnow()).text()
            missing = unreached_note(count_unreached(db.session, spec, g.scope))
            return ask("确认群发", f"内容：{what}\n对象：{describe_audience(db.session, spec)}"
                       f"{'（' + missing + '）' if missing else ''}\n{reach}", "确认发送",
                       url_for("console.campaign_new"), count)
        campaign = create_campaign(db.session, current_user.username, g.scope, spec, content, when,
                                   current_user.org_unit_id, excluded=BROADCAST, passed_by=override_by(form))
    except (AudienceError, ValueError) as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return compose_page(form, 400)
    audit_campaign(db.session, current_user, campaign, f"群发 #{campaign.id}：{campaign.label}",
                   {"对象": campaign.audience_label, "内容": campaign.text or campaign.title})
    db.session.commit()
    return redirect(url_for("console.campaign_detail", campaign_id=campaign.id))


def _preview(form):
    """A labelled copy to one member, through the engine; not a campaign in the list."""
    number = form.get("preview_to", "").strip()
    content = content_from_form(form)
    for key in ("text", "title"):
        if content[key]:
            content[key] = "【预览】" + content[key]
    try:
        campaign = create_campaign(db.session, current_user.username, g.scope, {"student_nos": [number]}, content,
                                   utcnow(), current_user.org_unit_id, passed_by=override_by(form))
    except ContentRefused as exc:
        db.session.rollback()
        flash(f"预览没有发出：{exc}", "danger")
        return compose_page(form, 400)
    except AudienceError as exc:
        db.session.rollback()
        flash(f"预览没有发出：{exc}（请填写你负责范围内、已关注公众号的学号）", "danger")
        return compose_page(form, 400)
    campaign.preview, campaign.audience_label = True, f"预览：{number}"
    audit(db.session, current_user, "preview", "campaign", campaign.id, f"发送预览给 {number}：{campaign.label}",
          after={"内容": content["text"] or content["title"]}, org_unit_id=current_user.org_unit_id)
    db.session.commit()
    flash(f"预览已发送给 {number}，请在手机上查看。下面的内容和对象都还在，确认无误后再群发。", "success")
    return compose_page(form)


def _scheduled_time(text: str) -> datetime:
    if not text:
        return utcnow()
    at = parse_local_time(text, "%Y-%m-%dT%H:%M")
    if at is None:
        raise ValueError("发送时间格式不对")
    return at


@bp.errorhandler(ContentRefused)
def refused_content(exc):
    """Any console action whose message to members matched the word lists (an answer, a notice
    quoting an organiser's words): nothing of it is kept, and the organiser is told why."""
    db.session.rollback()
    flash(f"没有发送：{exc}", "danger")
    return redirect(request.referrer or url_for("console.dashboard"))


@bp.get("/campaigns/<int:campaign_id>")
@login_required
def campaign_detail(campaign_id: int):
    campaign = campaign_in_scope(campaign_id)
    return render_template("console/campaign.html", campaign=campaign, statuses=CAMPAIGN_STATUSES,
                           unknown=unknown_count(db.session, campaign.id))


@bp.get("/campaigns/<int:campaign_id>/progress")
@login_required
def campaign_progress(campaign_id: int):
    """Counts for the progress page, polled every few seconds."""
    campaign = campaign_in_scope(campaign_id)
    counts = campaign_counts(db.session, campaign.id)
    counts["by_channel"] = {CHANNEL_LABELS.get(k, k): v for k, v in counts["by_channel"].items()}
    return jsonify({"status": CAMPAIGN_STATUSES[campaign.status], **counts})


@bp.post("/campaigns/<int:campaign_id>/resend-unknown")
@login_required
def campaign_resend_unknown(campaign_id: int):
    """Send again to those whose outcome is unknown, after asking once (they may get it twice)."""
    campaign = campaign_in_scope(campaign_id)
    count = unknown_count(db.session, campaign.id)
    back = url_for("console.campaign_detail", campaign_id=campaign_id)
    if not count:
        flash("没有结果未知的收件人。", "info")
        return redirect(back)
    if not confirmed():
        return ask(f"确认再发给结果未知的 {count} 人", "他们的请求已经发到微信但没有应答，可能已经收到；再发一次，"
                   "已经收到的人会收到两次，这些人会标记为“可能重复”。", "确认再发", back, count)
    resend_unknown(db.session, campaign, current_user)
    db.session.commit()
    flash(f"已重新排队 {count} 人，标记为“可能重复”。", "success")
    return redirect(back)


@bp.post("/campaigns/<int:campaign_id>/cancel")
@login_required
def campaign_cancel(campaign_id: int):
    """Stop a campaign: deliveries not yet sent are cancelled; sent ones stay sent."""
    campaign = campaign_in_scope(campaign_id)
    if campaign.status in ("done", "cancelled"):
        flash("这次群发已经结束。", "warning")
        return redirect(url_for("console.campaign_detail", campaign_id=campaign_id))
    if not confirmed():
        counts = campaign_counts(db.session, campaign.id)
        waiting = counts["pending"] + counts["waiting"]
        return ask(f"确认取消群发 #{campaign.id}", f"尚未发出的 {waiting} 人将不再收到；已发出的无法收回。", "确认取消",
                   url_for("console.campaign_detail", campaign_id=campaign_id))
    before = {"状态": CAMPAIGN_STATUSES[campaign.status]}
    campaign.status, campaign.finished_at = "cancelled", utcnow()
    db.session.execute(update(Delivery).where(Delivery.campaign_id == campaign_id,
                                              Delivery.status.in_(("pending", "waiting"))).values(status="cancelled"))
    audit(db.session, current_user, "cancel", "campaign", campaign_id, f"取消群发 #{campaign_id}", before,
          {"状态": "已取消"}, org_unit_id=campaign.org_unit_id)
    db.session.commit()
    flash(f"已取消群发 #{campaign_id}，尚未发出的不再发送。", "success")
    return redirect(url_for("console.campaign_detail", campaign_id=campaign_id))
