"""One API call per channel, and what WeChat's answer means for the delivery."""
from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from wechatpy.exceptions import WeChatClientException

from models.delivery import Campaign
from wxbot.client import TokenUnavailable
from wxbot.delivery.links import mass_link_text
from wxbot.metrics import WECHAT_ERRORS

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """sent | retry | next_channel | window_spent | unknown | unreachable | quota | failed, with
    WeChat's code. `unknown`: the request left and no answer came; it may have arrived."""

    kind: str
    code: int = 0
    msgid: str = ""


# What an error code means for one recipient (wechat-platform.md).
# 45015 and 45047 say the recipient's window is closed or spent: not a refusal of the channel, which
# their next message opens again.
CODE_OUTCOMES = {-1: "retry", 40001: "retry", 40014: "retry", 42001: "retry", 45009: "quota",
                 43004: "unfollowed", 40003: "invalid", 45015: "window_spent", 45047: "window_spent",
                 43101: "next_channel", 40130: "next_channel", 45065: "sent", 48001: "failed",
                 45028: "quota"}


def outcome_of(call) -> Outcome:
    """Run one API call and classify its result."""
    try:
        result = call()
    except WeChatClientException as exc:
        code = int(exc.errcode) if exc.errcode is not None else -1
        WECHAT_ERRORS.labels(str(code)).inc()
        return Outcome(CODE_OUTCOMES.get(code, "failed"), code)
    except requests.RequestException as exc:
        WECHAT_ERRORS.labels("network").inc()
        tell_network_failure(exc)
        return Outcome("retry" if nothing_sent(exc) else "unknown", -1)
    result = result if isinstance(result, dict) else {}
    return Outcome("sent", 0, str(result.get("msgid") or result.get("msg_id") or ""))


def tell_network_failure(exc: requests.RequestException) -> None:
    """Log why WeChat's API could not be reached (a certificate, a refused connection, a timeout):
    once a minute per reason, not once per recipient of a broadcast."""
    reason = network_reason(exc)
    now = time.monotonic()
    with _told_lock:
        if now - _told.get(reason, -TELL_EVERY) < TELL_EVERY:
            return
        _told[reason] = now
    logger.warning("WeChat API call failed: %s", reason)


def network_reason(exc: requests.RequestException) -> str:
    """The host and the innermost reason, without the URL's access_token or secret."""
    inner = exc.args[0] if exc.args else exc
    reason = getattr(inner, "reason", None) or inner
    request = getattr(exc, "request", None)
    host = urlsplit(request.url).netloc if request is not None and request.url else "?"
    text = re.sub(r"(access_token|secret)=[^&\s'\")]+", r"\1=…", str(reason))
    return f"{host}: {type(reason).__name__}: {text}"[:400]


TELL_EVERY = 60.0
_told: dict[str, float] = {}
_told_lock = threading.Lock()


def nothing_sent(exc: requests.RequestException) -> bool:
    """Whether a failed call is known never to have reached WeChat (no connection was made); a
    read timeout or a connection dropped after the request left may have been a send."""
    if isinstance(exc, (requests.ConnectTimeout, TokenUnavailable)):
        return True
    reason = getattr(exc.args[0], "reason", None) if isinstance(exc, requests.ConnectionError) and exc.args else None
    return isinstance(reason, (NewConnectionError, ConnectTimeoutError))


def message_text(campaign: Campaign, link: str) -> str:
    """A campaign as one text: an article's title, summary and link (the recipient's own, or for one
    text sent to many, what the link kind says instead)."""
    if campaign.kind == "article":
        return f"{campaign.title}\n{campaign.description}\n{link or mass_link_text(campaign)}".strip()
    return campaign.text


def send_one(client, channel: str, campaign: Campaign, openid: str, link: str, policy) -> Outcome:
    """Send a campaign to one recipient through `channel`."""
    if channel == "customer_service" and campaign.kind == "article":
        article = {"title": campaign.title, "description": campaign.description, "url": link, "image": campaign.cover}
        return outcome_of(lambda: client.message.send_articles(openid, [article]))
    if channel == "customer_service":
        return outcome_of(lambda: client.message.send_text(openid, message_text(campaign, link)))
    summary = (campaign.description or campaign.text)[:100]
    if channel == "template":  # the fields as the admins mapped them in the console (渠道设置)
        fields = policy.template_fields
        data = {fields["title"]: {"value": campaign.label}, fields["summary"]: {"value": summary},
                fields["remark"]: {"value": "点击查看详情"}}
        return outcome_of(lambda: client.message.send_template(openid, policy.template_id, data, url=link or None))
    if channel == "subscribe":
        fields = policy.subscribe_fields
        data = {fields["title"]: {"value": campaign.label[:20]}, fields["summary"]: {"value": summary[:20]}}
        return outcome_of(lambda: client.message.send_subscribe_message(
            openid, policy.subscribe_template_id, data, page=link or None))
    if channel == "mini_subscribe":  # `client` is the mini-program's, `openid` its user's
        fields = policy.mini_subscribe_fields
        data = {fields["title"]: {"value": campaign.label[:20]}, fields["summary"]: {"value": summary[:20]}}
        return outcome_of(lambda: client.post("message/subscribe/send", data={
            "touser": openid, "template_id": policy.mini_subscribe_template_id,
            "page": policy.mini_subscribe_page, "data": data}))
    raise ValueError(f"no single-recipient send for channel {channel}")


def send_mass(client, campaign: Campaign, openids: list[str], clientmsgid: str) -> Outcome:
    """One mass send by openid list; the clientmsgid makes a repeat within 24 h a no-op (45065)."""
    text = message_text(campaign, "")
    return outcome_of(lambda: client.message.send_mass_text(openids, text, client_msg_id=clientmsgid))


def send_mass_by_tag(client, campaign: Campaign, openids: list[str], clientmsgid: str) -> tuple[Outcome, int | None]:
    """A mass send to a tag made for these recipients (subscription accounts, or a single recipient).

    The tag is named after the clientmsgid, so a retry finds it again instead of making another;
    returns the outcome and the tag, which is deleted when WeChat reports the job finished."""
    made: dict[str, int] = {}

    def call():
        made["tag"] = recipients_tag(client, clientmsgid[:30], openids)
        # wechatpy's sendall still speaks of group_id; WeChat's filter takes tag_id.
        return client.message._post("message/mass/sendall", data={
            "filter": {"is_to_all": False, "tag_id": made["tag"]}, "msgtype": "text",
            "text": {"content": message_text(campaign, "")}, "send_ignore_reprint": 0,
            "clientmsgid": clientmsgid})
    return outcome_of(call), made.get("tag")


def recipients_tag(client, name: str, openids: list[str]) -> int:
    tag_id = next((t["id"] for t in client.tag.get() if t["name"] == name), None)
    if tag_id is None:
        tag_id = client.tag.create(name)["id"]
    for start in range(0, len(openids), 50):  # WeChat tags at most 50 users per call
        client.tag.tag_user(tag_id, openids[start:start + 50])
    return tag_id


class TokenBucket:
    """At most `rate` sends per second on average, with bursts of up to one second's worth."""

    def __init__(self, rate: float):
        self.rate, self.tokens, self.stamp = rate, rate, time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> None:
        while True:
            with self.lock:
                now = time.monotonic()
                self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
                self.stamp = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                wait = (1 - self.tokens) / self.rate
            time.sleep(wait)
