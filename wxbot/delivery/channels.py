"""Which channel reaches a recipient now: a pure function of what we know, and the policy."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from models.delivery import CHANNEL_LABELS
from models.timeutil import wechat_month

__all__ = ["CHANNEL_LABELS", "Choice", "Reach", "choose_channel", "reach_of"]


@dataclass(frozen=True)
class Reach:
    """What the account knows about one recipient."""

    subscribed: bool
    window_until: datetime | None
    window_left: int
    credits: int  # subscription-notification credits for the configured template
    mass_month: str
    mass_count: int
    mini_credits: int = 0  # the member's mini-program subscription-message credits


@dataclass(frozen=True)
class Choice:
    channel: str | None
    reason: str = ""  # why nobody is left, in words an organiser understands


def choose_channel(reach: Reach, policy, account_type: str, now: datetime, refused: set[str]) -> Choice:
    """The first channel of the policy that can reach the recipient, skipping refused ones."""
    if not reach.subscribed:
        return Choice(None, "未关注公众号")
    limits = policy.account_limits[account_type]
    for channel in policy.channels:
        if channel not in refused and _available(channel, reach, policy, limits, now):
            return Choice(channel)
    return Choice(None, "客服窗口已关闭，且没有订阅通知额度、模板消息或群发次数可用")


def reach_of(follower, credits: int, window_taken: int = 0, mini_credits: int = 0) -> Reach:
    """What a follower row (or None: not following) says about reaching them; `window_taken`:
    window messages already planned for other sends."""
    if follower is None:
        return Reach(False, None, 0, 0, "", 0)
    return Reach(follower.subscribed, follower.cs_window_until, max(0, follower.cs_window_left - window_taken),
                 credits, follower.mass_month, follower.mass_count, mini_credits)


def _available(channel: str, reach: Reach, policy, limits, now: datetime) -> bool:
    if channel == "customer_service":
        return reach.window_until is not None and reach.window_until > now and reach.window_left > 0
    if channel == "subscribe":
        return bool(policy.subscribe_template_id) and reach.credits > 0
    if channel == "mini_subscribe":
        return bool(getattr(policy, "mini_subscribe_template_id", "")) and reach.mini_credits > 0
    if channel == "template":
        return bool(policy.template_id) and limits["template"]
    if channel == "mass":
        month = wechat_month(now)
        used = reach.mass_count if reach.mass_month == month else 0
        return (limits["mass_by_openid"] or limits["mass_by_tag"]) and used < limits["mass_per_follower_month"]
    return channel == "inbox"  # a follower can always be reached when they next write
