"""One inbound message, from parsed XML to reply: dedup, follower, routing, budget, message log.

WeChat delivers a message up to four times when it gets no answer in 5 s. The first delivery claims
the message (store.add on its dedup key) and runs the handler; every other delivery waits for the
first one's reply and gets the same. A handler still running when the reply budget is spent is
left to finish in the background: WeChat gets `success` and the reply goes out through the
customer-service API.
"""
from __future__ import annotations

import contextvars
import os
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime, timedelta

from flask import Flask, g
from wechatpy.messages import BaseMessage

from models.followers import TOUCH_PRECISION, follower_for, profile_of, record_interaction, spend_window_message
from models.timeutil import utcnow
from wxbot import services
from wxbot.conversation import Conversation, conversation_key
from wxbot.db import db
from wxbot.delivery.inbox import inbox_mark, release_on_interaction
from wxbot.errors import report_failure
from wxbot.logwriter import INTERACTIONS, encode_interaction
from wxbot.logwriter import QUEUE as LOG_QUEUE
from wxbot.metrics import APOLOGIES, HANDLER_SECONDS, LATE_REPLIES, handler_name
from wxbot.profiles import (
    PROFILE_TTL,
    current_generation,
    generation_of,
    identity_keys,
    profile_key,
    stored_profile,
    valid_profile,
)
from wxbot.redelivery import PENDING, first_reply, pending_mark, user_lock
from wxbot.replies import dedup_key, describe, mask, render, reply_summary
from wxbot.router import Context, Inbound, read_inbound
from wxbot.store import LockTimeout

APOLOGY = "抱歉，系统暂时出了点问题，我们已记录下来。请稍后再试，或发送“帮助”查看可用功能。"
BUSY = "上一条消息还在处理中，请稍等几秒再发。"
RECENT_LIMIT = 100_000  # senders remembered per process for _interaction_news


class _Job:
    """Who delivers the reply: the request (claimed in time) or the background (late)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.claimed = False
        self.late = False

    def claim(self) -> bool:
        """The request will deliver the reply (True), or the budget is spent and it is ours (False)."""
        with self.lock:
            self.claimed = not self.late
            return self.claimed


def _known(profile, inbound: Inbound) -> bool:
    """A sender whose profile is current and who neither follows nor unfollows with this message
    (those change the follower, in the database)."""
    return profile is not None and profile.subscribed and inbound.event not in ("subscribe", "unsubscribe")


def _conversation_writes(conversation: Conversation, writes: _Writes) -> None:
    writes.sets.extend(conversation.notes)
    if conversation.pending is not None:
        key, payload, ttl = conversation.pending
        if payload is None:
            writes.deletes.append(key)
        else:
            writes.sets.append((key, payload, ttl))


def _commit() -> None:
    """Commit the message's work, if it used the database at all (most messages do not)."""
    session = g.get("db_session")
    if session is not None and session.in_transaction():
        session.commit()


class _Writes:
    """What a message leaves in the store, written with its last round trip."""

    def __init__(self):
        self.sets: list[tuple[str, str, float | None]] = []
        self.deletes: list[str] = []
        self.pushes: list[tuple[str, str]] = []


class TracedPool(ThreadPoolExecutor):
    """Runs each task in a copy of the submitter's context: the message's request id follows it
    into the handler thread (and onto the campaigns the handler creates)."""

    def submit(self, fn, /, *args, **kwargs):
        return super().submit(contextvars.copy_context().run, fn, *args, **kwargs)


def arrival(inbound: Inbound, now: datetime) -> datetime:
    """When the message reached us, on the clock that gave `now`: the window it opened starts then,
    however long it waited for the sender's previous message."""
    return now - timedelta(seconds=max(0.0, time.time() - inbound.received_at))


