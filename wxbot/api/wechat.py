"""The mini-program's side of WeChat: jscode2session, msg_sec_check (v2) and getwxacodeunlimit.

The mini-program has its own AppID, secret and access token: a SharedTokenClient of its own (the token
shared by every process, as the Official Account's). wechatpy 1.8.18's WeChatWxa lacks
msg_sec_check v2, so the calls are made here, through the client's token handling. In sandbox mode
(no real AppSecret) they go to the sandbox, which plays them with WeChat's error codes.
"""
from __future__ import annotations

from flask import current_app
from wechatpy.exceptions import WeChatClientException

from wxbot import services
from wxbot.client import SharedTokenClient
from wxbot.config import REAL_API_BASE, is_sandbox

MINI_CLIENT = "wxbot.miniclient"


class NotConfigured(Exception):
    """The mini-program has no AppSecret while the Official Account is real: no sandbox to play it."""


def mini_client() -> SharedTokenClient:
    client = current_app.extensions.get(MINI_CLIENT)
    if client is None:
        cfg = services.settings()
        mini = cfg.miniprogram
        if mini.secret:
            secret, base = mini.secret, cfg.wechat.api_base or REAL_API_BASE
        elif is_sandbox(cfg):
            from wxbot.outbound import wechat_client
            base = wechat_client().API_BASE_URL
            from wxbot.sandbox import private_secret
            secret = private_secret(cfg, current_app.config["SECRET_KEY"])
        else:
            raise NotConfigured()
        client = SharedTokenClient(mini.appid, secret, base, services.store(), cfg.wechat.api_timeout,
                                   cfg.wechat.token_refresh_margin)
        current_app.extensions[MINI_CLIENT] = client
    return client


def _root(client: SharedTokenClient) -> str:
    """https://api.weixin.qq.com/ from .../cgi-bin/ (the sns/ and wxa/ endpoints live beside it)."""
    return client.API_BASE_URL.rsplit("cgi-bin/", 1)[0]


def code_to_session(code: str) -> dict:
    """{openid, session_key, unionid?} for a wx.login code; WeChatClientException with WeChat's code."""
    client = mini_client()
    response = client._http.get(_root(client) + "sns/jscode2session", params={
        "appid": client.appid, "secret": client.secret, "js_code": code, "grant_type": "authorization_code"},
        timeout=client.timeout)
    response.raise_for_status()
    result = response.json()
    if result.get("errcode"):
        raise WeChatClientException(result["errcode"], result.get("errmsg", ""), client=client)
    return result


def msg_sec_check(openid: str, content: str, scene: int = 2) -> str:
    """WeChat's verdict on user content (scene 2: comments): pass, review or risky."""
    client = mini_client()
    result = client.post(_root(client) + "wxa/msg_sec_check",
                         data={"version": 2, "openid": openid, "scene": scene, "content": content})
    return (result.get("result") or {}).get("suggest", "pass")


def wxa_code(scene: str, page: str, width: int = 430) -> bytes:
    """A mini-program code image opening `page` with `scene` (at most 32 characters)."""
    client = mini_client()
    response = client.post(_root(client) + "wxa/getwxacodeunlimit",
                           data={"scene": scene, "page": page, "check_path": False, "width": width})
    return response.content  # an image; an error is JSON, raised by the client as WeChatClientException
