"""Console (admins): the account's channels: account type, template and subscription-notification ids
and their field mapping, a test send to oneself through each channel, and advice in plain words."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from models.accounts import Scope, audit
from models.audience import AudienceError
from models.channelsettings import ACCOUNT_TYPES, ChannelSettings, channel_policy, check_channel_form
from models.delivery import create_campaign
from models.followers import Follower
from models.members import Member, normalise_student_no
from models.timeutil import utcnow
from wxbot import services
from wxbot.console import bp
from wxbot.db import db
from wxbot.delivery.channels import CHANNEL_LABELS

TESTABLE = ("customer_service", "subscribe", "template", "mass")


def _admin_only() -> None:
    if current_user.role != "admin":
        abort(403)


@bp.route("/channels", methods=["GET", "POST"])
@login_required
def channels():
    _admin_only()
    row = db.session.get(ChannelSettings, 1)
    if request.method == "POST":
        values, reason = check_channel_form(request.form)
        if reason:
            flash(f"没有保存：{reason}", "danger")
            return _page(400)
        before = _summary(channel_policy(db.session, services.settings()))
        if row is None:
            row = ChannelSettings(id=1)
            db.session.add(row)
        for key, value in values.items():
            setattr(row, key, value)
        row.updated_by, row.updated_at = current_user.username, utcnow()
        db.session.flush()
        audit(db.session, current_user, "update", "channels", 1, "修改公众号渠道设置", before=before,
              after=_summary(channel_policy(db.session, services.settings())))
        db.session.commit()
        flash("渠道设置已保存，发送引擎下一轮起按新设置发送。", "success")
        return redirect(url_for("console.channels"))
    return _page()


def _summary(policy) -> dict:
    return {"类型": ACCOUNT_TYPES[policy.account_type], "模板消息": policy.template_id or "（无）",
            "订阅通知": policy.subscribe_template_id or "（无）", "模板字段": policy.template_fields,
            "订阅通知字段": policy.subscribe_fields}


def _page(status: int = 200):
    policy = channel_policy(db.session, services.settings())
    return render_template("console/channels.html", policy=policy, types=ACCOUNT_TYPES, labels=CHANNEL_LABELS,
                           testable=TESTABLE, order=policy.channels,
                           limits=policy.account_limits[policy.account_type]), status


@bp.post("/channels/test")
@login_required
def channels_test():
    """A labelled test message to one member (the admin's own 学号) through exactly one channel."""
    _admin_only()
    channel = request.form.get("channel", "")
    number = normalise_student_no(request.form.get("student_no", ""))
    if channel not in TESTABLE:
        abort(400)
    row = db.session.execute(select(Follower.openid, Follower.member_id).join(Member, Member.id == Follower.member_id)
                             .where(Member.student_no == number, Follower.subscribed.is_(True))).first()
    if row is None:
        flash("这个学号没有绑定已关注公众号的微信。先用自己的微信关注并“绑定 学号 姓名”。", "warning")
        return redirect(url_for("console.channels"))
    others = tuple(c for c in (*TESTABLE, "inbox") if c != channel)
    try:
        campaign = create_campaign(db.session, current_user.username, Scope(None), {},
                                   {"text": f"【渠道测试】这是一条经“{CHANNEL_LABELS[channel]}”发送的测试消息。"},
                                   utcnow(), recipients=[tuple(row)], excluded=others)
    except AudienceError as exc:
        flash(str(exc), "warning")
        return redirect(url_for("console.channels"))
    campaign.preview, campaign.audience_label = True, f"渠道测试：{CHANNEL_LABELS[channel]}"
    audit(db.session, current_user, "create", "campaign", campaign.id, f"渠道测试（{CHANNEL_LABELS[channel]}）",
          after={"学号": number})
    db.session.commit()
    flash(f"测试消息已交给发送引擎，只走“{CHANNEL_LABELS[channel]}”；这个渠道发不出去时，进度页会说明原因。", "success")
    return redirect(url_for("console.campaign_detail", campaign_id=campaign.id))
