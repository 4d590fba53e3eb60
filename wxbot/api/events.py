"""Events from the mini-program: the list with the member's state, sign up, cancel, leave, check in.

The rules and the sentences are models/eventactions.py, the chat's own; one check-in per member and
event whichever way they came (chat code, Official Account scan, mini-program scan or code).
"""
from __future__ import annotations

import re
from urllib.parse import unquote

from flask import current_app, request

from models import eventactions as actions
from models.checkins import note_location
from models.eventactions import Outcome
from models.events import upcoming_events
from models.signups import standing
from models.timeutil import utcnow
from wxbot import services
from wxbot.api import answers, bp, call, problem, spec
from wxbot.api.schemas import ActionOut, CheckinIn, EventList, EventOut, LeaveIn, Page, Paging
from wxbot.db import db

SESSION = {"session": []}
# The status of each refusal: the event is not there for this member, the request was wrong, or the
# event's state forbids it now.
STATUS = {"not_found": 404, "bad_scene": 400, "wrong_code": 400, "no_reason": 400, "too_many_tries": 429}
SCENE_IN_PATH = re.compile(r"[?&]scene=([^&#]+)")
CHECKIN_PAGE = "pages/checkin/index"


def answer(outcome: Outcome, event_id: int | None = None) -> ActionOut:
    """An Outcome as the API answers it: done (200) or refused ({code, message} with its status)."""
    if not outcome.ok:
        raise problem(STATUS.get(outcome.code, 409), outcome.code, outcome.message)
    return ActionOut(code=outcome.code, message=outcome.message, event_id=event_id)


def _event(member, event_id: int):
    event = actions.event_for(db.session, member, event_id, utcnow())
    if isinstance(event, Outcome):
        answer(event)
    return event


@bp.get("/events")
@spec.validate(query=Paging, resp=answers(EventList, 400, 403), tags=["活动"], security=SESSION)
@call()
def events(_user, member):
    """近期活动：面向我的活动和我在每个活动中的状态（分页）。"""
    paging = request.context.query
    cfg = services.settings().events
    rows = upcoming_events(db.session, member, utcnow(), cfg.list_days)
    start = (paging.page - 1) * paging.per_page
    items = []
    for event in rows[start:start + paging.per_page]:
        mine = standing(db.session, event, member)
        items.append(EventOut(id=event.id, title=event.title, kind=event.kind, starts_at=event.starts_at,
                              ends_at=event.ends_at, place=event.place, signup_required=event.signup_required,
                              state=mine.label(event),
                              registration=mine.registration.status if mine.registration is not None else None,
                              checked_in_at=mine.checkin.at if mine.checkin is not None else None))
    return EventList(items=items, paging=Page(page=paging.page, per_page=paging.per_page, total=len(rows)))


@bp.post("/events/<int:event_id>/signup")
@spec.validate(resp=answers(ActionOut, 403, 404, 409), tags=["活动"], security=SESSION)
@call(write=True)
def sign_up(_user, member, event_id: int):
    """报名：满员时进入候补。"""
    return answer(actions.register(db.session, _event(member, event_id), member, utcnow()), event_id)


@bp.post("/events/<int:event_id>/cancel")
@spec.validate(resp=answers(ActionOut, 403, 404, 409), tags=["活动"], security=SESSION)
@call(write=True)
def cancel(_user, member, event_id: int):
    """取消报名或候补（活动开始前）。"""
    event = _event(member, event_id)
    return answer(actions.cancel(db.session, event, member, utcnow(), services.settings()), event_id)


@bp.post("/events/<int:event_id>/leave")
@spec.validate(json=LeaveIn, resp=answers(ActionOut, 400, 403, 404, 409), tags=["活动"], security=SESSION)
@call(write=True)
def leave(_user, member, event_id: int):
    """请假：组织员审批后通知。"""
    event = _event(member, event_id)
    return answer(actions.leave(db.session, event, member, request.context.json.reason, utcnow()), event_id)


@bp.post("/checkin")
@spec.validate(json=CheckinIn, resp=answers(ActionOut, 400, 403, 404, 409), tags=["活动"], security=SESSION)
@call(write=True)
def check_in(user, member):
    """签到：扫描现场屏幕上的小程序码（wx.scanCode 返回的 path），或输入屏幕上的六位数字。"""
    body = request.context.json
    now, settings, secret = utcnow(), services.settings(), current_app.config["SECRET_KEY"]
    if body.latitude is not None and body.longitude is not None:  # shared by the member for this check-in
        note_location(db.session, user.openid, body.latitude, body.longitude, now)
    if body.path:
        scene = scene_of_path(body.path)
        event = actions.event_of_scene(db.session, scene, now, settings, secret) if scene else None
        if event is None:
            event = actions.refused("bad_scene", "这个二维码无效。请扫描活动现场屏幕上的签到码。")
        if isinstance(event, Outcome):
            return answer(event)
        outcome = actions.attend(db.session, event, member, now, "mini_scan", settings, user.openid)
        return answer(outcome, event.id)
    if body.code:
        outcome = actions.attend_by_code(db.session, services.store(), member, body.code, now, settings, secret,
                                         "mini_code", user.openid)
        return answer(outcome, outcome.checkin.event_id if outcome.checkin is not None else None)
    raise problem(400, "invalid_request", "请扫描屏幕上的签到码，或输入屏幕上的六位数字。")


def scene_of_path(path: str) -> str:
    """The scene of a scanned mini-program code's path: URL-encoded on iOS
    ("pages%2Fcheckin%2Findex%3Fscene%3D12.3.ab"), raw on Android ("pages/checkin/index?scene=12.3.ab"),
    the scene itself perhaps encoded once more."""
    for _ in range(3):
        found = SCENE_IN_PATH.search(path)
        if found and "%" not in found.group(1):
            return found.group(1)
        if "%" not in path:
            return found.group(1) if found else ""
        path = unquote(path)
    return ""


def mini_scene(scene: str) -> str:
    """The mini-program code's scene for a check-in scene of the Official Account's QR code: the same
    signed value without its prefix (at most 32 characters, as WeChat requires)."""
    from models.checkins import SCENE_PREFIX
    return scene.removeprefix(SCENE_PREFIX)
