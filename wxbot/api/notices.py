"""Waiting notices in the mini-program: what the delivery engine could send by no channel waits in
the member's inbox (models/inbox.py) for their next interaction with the account. Read in the
mini-program, a notice is delivered there (channel 小程序中查看): the chat does not repeat it."""
from __future__ import annotations

from flask import current_app, request
from sqlalchemy import select

from models.delivery import grant_subscription
from models.followers import Follower
from models.inbox import seen_in_app, waiting_items
from models.timeutil import utcnow
from wxbot import services
from wxbot.api import answers, bp, call, spec
from wxbot.api.schemas import NoticeList, NoticeOut, SeenIn, SeenOut, SubscriptionsIn, SubscriptionsOut
from wxbot.db import db
from wxbot.delivery.links import link_target

SESSION = {"session": []}


def _follower_openid(member) -> str | None:
    """The notices wait under the member's Official Account openid."""
    return db.session.scalar(select(Follower.openid).where(Follower.member_id == member.id))


@bp.get("/notices")
@spec.validate(resp=answers(NoticeList, 403), tags=["通知"], security=SESSION)
@call()
def notices(_user, member):
    """等待送达的通知：公众号暂时发不出去的通知，最紧急的在前。"""
    openid = _follower_openid(member)
    items = []
    for delivery, campaign in (waiting_items(db.session, openid) if openid else []):
        url = link_target(current_app, campaign, member.id) if campaign.kind == "article" else None
        items.append(NoticeOut(id=delivery.id, title=campaign.label,
                               text=campaign.text if campaign.kind == "text" else campaign.description,
                               url=url or None, created_at=campaign.created_at, expires_at=campaign.expires_at))
    return NoticeList(items=items)


@bp.post("/notices/seen")
@spec.validate(json=SeenIn, resp=answers(SeenOut, 400, 403), tags=["通知"], security=SESSION)
@call(write=True)
def seen(_user, member):
    """标为已读：这些通知已在小程序中送达，公众号不再发送。"""
    openid = _follower_openid(member)
    marked = seen_in_app(db.session, openid, request.context.json.ids, utcnow()) if openid else 0
    return SeenOut(marked=marked)


@bp.post("/subscriptions")
@spec.validate(json=SubscriptionsIn, resp=answers(SubscriptionsOut, 400, 403), tags=["通知"], security=SESSION)
@call(write=True)
def subscriptions(user, _member):
    """订阅消息：wx.requestSubscribeMessage 的结果。每个“允许”是一次可以发给本人的通知（公众号发不出去时使用）。"""
    cfg = services.settings().miniprogram
    accepted = [tid for tid, result in request.context.json.results.items() if result == "accept"]
    granted = int(bool(cfg.subscribe_template_id) and cfg.subscribe_template_id in accepted)  # ours only
    if granted and not cfg.push_token:  # with the message push configured, WeChat's event counts it
        grant_subscription(db.session, user.openid, cfg.subscribe_template_id)
    message = "已开启：下一条通知会通过小程序的订阅消息送达。" if granted else "没有开启订阅消息。"
    return SubscriptionsOut(granted=granted, message=message)
