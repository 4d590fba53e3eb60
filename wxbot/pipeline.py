"""One inbound message, from parsed XML to reply: dedup, follower, routing, budget, message log.

WeChat delivers a message up to four times when it gets no answer in 5 s. The first delivery claims
the message (store.add on its dedup key) and runs the handler; every other delivery waits for the
first one's reply and gets the same. A handler still running when the reply budget is spent is
left to finish in the background: WeChat gets `success` and the reply goes out through the
customer-service API.
"""
from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import nullcontext

from flask import Flask
from wechatpy.messages import BaseMessage
from wechatpy.replies import ArticlesReply, TextReply

from models.followers import follower_for, record_interaction, spend_window_message
from models.timeutil import utcnow
from wxbot import services
from wxbot.conversation import Conversation
from wxbot.db import db
from wxbot.errors import report_failure
from wxbot.router import Context, Inbound, News, read_inbound
from wxbot.store import LockTimeout

PENDING = "\x00pending"
APOLOGY = "抱歉，系统暂时出了点问题，我们已记录下来。请稍后再试，或发送“帮助”查看可用功能。"
BUSY = "上一条消息还在处理中，请稍等几秒再发。"


def mask(openid: str) -> str:
    """A stable short alias of an openid for logs: personal data never reaches the log."""
    return "u" + hashlib.sha1(openid.encode()).hexdigest()[:10]


def dedup_key(message: BaseMessage) -> str:
    """MsgId for messages; sender + time + event + key for events (CreateTime has 1 s resolution)."""
    if message.type != "event" and message.id:
        return f"dedup:m:{message.id}"
    data = message._data
    parts = (message.source, data.get("CreateTime", ""), data.get("Event", ""), data.get("EventKey") or "",
             data.get("MsgID", ""))
    return "dedup:e:" + hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()


def describe(inbound: Inbound) -> tuple[str, str]:
    """(kind, content) of an inbound message for the log; no coordinates (PIPL)."""
    if inbound.msgtype == "event":
        detail = {"click": f"[菜单] {inbound.click_key}", "scan": f"[扫码] {inbound.scene}",
                  "subscribe_scan": f"[扫码关注] {inbound.scene}", "subscribe": "[关注]"}
        return f"event:{inbound.event}", detail.get(inbound.event, f"[{inbound.event}]")
    labels = {"text": "", "voice": "[语音] ", "image": "[图片]", "location": "[位置]", "video": "[视频]",
              "shortvideo": "[视频]", "link": "[链接]", "file": "[文件]"}
    return inbound.msgtype, labels.get(inbound.msgtype, f"[{inbound.msgtype}]") + inbound.raw_text


def reply_summary(reply) -> str:
    return f"[图文] {reply.title} {reply.url}" if isinstance(reply, News) else str(reply)


# Characters XML 1.0 does not allow, even inside CDATA.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_safe(text: str) -> str:
    """Text that stays well-formed inside wechatpy's CDATA sections: a member's "]]>" (or a title
    quoting one) is split across two sections, and characters XML forbids are dropped."""
    return _NOT_XML.sub("", text).replace("]]>", "]]]]><![CDATA[>")


def render(reply, message: BaseMessage, max_bytes: int) -> str:
    """The passive-reply XML for a handler's reply; `success` for none."""
    if reply is None:
        return "success"
    if isinstance(reply, News):
        article = {"title": xml_safe(reply.title), "description": xml_safe(reply.description),
                   "image": xml_safe(reply.image), "url": xml_safe(reply.url)}
        return ArticlesReply(message=message, articles=[article]).render()
    return TextReply(message=message, content=xml_safe(cut_text(str(reply), max_bytes))).render()


def cut_text(text: str, max_bytes: int) -> str:
    """Cut a text reply to WeChat's size on a character boundary, marking the cut."""
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    return data[: max_bytes - 3].decode("utf-8", "ignore") + "…"