class Pipeline:
    """Two store round trips per message when the sender's profile is known: one to claim the
    message, take the sender's lock and read their conversation and profile; one to store the reply,
    the conversation, the log entries and the interaction, and free the lock. A handler that
    answers from the profile needs no database at all."""

    def __init__(self, app: Flask):
        self.app = app
        self.settings = services.settings(app)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0
        self._pool_lock = threading.Lock()
        self._recent: dict[tuple[str, str], float] = {}  # (openid, kind) -> when last recorded here

    @property
    def pool(self) -> ThreadPoolExecutor:
        # Built lazily and per process: a pool must not cross gunicorn's fork.
        if self._pool is None or self._pool_pid != os.getpid():
            with self._pool_lock:
                if self._pool is None or self._pool_pid != os.getpid():
                    self._pool = TracedPool(self.settings.wechat.handler_threads, "wxbot-handler")
                    self._pool_pid = os.getpid()
        return self._pool

    @property
    def store(self):
        return services.store(self.app)

    def answer(self, message: BaseMessage, started: float) -> str:
        """The reply XML (unencrypted) or `success`, within the reply budget."""
        wechat = self.settings.wechat
        inbound = read_inbound(message)
        key = dedup_key(message)
        if inbound.is_callback:  # answer job callbacks at once, record after
            if not self.store.add(key, PENDING, wechat.dedup_ttl):
                return self._first_reply(key, started, PENDING)
            self.pool.submit(self._run_callback, inbound)
            self.store.set(key, "success", wechat.dedup_ttl)
            return "success"
        token = secrets.token_hex(8)
        begun = self.store.begin_message(
            key, pending_mark(token), wechat.dedup_ttl, user_lock(inbound.openid), token,
            self.settings.conversation.lock_timeout,
            [conversation_key(inbound.openid), inbox_mark(inbound.openid), *identity_keys(inbound.openid)])
        if not begun.claimed:
            reply = self._first_reply(key, started, begun.existing, inbound.openid)
            if reply is None:  # the first delivery's process died with it: this one handles it
                return self.answer(message, started)
            return reply
        # Messages wait for this member: the window this interaction opens carries them, released once
        # the handler is done (so that 通知 still lists them), after the reply.
        mark = begun.values[1]
        releases = bool(mark) and inbound.interaction and inbound.event != "unsubscribe"
        if begun.locked:
            reply = self._quick_reply(inbound, key, begun.values, token)
            if reply is not None:
                if releases:
                    self._release_waiting(inbound, mark)
                return reply
        job = _Job()
        future = self.pool.submit(self._run, inbound, key, job, begun, token)
        if releases:
            future.add_done_callback(lambda _done: self._release_waiting(inbound, mark))
        try:
            return future.result(timeout=max(0.0, started + wechat.reply_budget - time.monotonic()))
        except FutureTimeout:
            return self._late_or_wait(key, job, future)

    def _release_waiting(self, inbound: Inbound, mark: str) -> None:
        self.pool.submit(release_on_interaction, self.app, inbound.openid, inbound.interaction,
                         arrival(inbound, utcnow()), mark)

    def _quick_reply(self, inbound: Inbound, key: str, values, token: str) -> str | None:
        """A known sender whose message a quick handler answers (from the profile alone): answered
        here in the request thread, with no handoff to the handler pool; None for anything else."""
        saved_conversation, _mark, saved_profile, school, personal = values
        profile = valid_profile(saved_profile, generation_of(school, personal)) if school else None
        if not _known(profile, inbound):
            return None
        now = utcnow()
        conversation = self._conversation(inbound, saved_conversation)
        dispatcher = services.dispatcher(self.app)
        ctx = Context(inbound, profile, self.store, conversation, self.settings, now, dispatcher, quick=True)
        route = dispatcher.route(ctx)
        if route is None or not route.quick:
            return None
        try:
            with HANDLER_SECONDS.labels(handler_name(route.func)).time():
                reply = route.run(ctx)
        except Exception as exc:  # the one error hook
            report_failure(f"handler for {mask(inbound.openid)} ({inbound.msgtype} {inbound.event})", exc)
            APOLOGIES.inc()
            conversation.pending, conversation.notes, reply = None, [], APOLOGY
        writes = _Writes()
        self._note_interaction(inbound, arrival(inbound, now), writes)
        _conversation_writes(conversation, writes)
        self._log(inbound, profile, reply, now, writes)
        rendered = render(reply, inbound.message, self.settings.wechat.text_reply_max_bytes)
        writes.sets.insert(0, (key, rendered, self.settings.wechat.dedup_ttl))
        self.store.finish_message(writes.sets, writes.deletes, writes.pushes, (user_lock(inbound.openid), token))
        return rendered

    def _conversation(self, inbound: Inbound, saved: str | None) -> Conversation:
        return Conversation(self.store, inbound.openid, self.settings.conversation.state_ttl, saved=saved,
                            deferred=True)

    def _note_interaction(self, inbound: Inbound, now, writes: _Writes) -> None:
        """A known sender's interaction, recorded off the reply path (at most once a minute per kind)."""
        kind = inbound.interaction or ""
        if self._interaction_news(inbound.openid, kind):
            writes.pushes.append((INTERACTIONS, encode_interaction(inbound.openid, kind, now)))

    def _late_or_wait(self, key: str, job: _Job, future) -> str:
        with job.lock:
            job.late = not job.claimed
        if not job.late:
            return future.result()
        LATE_REPLIES.inc()
        self.store.set(key, "success", self.settings.wechat.dedup_ttl)  # what WeChat's retries get
        return "success"

    def _first_reply(self, key: str, started: float, stored: str | None, openid: str = "") -> str | None:
        """A retry: the first delivery's reply (see wxbot/redelivery.py); None when this one took over."""
        return first_reply(self.store, key, started + self.settings.wechat.reply_budget, stored, openid,
                           self.settings.wechat.reply_budget)


    def _run(self, inbound: Inbound, key: str, job: _Job, begun, token: str) -> str:
        """Handle one message with the sender's lock held; never raises: a failure here (even after
        the reply budget, when nobody waits for the result) goes to the error hook and the user gets
        the apology. The reply is stored for retries and the lock freed in one last round trip."""
        wechat, writes = self.settings.wechat, _Writes()
        held, reply = begun.locked, None
        with self.app.app_context():
            try:
                values = begun.values
                if not held:  # the sender's previous message is still being handled: wait for it
                    self.store.wait_lock(user_lock(inbound.openid), token, self.settings.conversation.lock_timeout,
                                         wechat.reply_budget * 0.75)
                    held = True
                    values = tuple(self.store.get(k) for k in (conversation_key(inbound.openid),
                                                                inbox_mark(inbound.openid),
                                                                *identity_keys(inbound.openid)))
                reply = self._handle_and_reply(inbound, job, values, writes)
            except LockTimeout:
                reply = render(BUSY, inbound.message, wechat.text_reply_max_bytes)
            except Exception as exc:  # the one error hook; the database or the store may be down
                report_failure(f"message handling for {mask(inbound.openid)} ({inbound.msgtype} {inbound.event})", exc)
                APOLOGIES.inc()
                reply = render(APOLOGY, inbound.message, wechat.text_reply_max_bytes)
            delivered_by_request = job.claim()
            writes.sets.insert(0, (key, reply if delivered_by_request else "success", wechat.dedup_ttl))
            try:
                self.store.finish_message(writes.sets, writes.deletes, writes.pushes,
                                          (user_lock(inbound.openid), token) if held else None)
            except Exception as exc:  # the reply still goes out; the lock expires on its own
                report_failure(f"storing the reply for {mask(inbound.openid)}", exc)
        return reply

    def _handle_and_reply(self, inbound: Inbound, job: _Job, values, writes: _Writes) -> str:
        now = utcnow()
        saved_conversation, _mark, saved_profile, seen_generation, personal = values
        generation = generation_of(current_generation(self.store, seen_generation), personal)
        profile = valid_profile(saved_profile, generation)
        known = _known(profile, inbound)
        if known:
            self._note_interaction(inbound, arrival(inbound, now), writes)
            follower = None
        else:  # first contact, a follow or unfollow, or a profile out of date: the database
            follower = self._touch(inbound, db.session, arrival(inbound, now))
            profile = profile_of(follower)
        conversation = self._conversation(inbound, saved_conversation)
        reply = self._handle(inbound, profile, follower, conversation, now)
        in_time = job.claim()
        _commit()
        _conversation_writes(conversation, writes)
        if not known and inbound.event != "unsubscribe":  # read under `generation`: valid until a change
            writes.sets.append((profile_key(inbound.openid), stored_profile(profile, generation), PROFILE_TTL))
        if not in_time:
            self._log(inbound, profile, None, now, writes)
            self._send_late(inbound, profile, reply, now)
            return "success"
        self._log(inbound, profile, reply, now, writes)
        return render(reply, inbound.message, self.settings.wechat.text_reply_max_bytes)

    def _handle(self, inbound: Inbound, profile, follower, conversation, now):
        """Run the dispatcher; any error becomes the apology (and the conversation stays as it was)."""
        dispatcher = services.dispatcher(self.app)
        ctx = Context(inbound, profile, self.store, conversation, self.settings, now, dispatcher, follower)
        try:
            route = dispatcher.route(ctx)
            with HANDLER_SECONDS.labels(handler_name(route.func) if route else "none").time():
                reply = route.run(ctx) if route is not None else None
            if "db_session" in g:
                db.session.flush()
        except Exception as exc:  # the one error hook: detail to the log, a safe reply to the user
            report_failure(f"handler for {mask(inbound.openid)} ({inbound.msgtype} {inbound.event})", exc)
            if "db_session" in g:
                db.session.rollback()
            conversation.pending, conversation.notes = None, []
            if follower is not None:  # the interaction is recorded all the same
                self._touch(inbound, db.session, arrival(inbound, now))
            APOLOGIES.inc()
            reply = APOLOGY
        return reply

    def _run_callback(self, inbound: Inbound) -> None:
        """A job callback (a template or mass send finished): no sender, no reply."""
        with self.app.app_context():
            try:
                conversation = Conversation(self.store, inbound.openid, self.settings.conversation.state_ttl)
                dispatcher = services.dispatcher(self.app)
                dispatcher.dispatch(Context(inbound, None, self.store, conversation, self.settings, utcnow(),
                                            dispatcher))
                _commit()
            except Exception as exc:  # the one error hook
                report_failure(f"callback {inbound.event}", exc)

    def _log(self, inbound: Inbound | None, profile, reply, now, writes: _Writes | None = None,
             channel: str = "reply") -> None:
        """The message and its reply in the message log (not after an unfollow)."""
        if profile is None or not profile.subscribed or (inbound is not None and inbound.event == "unsubscribe"):
            return
        writer = services.logwriter(self.app)
        entries = []
        if inbound is not None:
            kind, content = describe(inbound)
            entries.append(dict(openid=profile.openid, member_id=profile.member_id, direction="in", kind=kind,
                                content=content, created_at=now))
        if reply is not None:
            entries.append(dict(openid=profile.openid, member_id=profile.member_id, direction="out", kind=channel,
                                content=reply_summary(reply), created_at=now))
        for entry in entries:
            if writes is not None:
                writes.pushes.append((LOG_QUEUE, writer.encode(entry)))
            else:
                writer.add(**entry)

    def _interaction_news(self, openid: str, kind: str) -> bool:
        """Whether this interaction may change what the database holds: the times are kept to
        TOUCH_PRECISION, so a sender's interactions of one kind within it are recorded once per
        process (a burst of answers costs one write a minute, not one each)."""
        now, key = time.monotonic(), (openid, kind)
        last = self._recent.get(key)
        if last is not None and now - last < TOUCH_PRECISION.total_seconds():
            return False
        if len(self._recent) > RECENT_LIMIT:
            self._recent.clear()
        self._recent[key] = now
        return True

    def _touch(self, inbound: Inbound, session, now):
        follower = follower_for(session, inbound.openid, now)
        if inbound.event != "unsubscribe":
            record_interaction(follower, inbound.interaction or "", now, self.settings.wechat)
        return follower

    def _send_late(self, inbound: Inbound, profile, reply, now) -> None:
        """The budget was spent: the reply goes out through the customer-service API."""
        if reply is None or profile is None or not profile.subscribed or inbound.event == "unsubscribe":
            return
        from wxbot.outbound import send_customer_service

        channel = send_customer_service(inbound.openid, reply)
        if channel == "customer_service":  # the engine counts on the same window: never a 6th message
            # The window this message opened is recorded first (the queued record may not be applied
            # yet); applied again later, it no longer gives back the message spent here.
            self._touch(inbound, db.session, arrival(inbound, now))
            spend_window_message(db.session, inbound.openid, utcnow())
            db.session.commit()
        self._log(None, profile, reply, utcnow(), channel=channel)
