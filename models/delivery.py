"""The outbox: campaigns and one delivery row per recipient, unique per campaign and recipient.

Counts are never stored: they are the deliveries grouped by status.
"""
from __future__ import annotations

import json
from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    case,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.accounts import Scope, audit
from models.audience import AudienceError, audience_query, describe_audience
from models.base import Base
from models.members import Member
from models.screening import screener_of
from models.textutil import shorten
from models.timeutil import utcnow
from models.tracing import request_id as traced_request_id

CAMPAIGN_STATUSES = {"scheduled": "待发送", "sending": "发送中", "paused": "配额用完，等待恢复",
                     "done": "已完成", "cancelled": "已取消"}
DELIVERY_STATUSES = {"pending": "待发送", "sending": "发送中", "sent": "已送达", "failed": "失败",
                     "waiting": "等成员下次互动", "expired": "过期未送达", "unreachable": "无法触达",
                     "cancelled": "已取消", "unknown": "结果未知"}
OPEN = ("pending", "sending")
# How each channel reaches people, in the order the console lists them.
CHANNEL_LABELS = {"customer_service": "客服消息", "subscribe": "订阅通知", "mini_subscribe": "小程序订阅消息",
                  "template": "模板消息", "mass": "群发", "inbox": "下次互动时", "miniprogram": "小程序中查看"}


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    creator: Mapped[str] = mapped_column(String(64))  # as shown: a console account, 命令行, a member's name
    # The member who started it from the chat (their 群发进度 finds it whatever their name becomes).
    creator_member_id: Mapped[int | None] = mapped_column(Integer, index=True)
    org_unit_id: Mapped[int | None] = mapped_column(Integer, index=True)  # the creator's scope
    kind: Mapped[str] = mapped_column(String(16))  # text | article
    text: Mapped[str] = mapped_column(Text, default="")
    title: Mapped[str] = mapped_column(String(100), default="")
    description: Mapped[str] = mapped_column(String(300), default="")
    url: Mapped[str] = mapped_column(String(500), default="")
    cover: Mapped[str] = mapped_column(String(500), default="")
    # A link of a kind a feature registered (wxbot/delivery/links.py), e.g. "study" with the
    # material's id: each recipient's link leads to their own page. Empty: the plain `url`.
    link_kind: Mapped[str] = mapped_column(String(32), default="")
    link_ref: Mapped[str] = mapped_column(String(64), default="")
    # The request (message, console page, scheduled job) that created it: the worker's log lines
    # about its deliveries carry the same id.
    request_id: Mapped[str] = mapped_column(String(40), default=traced_request_id, server_default="")
    # A preview an organiser sent to one member: labelled, and not listed as a campaign.
    preview: Mapped[bool] = mapped_column(Boolean, default=False)
    # A daily study push: the plan day it belongs to (a member gets one push a day).
    push_day: Mapped[date | None] = mapped_column(Date, index=True)
    audience: Mapped[str] = mapped_column(Text, default="{}")  # JSON audience spec
    audience_label: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), default="scheduled", index=True)
    # Until when its messages are worth delivering: one waiting for the member's next interaction
    # (the inbox) is dropped after it (None: delivery.inbox_days after creation).
    expires_at: Mapped[datetime | None]
    # Channels this campaign may not use, e.g. "mass" for a daily push that must not spend the
    # followers' monthly mass sends.
    excluded_channels: Mapped[str] = mapped_column(String(100), default="")
    scheduled_at: Mapped[datetime] = mapped_column(default=utcnow)
    resume_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    @property
    def label(self) -> str:
        """How lists name the campaign: its title, or the start of its text (cut with "…")."""
        return self.title or shorten(self.text, 24)

    def audience_spec(self) -> dict:
        return json.loads(self.audience or "{}")

    def excluded(self) -> set[str]:
        return set(filter(None, self.excluded_channels.split(",")))


