"""The sandbox's own pages: the phone simulator and the JSON views of what WeChat saw."""
from __future__ import annotations

import secrets

from flask import jsonify, render_template, request, url_for
from sqlalchemy import select

from models.sandbox import SandboxUser, get_value, messages_to, put_value
from models.timeutil import utcnow
from wxbot import services
from wxbot.console.forms import db_id
from wxbot.db import db
from wxbot.sandbox import bp, world
from wxbot.sandbox.phone import Phone, http_transport

ACTIONS = {"text", "click", "follow", "unfollow", "scan", "voice", "image", "allow_subscription"}


def phone_for_this_server() -> Phone:
    """A phone that posts to this very server's /wechat over HTTP."""
    url = request.host_url.rstrip("/") + "/wechat"
    return Phone(services.settings(), http_transport(url), db.new_session)


@bp.get("/")
def simulator():
    """The phone-like chat simulator."""
    return render_template("sandbox/simulator.html", menu=get_value(db.session, "menu") or
                           services.settings().wechat.menu)


@bp.get("/messages")
def messages():
    """Everything the account sent to one user, oldest first, with its channel (with
    include_user=1 also what the user sent, channel "user", for the simulator's history)."""
    touser = request.args.get("touser", "")
    if not touser:
        return jsonify({"error": "请提供 touser 参数"}), 400
    after = request.args.get("after", "0")
    rows = messages_to(db.session, touser, db_id(after) or 0,
                       include_user=request.args.get("include_user") == "1")
    return jsonify([row.as_dict() for row in rows])


@bp.get("/qrcodes")
def qrcodes():
    """The QR codes that can still be scanned."""
    return jsonify([{"ticket": qr.ticket, "scene": qr.scene, "permanent": qr.permanent,
                     "expire_at": qr.expire_at.isoformat() if qr.expire_at else None,
                     "image": url_for("sandbox.showqrcode", ticket=qr.ticket)}
                    for qr in world.live_qrcodes(db.session, utcnow())])


@bp.get("/menu")
def menu():
    """The custom menu as last sent by the project (menu sync)."""
    return jsonify({"button": get_value(db.session, "menu") or []})


@bp.get("/users")
def users():
    rows = db.session.scalars(select(SandboxUser).order_by(SandboxUser.subscribed_at.desc()))
    return jsonify([{"openid": u.openid, "nickname": u.nickname, "subscribed": u.subscribed} for u in rows])


@bp.post("/users")
def new_user():
    """A new WeChat user, who follows the account."""
    openid = "oSandbox" + secrets.token_hex(10)
    nickname = (request.get_json(silent=True) or {}).get("nickname", "")[:20] or openid[-6:]
    reply = phone_for_this_server().follow(openid, nickname=nickname)
    return jsonify({"openid": openid, "nickname": nickname, "reply": reply.__dict__})


@bp.post("/phone")
def phone_action():
    """The simulator's user does something: {openid, action, text|key|scene}."""
    data = request.get_json(silent=True) or {}
    openid, action = data.get("openid", ""), data.get("action", "")
    if not openid or action not in ACTIONS:
        return jsonify({"error": "需要 openid 和 action（text、click、follow、unfollow、scan、voice、image、"
                                 "allow_subscription）"}), 400
    template = services.settings().delivery.subscribe_template_id
    if action == "allow_subscription" and not template:
        return jsonify({"error": "没有配置订阅通知模板（delivery.subscribe_template_id），公众号不会弹出订阅窗口"}), 400
    phone = phone_for_this_server()
    calls = {"text": lambda: phone.text(openid, data.get("text", "")),
             "voice": lambda: phone.voice(openid, data.get("text", "")),
             "image": lambda: phone.image(openid),
             "click": lambda: phone.click(openid, data.get("key", "")),
             "follow": lambda: phone.follow(openid),
             "unfollow": lambda: phone.unfollow(openid),
             "scan": lambda: phone.scan(openid, data.get("scene", "")),
             # The popup a notice page shows: the member taps 允许 for one notification.
             "allow_subscription": lambda: phone.accept_subscription(openid, template)}
    return jsonify(calls[action]().__dict__)


@bp.route("/faults", methods=["GET", "POST"])
def faults():
    """Latency and errors of the fake API: {latency_ms, fault_rate, inject: {endpoint: [codes]},
    expire_tokens: true}."""
    session = db.session
    if request.method == "POST":
        data = request.get_json(silent=True) or {}
        store = services.store()
        world.set_faults(store, data)
        if data.get("expire_tokens"):
            world.expire_tokens(session, store, utcnow())
        session.commit()
    return jsonify(world.faults(services.store(), services.settings().sandbox))


