"""活动, 报名, 取消报名, 请假 and 签到 (by scanning the screen's QR code, or by its 6-digit code).

An event's number in the chat is its id, so a number read in 活动 means the same event however the
list changes before the member answers. A scan is answered with the passive reply: the window a
scan opens is only 3 messages in a minute, and a check-in is what the member is waiting to see.
"""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from handlers import members
from models.checkins import (
    SCENE_PREFIX,
    check_in,
    checkin_window_refusal,
    code_for,
    geofence,
    note_location,
    read_scene,
    slot_is_current,
    slot_of,
)
from models.eventnotices import offer_places
from models.events import Event, may_attend, upcoming_events
from models.members import Member
from models.signups import ask_leave, cancel_sign_up, sign_up, signup_closes, standing
from models.timeutil import show
from wxbot.router import Context, Router

router = Router("events", topic="活动",
                display=("活动", "报名 编号", "取消报名 编号", "请假 编号 理由", "签到 六位数字"))
# An unbound member who scanned: checked in automatically if they bind before check-in closes.
PENDING_CHECKIN = "checkin:pending:{openid}"
WRONG_CODES = "checkin:wrong:{member_id}"  # wrong 6-digit codes in the current minute


@router.text("活动", who="member", help=("活动", "近期活动与我的报名、签到情况"))
def events(ctx: Context):
    """The upcoming events this member may attend, with their state in each."""
    rows = upcoming_events(ctx.session, ctx.member, ctx.now, ctx.settings.events.list_days)
    if not rows:
        return "近期没有面向你的活动。"
    lines = ["近期活动："]
    for event in rows:
        state = standing(ctx.session, event, ctx.member).label(event)
        lines.append(f"【{event.id}】{event.title}（{event.kind}）\n  {event.when()} {event.place}\n  {state}")
    first = rows[0].id
    lines.append(f"\n回复“报名 {first}”报名，“取消报名 {first}”取消，“请假 {first} 理由”请假；"
                 "到场后扫描现场二维码或发送“签到 六位数字”。")
    return "\n".join(lines)


@router.regex(r"取消报名\s*#?(\d{1,9})", who="member", help=("取消报名 编号", "取消报名或候补"))
def cancel(ctx: Context, number: str):
    event = _event(ctx, number)
    if isinstance(event, str):
        return event
    if ctx.now >= event.starts_at:
        return f"《{event.title}》已经开始，不能再取消报名。如不能参加，请联系组织员。"
    reg = cancel_sign_up(ctx.session, event, ctx.member)
    if reg is None:
        return f"你没有报名《{event.title}》。"
    offer_places(ctx.session, event, ctx.now, ctx.settings)
    return f"已取消《{event.title}》的报名。"


@router.regex(r"报名\s*#?(\d{1,9})", who="member", help=("报名 编号", "报名活动，满员时进入候补"))
def register(ctx: Context, number: str):
    event = _event(ctx, number)
    if isinstance(event, str):
        return event
    if not event.signup_required:
        return f"《{event.title}》不用报名，{_expected(ctx, event)}"
    if ctx.now >= signup_closes(event):
        return f"《{event.title}》的报名已于 {show(signup_closes(event), '%m-%d %H:%M')} 截止。"
    result = sign_up(ctx.session, event, ctx.member, ctx.now)
    where = f"\n时间：{event.when()}\n地点：{event.place}"
    if result.outcome == "accepted":
        return f"已确认，你报名了《{event.title}》。{where}"
    if result.outcome == "already":
        if result.position:
            return f"你已在《{event.title}》的候补名单中，第 {result.position} 位。"
        return f"你已报名《{event.title}》。{where}"
    if result.outcome == "waiting":
        return (f"《{event.title}》已满，你已进入候补，第 {result.position} 位。"
                "有人取消时会按顺序通知你，收到通知后请及时确认。")
    return f"报名成功：《{event.title}》。{where}\n活动前会提醒你；到场后扫码或发送“签到 六位数字”签到。"