class Delivery(Base):
    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("campaign_id", "openid"),
                      Index("ix_deliveries_claim", "status", "next_attempt_at"),
                      # A branch's pushes over the days a report counts from the records.
                      Index("ix_deliveries_member_campaign", "member_id", "campaign_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    openid: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    channel: Mapped[str] = mapped_column(String(32), default="")
    # Channels WeChat refused for this recipient (45015, 45047 ...): the next one is tried.
    refused_channels: Mapped[str] = mapped_column(String(200), default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(String(200), default="")
    next_attempt_at: Mapped[datetime | None]
    claimed_by: Mapped[str] = mapped_column(String(64), default="")
    claimed_at: Mapped[datetime | None]
    # Set (committed) just before the API call: of a dead worker's claims, only these may have
    # reached WeChat; the rest are sent again without doubt.
    dispatched_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    read_at: Mapped[datetime | None]
    # Taken over from a worker that died while this send was with WeChat: it may have arrived twice.
    possibly_duplicated: Mapped[bool] = mapped_column(Boolean, default=False)
    wechat_msgid: Mapped[str] = mapped_column(String(32), default="")
    callback_status: Mapped[str] = mapped_column(String(64), default="")

    def refused(self) -> set[str]:
        return set(filter(None, self.refused_channels.split(",")))


class SubscriptionCredit(Base):
    """One-time subscription notifications a follower granted, per template (no API tells them)."""

    __tablename__ = "subscription_credits"
    __table_args__ = (UniqueConstraint("openid", "template_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    openid: Mapped[str] = mapped_column(String(64), index=True)
    template_id: Mapped[str] = mapped_column(String(64))
    credits: Mapped[int] = mapped_column(Integer, default=0)


def grant_subscription(session: Session, openid: str, template_id: str) -> None:
    """One more subscription notification the follower allowed: a relative update, so that a credit
    the delivery engine spends at the same moment is not overwritten."""
    more = update(SubscriptionCredit).where(SubscriptionCredit.openid == openid,
                                            SubscriptionCredit.template_id == template_id
                                            ).values(credits=SubscriptionCredit.credits + 1)
    if session.execute(more).rowcount:
        return
    try:
        with session.begin_nested():
            session.add(SubscriptionCredit(openid=openid, template_id=template_id, credits=1))
    except IntegrityError:  # granted by a concurrent event meanwhile
        session.execute(more)


class MassJob(Base):
    """A mass send WeChat accepted, and what its MASSSENDJOBFINISH callback reported."""

    __tablename__ = "mass_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    clientmsgid: Mapped[str] = mapped_column(String(64), unique=True)
    msg_id: Mapped[str] = mapped_column(String(32), default="", index=True)
    tag_id: Mapped[int | None]  # the tag made for a mass send by tag, deleted when the job finished
    status: Mapped[str] = mapped_column(String(64), default="")
    total: Mapped[int] = mapped_column(Integer, default=0)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def campaigns_counts(session: Session, campaign_ids: list[int]) -> dict[int, dict]:
    """campaign_counts of several campaigns, in one query."""
    counts = {cid: {status: 0 for status in DELIVERY_STATUSES} | {"total": 0, "read": 0, "possibly_duplicated": 0,
                                                                  "by_channel": {}} for cid in campaign_ids}
    rows = session.execute(select(Delivery.campaign_id, Delivery.status, Delivery.channel, func.count(),
                                  func.count(Delivery.read_at),
                                  func.sum(case((Delivery.possibly_duplicated.is_(True), 1), else_=0)))
                           .where(Delivery.campaign_id.in_(campaign_ids))
                           .group_by(Delivery.campaign_id, Delivery.status, Delivery.channel))
    for campaign_id, status, channel, number, read, duplicated in rows:
        mine = counts[campaign_id]
        mine[status] = mine.get(status, 0) + number
        mine["total"] += number
        mine["read"] += read
        mine["possibly_duplicated"] += duplicated or 0
        if status == "sent":
            mine["by_channel"][channel] = mine["by_channel"].get(channel, 0) + number
    return counts


def campaign_counts(session: Session, campaign_id: int) -> dict:
    """Deliveries per status, plus read, possibly duplicated, and per channel for the sent ones."""
    return campaigns_counts(session, [campaign_id])[campaign_id]


def unknown_count(session: Session, campaign_id: int) -> int:
    return session.scalar(select(func.count()).select_from(Delivery).where(
        Delivery.campaign_id == campaign_id, Delivery.status == "unknown")) or 0


def resend_unknown(session: Session, campaign: Campaign, actor) -> int:
    """An organiser's choice: send again to those whose send's outcome is unknown, flagged as possibly
    duplicated (some of them may have it already). Returns how many."""
    count = session.execute(update(Delivery).where(Delivery.campaign_id == campaign.id, Delivery.status == "unknown")
                            .values(status="pending", next_attempt_at=None, possibly_duplicated=True,
                                    last_error="结果未知，组织员确认后重发")).rowcount or 0
    if count and campaign.status == "done":
        campaign.status, campaign.finished_at = "sending", None
    audit(session, actor, "resend", "campaign", campaign.id, f"重发群发 #{campaign.id} 结果未知的 {count} 人",
          after={"人数": count}, org_unit_id=campaign.org_unit_id)
    return count


class ContentRefused(AudienceError):
    """What organisers send matched the word lists: nothing is sent unless an admin passes it."""

    def __init__(self, words: list[str]):
        self.words = words
        super().__init__(f"内容中有词表里的词：【{'】【'.join(words)}】。请修改后再发；"
                         "确需发送的，由管理员在后台勾选“仍然发布”（记入操作日志）")


def screen_content(session: Session, content: dict, passed_by=None) -> None:
    """Everything organisers send passes the word lists here, whatever the path (console, chat,
    command line, a notice quoting an organiser's words); ContentRefused on a hit, unless an admin
    (`passed_by`, checked by the caller) lets it through, on the record."""
    text = "\n".join(str(content.get(k, "")) for k in ("title", "description", "text"))
    words = screener_of(session).screen(text).words
    if not words:
        return
    if passed_by is None:
        raise ContentRefused(words)
    audit(session, passed_by, "override", "screening", None, f"放行命中词表的内容：{'、'.join(words)}",
          after={"内容": text[:200]})


def check_content(content: dict) -> None:
    """AudienceError unless there is something to send: a text, or an article's title and link."""
    linked = content.get("url") or content.get("link_kind")
    if not (content.get("text") or (content.get("title") and linked)):
        raise AudienceError("内容不能为空：发送文字，或标题加链接的图文")


# Channels a campaign may not use. A member receives at most 4 mass sends a month (service
# accounts): only a broadcast to many may spend one; a notice to one member (an event reminder, an
# answer, a decision) or a reminder must never take the slot a school-wide broadcast needs.
NOTICE = ("mass",)
BROADCAST: tuple[str, ...] = ()
# A message worth sending only in the window open now (the inbox's "still waiting" note).
ONLY_NOW = ("subscribe", "mini_subscribe", "template", "mass", "inbox")


def create_campaign(session: Session, creator: str, scope: Scope, spec: dict, content: dict,
                    scheduled_at: datetime, org_unit_id: int | None = None,
                    creator_member_id: int | None = None,
                    recipients: list[tuple[str, int | None]] | None = None, expires_at: datetime | None = None,
                    excluded: tuple[str, ...] = NOTICE, passed_by=None) -> Campaign:
    """A campaign with one pending delivery per recipient, fixed now; refused when nobody is selected.
    The recipients are those the spec selects within the scope, or `recipients` (openid, member id)
    when the caller has chosen them already (the daily push). It may not use the `excluded`
    channels: by default a notice's (no mass send); a broadcast passes BROADCAST. The content is
    screened (screen_content); `passed_by` is the admin who let a hit through."""
    check_content(content)
    screen_content(session, content, passed_by)
    linked = content.get("url") or content.get("link_kind")
    campaign = Campaign(creator=creator, creator_member_id=creator_member_id, org_unit_id=org_unit_id,
                        kind="article" if linked else "text",
                        text=content.get("text", ""), title=content.get("title", ""),
                        description=content.get("description", ""), url=content.get("url", ""),
                        link_kind=content.get("link_kind", ""), link_ref=str(content.get("link_ref", "")),
                        cover=content.get("cover", ""), audience=json.dumps(spec, ensure_ascii=False),
                        audience_label=describe_audience(session, spec)[:200], scheduled_at=scheduled_at,
                        expires_at=expires_at, excluded_channels=",".join(excluded))
    session.add(campaign)
    session.flush()
    if recipients is None:
        recipients = session.execute(audience_query(session, spec, scope)).all()
    if not recipients:
        raise AudienceError("所选范围内没有已关注的成员")
    session.execute(insert(Delivery), [{"campaign_id": campaign.id, "openid": openid, "member_id": member_id}
                                       for openid, member_id in recipients])
    return campaign


def campaign_units(session: Session, campaign_id: int) -> list[int]:
    """The org units a campaign's recipients belong to: whose organisers are shown it in the audit log."""
    return list(session.scalars(select(Member.org_unit_id).join(Delivery, Delivery.member_id == Member.id)
                                .where(Delivery.campaign_id == campaign_id).distinct()))


def audit_campaign(session: Session, actor, campaign: Campaign, summary: str, after: dict) -> None:
    """A campaign on the record, shown to the organisers of its author's unit and of every unit it reaches."""
    audit(session, actor, "create", "campaign", campaign.id, summary, after=after, org_unit_id=campaign.org_unit_id,
          reach=campaign_units(session, campaign.id))
