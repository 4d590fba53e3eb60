"""The inbox channel's two moments: a message is put to wait (by the engine), and the member's next
interaction releases what waits into the window it opens (by the pipeline, after the reply).

A mark in the store says that someone has messages waiting, so the webhook learns it from the read
it makes anyway for each message (no database query on the hot path for everyone else).
"""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import Flask

from models.followers import follower_for, record_interaction
from models.inbox import release, waiting_count
from models.timeutil import utcnow
from wxbot import services
from wxbot.errors import report_failure
from wxbot.store import Store

MARK_TTL = 31 * 24 * 3600  # longer than any campaign's expiry; a stale mark costs one query


def inbox_mark(openid: str) -> str:
    return f"inbox:{openid}"


def note_waiting(store: Store, openids: set[str]) -> None:
    for openid in openids:
        store.set(inbox_mark(openid), "1", MARK_TTL)


def release_on_interaction(app: Flask, openid: str, kind: str, at: datetime) -> None:
    """Record the window this interaction opened, then release as many waiting messages as it holds,
    keeping one message for "你还有 N 条未读通知" when more wait than that. Runs after the reply."""
    store = services.store(app)
    try:
        with app.app_context():
            from wxbot.db import db
            session = db.session
            follower = follower_for(session, openid, at)
            record_interaction(follower, kind, at, services.settings(app).wechat)
            session.flush()
            room = follower.cs_window_left if follower.cs_window_until and follower.cs_window_until > utcnow() else 0
            waiting = waiting_count(session, openid)
            if waiting > room:
                room -= 1  # the last message of the window tells what still waits
            result = release(session, openid, room, at, services.settings(app).delivery.inbox_days)
            if result.left:
                _tell_what_waits(session, follower, result.left, at)
            session.commit()
            if not result.left:
                store.delete(inbox_mark(openid))
    except Exception as exc:  # the messages keep waiting for the next interaction
        report_failure(f"inbox release for {openid[:6]}…", exc)


def _tell_what_waits(session, follower, left: int, at: datetime) -> None:
    from models.accounts import Scope
    from models.delivery import create_campaign
    # A moment after the released messages (sent in parallel, their order is not fixed), so it comes last.
    campaign = create_campaign(session, "未读通知", Scope(None), {}, {
        "text": f"你还有 {left} 条未读通知。发送“通知”查看，之后每次互动会继续送达。"}, at + timedelta(seconds=2),
        recipients=[(follower.openid, follower.member_id)])
    campaign.audience_label = "未读通知提示"
    campaign.expires_at = at + timedelta(minutes=1)