@router.regex(r"请假\s*#?(\d{1,9})\s*(.*)", who="member", help=("请假 编号 理由", "不能参加需要出席的活动时请假"))
def leave(ctx: Context, number: str, reason: str):
    event = _event(ctx, number)
    if isinstance(event, str):
        return event
    reason = reason.strip()
    if not reason:
        return f"请写明理由，例如：请假 {event.id} 与专业课考试冲突"
    if ctx.now >= event.ends_at:
        return f"《{event.title}》已经结束，不能再请假。"
    mine = standing(ctx.session, event, ctx.member)
    if mine.checkin is not None:
        return f"你已在 {show(mine.checkin.at, '%H:%M')} 签到《{event.title}》，不用请假。"
    request = ask_leave(ctx.session, event, ctx.member, reason, ctx.now)
    if request.status == "approved":
        return f"你的《{event.title}》请假已批准。"
    if request.status == "refused":
        return f"你的《{event.title}》请假没有被批准，如有疑问请联系组织员。"
    return f"已提交《{event.title}》的请假（理由：{request.reason}），组织员审批后会通知你。"


@router.regex(r"签到\s*(\d(?:\s*\d){5})", who="member", help=("签到 六位数字", "用现场屏幕上的数字签到"))
def checkin_by_code(ctx: Context, code: str):
    """The code shown on an event's screen: good in its own period and the next one. Wrong codes are
    limited per member (events.code_tries_per_minute): a million codes cannot be tried one by one.
    The scan is not limited (its code is signed and cannot be guessed)."""
    cfg = ctx.settings.events
    tries = WRONG_CODES.format(member_id=ctx.member.id)
    if int(ctx.store.get(tries) or 0) >= cfg.code_tries_per_minute:
        wait = max(1, round(ctx.store.ttl(tries) or 60))
        return (f"签到码错误次数太多，请 {wait} 秒后再试。扫描屏幕上的二维码签到不受影响。")
    code = "".join(code.split())
    slot = slot_of(ctx.now, cfg.code_rotate_seconds)
    for event in _checkin_open(ctx):
        if code in (code_for(_secret(ctx), event.id, slot), code_for(_secret(ctx), event.id, slot - 1)):
            return _check_in(ctx, event, "code")
    ctx.store.incr(tries, 60)
    return f"签到码不对或已过期（每 {cfg.code_rotate_seconds} 秒更换一次）。请看屏幕上最新的六位数字再发一次。"


@router.regex(r"(取消报名|报名|请假)(.*)", who="member")
def number_usage(ctx: Context, command: str, _rest: str):
    """报名, 取消报名 or 请假 without an event number."""
    example = f"{command} 12 与专业课考试冲突" if command == "请假" else f"{command} 12"
    return f"请在“{command}”后写活动编号，例如：{example}。发送“活动”查看编号。"


@router.regex(r"签到.*", who="member")
def checkin_usage(ctx: Context):
    return "请扫描活动现场屏幕上的二维码签到；扫不了时，发送“签到”加屏幕上的六位数字，例如：签到 123456"


@router.scan(SCENE_PREFIX)
def checkin_by_scan(ctx: Context, scene: str):
    """A scan of the screen's QR code (or a follow by scanning it)."""
    found = read_scene(_secret(ctx), scene)
    event = ctx.session.get(Event, found[0]) if found else None
    if event is None:
        return "这个二维码无效。请扫描活动现场屏幕上的签到二维码。"
    if not slot_is_current(found[1], ctx.now, ctx.settings.events.code_rotate_seconds):
        return "二维码已过期（现场的二维码每隔几秒更换）。请扫描屏幕上当前的二维码。"
    welcome = "欢迎关注！" if ctx.inbound.event == "subscribe_scan" else ""
    if not ctx.bound:
        refusal = checkin_window_refusal(event, ctx.now)
        if refusal:
            return welcome + refusal
        seconds = int((event.checkin_closes - ctx.now).total_seconds())
        ctx.store.set(PENDING_CHECKIN.format(openid=ctx.openid), str(event.id), max(seconds, 1))
        return (f"{welcome}签到《{event.title}》需要先绑定身份。{members.bind_hint(ctx.settings)}\n"
                f"在 {show(event.checkin_closes, '%H:%M')} 前绑定成功，会自动为你签到。")
    return welcome + _check_in(ctx, event, "scan")


