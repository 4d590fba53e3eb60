"""The phone: plays WeChat towards /wechat for one user, with the real protocol.

It builds each message in WeChat's shape (shared/samples), signs it, encrypts it as the configured
mode says, posts it, opens the reply, and records on the sandbox's side what WeChat would know: the
follow, the customer-service window, the passive reply that arrived on the phone.
"""
from __future__ import annotations

import hmac
import itertools
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

import requests
import xmltodict
from wechatpy.crypto import PrpCrypto
from wechatpy.utils import random_string

from models.timeutil import utcnow
from wxbot.protocol import aes_key_bytes, sign
from wxbot.sandbox import world

Transport = Callable[[str, bytes], tuple[int, str]]  # (query string, body) -> (status, text)
_sequence = itertools.count()
_process: tuple[int, int] = (0, 0)  # (pid, its salt), drawn again in each process after a fork


def new_msg_id() -> int:
    """A 64-bit MsgId no other process makes, however the processes were forked (gunicorn's master
    imports this module before it forks its workers): milliseconds, a salt of this process's own, and
    a counter."""
    global _process
    if _process[0] != os.getpid():
        _process = (os.getpid(), (os.getpid() ^ secrets.randbits(10)) & 0x3FF)
    return (int(time.time() * 1000) << 22) | (_process[1] << 12) | (next(_sequence) & 0xFFF)


@dataclass
class PhoneReply:
    """What the phone shows after one message: a text, an article, or nothing."""

    status: int
    kind: str  # text | news | none | error | blocked (WeChat would not let the user send it)
    text: str = ""
    articles: list[dict] = field(default_factory=list)
    raw: str = ""


def http_transport(url: str, timeout: float = 10) -> Transport:
    """Post to a running server's /wechat over HTTP."""
    def post(query: str, body: bytes) -> tuple[int, str]:
        response = requests.post(f"{url}?{query}", data=body, timeout=timeout,
                                 headers={"Content-Type": "text/xml"})
        return response.status_code, response.content.decode("utf-8", "replace")
    return post


def wsgi_transport(test_client) -> Transport:
    """Post through a Flask test client (in-process, same bytes)."""
    def post(query: str, body: bytes) -> tuple[int, str]:
        response = test_client.post(f"/wechat?{query}", data=body, content_type="text/xml")
        return response.status_code, response.get_data(as_text=True)
    return post


def describe_action(fields: dict) -> str:
    """How the user's own action appears in the simulator's history."""
    if fields["MsgType"] == "text":
        return fields["Content"]
    if fields["MsgType"] == "voice":
        return f"[语音] {fields.get('Recognition', '')}"
    event = fields.get("Event", "")
    labels = {"CLICK": f"[菜单] {fields.get('EventKey', '')}", "SCAN": f"[扫码] {fields.get('EventKey', '')}",
              "subscribe": "[关注公众号]", "unsubscribe": "[取消关注]", "LOCATION": "[位置]"}
    kinds = {"image": "[图片]", "video": "[视频]", "shortvideo": "[小视频]", "location": "[位置]", "link": "[链接]",
             "file": "[文件]"}
    return labels.get(event) or kinds.get(fields["MsgType"]) or f"[{event or fields['MsgType']}]"


