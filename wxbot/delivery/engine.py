"""The delivery worker: claim a batch, choose each recipient's channel, send, mark.

Every state change is a row update: a worker killed at any moment loses nobody. A dead worker's
claims are taken over as soon as it is known dead (its pid gone on this host, its heartbeat
stopped elsewhere; the lease as the last resort). Only the deliveries it had handed to WeChat
(dispatched, at most `in_flight`) are flagged 'possibly duplicated': it may have died between
WeChat's acceptance and its own commit. The others are simply sent again.
"""
from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from flask import Flask
from sqlalchemy import bindparam, select, update

from models.channelsettings import ChannelPolicy, channel_policy
from models.delivery import Campaign, Delivery, MassJob, SubscriptionCredit
from models.followers import Follower
from models.miniprogram import mini_reach
from models.timeutil import utcnow
from wxbot import services
from wxbot.api.wechat import NotConfigured
from wxbot.delivery.channels import choose_channel, reach_of
from wxbot.delivery.claims import claim, finish_campaigns, release_dead_claims, start_due_campaigns
from wxbot.delivery.inbox import note_waiting, rebuild_marks
from wxbot.delivery.outcomes import FollowerWrites, apply_outcome, mark
from wxbot.delivery.send import Outcome, TokenBucket, send_mass, send_mass_by_tag, send_one
from wxbot.errors import report_failure
from wxbot.heartbeat import Beater
from wxbot.links import make_token, page_url
from wxbot.metrics import DELIVERIES

logger = logging.getLogger(__name__)
MASS_BATCH = 10000
# What marking a delivery may change; one prepared statement writes a whole gathering of outcomes.
MARKED_COLUMNS = ("status", "channel", "refused_channels", "attempts", "last_error", "next_attempt_at", "claimed_by",
                  "dispatched_at", "sent_at", "wechat_msgid")
_deliveries = Delivery.__table__
MARK_DELIVERIES = (update(_deliveries).where(_deliveries.c.id == bindparam("delivery_id"))
                   .values({column: bindparam(column) for column in MARKED_COLUMNS}))


RECEIPT_PURPOSE = "receipt"


def read_link(app: Flask, campaign: Campaign, delivery: Delivery) -> str:
    """The article's link for one recipient: /r/<sealed delivery id> records the read."""
    if campaign.kind != "article":
        return ""
    return page_url(app, f"/r/{make_token(app, RECEIPT_PURPOSE, delivery.id)}")


@dataclass(frozen=True)
class Task:
    """One single-recipient send, as the sender threads see it: plain values, no database rows."""

    delivery_id: int
    openid: str
    channel: str
    campaign: Campaign
    link: str
    to: str = ""  # another openid to send to: the member's mini-program user's (mini_subscribe)


def in_recipients_order(delivery: Delivery) -> tuple:
    """A recipient's messages in the order they should arrive: as released from the inbox (most
    urgent first, the "still waiting" note last), then as created."""
    return (delivery.openid, delivery.next_attempt_at is None, delivery.next_attempt_at or datetime.min, delivery.id)


