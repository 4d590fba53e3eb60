"""The inbox: a message no channel can carry now waits for its recipient's next interaction.

A delivery the engine can send by no channel (the customer-service window closed, no subscription
credit, no template, the month's mass sends spent) is not lost: it is `waiting`. When the member
next writes, clicks, scans or follows, the window that opens carries the waiting messages, most
urgent first (the soonest to expire), as customer-service messages after the reply; the rest keep
waiting. A campaign may say until when its messages are worth delivering (`Campaign.expires_at`:
the day's study until the day's end, an event reminder until the event starts); after that a
waiting message is dropped and counted as unreachable.

Each step is a guarded update (`status = 'waiting'`), so two interactions at once release a message
once, and the engine's claim then sends it once.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from models.delivery import Campaign, Delivery

WAITING = "waiting"
EXPIRED = "有效期内成员没有再与公众号互动"
# The creator of the "你还有 N 条未读通知" note: a message about the notices, never one of them.
NOTE_CREATOR = "未读通知"


def waiting_items(session: Session, openid: str) -> list[tuple[Delivery, Campaign]]:
    """The member's waiting messages, most urgent first (soonest to expire, then oldest)."""
    rows = session.execute(select(Delivery, Campaign).join(Campaign, Campaign.id == Delivery.campaign_id)
                           .where(Delivery.openid == openid, Delivery.status == WAITING,
                                  Campaign.creator != NOTE_CREATOR)
                           .order_by(Campaign.expires_at.is_(None), Campaign.expires_at, Delivery.id)).all()
    return [(d, c) for d, c in rows]


def expire_waiting(session: Session, now: datetime, default_days: float, openid: str | None = None) -> int:
    """Waiting messages past their campaign's expiry (or `default_days` after a campaign without one)
    are dropped as expired; returns how many."""
    expired = select(Campaign.id).where(or_(
        Campaign.expires_at <= now,
        and_(Campaign.expires_at.is_(None), Campaign.created_at <= now - timedelta(days=default_days))))
    query = update(Delivery).where(Delivery.status == WAITING, Delivery.campaign_id.in_(expired))
    if openid is not None:
        query = query.where(Delivery.openid == openid)
    return session.execute(query.values(status="expired", last_error=EXPIRED)).rowcount or 0


@dataclass(frozen=True)
class Released:
    released: int  # handed back to the engine, to go out in the window just opened
    left: int  # still waiting (more than the window holds)


def release(session: Session, openid: str, room: int, now: datetime, default_days: float) -> Released:
    """Hand up to `room` of the member's waiting messages back to the engine (most urgent first);
    their campaigns send again. Each is due a millisecond after the one before: the engine sends a
    member's messages in that order. A message another interaction released meanwhile is not counted."""
    expire_waiting(session, now, default_days, openid)
    items = waiting_items(session, openid)
    chosen = [d.id for d, _c in items[:max(room, 0)]]
    released = 0
    for order, delivery_id in enumerate(chosen):
        released += session.execute(update(Delivery).where(Delivery.id == delivery_id, Delivery.status == WAITING)
                                    .values(status="pending", channel="", claimed_by="", last_error="",
                                            next_attempt_at=now + timedelta(milliseconds=order))).rowcount or 0
    if chosen:
        campaigns = {c.id for d, c in items[:max(room, 0)]}
        session.execute(update(Campaign).where(Campaign.id.in_(campaigns), Campaign.status == "done")
                        .values(status="sending", finished_at=None))
    return Released(released, len(items) - len(chosen))


def waiting_count(session: Session, openid: str) -> int:
    return session.scalar(select(func.count()).select_from(Delivery).join(Campaign, Campaign.id == Delivery.campaign_id)
                          .where(Delivery.openid == openid, Delivery.status == WAITING,
                                 Campaign.creator != NOTE_CREATOR)) or 0


def open_count(session: Session, openid: str) -> int:
    """The member's messages on their way (released, or queued by a campaign): each will take one
    of the window's messages."""
    return session.scalar(select(func.count()).select_from(Delivery).where(
        Delivery.openid == openid, Delivery.status.in_(("pending", "sending")))) or 0


def seen_in_app(session: Session, openid: str, delivery_ids: list[int], now: datetime) -> int:
    """Waiting messages the member read in the mini-program: delivered there, so no window carries
    them again (the same guarded update as a release: one that was released meanwhile is not
    counted, and goes out as it was)."""
    return session.execute(update(Delivery).where(Delivery.id.in_(delivery_ids), Delivery.openid == openid,
                                                  Delivery.status == WAITING)
                           .values(status="sent", channel="miniprogram", sent_at=now, read_at=now)).rowcount or 0
