"""What crosses the webhook besides the handling: a message's dedup key, how it and its reply read in
the message log, the passive-reply XML, and the alias that stands for an openid in the logs."""
from __future__ import annotations

import hashlib
import re

from wechatpy.messages import BaseMessage
from wechatpy.replies import ArticlesReply, TextReply

from wxbot.router import Inbound, News


def mask(openid: str) -> str:
    """A stable short alias of an openid for logs: personal data never reaches the log."""
    return "u" + hashlib.sha1(openid.encode()).hexdigest()[:10]


def dedup_key(message: BaseMessage) -> str:
    """Sender + MsgId for messages (WeChat does not promise a MsgId unique across users); sender +
    time + event + key for events (CreateTime has 1 s resolution)."""
    if message.type != "event" and message.id:
        return f"dedup:m:{message.source}:{message.id}"
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


_LINK = re.compile(r'<a\s+href="([^"]*)"[^>]*>(.*?)</a>', re.S)


def as_read(content: str) -> str:
    """A logged reply as the member's phone showed it: a link (WeChat renders <a href> in a text
    reply) as its words, followed by where it leads, cut short; the page escapes the rest."""
    return _LINK.sub(lambda m: f"{m.group(2)}（链接：{m.group(1)[:40]}{'…' if len(m.group(1)) > 40 else ''}）", content)
