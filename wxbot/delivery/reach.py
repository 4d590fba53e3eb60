"""Reach before sending: for the recipients a campaign would have, the channel the engine would choose
for each right now (the same choose_channel), counted, with the reasons of those it cannot reach.

Shown before every send that messages people (console, chat 群发, CLI, the daily push plan), so an
organiser sees how many get it now, how many when they next write, and how much of each follower's
monthly mass quota it would spend.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.delivery import SubscriptionCredit
from models.followers import Follower
from models.miniprogram import mini_reach
from wxbot.delivery.channels import CHANNEL_LABELS, choose_channel, reach_of


@dataclass
class Forecast:
    channels: Counter = field(default_factory=Counter)  # channel -> recipients
    unreachable: Counter = field(default_factory=Counter)  # reason -> recipients

    @property
    def total(self) -> int:
        return sum(self.channels.values()) + sum(self.unreachable.values())

    def lines(self) -> list[str]:
        """In an organiser's words, one line per channel used and per reason."""
        out = [f"{CHANNEL_LABELS[c]}：{n} 人" + ("（每人用掉本月 1 次群发）" if c == "mass" else "")
               for c, n in sorted(self.channels.items(), key=lambda item: list(CHANNEL_LABELS).index(item[0]))]
        out += [f"无法送达：{n} 人（{reason}）" for reason, n in self.unreachable.most_common()]
        return out

    def text(self) -> str:
        return "预计送达方式：\n" + "\n".join(self.lines()) if self.total else "没有可送达的成员。"


def forecast(session: Session, openids: list[str], policy, account_type: str, now: datetime,
             excluded: frozenset[str] = frozenset()) -> Forecast:
    """What the engine would do for these recipients now (in one query for followers and credits)."""
    result = Forecast()
    for start in range(0, len(openids), 5000):
        chunk = openids[start:start + 5000]
        followers = {f.openid: f for f in session.scalars(select(Follower).where(Follower.openid.in_(chunk)))}
        credits = dict(session.execute(select(SubscriptionCredit.openid, SubscriptionCredit.credits).where(
            SubscriptionCredit.openid.in_(chunk),
            SubscriptionCredit.template_id == policy.subscribe_template_id)).all())
        mini = mini_reach(session, [f.member_id for f in followers.values() if f.member_id],
                          getattr(policy, "mini_subscribe_template_id", ""))
        for openid in chunk:
            follower = followers.get(openid)
            mini_credits = mini.get(follower.member_id, ("", 0))[1] if follower is not None else 0
            choice = choose_channel(reach_of(follower, credits.get(openid, 0), 0, mini_credits), policy,
                                    account_type, now, set(excluded))
            if choice.channel is None:
                result.unreachable[choice.reason] += 1
            else:
                result.channels[choice.channel] += 1
    return result


def audience_forecast(session: Session, spec: dict, scope, now: datetime) -> Forecast:
    """The forecast for an audience spec within a scope, with the app's channel policy."""
    from models.audience import audience_query
    from models.channelsettings import channel_policy
    from wxbot import services
    policy = channel_policy(session, services.settings())
    openids = [openid for openid, _member in session.execute(audience_query(session, spec, scope))]
    return forecast(session, openids, policy, policy.account_type, now)
