"""The sandbox's WeChat API under /sandbox/cgi-bin/: the endpoints the project calls, with WeChat's
rules and error codes, latency and fault injection."""
from __future__ import annotations

import io
import json
import random
import secrets
import time
from functools import wraps

import qrcode
from flask import jsonify, request, send_file

from models.sandbox import SandboxQRCode, SandboxUser, get_value, put_value
from models.timeutil import utcnow
from wxbot import services
from wxbot.db import db
from wxbot.sandbox import accepts_secret, bp, world
from wxbot.sandbox.world import ApiError

QR_MAX_EXPIRE = 2592000
MENU_KEY = "menu"
TAGS_KEY = "tags"


def _cfg():
    return services.settings()


def _store():
    return services.store()


def api(name: str, methods=("POST",), auth: bool = True, under: str = "cgi-bin"):
    """Register a fake WeChat endpoint (`under` /cgi-bin/, or the mini-program's /sns/ and /wxa/):
    faults first, then the token (the Official Account's, or with auth="mini" the mini-program's),
    then the handler's rules."""
    def decorate(func):
        @wraps(func)
        def view():
            session, now = db.session, utcnow()
            try:
                epoch = _inject_faults(name)  # before any database work: the latency holds no connection
                if auth == "mini":
                    world.check_mini_token(_store(), request.args.get("access_token", ""))
                elif auth:
                    world.check_token(session, request.args.get("access_token", ""), now, epoch)
                result = func(session, _body(), now)
                session.commit()
                if not isinstance(result, dict):  # an image (a mini-program code)
                    return result
                return jsonify({"errcode": 0, "errmsg": "ok", **result})
            except ApiError as exc:
                session.rollback()
                return jsonify({"errcode": exc.code, "errmsg": exc.message})
        endpoint = "api_" + ("" if under == "cgi-bin" else under + "_") + name.replace("/", "_")
        bp.add_url_rule(f"/{under}/{name}", endpoint=endpoint, view_func=view,
                        methods=list(methods))
        return func
    return decorate


def _inject_faults(name: str) -> int:
    """Sleep the latency, raise an injected error; returns the token epoch for the token check."""
    store = _store()
    saved = world.saved_faults(store)  # one read per call: latency, error rate, queued codes, token epoch
    faults = world.faults(store, _cfg().sandbox, saved)
    if faults["latency_ms"]:
        time.sleep(faults["latency_ms"] / 1000.0)
    code = world.injected_error(store, name, saved)
    if code is None and faults["fault_rate"] and random.random() < faults["fault_rate"]:
        code = -1
    if code is not None:
        raise ApiError(code, "system error" if code == -1 else "injected by sandbox")
    return int(saved.get("token_epoch", 0))


