"""`flask --app wxbot chat`: one WeChat user in the terminal, talking to the running server."""
from __future__ import annotations

from collections.abc import Callable, Iterable

import requests
from flask import current_app

from models.sandbox import messages_to
from wxbot import services
from wxbot.db import db
from wxbot.sandbox.address import running_url
from wxbot.sandbox.phone import Phone, PhoneReply, http_transport

DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"  # config.yaml's server.public_url
USAGE = ("输入文字直接发送。命令：/click 键（菜单点击，如 /click 学习）、/follow 关注、/unfollow 取消关注、"
         "/scan 场景值（扫码）、/image 发图片、/quit 退出。")


def show(reply: PhoneReply) -> str:
    if reply.kind == "text":
        return reply.text
    if reply.kind == "news":
        return "\n".join(f"[图文] {a['title']}\n{a['description']}\n{a['url']}" for a in reply.articles)
    if reply.kind == "blocked":
        return f"（{reply.text}）"
    if reply.kind == "error":
        return f"(服务返回 {reply.status}：{reply.raw[:80]})"
    return "(没有即时回复)"


def server_url(app) -> str:
    """Where the running server listens: server.public_url when it was set (environment, site file),
    else the address `make run` noted when it started (make run PORT=8765), else the default."""
    configured = services.settings(app).server.public_url.rstrip("/")
    if configured != DEFAULT_PUBLIC_URL:
        return configured
    return running_url(app) or configured


def run_terminal_chat(openid: str, url: str | None, lines: Iterable[str], echo: Callable[[str], None]) -> None:
    cfg = services.settings()
    url = url or server_url(current_app) + "/wechat"
    phone = Phone(cfg, http_transport(url), db.new_session)
    seen = _last_message_id(openid)
    echo(f"以 {openid} 的身份连接 {url}。{USAGE}")
    for line in lines:
        line = line.strip()
        if not line:
            continue
        if line in ("/quit", "/exit"):
            break
        try:
            reply = _act(phone, openid, line)
        except requests.RequestException:
            echo(f"连接不上 {url}。请先在另一个终端运行 make run；"
                 "服务在别的地址时，用 --url http://地址:端口/wechat 指定。")
            return
        echo(f"公众号：{show(reply)}")
        seen = _show_pushes(openid, seen, echo)


def _act(phone: Phone, openid: str, line: str) -> PhoneReply:
    command, _, arg = line.partition(" ")
    actions = {"/click": lambda: phone.click(openid, arg.strip()), "/follow": lambda: phone.follow(openid),
               "/unfollow": lambda: phone.unfollow(openid), "/scan": lambda: phone.scan(openid, arg.strip()),
               "/image": lambda: phone.image(openid)}
    return actions.get(command, lambda: phone.text(openid, line))()


def _last_message_id(openid: str) -> int:
    session = db.new_session()
    try:
        rows = messages_to(session, openid)
        return rows[-1].id if rows else 0
    finally:
        session.close()


def _show_pushes(openid: str, seen: int, echo: Callable[[str], None]) -> int:
    session = db.new_session()
    try:
        for row in messages_to(session, openid, seen):
            seen = row.id
            if row.channel not in ("reply", "user"):
                content = row.as_dict()["content"]
                echo(f"[{row.channel}] {content.get('content') or content}")
    finally:
        session.close()
    return seen