@router.event("location")
def location(ctx: Context):
    """WeChat's location report (sent on entering the chat, when the member agreed): kept for the
    geofence for events.location_retention_hours. No reply."""
    message = ctx.inbound.message
    try:
        latitude, longitude = float(message.latitude), float(message.longitude)
    except (TypeError, ValueError):  # an empty or garbled report: nothing to keep, nothing to say
        return None
    if ctx.follower is not None and -90 <= latitude <= 90 and -180 <= longitude <= 180:
        note_location(ctx.session, ctx.openid, latitude, longitude, ctx.now)
    return None


def after_bind(ctx: Context, member: Member) -> str | None:
    """A newcomer who scanned before binding is checked in on binding, within the window."""
    key = PENDING_CHECKIN.format(openid=ctx.openid)
    event_id = ctx.store.get(key)
    if not event_id:
        return None
    ctx.store.delete(key)
    event = ctx.session.get(Event, int(event_id))
    if event is None:
        return None
    return _check_in(ctx, event, "bind", member)


members.AFTER_BIND.append(after_bind)


def _check_in(ctx: Context, event: Event, method: str, member: Member | None = None) -> str:
    member = member or ctx.member
    refusal = checkin_window_refusal(event, ctx.now)
    if refusal:
        return refusal
    if not may_attend(event, member):
        return f"《{event.title}》不面向你所在的组织，不能签到。如有疑问请联系组织员。"
    cfg = ctx.settings.events
    fence = geofence(ctx.session, event, ctx.openid, ctx.now, cfg.location_max_age_minutes)
    if fence.refusal:
        return fence.refusal
    row, new = check_in(ctx.session, event, member, ctx.now, method, fence.flag)
    if not new:
        return f"你已在 {show(row.at, '%H:%M:%S')} 签到《{event.title}》，不用重复签到。"
    if event.points or event.study_hours:
        from models.eventnotices import credit_attendance
        credit_attendance(ctx.session, event, member, ctx.now, ctx.settings)
    late = f"（迟到，活动 {show(event.starts_at, '%H:%M')} 开始）" if row.late else ""
    earned = f"\n获得 {event.points} 积分" if event.points else ""
    hours = f"，学时 {event.study_hours:g} 小时" if event.study_hours else ""
    return f"签到成功{late}：{member.name}\n《{event.title}》 {show(row.at, '%H:%M:%S')}{earned}{hours}"


def _checkin_open(ctx: Context) -> list[Event]:
    """Events whose check-in is open now, whoever they are for: a valid code of another organisation's
    event gets the same answer as a scan of it (not for your organisation), not "wrong code"."""
    near = ctx.session.scalars(select(Event).where(Event.status == "active",
                                                   Event.starts_at.between(ctx.now - timedelta(hours=13),
                                                                           ctx.now + timedelta(hours=13))))
    return [e for e in near if e.checkin_opens <= ctx.now <= e.checkin_closes]


def _event(ctx: Context, number: str) -> Event | str:
    """The event the member named, or what to say when they may not act on it."""
    event = ctx.session.get(Event, int(number))
    if event is None or event.status != "active" or not may_attend(event, ctx.member):
        return "没有这个活动。发送“活动”查看可以参加的活动和编号。"
    if ctx.now >= event.ends_at:
        return f"《{event.title}》已经结束。"
    return event


def _expected(ctx: Context, event: Event) -> str:
    return f"请按时参加（{event.when()}，{event.place}）。不能参加请发送“请假 {event.id} 理由”。"


def _secret(ctx: Context) -> str:
    from flask import current_app
    return current_app.config["SECRET_KEY"]
