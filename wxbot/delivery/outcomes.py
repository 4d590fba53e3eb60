"""What WeChat's answer to a send means for the delivery and for what we know of the follower (their
window, their month's mass sends, their subscription credits, whether they still follow)."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import bindparam, case, select, update
from sqlalchemy.orm.attributes import set_committed_value

from models.delivery import Delivery, SubscriptionCredit
from models.followers import Follower
from models.miniprogram import MiniUser
from models.privacy import forget_openid
from models.timeutil import next_wechat_midnight, wechat_month
from wxbot.delivery.send import Outcome
from wxbot.metrics import DELIVERIES

_deliveries = Delivery.__table__
UNKNOWN_NOTE = "请求已发出但微信没有应答：可能已送达，没有自动重发"


class FollowerWrites:
    """What the sends taught us about followers, written as a few executemany statements at commit.

    Relative updates (a window message spent, a mass message counted), so that a window the webhook
    widened meanwhile is not overwritten with what this worker read earlier."""

    _followers = Follower.__table__
    SPEND_WINDOW = (update(_followers).where(_followers.c.openid == bindparam("f_openid"))
                    .values(cs_window_left=case((_followers.c.cs_window_left > 0, _followers.c.cs_window_left - 1),
                                                else_=0), cs_window_spent_at=bindparam("spent_at")))
    COUNT_MASS = (update(_followers).where(_followers.c.openid == bindparam("f_openid"))
                  .values(mass_count=case((_followers.c.mass_month == bindparam("month"), _followers.c.mass_count + 1),
                                          else_=1), mass_month=bindparam("month")))
    # WeChat says the window is spent (45047) or closed (45015): unless the member opened a new one since.
    CLOSE_WINDOW = (update(_followers).where(_followers.c.openid == bindparam("f_openid"),
                                             _followers.c.cs_window_until <= bindparam("seen_until"))
                    .values(cs_window_left=0))

    def __init__(self):
        self.rows: dict = {self.SPEND_WINDOW: [], self.COUNT_MASS: [], self.CLOSE_WINDOW: []}
        self.gone: set[str] = set()  # WeChat says they do not follow (43004) or are unknown (40003)

    def add(self, statement, **params) -> None:
        self.rows[statement].append(params)

    def write(self, session) -> None:
        for statement, rows in self.rows.items():
            if rows:
                # In the openids' order: two workers sending two campaigns to the same people lock
                # their rows in one order, so neither waits for the other in a circle (a deadlock).
                session.connection().execute(statement, sorted(rows, key=lambda row: row["f_openid"]))
            rows.clear()
        for openid in self.gone:  # rare: the unfollow event was missed; erase as if it had come
            forget_openid(session, openid)
        self.gone.clear()


def apply_outcome(session, delivery: Delivery, outcome: Outcome, follower, campaigns, now, policy,
                  writes: FollowerWrites) -> None:
    """Mark one delivery by what WeChat answered, and note what it tells about the follower."""
    if outcome.kind in ("sent", "unknown") and follower is not None:  # an unknown send may have used it
        _count_use(writes, follower, delivery.channel, now)
        _spend_credit(session, delivery, policy)
    if outcome.kind == "window_spent" and follower is not None and follower.cs_window_until is not None:
        writes.add(writes.CLOSE_WINDOW, f_openid=follower.openid, seen_until=follower.cs_window_until)
        set_committed_value(follower, "cs_window_left", 0)
    if outcome.kind in ("unfollowed", "invalid") and follower is not None:
        writes.gone.add(follower.openid)
        set_committed_value(follower, "subscribed", False)
    if outcome.kind == "quota":
        campaign = campaigns[delivery.campaign_id]
        campaign.status, campaign.resume_at = "paused", next_wechat_midnight(now)
    mark(delivery, outcome, now, policy)


def mark(delivery: Delivery, outcome: Outcome, now: datetime, policy, reason: str = "") -> None:
    kind = outcome.kind
    if kind == "sent":
        delivery.status, delivery.sent_at, delivery.wechat_msgid = "sent", now, outcome.msgid
        delivery.last_error = "" if outcome.code == 0 else f"{outcome.code}"
    elif kind == "retry" and delivery.attempts < policy.max_attempts:
        delivery.status, delivery.last_error = "pending", f"{outcome.code} 系统繁忙，稍后重试"
        delivery.next_attempt_at = now + timedelta(seconds=policy.retry_base_seconds * 2 ** (delivery.attempts - 1))
    elif kind == "next_channel":
        delivery.refused_channels = ",".join(sorted(delivery.refused() | {delivery.channel}))
        delivery.status, delivery.last_error, delivery.next_attempt_at = "pending", f"{outcome.code}", None
        delivery.attempts -= 1  # not a failure of the recipient: try the next channel at once
    elif kind == "window_spent":  # the channel is not barred: the member's next message opens it again
        delivery.status, delivery.next_attempt_at = "pending", None
        delivery.last_error = f"{outcome.code} 客服窗口已用完，改走其他渠道"
        delivery.attempts -= 1
    elif kind == "unknown":  # never sent again on its own: it may have arrived
        delivery.status, delivery.last_error = "unknown", UNKNOWN_NOTE
    elif kind == "quota":
        delivery.status, delivery.last_error = "pending", "45009 今日配额已用完"
        delivery.attempts -= 1
    elif kind in ("unreachable", "unfollowed", "invalid"):
        delivery.status = "unreachable"
        delivery.last_error = reason or {"unfollowed": "43004 已取消关注", "invalid": "40003 openid 无效"}.get(kind, "")
    else:
        delivery.status, delivery.last_error = "failed", f"{outcome.code}"
    delivery.claimed_by, delivery.dispatched_at = "", None
    DELIVERIES.labels(delivery.status, delivery.channel or "none").inc()


def _count_use(writes: FollowerWrites, follower: Follower, channel: str, now: datetime) -> None:
    """Count a message against the follower's window or monthly mass limit (in memory too, for the
    channel choices of later batches of this round)."""
    if channel == "customer_service":
        writes.add(writes.SPEND_WINDOW, f_openid=follower.openid, spent_at=now)
        set_committed_value(follower, "cs_window_left", max(0, follower.cs_window_left - 1))
    elif channel == "mass":
        month = wechat_month(now)
        writes.add(writes.COUNT_MASS, f_openid=follower.openid, month=month)
        set_committed_value(follower, "mass_count", (follower.mass_count if follower.mass_month == month else 0) + 1)
        set_committed_value(follower, "mass_month", month)


def _spend_credit(session, delivery: Delivery, policy) -> None:
    if delivery.channel == "mini_subscribe":  # the credit is the member's mini-program user's
        session.execute(update(SubscriptionCredit).where(
            SubscriptionCredit.openid.in_(select(MiniUser.openid).where(MiniUser.member_id == delivery.member_id)),
            SubscriptionCredit.template_id == policy.mini_subscribe_template_id,
            SubscriptionCredit.credits > 0).values(credits=SubscriptionCredit.credits - 1))
    if delivery.channel == "subscribe":
        session.execute(update(SubscriptionCredit).where(
            SubscriptionCredit.openid == delivery.openid,
            SubscriptionCredit.template_id == policy.subscribe_template_id,
            SubscriptionCredit.credits > 0).values(credits=SubscriptionCredit.credits - 1))