class DeliveryWorker:
    """Claims, sends and marks as a stream: the senders never wait for a whole batch to come back.

    Only the calling thread touches the database; the sender threads make the API calls and hand
    their outcomes back through a queue. A claim is topped up while the senders still have work, so
    at most batch_size + in_flight deliveries are claimed and unmarked at any moment.
    """

    HOUSEKEEPING_SECONDS = 1.0
    MARK_GATHER_SECONDS = 0.01  # a commit per ten milliseconds at most, not one per outcome

    def __init__(self, app: Flask, name: str | None = None):
        self.app = app
        settings = services.settings(app)
        self.policy = ChannelPolicy(settings.delivery, settings.wechat.account_type, None,  # read again each step
                                    settings.miniprogram)
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        self.bucket = TokenBucket(self.policy.rate_per_second)
        self.pool = ThreadPoolExecutor(self.policy.in_flight, "wxbot-delivery")
        self.sessions = services.sessions(app)
        self.beat = Beater(app, "worker")
        self.dead_after = settings.health.dead_after_seconds

    def run(self, stop: threading.Event) -> None:
        """Work until `stop` is set; idle rounds wait poll_seconds. The inbox marks are rebuilt from
        the database at start and every delivery.inbox_marks_every_seconds."""
        logger.info("delivery worker %s started", self.name)
        rebuilt = None
        while not stop.is_set():
            self.beat()
            if rebuilt is None or time.monotonic() - rebuilt > self.policy.inbox_marks_every_seconds:
                self.rebuild_marks()
                rebuilt = time.monotonic()
            try:
                busy = self.step(batches=None, stop=stop)
            except Exception as exc:  # a database hiccup must not end the worker; the next round retries
                report_failure("delivery round", exc)
                busy = 0
            if not busy:
                stop.wait(self.policy.poll_seconds)

    def rebuild_marks(self) -> int:
        """The store's inbox marks, written again from the database (a store restarted or flushed
        loses them; a member owed a message must not wait for its expiry)."""
        try:
            with self.sessions() as session:
                return rebuild_marks(session, services.store(self.app))
        except Exception as exc:  # the next round tries again
            report_failure("rebuilding the inbox marks", exc)
            return 0

    def step(self, now: datetime | None = None, batches: int | None = 1, stop: threading.Event | None = None) -> int:
        """Start due campaigns, then claim up to `batches` batches (None: while any is due), send
        them and mark every outcome; returns the number of deliveries handled. `now` fixes the clock."""
        clock = (lambda: now) if now is not None else utcnow
        with self.sessions() as session:
            # The channels as the admins last set them in the console (over config.yaml's).
            self.policy = channel_policy(session, services.settings(self.app))
            release_dead_claims(session, clock(), self.dead_after)
            start_due_campaigns(session, clock())
            handled = self._stream(session, clock, batches, stop)
            finish_campaigns(session, clock(), self.policy.inbox_days)
        return handled

    def _stream(self, session, clock, batches: int | None, stop: threading.Event | None) -> int:
        from wxbot.outbound import wechat_client
        with self.app.app_context():
            client = wechat_client()
        outcomes: queue.Queue = queue.Queue()
        waiting: dict[int, tuple[Delivery, Follower | None]] = {}  # claimed, not yet marked
        ready: deque[Task] = deque()  # claimed and planned, not yet handed to the senders
        busy: set[str] = set()  # recipients with a send out: one at a time each, in their order
        campaigns: dict[int, Campaign] = {}
        handled, claims, exhausted, housekept = 0, 0, False, time.monotonic()
        while True:
            may_claim = not exhausted and (batches is None or claims < batches) and not (stop and stop.is_set())
            if may_claim and len(waiting) <= self.policy.in_flight:  # top up while the senders are busy
                batch = claim(session, self.name, self.policy.batch_size, clock(), self.policy.lease_seconds)
                claims, exhausted = claims + 1, not batch  # nothing due: finish what is out, then return
                handled += len(batch)
                for task, delivery, follower in self._plan(session, batch, campaigns, clock()):
                    waiting[task.delivery_id] = (delivery, follower)
                    ready.append(task)
            if not waiting:
                session.commit()
                return handled
            if len(waiting) > len(ready):  # sends are out: mark what came back
                self._mark_outcomes(session, outcomes, waiting, campaigns, clock(), busy)
            self._dispatch(session, client, ready, outcomes, self.policy.in_flight - (len(waiting) - len(ready)),
                           clock(), busy)
            if time.monotonic() - housekept > self.HOUSEKEEPING_SECONDS:
                finish_campaigns(session, clock(), self.policy.inbox_days)  # shown done as soon as it is
                start_due_campaigns(session, clock())
                release_dead_claims(session, clock(), self.dead_after)
                self.beat(session)
                housekept = time.monotonic()

    def _dispatch(self, session, client, ready: deque, outcomes: queue.Queue, free: int, now: datetime,
                  busy: set[str]) -> None:
        """Hand up to `free` ready sends to the senders, after committing (with the marks gathered
        before) that they are about to reach WeChat: a crash then flags exactly these. A recipient
        has one send out at a time, so that their messages arrive in the order planned (the most
        urgent first) and each send sees the window the one before left."""
        tasks, held = [], deque()
        while ready and len(tasks) < free:
            task = ready.popleft()
            if task.openid in busy:
                held.append(task)
            else:
                busy.add(task.openid)
                tasks.append(task)
        ready.extendleft(reversed(held))
        if tasks:
            session.connection().execute(update(_deliveries).where(_deliveries.c.id.in_([t.delivery_id for t in tasks]))
                                         .values(dispatched_at=now))
        session.commit()
        for task in tasks:
            self.pool.submit(self._send, client, task, outcomes)

    def _plan(self, session, batch: list[Delivery], campaigns: dict, now: datetime):
        """Choose each recipient's channel; unreachable ones are marked and mass sends made here.
        Yields the single-recipient sends."""
        if not batch:
            return
        wanted = {d.campaign_id for d in batch} - set(campaigns)
        if wanted:
            campaigns.update({c.id: c for c in session.scalars(select(Campaign).where(Campaign.id.in_(wanted)))})
            for campaign_id in wanted:  # the id of the message, page or job that created it
                logger.info("worker %s sends campaign %s", self.name, campaign_id,
                            extra={"request_id": campaigns[campaign_id].request_id or "-"})
        openids = [d.openid for d in batch]
        followers = {f.openid: f for f in session.scalars(
            select(Follower).where(Follower.openid.in_(openids)).execution_options(populate_existing=True))}
        credits = self._credits(session, openids)
        mini = mini_reach(session, [d.member_id for d in batch if d.member_id],
                          self.policy.mini_subscribe_template_id)
        account_type = self.policy.account_type
        mass, waiting, planned, mini_planned = {}, set(), {}, {}
        for delivery in sorted(batch, key=in_recipients_order):
            follower = followers.get(delivery.openid)
            campaign = campaigns[delivery.campaign_id]
            # The window's messages this batch already plans to use are not there for the next one.
            mini_openid, mini_credits = mini.get(delivery.member_id, ("", 0))
            reach = reach_of(follower, credits.get(delivery.openid, 0), planned.get(delivery.openid, 0),
                             mini_credits - mini_planned.get(mini_openid, 0))
            choice = choose_channel(reach, self.policy, account_type, now, delivery.refused() | campaign.excluded())
            if choice.channel is None:
                mark(delivery, Outcome("unreachable"), now, self.policy, reason=choice.reason)
            elif choice.channel == "inbox":
                delivery.status, delivery.channel, delivery.claimed_by = "waiting", "inbox", ""
                DELIVERIES.labels("waiting", "inbox").inc()
                delivery.last_error = "等成员下次发消息、点菜单或扫码时送达"
                waiting.add(delivery.openid)
            elif choice.channel == "mass":
                mass.setdefault(delivery.campaign_id, []).append(delivery)
            else:
                delivery.channel = choice.channel
                if choice.channel == "customer_service":
                    planned[delivery.openid] = planned.get(delivery.openid, 0) + 1
                to = ""
                if choice.channel == "mini_subscribe":
                    to, mini_planned[mini_openid] = mini_openid, mini_planned.get(mini_openid, 0) + 1
                link = read_link(self.app, campaign, delivery)
                yield Task(delivery.id, delivery.openid, choice.channel, campaign, link, to), delivery, follower
        self._send_mass(session, mass, campaigns, followers, now)
        # The mark first: a crash between the two leaves at worst a mark with nothing behind it
        # (one query at the member's next message), never a waiting message nobody releases.
        note_waiting(services.store(self.app), waiting)
        session.commit()

    def _send(self, client, task: Task, outcomes: queue.Queue) -> None:
        try:
            self.bucket.take()
            if task.channel == "mini_subscribe":
                client = self._mini_client()
            outcome = send_one(client, task.channel, task.campaign, task.to or task.openid, task.link, self.policy)
        except NotConfigured:  # the mini-program lost its configuration: the next channel
            outcome = Outcome("next_channel", -1)
        except Exception as exc:  # a bug in one send must not lose the delivery: it is retried
            report_failure("delivery send", exc)
            outcome = Outcome("retry", -1)
        outcomes.put((task.delivery_id, outcome))

    def _mark_outcomes(self, session, outcomes: queue.Queue, waiting: dict, campaigns: dict, now: datetime,
                       busy: set[str]) -> None:
        """Wait for the next outcome, and those arriving within MARK_GATHER_SECONDS; one commit for all."""
        arrived, writes = [outcomes.get()], FollowerWrites()
        until = time.monotonic() + self.MARK_GATHER_SECONDS
        while len(arrived) < self.policy.in_flight:
            try:
                arrived.append(outcomes.get(timeout=max(0.0, until - time.monotonic())))
            except queue.Empty:
                break
        rows = []
        for delivery_id, outcome in arrived:
            delivery, follower = waiting.pop(delivery_id)
            busy.discard(delivery.openid)
            # Marked outside the session's tracking and written as one executemany: the unit of work
            # costs more than the send itself, and a long campaign must not pile its rows up in the session.
            session.expunge(delivery)
            apply_outcome(session, delivery, outcome, follower, campaigns, now, self.policy, writes)
            rows.append({"delivery_id": delivery.id, **{c: getattr(delivery, c) for c in MARKED_COLUMNS}})
        session.connection().execute(MARK_DELIVERIES, rows)
        writes.write(session)

    def _send_mass(self, session, mass: dict, campaigns, followers, now) -> None:
        from wxbot.outbound import wechat_client
        with self.app.app_context():
            client = wechat_client()
        limits = self.policy.account_limits[self.policy.account_type]
        for campaign_id, deliveries in mass.items():
            for start in range(0, len(deliveries), MASS_BATCH):
                group = deliveries[start:start + MASS_BATCH]
                # The same recipients, retried, get the same clientmsgid: WeChat answers 45065, not a repeat.
                clientmsgid = f"wxbot-{campaign_id}-{group[0].id}-{len(group)}"
                openids, tag_id = [d.openid for d in group], None
                self.bucket.take()
                if limits["mass_by_openid"] and len(group) >= 2:  # WeChat wants 2 to 10,000 openids
                    outcome = send_mass(client, campaigns[campaign_id], openids, clientmsgid)
                else:
                    outcome, tag_id = send_mass_by_tag(client, campaigns[campaign_id], openids, clientmsgid)
                if outcome.kind == "unknown":  # the same clientmsgid again is answered 45065, never sent twice
                    outcome = Outcome("retry", outcome.code)
                known = session.scalar(select(MassJob).where(MassJob.clientmsgid == clientmsgid))
                if outcome.kind == "sent" and known is None:
                    session.add(MassJob(campaign_id=campaign_id, clientmsgid=clientmsgid, msg_id=outcome.msgid,
                                        tag_id=tag_id))
                writes = FollowerWrites()
                for delivery in group:
                    delivery.channel = "mass"
                    apply_outcome(session, delivery, outcome, followers.get(delivery.openid), campaigns, now,
                                  self.policy, writes)
                writes.write(session)

    def _mini_client(self):
        from wxbot.api.wechat import mini_client
        with self.app.app_context():
            return mini_client()

    @staticmethod
    def _credits(session, openids: list[str]) -> dict[str, int]:
        return dict(session.execute(select(SubscriptionCredit.openid, SubscriptionCredit.credits).where(
            SubscriptionCredit.openid.in_(openids))).all())
