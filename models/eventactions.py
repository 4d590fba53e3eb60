"""What a member does about an event (sign up, cancel, ask leave, check in), with its rules and its
answer: one set of rules for the chat (handlers/events.py) and the mini-program (wxbot/api/events.py).

Each action returns an Outcome: whether it was done, a stable code the API returns, and the sentence
the member reads (the chat's reply, the mini-program's message).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.checkins import (
    CheckIn,
    check_in,
    checkin_window_refusal,
    code_for,
    geofence,
    read_scene,
    slot_is_current,
    slot_of,
)
from models.eventnotices import offer_places
from models.events import Event, event_snapshot, may_attend
from models.members import Member
from models.signups import ask_leave, cancel_sign_up, sign_up, signup_closes, standing
from models.timeutil import show

# Wrong 6-digit codes in the current minute, per member, whichever way they were sent.
WRONG_CODES = "checkin:wrong:{member_id}"


@dataclass(frozen=True)
class Outcome:
    ok: bool
    code: str  # ok, already, waiting, not_found, ended, started, closed, not_for_you, wrong_code ...
    message: str
    checkin: CheckIn | None = None


def refused(code: str, message: str) -> Outcome:
    return Outcome(False, code, message)


def event_for(session: Session, member: Member, event_id: int, at: datetime) -> Event | Outcome:
    """The event the member named, or why they may not act on it."""
    event = session.get(Event, event_id)
    if event is None or event.status != "active" or not may_attend(event, member):
        return refused("not_found", "没有这个活动。发送“活动”查看可以参加的活动和编号。")
    if at >= event.ends_at:
        return refused("ended", f"《{event.title}》已经结束。")
    return event


def register(session: Session, event: Event, member: Member, at: datetime) -> Outcome:
    if not event.signup_required:
        return Outcome(True, "no_signup", f"《{event.title}》不用报名，{expected(event)}")
    if at >= signup_closes(event):
        return refused("closed", f"《{event.title}》的报名已于 {show(signup_closes(event), '%m-%d %H:%M')} 截止。")
    result = sign_up(session, event, member, at)
    where = f"\n时间：{event.when()}\n地点：{event.place}"
    if result.outcome == "accepted":
        return Outcome(True, "ok", f"已确认，你报名了《{event.title}》。{where}")
    if result.outcome == "already":
        if result.position:
            return Outcome(True, "waiting", f"你已在《{event.title}》的候补名单中，第 {result.position} 位。")
        return Outcome(True, "already", f"你已报名《{event.title}》。{where}")
    if result.outcome == "waiting":
        return Outcome(True, "waiting", f"《{event.title}》已满，你已进入候补，第 {result.position} 位。"
                                        "有人取消时会按顺序通知你，收到通知后请及时确认。")
    return Outcome(True, "ok", f"报名成功：《{event.title}》。{where}\n"
                               "活动前会提醒你；到场后扫码或发送“签到 六位数字”签到。")


def cancel(session: Session, event: Event, member: Member, at: datetime, settings) -> Outcome:
    if at >= event.starts_at:
        return refused("started", f"《{event.title}》已经开始，不能再取消报名。如不能参加，请联系组织员。")
    reg = cancel_sign_up(session, event, member)
    if reg is None:
        return refused("not_registered", f"你没有报名《{event.title}》。")
    offer_places(session, event, at, settings)
    return Outcome(True, "ok", f"已取消《{event.title}》的报名。")


def leave(session: Session, event: Event, member: Member, reason: str, at: datetime) -> Outcome:
    reason = reason.strip()
    if not reason:
        return refused("no_reason", f"请写明理由，例如：请假 {event.id} 与专业课考试冲突")
    if at >= event.ends_at:
        return refused("ended", f"《{event.title}》已经结束，不能再请假。")
    mine = standing(session, event, member)
    if mine.checkin is not None:
        return refused("checked_in", f"你已在 {show(mine.checkin.at, '%H:%M')} 签到《{event.title}》，不用请假。")
    request = ask_leave(session, event, member, reason, at)
    if request.status == "approved":
        return Outcome(True, "approved", f"你的《{event.title}》请假已批准。")
    if request.status == "refused":
        return refused("refused", f"你的《{event.title}》请假没有被批准，如有疑问请联系组织员。")
    return Outcome(True, "pending", f"已提交《{event.title}》的请假（理由：{request.reason}），组织员审批后会通知你。")


def attend(session: Session, event: Event, member: Member, at: datetime, method: str, settings,
           openid: str = "") -> Outcome:
    """Check in: inside the window, for the member's organisation, within the geofence (by the
    location the follower `openid` reported), once per member and event whichever way they came."""
    refusal = checkin_window_refusal(event, at)
    if refusal:
        return refused("closed", refusal)
    if not may_attend(event, member):
        return refused("not_for_you", f"《{event.title}》不面向你所在的组织，不能签到。如有疑问请联系组织员。")
    cfg = settings.events
    fence = geofence(session, event, openid, at, cfg.location_max_age_minutes)
    if fence.refusal:
        return refused("too_far", fence.refusal)
    row, new = check_in(session, event, member, at, method, fence.flag)
    if not new:
        return Outcome(True, "already", f"你已在 {show(row.at, '%H:%M:%S')} 签到《{event.title}》，不用重复签到。", row)
    if event.points or event.study_hours:
        from models.eventnotices import credit_attendance
        credit_attendance(session, event, member, at, settings)
    late = f"（迟到，活动 {show(event.starts_at, '%H:%M')} 开始）" if row.late else ""
    earned = f"\n获得 {event.points} 积分" if event.points else ""
    hours = f"，学时 {event.study_hours:g} 小时" if event.study_hours else ""
    said = f"签到成功{late}：{member.name}\n《{event.title}》 {show(row.at, '%H:%M:%S')}{earned}{hours}"
    return Outcome(True, "ok", said, row)


def attend_by_code(session: Session, store, member: Member, code: str, at: datetime, settings, secret: str,
                   method: str, openid: str = "") -> Outcome:
    """The 6-digit code on an event's screen: good in its own period and the next one. Wrong codes are
    limited per member (events.code_tries_per_minute): a million codes cannot be tried one by one.
    A scan is not limited (its scene is signed and cannot be guessed)."""
    cfg = settings.events
    tries = WRONG_CODES.format(member_id=member.id)
    if int(store.get(tries) or 0) >= cfg.code_tries_per_minute:
        wait = max(1, round(store.ttl(tries) or 60))
        return refused("too_many_tries", f"签到码错误次数太多，请 {wait} 秒后再试。扫描屏幕上的二维码签到不受影响。")
    code = "".join(code.split())
    slot = slot_of(at, cfg.code_rotate_seconds)
    for event in checkin_open(session, at):
        if code in (code_for(secret, event.id, slot), code_for(secret, event.id, slot - 1)):
            return attend(session, event, member, at, method, settings, openid)
    store.incr(tries, 60)
    return refused("wrong_code",
                   f"签到码不对或已过期（每 {cfg.code_rotate_seconds} 秒更换一次）。请看屏幕上最新的六位数字再发一次。")


def event_of_scene(session: Session, scene: str, at: datetime, settings, secret: str) -> Event | Outcome:
    """The event of a scanned check-in scene (the Official Account's QR code or the mini-program
    code: the same signed value), if it is genuine and of the current slot: a snapshot, to read only."""
    found = read_scene(secret, scene)
    event = event_snapshot(session, found[0]) if found else None
    if event is None:
        return refused("bad_scene", "这个二维码无效。请扫描活动现场屏幕上的签到二维码。")
    if not slot_is_current(found[1], at, settings.events.code_rotate_seconds):
        return refused("expired", "二维码已过期（现场的二维码每隔几秒更换）。请扫描屏幕上当前的二维码。")
    return event


def checkin_open(session: Session, at: datetime) -> list[Event]:
    """Events whose check-in is open now, whoever they are for: a valid code of another organisation's
    event gets the same answer as a scan of it (not for your organisation), not "wrong code"."""
    near = session.scalars(select(Event).where(Event.status == "active",
                                               Event.starts_at.between(at - timedelta(hours=13),
                                                                       at + timedelta(hours=13))))
    return [e for e in near if e.checkin_opens <= at <= e.checkin_closes]


def expected(event: Event) -> str:
    return f"请按时参加（{event.when()}，{event.place}）。不能参加请发送“请假 {event.id} 理由”。"
