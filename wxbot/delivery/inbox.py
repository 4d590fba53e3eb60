"""The inbox channel's two moments: a message is put to wait (by the engine), and the member's next
interaction releases what waits into the window it opens (by the pipeline, after the reply).

A mark in the store says that someone has messages waiting, so the webhook learns it from the read
it makes anyway for each message (no database query on the hot path for everyone else). The
database is the truth and the mark only a cache of it: the engine writes the mark before it commits
a waiting message (a crash in between leaves at worst a mark with nothing behind it), and the
delivery worker rebuilds the marks from the database when it starts and every
delivery.inbox_marks_every_seconds (a restarted embedded store, a flushed Redis). A release deletes
the mark only if nobody wrote it again meanwhile.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import select

from models.delivery import ONLY_NOW, Delivery, create_campaign
from models.followers import follower_for, record_interaction
from models.inbox import NOTE_CREATOR, WAITING, open_count, release, waiting_count
from models.timeutil import utcnow
from wxbot import services
from wxbot.errors import report_failure
from wxbot.store import Store

MARK_TTL = 31 * 24 * 3600  # longer than any campaign's expiry; a stale mark costs one query
MARK_CHUNK = 500  # marks written per store round trip when rebuilding


def inbox_mark(openid: str) -> str:
    return f"inbox:{openid}"


def mark_value() -> str:
    """Each write of a mark is told apart, so that a release never deletes a mark written after it read."""
    return str(time.time_ns())


def note_waiting(store: Store, openids: set[str]) -> None:
    value = mark_value()
    for start in range(0, len(openids), MARK_CHUNK):
        chunk = sorted(openids)[start:start + MARK_CHUNK]
        store.finish_message([(inbox_mark(openid), value, MARK_TTL) for openid in chunk], [], [], None)


def rebuild_marks(session, store: Store) -> int:
    """Write the mark of every member with a waiting message (the database says who); returns how many."""
    openids = set(session.scalars(select(Delivery.openid).where(Delivery.status == WAITING).distinct()))
    session.commit()
    note_waiting(store, openids)
    return len(openids)


def release_on_interaction(app: Flask, openid: str, kind: str, at: datetime, seen_mark: str | None = None) -> None:
    """Record the window this interaction opened, then release as many waiting messages as it holds
    (less what is already on its way to the member through it), keeping one message for "你还有 N
    条未读通知" when more wait than that. One member's releases take turns: two messages at once
    share one window. Runs after the reply."""
    store = services.store(app)
    try:
        with store.lock(f"inbox-release:{openid}", timeout=30, wait=10), app.app_context():
            from wxbot.db import db
            left = _release(db.session, openid, kind, at, services.settings(app))
        if not left and seen_mark is not None:
            store.delete_if(inbox_mark(openid), seen_mark)
    except Exception as exc:  # the messages keep waiting for the next interaction
        report_failure(f"inbox release for {openid[:6]}…", exc)


def _release(session, openid: str, kind: str, at: datetime, settings) -> int:
    follower = follower_for(session, openid, at)
    record_interaction(follower, kind, at, settings.wechat)
    session.flush()
    window = follower.cs_window_left if follower.cs_window_until and follower.cs_window_until > utcnow() else 0
    room = window - open_count(session, openid)
    if waiting_count(session, openid) > room:
        room -= 1  # the last message of the window tells what still waits
    result = release(session, openid, room, at, settings.delivery.inbox_days)
    if result.left and room >= 0:
        _tell_what_waits(session, follower, result.left, at)
    session.commit()
    return result.left


def _tell_what_waits(session, follower, left: int, at: datetime) -> None:
    from models.accounts import Scope
    # Only now, only in this window: never itself a waiting notice. A moment after the released
    # messages, and last in the member's order.
    campaign = create_campaign(session, NOTE_CREATOR, Scope(None), {}, {
        "text": f"你还有 {left} 条未读通知。发送“通知”查看，之后每次互动会继续送达。"}, at + timedelta(seconds=2),
        recipients=[(follower.openid, follower.member_id)], excluded=ONLY_NOW)
    campaign.audience_label = "未读通知提示"
    campaign.expires_at = at + timedelta(minutes=1)
