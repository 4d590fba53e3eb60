"""What events send through the delivery engine (offers of a freed place, reminders, cancellations,
leave decisions, 送学), and the credit for attending. Each message that must go once is guarded by
a key claimed in the same transaction as its campaign (models/jobs.claim_once)."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.accounts import Scope
from models.audience import audience_members
from models.checkins import CheckIn
from models.delivery import Campaign, ContentRefused, create_campaign
from models.events import Event
from models.followers import Follower
from models.jobs import claim_once
from models.members import Member
from models.points import credit
from models.signups import LeaveRequest, Registration, offer_freed_places
from models.timeutil import show

CREATOR = "活动通知"
logger = logging.getLogger(__name__)


def notify(session: Session, member_ids: list[int], text: str, label: str, at: datetime,
           org_unit_id: int | None = None, content: dict | None = None,
           expires_at: datetime | None = None, creator: str = CREATOR) -> Campaign | None:
    """One campaign to these members (those following the account); None when none follows. A
    message that has to wait for the member's next interaction is dropped at `expires_at`.
    `creator`: who the console shows as its sender (an organiser's answer is theirs)."""
    if not member_ids:
        return None
    recipients = session.execute(select(Follower.openid, Follower.member_id).where(
        Follower.subscribed.is_(True), Follower.member_id.in_(member_ids))).all()
    if not recipients:
        return None
    campaign = create_campaign(session, creator, Scope(None), {"student_nos": []}, content or {"text": text}, at,
                               org_unit_id, recipients=[tuple(r) for r in recipients], expires_at=expires_at)
    campaign.audience_label = label[:200]
    return campaign


def offer_places(session: Session, event: Event, at: datetime, settings) -> int:
    """Pass lapsed offers on and offer each free place to the next on the waiting list, telling them."""
    offers = offer_freed_places(session, event, at, settings.events.offer_minutes)
    for reg in offers:
        automated_notice(session, [reg.member_id],
               f"《{event.title}》有空位了！你是候补第一位，请在 {show(reg.offered_until, '%m-%d %H:%M')} 前"
               f"回复“报名 {event.id}”确认，逾期名额将顺延给下一位。\n时间：{event.when()}\n地点：{event.place}",
               f"《{event.title}》候补名额", at, event.org_unit_id, expires_at=reg.offered_until)
    return len(offers)


def automated_notice(session: Session, member_ids: list[int], text: str, label: str, at: datetime, *args,
                     **kwargs) -> Campaign | None:
    """A notice no organiser is there to correct (a reminder, an offer made by a job or by another
    member's cancellation): if what it quotes matched the word lists, it is not sent, and the log says so."""
    # No savepoint: the screening refuses before anything is written, and on SQLite a savepoint
    # opened before notify's reads would make its first write fail at once ("database is locked")
    # whenever another connection (the message-log writer, a worker) commits in between.
    try:
        return notify(session, member_ids, text, label, at, *args, **kwargs)
    except ContentRefused as exc:
        logger.warning("notice %s not sent: %s", label, exc.words)
        return None


def expected_members(session: Session, event: Event) -> list[int]:
    """Who the event counts on: those signed up (or offered a place), or, when no sign-up is needed,
    its audience; without those whose leave was approved."""
    if event.signup_required:
        ids = set(session.scalars(select(Registration.member_id).where(
            Registration.event_id == event.id, Registration.status.in_(("signed", "offered")))))
    else:
        ids = set(session.scalars(audience_members(session, event.audience_spec())))
    excused = set(session.scalars(select(LeaveRequest.member_id).where(
        LeaveRequest.event_id == event.id, LeaveRequest.status == "approved")))
    return sorted(ids - excused)


def remind_events(session: Session, at: datetime, settings) -> int:
    """Reminders due by `at` (events.reminder_hours before each start), each sent once whatever runs
    it: the key of every reminder due is claimed; only the nearest one is sent (an event created an
    hour before it starts gets the 1-hour reminder, not the 24-hour one as well). Returns campaigns."""
    hours = sorted(settings.events.reminder_hours)
    latest = max(hours)
    sent = 0
    for event in session.scalars(select(Event).where(Event.status == "active", Event.starts_at > at,
                                                     Event.starts_at <= at + timedelta(hours=latest))):
        due = [h for h in hours if at >= event.starts_at - timedelta(hours=h)]
        claimed = [claim_once(session, f"event-reminder:{event.id}:{h:g}", at) for h in due]
        if not claimed or not claimed[0]:
            continue
        text = (f"活动提醒：《{event.title}》将于 {show(event.starts_at, '%m-%d %H:%M')} 开始。\n地点：{event.place}\n"
                "到场后扫描现场二维码或发送“签到 六位数字”签到。不能参加请发送“请假 "
                f"{event.id} 理由”。")
        if automated_notice(session, expected_members(session, event), text, f"《{event.title}》活动提醒", at,
                            event.org_unit_id, expires_at=event.starts_at):
            sent += 1
    session.commit()
    return sent


def lapse_offers(session: Session, at: datetime, settings) -> int:
    """Offers past their time pass to the next on the waiting list (run by the events job)."""
    events = session.scalars(select(Event).where(Event.id.in_(select(Registration.event_id).where(
        Registration.status == "offered", Registration.offered_until <= at)))).all()
    offered = sum(offer_places(session, event, at, settings) for event in events)
    session.commit()
    return offered


def cancel_event(session: Session, event: Event, at: datetime) -> Campaign | None:
    """Cancel the event and tell those signed up, waiting or expected, once."""
    if event.status == "cancelled":
        return None
    people = set(expected_members(session, event)) | set(session.scalars(select(Registration.member_id).where(
        Registration.event_id == event.id, Registration.status.in_(("waiting", "offered")))))
    event.status = "cancelled"
    campaign = notify(session, sorted(people),
                      f"活动取消通知：原定 {event.when()} 在 {event.place} 举行的《{event.title}》已取消。",
                      f"《{event.title}》取消通知", at, event.org_unit_id, expires_at=event.ends_at)
    event.cancel_campaign_id = campaign.id if campaign else None
    return campaign


def tell_leave_decision(session: Session, event: Event, leave: LeaveRequest, at: datetime) -> None:
    verdict = "已批准" if leave.status == "approved" else "没有被批准，请按时参加或联系组织员"
    notify(session, [leave.member_id], f"你的《{event.title}》（{event.when()}）请假{verdict}。",
           f"《{event.title}》请假审批", at, event.org_unit_id, expires_at=event.ends_at)


def absent_members(session: Session, event: Event) -> list[int]:
    """Those expected or on leave who did not check in (after the event): who 送学 is for."""
    on_leave = set(session.scalars(select(LeaveRequest.member_id).where(
        LeaveRequest.event_id == event.id, LeaveRequest.status == "approved")))
    came = set(session.scalars(select(CheckIn.member_id).where(CheckIn.event_id == event.id)))
    return sorted((set(expected_members(session, event)) | on_leave) - came)


def credit_attendance(session: Session, event: Event, member: Member, at: datetime, settings) -> int:
    """Points for attending, once per event and member (the ledger's key)."""
    if not event.points:
        return 0
    return credit(session, member, "event", f"event:{event.id}", at, settings.points, points=event.points)
