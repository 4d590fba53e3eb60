"""活动, 报名, 取消报名, 请假 and 签到 (by scanning the screen's QR code, or by its 6-digit code).

An event's number in the chat is its id, so a number read in 活动 means the same event however the
list changes before the member answers. A scan is answered with the passive reply: the window a
scan opens is only 3 messages in a minute, and a check-in is what the member is waiting to see.
"""
from __future__ import annotations

from handlers import members
from models import eventactions as actions
from models.checkins import SCENE_PREFIX, checkin_window_refusal, note_location
from models.eventactions import Outcome
from models.events import Event, upcoming_events
from models.members import Member
from models.signups import standing
from models.timeutil import show
from wxbot.router import Context, Router

router = Router("events", topic="活动",
                display=("活动", "报名 编号", "取消报名 编号", "请假 编号 理由", "签到 六位数字"))
# An unbound member who scanned: checked in automatically if they bind before check-in closes.
PENDING_CHECKIN = "checkin:pending:{openid}"


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
    if isinstance(event, Outcome):
        return event.message
    return actions.cancel(ctx.session, event, ctx.member, ctx.now, ctx.settings).message


@router.regex(r"报名\s*#?(\d{1,9})", who="member", help=("报名 编号", "报名活动，满员时进入候补"))
def register(ctx: Context, number: str):
    event = _event(ctx, number)
    if isinstance(event, Outcome):
        return event.message
    return actions.register(ctx.session, event, ctx.member, ctx.now).message


@router.regex(r"请假\s*#?(\d{1,9})\s*(.*)", who="member", help=("请假 编号 理由", "不能参加需要出席的活动时请假"))
def leave(ctx: Context, number: str, reason: str):
    event = _event(ctx, number)
    if isinstance(event, Outcome):
        return event.message
    return actions.leave(ctx.session, event, ctx.member, reason, ctx.now).message


@router.regex(r"签到\s*(\d(?:\s*\d){5})", who="member", help=("签到 六位数字", "用现场屏幕上的数字签到"))
def checkin_by_code(ctx: Context, code: str):
    """The code shown on an event's screen (its rules: models/eventactions.attend_by_code)."""
    return actions.attend_by_code(ctx.session, ctx.store, ctx.member, code, ctx.now, ctx.settings, _secret(ctx),
                                  "code", ctx.openid).message


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
    event = actions.event_of_scene(ctx.session, scene, ctx.now, ctx.settings, _secret(ctx))
    if isinstance(event, Outcome):
        return event.message
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
    return actions.attend(ctx.session, event, member or ctx.member, ctx.now, method, ctx.settings, ctx.openid).message


def _event(ctx: Context, number: str) -> Event | Outcome:
    return actions.event_for(ctx.session, ctx.member, int(number), ctx.now)


def _secret(ctx: Context) -> str:
    from flask import current_app
    return current_app.config["SECRET_KEY"]