class Phone:
    def __init__(self, settings, transport: Transport, session_factory: Callable):
        self.wechat = settings.wechat
        self.transport = transport
        self.session_factory = session_factory
        self._last_time: dict[str, int] = {}

    # -- what a user does -------------------------------------------------------------------
    def text(self, openid: str, content: str) -> PhoneReply:
        fields = {"MsgType": "text", "Content": content, "MsgId": new_msg_id()}
        return self.send_as_follower(openid, fields, "message")

    def voice(self, openid: str, recognition: str) -> PhoneReply:
        fields = {"MsgType": "voice", "MediaId": "media_" + random_string(8), "Format": "amr",
                  "Recognition": recognition, "MsgId": new_msg_id()}
        return self.send_as_follower(openid, fields, "message")

    def image(self, openid: str) -> PhoneReply:
        fields = {"MsgType": "image", "PicUrl": "http://mmbiz.example/pic.jpg",
                  "MediaId": "media_" + random_string(8), "MsgId": new_msg_id()}
        return self.send_as_follower(openid, fields, "message")

    def click(self, openid: str, key: str) -> PhoneReply:
        return self.send_as_follower(openid, {"MsgType": "event", "Event": "CLICK", "EventKey": key}, "event")

    def send_as_follower(self, openid: str, fields: dict, opens: str | None) -> PhoneReply:
        """What only a follower can do: WeChat offers no chat, menu or message to someone who
        unfollowed (a newcomer the sandbox has never seen follows first, as a phone would)."""
        known_and_gone = self._update_world(lambda s, now: (s.get(world.SandboxUser, openid) is not None
                                                             and not world.is_following(s, openid)))
        if known_and_gone:
            return PhoneReply(0, "blocked", text="你已取消关注这个公众号，需要先关注才能发消息。")
        return self.send(openid, fields, opens)

    def follow(self, openid: str, scene: str | None = None, nickname: str = "") -> PhoneReply:
        """Follow the account, by a QR code when `scene` is given."""
        self._update_world(lambda s, now: world.follow(s, openid, now, nickname))
        fields = {"MsgType": "event", "Event": "subscribe"}
        if scene is not None:
            fields.update(EventKey=f"qrscene_{scene}", Ticket=random_string(24))
        return self.send(openid, fields, "event")

    def unfollow(self, openid: str) -> PhoneReply:
        self._update_world(lambda s, now: world.unfollow(s, openid))
        return self.send(openid, {"MsgType": "event", "Event": "unsubscribe"}, None)

    def scan(self, openid: str, scene: str) -> PhoneReply:
        """Scan a parametric QR code: a follower gets SCAN, a newcomer follows with qrscene_."""
        if not self._update_world(lambda session, now: world.is_following(session, openid)):
            return self.follow(openid, scene)
        return self.send(openid, {"MsgType": "event", "Event": "SCAN", "EventKey": scene,
                                  "Ticket": random_string(24)}, "event")

    def accept_subscription(self, openid: str, template_id: str) -> PhoneReply:
        """Tap "allow" in a subscription-notification popup: one credit for that template."""
        def grant(session, now):
            user = session.get(world.SandboxUser, openid) or world.follow(session, openid, now)
            credits = user.json_field("credits") or {}
            credits[template_id] = credits.get(template_id, 0) + 1
            user.set_json("credits", credits)
        self._update_world(grant)
        popup = {"List": {"TemplateId": template_id, "SubscribeStatusString": "accept", "PopupScene": "2"}}
        return self.send(openid, {"MsgType": "event", "Event": "subscribe_msg_popup_event",
                                  "SubscribeMsgPopupEvent": popup}, None)

    # -- the protocol -------------------------------------------------------------------------
    def send(self, openid: str, fields: dict, opens: str | None) -> PhoneReply:
        """Post one message as WeChat would and record what the phone shows."""
        self._update_world(lambda s, now: self._note_sent(s, openid, fields, opens, now))
        query, body = self.build(openid, fields)
        status, text = self.transport(query, body)
        reply = self.read_reply(status, text)
        if reply.kind in ("text", "news"):
            content = {"content": reply.text} if reply.kind == "text" else {"articles": reply.articles}
            self._update_world(lambda s, now: world.deliver(s, openid, "reply", reply.kind, content, now))
        return reply

    def build(self, openid: str, fields: dict, timestamp: int | None = None) -> tuple[str, bytes]:
        """The query string and body WeChat would post for this message."""
        if timestamp is None:
            # Two actions of one user never share a CreateTime, as on a real phone.
            timestamp = max(int(time.time()), self._last_time.get(openid, 0) + 1)
            self._last_time[openid] = timestamp
        message = {"ToUserName": "gh_sandbox_account", "FromUserName": openid, "CreateTime": timestamp}
        message.update(fields)
        xml = xmltodict.unparse({"xml": message}, full_document=False)
        nonce = secrets.token_hex(8)
        args = {"signature": sign(self.wechat.token, str(timestamp), nonce), "timestamp": timestamp,
                "nonce": nonce, "openid": openid}
        if self.wechat.encrypt_mode == "plain":
            return urlencode(args), xml.encode("utf-8")
        encrypt = PrpCrypto(aes_key_bytes(self.wechat.aes_key)).encrypt(xml, self.wechat.appid).decode()
        args.update(encrypt_type="aes", msg_signature=sign(self.wechat.token, str(timestamp), nonce, encrypt))
        envelope = {"ToUserName": "gh_sandbox_account", "Encrypt": encrypt}
        if self.wechat.encrypt_mode == "compatible":
            envelope = dict(message, Encrypt=encrypt)
        return urlencode(args), xmltodict.unparse({"xml": envelope}, full_document=False).encode("utf-8")

    def read_reply(self, status: int, text: str) -> PhoneReply:
        """Open a response as WeChat would: decrypt, check the signature, read the reply."""
        if status != 200:
            return PhoneReply(status, "error", raw=text)
        if text in ("", "success"):
            return PhoneReply(status, "none", raw=text)
        data = xmltodict.parse(text)["xml"]
        if "Encrypt" in data:
            expected = sign(self.wechat.token, data["TimeStamp"], data["Nonce"], data["Encrypt"])
            if not hmac.compare_digest(expected, data["MsgSignature"]):
                return PhoneReply(status, "error", raw="bad reply signature")
            data = xmltodict.parse(PrpCrypto(aes_key_bytes(self.wechat.aes_key))
                                   .decrypt(data["Encrypt"], self.wechat.appid))["xml"]
        if data.get("MsgType") == "news":
            items = data["Articles"]["item"]
            items = items if isinstance(items, list) else [items]
            articles = [{"title": i.get("Title") or "", "description": i.get("Description") or "",
                         "url": i.get("Url") or "", "image": i.get("PicUrl") or ""} for i in items]
            return PhoneReply(status, "news", text=articles[0]["title"], articles=articles, raw=text)
        return PhoneReply(status, "text", text=data.get("Content") or "", raw=text)

    def _note_sent(self, session, openid: str, fields: dict, opens: str | None, now) -> None:
        """What WeChat learns from the user's action: the window it opens, and the message itself."""
        if opens:
            user = session.get(world.SandboxUser, openid) or world.follow(session, openid, now)
            world.open_window(user, opens, now, self.wechat)
        world.deliver(session, openid, "user", fields["MsgType"], {"content": describe_action(fields)}, now)

    def _update_world(self, change):
        session = self.session_factory()
        try:
            result = change(session, utcnow())
            session.commit()
            return result
        finally:
            session.close()