class _Job:
    """Who delivers the reply: the request (claimed in time) or the background (late)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.claimed = False
        self.late = False


class Pipeline:
    def __init__(self, app: Flask):
        self.app = app
        self.settings = services.settings(app)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0
        self._pool_lock = threading.Lock()

    @property
    def pool(self) -> ThreadPoolExecutor:
        # Built lazily and per process: a pool must not cross gunicorn's fork.
        if self._pool is None or self._pool_pid != os.getpid():
            with self._pool_lock:
                if self._pool is None or self._pool_pid != os.getpid():
                    self._pool = ThreadPoolExecutor(self.settings.wechat.handler_threads, "wxbot-handler")
                    self._pool_pid = os.getpid()
        return self._pool

    @property
    def store(self):
        return services.store(self.app)

    def answer(self, message: BaseMessage, started: float) -> str:
        """The reply XML (unencrypted) or `success`, within the reply budget."""
        wechat = self.settings.wechat
        inbound = read_inbound(message)
        key = dedup_key(message)
        if not self.store.add(key, PENDING, wechat.dedup_ttl):
            return self._first_reply(key, started)
        if inbound.is_callback:  # answer job callbacks at once, record after
            self.pool.submit(self._run, inbound, _Job())
            self.store.set(key, "success", wechat.dedup_ttl)
            return "success"
        job = _Job()
        future = self.pool.submit(self._run, inbound, job)
        try:
            reply = future.result(timeout=max(0.0, started + wechat.reply_budget - time.monotonic()))
        except FutureTimeout:
            reply = self._late_or_wait(job, future)
        self.store.set(key, reply, wechat.dedup_ttl)
        return reply

    def _late_or_wait(self, job: _Job, future) -> str:
        with job.lock:
            job.late = not job.claimed
        return "success" if job.late else future.result()

    def _first_reply(self, key: str, started: float) -> str:
        """A retry: wait for the first delivery's reply, as long as the budget allows."""
        deadline = started + self.settings.wechat.reply_budget
        while True:
            value = self.store.get(key)
            if value is not None and value != PENDING:
                return value
            if time.monotonic() >= deadline:
                return "success"
            time.sleep(0.01)

    def _run(self, inbound: Inbound, job: _Job) -> str:
        """Handle one message; never raises: a failure here (even after the reply budget, when nobody
        waits for the result) goes to the error hook and the user gets the apology."""
        with self.app.app_context():
            try:
                with self._user_lock(inbound):
                    return self._handle_and_reply(inbound, job, db.session)
            except LockTimeout:
                return render(BUSY, inbound.message, self.settings.wechat.text_reply_max_bytes)
            except Exception as exc:  # the one error hook; the database or the store may be down
                report_failure(f"message handling for {mask(inbound.openid)} ({inbound.msgtype} {inbound.event})", exc)
                return render(APOLOGY, inbound.message, self.settings.wechat.text_reply_max_bytes)

    def _user_lock(self, inbound: Inbound):
        """One user's messages are handled one at a time, up to their commit."""
        if inbound.is_callback:
            return nullcontext()
        settings = self.settings
        return self.store.lock(f"user:{inbound.openid}", settings.conversation.lock_timeout,
                               settings.wechat.reply_budget * 0.75)

    def _handle_and_reply(self, inbound: Inbound, job: _Job, session) -> str:
        now = utcnow()
        follower, reply = self._handle(inbound, session, now)
        with job.lock:
            job.claimed = not job.late
        session.commit()
        if job.late:
            self._log(inbound, follower, None, now)
            self._send_late(inbound, follower, reply)
            return "success"
        self._log(inbound, follower, reply, now)
        return render(reply, inbound.message, self.settings.wechat.text_reply_max_bytes)

    def _handle(self, inbound: Inbound, session, now):
        """Run the dispatcher; any error becomes the apology."""
        try:
            follower = self._touch(inbound, session, now)
            reply = self._dispatch(inbound, follower, session, now)
            session.flush()
        except Exception as exc:  # the one error hook: detail to the log, a safe reply to the user
            report_failure(f"handler for {mask(inbound.openid)} ({inbound.msgtype} {inbound.event})", exc)
            session.rollback()
            follower, reply = self._touch(inbound, session, now), APOLOGY
        return follower, reply

    def _log(self, inbound: Inbound, follower, reply, now, channel: str = "reply") -> None:
        """The message and its reply in the message log (not after an unfollow)."""
        if follower is None or not follower.subscribed:
            return
        writer = services.logwriter(self.app)
        if inbound is not None:
            kind, content = describe(inbound)
            writer.add(openid=follower.openid, member_id=follower.member_id, direction="in", kind=kind,
                       content=content, created_at=now)
        if reply is not None:
            writer.add(openid=follower.openid, member_id=follower.member_id, direction="out", kind=channel,
                       content=reply_summary(reply), created_at=now)

    def _touch(self, inbound: Inbound, session, now):
        if inbound.is_callback:
            return None
        follower = follower_for(session, inbound.openid, now)
        if inbound.event != "unsubscribe":
            record_interaction(follower, inbound.interaction or "", now, self.settings.wechat)
        return follower

    def _dispatch(self, inbound: Inbound, follower, session, now):
        conversation = Conversation(self.store, inbound.openid, self.settings.conversation.state_ttl)
        dispatcher = services.dispatcher(self.app)
        ctx = Context(inbound, follower, session, self.store, conversation, self.settings, now, dispatcher)
        return dispatcher.dispatch(ctx)

    def _send_late(self, inbound: Inbound, follower, reply) -> None:
        """The budget was spent: the reply goes out through the customer-service API."""
        if reply is None or follower is None or not follower.subscribed:
            return
        from wxbot.outbound import send_customer_service

        channel = send_customer_service(inbound.openid, reply)
        if channel == "customer_service":  # the engine counts on the same window: never a 6th message
            spend_window_message(db.session, inbound.openid)
            db.session.commit()
        self._log(None, follower, reply, utcnow(), channel)
