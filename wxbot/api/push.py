"""The mini-program's message push (消息推送, JSON): WeChat tells us what members chose in the
subscription-message popup and later in their settings.

Configured with miniprogram.push_token (the Token of the mini-program's 消息推送 settings, plain
mode, JSON). When it is set, these events are how consent is counted (the client's own report through
POST /api/v1/subscriptions is then only acknowledged), so that a credit is counted once:
  subscribe_msg_popup_event   one "accept" of our template = one message we may send
  subscribe_msg_change_event  "reject": the member turned it off in settings, the credits go
WeChat retries a push it had no answer to; the same event (user, time, event) counts once.
"""
from __future__ import annotations

import logging

from flask import Blueprint, Response, request

from models.miniprogram import record_consent
from wxbot import protocol, services
from wxbot.db import db
from wxbot.protocol import Refused

bp = Blueprint("mini_push", __name__)
logger = logging.getLogger(__name__)
SEEN = "mini:push:{key}"
SEEN_TTL = 86400


@bp.errorhandler(Refused)
def _refused(exc: Refused):
    return Response(exc.reason, status=exc.status, mimetype="text/plain")


def _checked():
    cfg = services.settings()
    if not cfg.miniprogram.push_token:
        raise Refused(404, "mini-program message push is not configured")
    protocol.check_signature(cfg.miniprogram.push_token, request.args)
    protocol.check_timestamp(request.args, cfg.wechat.timestamp_window)


@bp.get("/wechat/mini")
def verify_mini_url():
    """WeChat's check of the push URL: echo `echostr` when the signature is ours."""
    _checked()
    return Response(request.args.get("echostr", ""), mimetype="text/plain")


@bp.post("/wechat/mini")
def receive_mini_push():
    _checked()
    event = request.get_json(silent=True)
    if not isinstance(event, dict) or event.get("MsgType") != "event":
        return Response("success", mimetype="text/plain")  # nothing else is pushed to us
    openid = str(event.get("FromUserName", ""))[:64]
    key = f"{openid}:{event.get('CreateTime', '')}:{event.get('Event', '')}"
    if not openid or not services.store().add(SEEN.format(key=key), "1", SEEN_TTL):
        return Response("success", mimetype="text/plain")  # WeChat's retry of an event we have
    items = event.get("List") or []
    items = [items] if isinstance(items, dict) else items
    changed = record_consent(db.session, openid, str(event.get("Event", "")),
                             [i for i in items if isinstance(i, dict)],
                             services.settings().miniprogram.subscribe_template_id)
    db.session.commit()
    if changed:
        logger.info("mini-program consent: %s %s", event.get("Event"), changed)
    return Response("success", mimetype="text/plain")
