"""Signing in (wx.login's code for our own session), binding to the roster, and 我的."""
from __future__ import annotations

import logging

import requests
from flask import g
from wechatpy.exceptions import WeChatClientException

from models.members import ROLES
from models.miniprogram import bind_user, forget_user, log_in, unbind_user
from models.points import standing
from models.timeutil import utcnow
from wxbot import services
from wxbot.api import answers, bp, call, problem, spec
from wxbot.api.schemas import BindIn, LoginIn, MeOut, SessionOut
from wxbot.api.sessions import close_session, open_session
from wxbot.api.wechat import NotConfigured, code_to_session
from wxbot.db import db
from wxbot.replies import mask

logger = logging.getLogger(__name__)
SESSION = {"session": []}

# WeChat's refusals of a login code, as the member reads them.
LOGIN_REFUSALS = {
    40029: (401, "invalid_code", "登录凭证无效，请重新进入小程序。"),
    40163: (401, "code_used", "登录凭证已被使用，请重新进入小程序。"),
    45011: (429, "too_frequent", "登录太频繁，请稍后再试。"),
    40226: (403, "user_blocked", "该微信账号被微信限制使用，无法登录。"),
}
UNAVAILABLE = (502, "wechat_error", "微信登录暂时不可用，请稍后再试。")


def _session_out(user) -> SessionOut:
    ttl = services.settings().miniprogram.session_ttl
    token = open_session(services.store(), user.id, user.session_epoch, ttl)
    return SessionOut(token=token, expires_in=ttl, bound=user.member_id is not None)


@bp.post("/login")
@spec.validate(json=LoginIn, resp=answers(SessionOut, 400, 401, 403, 429, 502, 503, signed_in=False), tags=["账号"])
def login():
    """登录：用 wx.login 的 code 换取本系统的会话（code 只能用一次）。"""
    from flask import request
    code = request.context.json.code
    try:
        found = code_to_session(code)
    except NotConfigured:
        raise problem(503, "not_configured", "小程序尚未配置，请联系管理员。") from None
    except WeChatClientException as exc:
        status, key, message = LOGIN_REFUSALS.get(exc.errcode, UNAVAILABLE)
        logger.info("mini-program login refused by WeChat: %s", exc.errcode)
        raise problem(status, key, message) from None
    except (requests.RequestException, ValueError):
        raise problem(502, "wechat_unreachable", "暂时连不上微信，请稍后再试。") from None
    user = log_in(db.session, found["openid"], found.get("unionid"), found.get("session_key", ""), utcnow())
    db.session.commit()
    return _session_out(user)


@bp.post("/session/renew")
@spec.validate(resp=answers(SessionOut), tags=["账号"], security=SESSION)
@call(write=True, member=False)
def renew(user):
    """换新会话：旧的立即失效。"""
    close_session(services.store(), g.token)
    return _session_out(user)


@bp.post("/logout")
@spec.validate(resp=answers(None), tags=["账号"], security=SESSION)
@call(write=True, member=False)
def logout(user):
    """退出登录：本次会话立即失效。"""
    close_session(services.store(), g.token)
    return "", 204


def _bind_failures(user) -> str:
    return f"mini:bindfail:{user.id}"


@bp.post("/bind")
@spec.validate(json=BindIn, resp=answers(MeOut, 400, 403, 409), tags=["账号"], security=SESSION)
@call(write=True, member=False)
def bind(user):
    """绑定身份：学号和姓名（或绑定码），与公众号的规则相同；一个人只有一个小程序账号。"""
    from flask import request

    from handlers.members import bind_refused
    cfg = services.settings().members
    body = request.context.json
    store, key = services.store(), _bind_failures(user)
    if int(store.get(key) or 0) >= cfg.bind_max_failures:
        minutes = max(1, int((store.ttl(key) or 60) // 60))
        raise problem(429, "too_many_failures", f"绑定失败次数过多，请 {minutes} 分钟后再试，或联系本支部组织员。")
    result = bind_user(db.session, user, body.student_no, body.name.strip(), utcnow(), body.code,
                       require_code=cfg.bind_mode == "code")
    if result.reason == "already_bound":
        raise problem(409, "already_bound", f"你已绑定 {result.member.name}（{result.member.student_no}）。")
    if not result.ok:
        logger.info("mini-program binding refused for %s: %s", mask(user.openid), result.reason)
        store.incr(key, cfg.bind_failure_window)
        raise problem(403, "bind_refused", bind_refused(services.settings()))
    store.delete(key)
    return me_of(result.member)


@bp.post("/unbind")
@spec.validate(resp=answers(None, 403), tags=["账号"], security=SESSION)
@call(write=True)
def unbind(user, _member):
    """解除绑定：记录留在本人名下；所有会话失效，需要重新登录。"""
    unbind_user(user)
    close_session(services.store(), g.token)
    return "", 204


@bp.post("/erase")
@spec.validate(resp=answers(None), tags=["账号"], security=SESSION)
@call(write=True, member=False)
def erase(user):
    """注销小程序账号：删除小程序的 openid、unionid 和会话；积分、学习和签到等记录属于成员本人，保留。"""
    forget_user(db.session, user)
    close_session(services.store(), g.token)
    return "", 204


@bp.get("/me")
@spec.validate(resp=answers(MeOut, 403), tags=["账号"], security=SESSION)
@call()
def me(_user, member):
    """我的：身份、积分、连续学习天数和排名。"""
    return me_of(member)


def me_of(member) -> MeOut:
    mine = standing(db.session, member, utcnow())
    ranked = mine.total > 0
    return MeOut(name=member.name, student_no=member.student_no, branch=member.org_unit.path(), stage=member.stage,
                 role=ROLES.get(member.role, member.role), points_today=mine.today, points_total=mine.total,
                 streak=mine.streak, branch_rank=mine.branch_rank if ranked else None, branch_size=mine.branch_size,
                 school_rank=mine.school_rank if ranked else None)