@bp.post("/reset")
def reset():
    """Forget every sandbox user, message, QR code, token and fault."""
    world.reset(db.session, services.store(), utcnow())
    db.session.commit()
    return jsonify({"ok": True})


@bp.post("/miniprogram/login")
def miniprogram_login():
    """What wx.login gives a phone: {"openid": …, "unionid": … (optional)} → {"code": …}, good once
    within 5 minutes (redeemed by jscode2session)."""
    data = request.get_json(silent=True) or {}
    openid, unionid = str(data.get("openid", "")), str(data.get("unionid", "") or "")
    if not 1 <= len(openid) <= 64 or len(unionid) > 64:
        return jsonify({"error": "需要 JSON {\"openid\": 1 到 64 个字符, \"unionid\": 可选}"}), 400
    return jsonify({"code": world.issue_login_code(services.store(), openid, unionid)})


@bp.post("/unionid")
def unionid():
    """A follower's unionid, as WeChat gives it when the account and the mini-program are under one
    Open Platform: {"openid": the Official Account's openid, "unionid": …}."""
    data = request.get_json(silent=True) or {}
    openid, value = str(data.get("openid", "")), str(data.get("unionid", ""))
    if not 1 <= len(openid) <= 64 or not 1 <= len(value) <= 64:
        return jsonify({"error": "需要 JSON {\"openid\": 公众号 openid, \"unionid\": 1 到 64 个字符}"}), 400
    world.set_unionid(db.session, openid, value)
    db.session.commit()
    return jsonify({"openid": openid, "unionid": value})


@bp.post("/miniprogram/subscribe")
def miniprogram_subscribe():
    """A member taps 允许 in wx.requestSubscribeMessage: {"openid": the mini-program's, "template_id": …}
    is one subscription message WeChat will then accept for them."""
    data = request.get_json(silent=True) or {}
    openid, template_id = str(data.get("openid", "")), str(data.get("template_id", ""))
    status, in_settings = str(data.get("status", "accept")), bool(data.get("settings"))
    if not 1 <= len(openid) <= 64 or not 1 <= len(template_id) <= 64 or status not in ("accept", "reject"):
        return jsonify({"error": "需要 JSON {\"openid\": 小程序 openid, \"template_id\": 订阅消息模板编号, "
                                 "\"status\": accept 或 reject, \"settings\": 是否在设置中更改}"}), 400
    if status == "accept" and not in_settings:
        credits = world.grant_mini_credit(db.session, openid, template_id)
    else:
        credits = world.clear_mini_credits(db.session, openid, template_id) if status == "reject" else 0
    db.session.commit()
    pushed = push_to_mini_server(openid, template_id, status, in_settings)
    return jsonify({"openid": openid, "template_id": template_id, "credits": credits, "pushed": pushed})


def push_to_mini_server(openid: str, template_id: str, status: str, in_settings: bool) -> int | None:
    """WeChat's message push of the choice to the mini-program's server (when it configured one):
    signed JSON to /wechat/mini, as WeChat sends it. The push's HTTP status, None when not configured."""
    import secrets
    import time

    import requests

    from wxbot.protocol import sign
    cfg = services.settings()
    if not cfg.miniprogram.push_token:
        return None
    stamp, nonce = str(int(time.time())), secrets.token_hex(5)
    event = "subscribe_msg_change_event" if in_settings else "subscribe_msg_popup_event"
    item = {"TemplateId": template_id, "SubscribeStatusString": status}
    if not in_settings:
        item["PopupScene"] = "0"
    body = {"ToUserName": "gh_sandbox_mini", "FromUserName": openid, "CreateTime": int(stamp), "MsgType": "event",
            "Event": event, "List": [item]}
    query = {"signature": sign(cfg.miniprogram.push_token, stamp, nonce), "timestamp": stamp, "nonce": nonce}
    try:
        return requests.post(f"{cfg.server.public_url}/wechat/mini", params=query, json=body, timeout=5).status_code
    except requests.RequestException:
        return 0


@bp.post("/msgsec")
def msgsec():
    """The verdicts msg_sec_check gives: {"risky": [words], "review": [words]} (content holding one)."""
    data = request.get_json(silent=True) or {}
    words = {kind: [str(w) for w in data[kind] if str(w)]
             for kind in ("risky", "review") if isinstance(data.get(kind), list)}
    put_value(db.session, world.MSGSEC_KEY, words)
    db.session.commit()
    return jsonify(words)