def _body() -> dict:
    if request.method != "POST" or not request.data:
        return {}
    try:
        body = json.loads(request.data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise ApiError(47001, "data format error") from None
    if not isinstance(body, dict):
        raise ApiError(47001, "data format error")
    return body


def _require_service_account(feature: str) -> None:
    if _cfg().wechat.account_type != "service":
        raise ApiError(48001, f"api unauthorized: {feature} needs a service account")


@api("token", methods=("GET",), auth=False)
def token(session, _body, now):
    """Issue an access token to the configured AppID and sandbox secret."""
    cfg = _cfg()
    appid = request.args.get("appid")
    if appid not in (cfg.wechat.appid, cfg.miniprogram.appid):
        raise ApiError(40013, "invalid appid")
    if not accepts_secret(cfg, request.args.get("secret", "")):
        raise ApiError(40125, "invalid appsecret")
    if appid == cfg.miniprogram.appid:  # the mini-program's own token: it does not replace the account's
        world.daily_quota(_store(), "minitoken", cfg.sandbox.token_daily_quota, now)
        return {"access_token": world.issue_mini_token(_store(), cfg.sandbox.token_ttl),
                "expires_in": cfg.sandbox.token_ttl}
    world.daily_quota(_store(), "token", cfg.sandbox.token_daily_quota, now)
    return {"access_token": world.issue_token(session, _store(), now, cfg.sandbox.token_ttl),
            "expires_in": cfg.sandbox.token_ttl}


@api("message/custom/send")
def custom_send(session, body, now):
    """A customer-service message: only to a follower whose window is open and not used up."""
    openid = str(body.get("touser", ""))
    world.use_window(session, openid, now)
    world.daily_quota(_store(), "custom", _cfg().sandbox.cs_daily_quota, now)
    msgtype = body.get("msgtype", "text")
    world.deliver(session, openid, "customer_service", msgtype, body.get(msgtype, {}), now)
    return {}


@api("message/template/send")
def template_send(session, body, now):
    """A template message: service accounts only."""
    _require_service_account("template messages")
    if not body.get("template_id"):
        raise ApiError(40037, "invalid template_id")
    user = world.following_user(session, body.get("touser", ""))
    world.daily_quota(_store(), "template", _cfg().sandbox.template_daily_quota, now)
    content = {"template_id": body["template_id"], "url": body.get("url", ""), "data": body.get("data", {})}
    world.deliver(session, user.openid, "template", "template", content, now)
    return {"msgid": random.randint(10**8, 10**9)}


@api("message/subscribe/bizsend")
def subscribe_send(session, body, now):
    """A subscription notification: spends one credit the user granted for that template."""
    user = world.following_user(session, body.get("touser", ""))
    template_id = body.get("template_id", "")
    credits = user.json_field("credits") or {}
    if credits.get(template_id, 0) <= 0:
        raise ApiError(43101, "user refuse to accept the msg")
    credits[template_id] -= 1
    user.set_json("credits", credits)
    content = {"template_id": template_id, "page": body.get("page", ""), "data": body.get("data", {})}
    world.deliver(session, user.openid, "subscribe", "subscribe", content, now)
    return {}


def _mass_deliver(session, users, body, now, clientmsgid: str) -> dict:
    cfg = _cfg()
    if clientmsgid:
        if get_value(session, f"clientmsgid:{clientmsgid}"):
            raise ApiError(45065, "clientmsgid exist")
        put_value(session, f"clientmsgid:{clientmsgid}", now.isoformat())
    world.daily_quota(_store(), "mass_calls", cfg.sandbox.mass_calls_per_day, now)
    if cfg.wechat.account_type == "subscription":
        world.daily_quota(_store(), "mass_subscription", cfg.sandbox.mass_per_day_subscription, now, 45028)
    msgtype = body.get("msgtype", "text")
    sent = 0
    for user in users:
        per_month = cfg.delivery.account_limits[cfg.wechat.account_type]["mass_per_follower_month"]
        if user.subscribed and world.mass_allowance(user, now, per_month):
            world.deliver(session, user.openid, "mass", msgtype, body.get(msgtype, {}), now)
            sent += 1
    msg_id = random.randint(10**9, 10**10)
    put_value(session, f"massjob:{msg_id}", {"total": len(users), "sent": sent})
    return {"msg_id": msg_id, "msg_data_id": msg_id}


@api("message/mass/sendall")
def mass_sendall(session, body, now):
    """A mass send to everyone or to one tag."""
    flt = body.get("filter", {})
    users = list(session.query(SandboxUser).filter(SandboxUser.subscribed.is_(True)))
    if not flt.get("is_to_all"):
        tag_id = flt.get("tag_id")
        users = [u for u in users if tag_id in (u.json_field("tags") or [])]
    return _mass_deliver(session, users, body, now, body.get("clientmsgid", ""))


@api("message/mass/send")
def mass_send(session, body, now):
    """A mass send to 2 to 10,000 openids (service accounts)."""
    _require_service_account("mass send by openid")
    openids = body.get("touser") or []
    if not 2 <= len(openids) <= 10000:
        raise ApiError(40130, "invalid openid list size, at least two openid")
    users = [u for u in (session.get(SandboxUser, o) for o in openids) if u is not None]
    return _mass_deliver(session, users, body, now, body.get("clientmsgid", ""))


@api("message/mass/preview")
def mass_preview(session, body, now):
    """A preview of a mass message to one follower."""
    user = world.following_user(session, body.get("touser", ""))
    msgtype = body.get("msgtype", "text")
    world.deliver(session, user.openid, "preview", msgtype, body.get(msgtype, {}), now)
    return {"msg_id": random.randint(10**9, 10**10)}


@api("qrcode/create")
def qrcode_create(session, body, now):
    """A parametric QR code, temporary (up to 30 days) or permanent."""
    action = body.get("action_name", "")
    scene = (body.get("action_info") or {}).get("scene") or {}
    value = scene.get("scene_str") if "STR" in action else scene.get("scene_id")
    if action not in ("QR_SCENE", "QR_STR_SCENE", "QR_LIMIT_SCENE", "QR_LIMIT_STR_SCENE") or value in (None, ""):
        raise ApiError(40053, "invalid action info")
    if "STR" in action and not 1 <= len(str(value)) <= 64:
        raise ApiError(40053, "invalid scene_str length")
    expire = min(int(body.get("expire_seconds") or 60), QR_MAX_EXPIRE)
    world.daily_quota(_store(), "qrcode", _cfg().sandbox.qrcode_daily_quota, now)
    qr = world.create_qrcode(session, str(value), "LIMIT" in action, expire, now)
    result = {"ticket": qr.ticket, "url": f"https://sandbox.wxbot/q/{qr.ticket}"}
    return result if qr.permanent else dict(result, expire_seconds=expire)


@bp.get("/cgi-bin/showqrcode")
def showqrcode():
    """The QR image of a ticket, as a PNG."""
    qr = db.session.get(SandboxQRCode, request.args.get("ticket", ""))
    if qr is None or (qr.expire_at is not None and qr.expire_at <= utcnow()):
        return jsonify({"errcode": 40097, "errmsg": "invalid ticket"}), 404
    image = qrcode.make(f"https://sandbox.wxbot/q/{qr.ticket}")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    buffer.seek(0)
    return send_file(buffer, mimetype="image/png")


@api("menu/create")
def menu_create(session, body, now):
    """Store the custom menu after WeChat's shape checks."""
    buttons = body.get("button")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        raise ApiError(40016, "invalid button size")
    for button in buttons:
        subs = button.get("sub_button") or []
        if len(subs) > 5:
            raise ApiError(40023, "invalid sub button size")
        for item in subs or [button]:
            if item.get("type") == "click" and not item.get("key"):
                raise ApiError(40019, "invalid button key size")
    put_value(session, MENU_KEY, buttons)
    return {}


@api("menu/get", methods=("GET",))
def menu_get(session, _body, now):
    buttons = get_value(session, MENU_KEY)
    if not buttons:
        raise ApiError(46003, "menu no exist")
    return {"menu": {"button": buttons}}


@api("menu/delete", methods=("GET",))
def menu_delete(session, _body, now):
    put_value(session, MENU_KEY, None)
    return {}


@api("user/info", methods=("GET",))
def user_info(session, _body, now):
    return _user_info(session, world.find_user(session, request.args.get("openid", "")))


@api("user/info/batchget")
def user_info_batch(session, body, now):
    """At most 100 users a call (40032 beyond)."""
    wanted = body.get("user_list")
    if not isinstance(wanted, list) or not 1 <= len(wanted) <= 100:
        raise ApiError(40032, "invalid openid list size")
    return {"user_info_list": [_user_info(session, world.find_user(session, str(item.get("openid", ""))))
                               for item in wanted]}


def _user_info(session, user) -> dict:
    """A user as user/info gives them; the unionid only when the tests linked the account and the
    mini-program under one Open Platform for this user (POST /sandbox/unionid)."""
    if not user.subscribed:
        return {"subscribe": 0, "openid": user.openid}
    info = {"subscribe": 1, "openid": user.openid, "nickname": user.nickname, "language": "zh_CN",
            "subscribe_time": int(user.subscribed_at.timestamp()) if user.subscribed_at else 0,
            "tagid_list": user.json_field("tags") or []}
    unionid = world.unionid_of(session, user.openid)
    if unionid:
        info["unionid"] = unionid
    return info


@api("user/get", methods=("GET",))
def user_list(session, _body, now):
    after = request.args.get("next_openid", "")
    openids = [u.openid for u in session.query(SandboxUser).filter(SandboxUser.subscribed.is_(True))
               .filter(SandboxUser.openid > after).order_by(SandboxUser.openid).limit(10000)]
    total = session.query(SandboxUser).filter(SandboxUser.subscribed.is_(True)).count()
    return {"total": total, "count": len(openids), "data": {"openid": openids},
            "next_openid": openids[-1] if openids else ""}


@api("tags/create")
def tag_create(session, body, now):
    name = (body.get("tag") or {}).get("name", "")
    if not 1 <= len(name) <= 30:
        raise ApiError(45158, "tag name too long")
    tags = get_value(session, TAGS_KEY, [])
    if any(t["name"] == name for t in tags):
        raise ApiError(45157, "invalid tag name")
    tag = {"id": max([t["id"] for t in tags] + [99]) + 1, "name": name}
    put_value(session, TAGS_KEY, tags + [tag])
    return {"tag": tag}


@api("tags/delete")
def tag_delete(session, body, now):
    tag_id = (body.get("tag") or {}).get("id")
    tags = get_value(session, TAGS_KEY, [])
    if not any(t["id"] == tag_id for t in tags):
        raise ApiError(45159, "invalid tag id")
    put_value(session, TAGS_KEY, [t for t in tags if t["id"] != tag_id])
    for user in session.query(SandboxUser).filter(SandboxUser.tags.contains(str(tag_id))):
        user.set_json("tags", [t for t in user.json_field("tags") or [] if t != tag_id])
    return {}


@api("tags/get", methods=("GET",))
def tag_list(session, _body, now):
    tags = get_value(session, TAGS_KEY, [])
    users = list(session.query(SandboxUser))
    counted = [dict(t, count=sum(t["id"] in (u.json_field("tags") or []) for u in users)) for t in tags]
    return {"tags": counted}


def _tag_users(session, body, add: bool) -> dict:
    tag_id = body.get("tagid")
    if not any(t["id"] == tag_id for t in get_value(session, TAGS_KEY, [])):
        raise ApiError(45159, "invalid tag id")
    for openid in body.get("openid_list") or []:
        user = world.find_user(session, openid)
        tags = set(user.json_field("tags") or [])
        tags = tags | {tag_id} if add else tags - {tag_id}
        user.set_json("tags", sorted(tags))
    return {}


@api("tags/members/batchtagging")
def tag_members(session, body, now):
    return _tag_users(session, body, True)


@api("tags/members/batchuntagging")
def untag_members(session, body, now):
    return _tag_users(session, body, False)


@api("user/tag/get")
def tag_users(session, body, now):
    tag_id = body.get("tagid")
    openids = [u.openid for u in session.query(SandboxUser).order_by(SandboxUser.openid)
               if tag_id in (u.json_field("tags") or [])]
    return {"count": len(openids), "data": {"openid": openids}, "next_openid": ""}


# --- the mini-program's side ----------------------------------------------------------------------

MINI_CODE_PER_MINUTE = 5000  # getwxacodeunlimit: 45009 beyond
SCENE_CHARACTERS = set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!#$&'()*+,/:;=?@-._~")


@api("jscode2session", methods=("GET",), auth=False, under="sns")
def jscode2session(session, _body, now):
    """wx.login's code for the user's openid and session_key (no access token: appid and secret)."""
    cfg = _cfg()
    if request.args.get("appid") != cfg.miniprogram.appid:
        raise ApiError(40013, "invalid appid")
    if not accepts_secret(cfg, request.args.get("secret", "")):
        raise ApiError(40125, "invalid appsecret")
    if request.args.get("grant_type") != "authorization_code":
        raise ApiError(40002, "invalid grant_type")
    found = world.redeem_login_code(_store(), request.args.get("js_code", ""), now)
    return found


@api("msg_sec_check", auth="mini", under="wxa")
def msg_sec_check(session, body, now):
    """Content security (v2): the verdict the tests set for words (POST /sandbox/msgsec), else pass."""
    if body.get("version") != 2 or not body.get("openid") or body.get("scene") not in (1, 2, 3, 4):
        raise ApiError(47001, "data format error")
    content = str(body.get("content", ""))
    if not content or len(content) > 2500:
        raise ApiError(87014, "risky content") if len(content) > 2500 else ApiError(47001, "data format error")
    suggest = world.content_verdict(session, content)
    label = {"pass": 100, "review": 20001, "risky": 20006}[suggest]
    return {"result": {"suggest": suggest, "label": label},
            "detail": [{"strategy": "content_model", "errcode": 0, "suggest": suggest, "label": label}],
            "trace_id": secrets.token_hex(12)}


@api("message/subscribe/send", auth="mini")
def mini_subscribe_send(session, body, now):
    """A mini-program subscription message: spends one credit the user granted for the template
    (43101 without), arrives on the phone as channel mini_subscribe."""
    openid, template_id = str(body.get("touser", "")), str(body.get("template_id", ""))
    if not openid or not template_id or not isinstance(body.get("data"), dict):
        raise ApiError(47003, "argument invalid")
    for field in body["data"].values():
        if len(str((field or {}).get("value", ""))) > 20:  # thing.DATA: 20 characters
            raise ApiError(47003, "argument invalid! data.thing.value exceeds limit")
    if not world.spend_mini_credit(session, openid, template_id):
        raise ApiError(43101, "user refuse to accept the msg")
    world.deliver(session, openid, "mini_subscribe", "subscribe",
                  {"template_id": template_id, "page": body.get("page", ""), "data": body["data"]}, now)
    return {}


@api("getwxacodeunlimit", auth="mini", under="wxa")
def getwxacodeunlimit(session, body, now):
    """A mini-program code: the scene at most 32 visible characters of WeChat's set (no %)."""
    scene = str(body.get("scene", ""))
    if not 1 <= len(scene) <= 32 or not set(scene) <= SCENE_CHARACTERS:
        raise ApiError(40169, "invalid length for scene, or the data is not json string")
    page = str(body.get("page", ""))
    minute = int(now.timestamp() // 60)
    if _store().incr(f"sandbox:wxacode:{minute}", 60) > MINI_CODE_PER_MINUTE:
        raise ApiError(45009, "reach max api minute quota limit")
    image = qrcode.make(f"https://sandbox.wxbot/mp/{page}?scene={scene}")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    buffer.seek(0)
    return send_file(buffer, mimetype="image/png")
