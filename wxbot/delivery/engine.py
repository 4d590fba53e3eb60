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
from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import bindparam, case, or_, select, update
from sqlalchemy.orm.attributes import set_committed_value

from models.channelsettings import ChannelPolicy, channel_policy
from models.delivery import OPEN, Campaign, Delivery, MassJob, SubscriptionCredit
from models.followers import Follower
from models.heartbeats import is_dead
from models.inbox import expire_waiting
from models.privacy import forget_openid
from models.timeutil import next_wechat_midnight, utcnow, wechat_month
from wxbot import services
from wxbot.delivery.channels import choose_channel, reach_of
from wxbot.delivery.inbox import note_waiting, rebuild_marks
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
UNKNOWN_NOTE = "请求已发出但微信没有应答：可能已送达，没有自动重发"


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
        self.policy = ChannelPolicy(settings.delivery, settings.wechat.account_type, None)  # read again each step
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
        account_type = self.policy.account_type
        mass, waiting, planned = {}, set(), {}
        for delivery in sorted(batch, key=in_recipients_order):
            follower = followers.get(delivery.openid)
            campaign = campaigns[delivery.campaign_id]
            # The window's messages this batch already plans to use are not there for the next one.
            reach = reach_of(follower, credits.get(delivery.openid, 0), planned.get(delivery.openid, 0))
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
                link = read_link(self.app, campaign, delivery)
                yield Task(delivery.id, delivery.openid, choice.channel, campaign, link), delivery, follower
        self._send_mass(session, mass, campaigns, followers, now)
        # The mark first: a crash between the two leaves at worst a mark with nothing behind it
        # (one query at the member's next message), never a waiting message nobody releases.
        note_waiting(services.store(self.app), waiting)
        session.commit()

    def _send(self, client, task: Task, outcomes: queue.Queue) -> None:
        try:
            self.bucket.take()
            outcome = send_one(client, task.channel, task.campaign, task.openid, task.link, self.policy)
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

    @staticmethod
    def _credits(session, openids: list[str]) -> dict[str, int]:
        return dict(session.execute(select(SubscriptionCredit.openid, SubscriptionCredit.credits).where(
            SubscriptionCredit.openid.in_(openids))).all())


def start_due_campaigns(session, now: datetime) -> None:
    """Scheduled campaigns whose time has come, and paused ones whose quota has reset, send again."""
    session.execute(update(Campaign).where(Campaign.status == "scheduled", Campaign.scheduled_at <= now)
                    .values(status="sending", started_at=now))
    session.execute(update(Campaign).where(Campaign.status == "paused", Campaign.resume_at <= now)
                    .values(status="sending", resume_at=None))
    session.commit()


def claim(session, worker: str, limit: int, now: datetime, lease: int) -> list[Delivery]:
    """Take up to `limit` due deliveries of sending campaigns; several workers never take the same."""
    due = (Delivery.status == "pending") & or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now)
    abandoned = (Delivery.status == "sending") & (Delivery.claimed_at < now - timedelta(seconds=lease))
    query = (select(Delivery).join(Campaign, Campaign.id == Delivery.campaign_id)
             .where(Campaign.status == "sending", or_(due, abandoned)).order_by(Delivery.id).limit(limit))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=Delivery)
    batch = list(session.scalars(query))
    if not batch:
        session.commit()
        return batch
    table = Delivery.__table__  # two statements for the batch, not one ORM update per row
    session.connection().execute(update(table).where(table.c.id.in_([d.id for d in batch])).values(
        status="sending", claimed_by=worker, claimed_at=now, attempts=table.c.attempts + 1, dispatched_at=None))
    # Its worker died (or hung past the lease) while WeChat had it: it may have arrived.
    abandoned = [d.id for d in batch if d.status == "sending" and d.dispatched_at is not None]
    if abandoned:
        session.connection().execute(update(table).where(table.c.id.in_(abandoned)).values(possibly_duplicated=True))
    session.commit()
    for delivery in batch:  # the rows in memory as they now are in the database
        for name, value in (("possibly_duplicated", delivery.possibly_duplicated or delivery.id in abandoned),
                            ("status", "sending"), ("claimed_by", worker), ("claimed_at", now),
                            ("attempts", delivery.attempts + 1), ("dispatched_at", None)):
            set_committed_value(delivery, name, value)
    return batch


def release_dead_claims(session, now: datetime, dead_after: float) -> int:
    """Give the claims of dead workers back at once: those it had handed to WeChat flagged as
    possibly duplicated, the rest as if never claimed. Returns how many were released."""
    claimers = session.scalars(select(Delivery.claimed_by).where(Delivery.status == "sending").distinct()).all()
    dead = [name for name in claimers if _claimer_dead(session, name, now, dead_after)]
    released = 0
    for name in dead:
        mine = (_deliveries.c.status == "sending") & (_deliveries.c.claimed_by == name)
        released += session.connection().execute(update(_deliveries).where(mine).values(
            status="pending", claimed_by="", dispatched_at=None,
            possibly_duplicated=_deliveries.c.possibly_duplicated | _deliveries.c.dispatched_at.is_not(None),
            attempts=case((_deliveries.c.dispatched_at.is_(None), _deliveries.c.attempts - 1),
                          else_=_deliveries.c.attempts))).rowcount
        logger.warning("took over the claims of dead delivery worker %s", name)
    session.commit()
    return released


def _claimer_dead(session, name: str, now: datetime, dead_after: float) -> bool:
    """Worker names are host:pid:thread; other names (tests, tools) are left to the lease."""
    host, _, rest = name.partition(":")
    pid = rest.split(":", 1)[0]
    return bool(host) and pid.isdigit() and is_dead(session, host, int(pid), now, dead_after)


class FollowerWrites:
    """What the sends taught us about followers, written as a few executemany statements at commit.

    Relative updates (a window message spent, a mass message counted), so that a window the webhook
    widened meanwhile is not overwritten with what this worker read earlier."""

    _followers = Follower.__table__
    SPEND_WINDOW = (update(_followers).where(_followers.c.openid == bindparam("f_openid"))
                    .values(cs_window_left=case((_followers.c.cs_window_left > 0, _followers.c.cs_window_left - 1),
                                                else_=0), cs_window_spent_at=bindparam("spent_at")))
    COUNT_MASS = (update(_followers).where(_followers.c.openid == bindparam("f_openid"))
                  .values(mass_count=case((_followers.c.mass_month == bindparam("month"), _followers.c.mass_count + 1),
                                          else_=1), mass_month=bindparam("month")))
    # WeChat says the window is spent (45047) or closed (45015): unless the member opened a new one since.
    CLOSE_WINDOW = (update(_followers).where(_followers.c.openid == bindparam("f_openid"),
                                             _followers.c.cs_window_until <= bindparam("seen_until"))
                    .values(cs_window_left=0))

    def __init__(self):
        self.rows: dict = {self.SPEND_WINDOW: [], self.COUNT_MASS: [], self.CLOSE_WINDOW: []}
        self.gone: set[str] = set()  # WeChat says they do not follow (43004) or are unknown (40003)

    def add(self, statement, **params) -> None:
        self.rows[statement].append(params)

    def write(self, session) -> None:
        for statement, rows in self.rows.items():
            if rows:
                session.connection().execute(statement, rows)
            rows.clear()
        for openid in self.gone:  # rare: the unfollow event was missed; erase as if it had come
            forget_openid(session, openid)
        self.gone.clear()


def apply_outcome(session, delivery: Delivery, outcome: Outcome, follower, campaigns, now, policy,
                  writes: FollowerWrites) -> None:
    """Mark one delivery by what WeChat answered, and note what it tells about the follower."""
    if outcome.kind in ("sent", "unknown") and follower is not None:  # an unknown send may have used it
        _count_use(writes, follower, delivery.channel, now)
        _spend_credit(session, delivery, policy)
    if outcome.kind == "window_spent" and follower is not None and follower.cs_window_until is not None:
        writes.add(writes.CLOSE_WINDOW, f_openid=follower.openid, seen_until=follower.cs_window_until)
        set_committed_value(follower, "cs_window_left", 0)
    if outcome.kind in ("unfollowed", "invalid") and follower is not None:
        writes.gone.add(follower.openid)
        set_committed_value(follower, "subscribed", False)
    if outcome.kind == "quota":
        campaign = campaigns[delivery.campaign_id]
        campaign.status, campaign.resume_at = "paused", next_wechat_midnight(now)
    mark(delivery, outcome, now, policy)


def mark(delivery: Delivery, outcome: Outcome, now: datetime, policy, reason: str = "") -> None:
    kind = outcome.kind
    if kind == "sent":
        delivery.status, delivery.sent_at, delivery.wechat_msgid = "sent", now, outcome.msgid
        delivery.last_error = "" if outcome.code == 0 else f"{outcome.code}"
    elif kind == "retry" and delivery.attempts < policy.max_attempts:
        delivery.status, delivery.last_error = "pending", f"{outcome.code} 系统繁忙，稍后重试"
        delivery.next_attempt_at = now + timedelta(seconds=policy.retry_base_seconds * 2 ** (delivery.attempts - 1))
    elif kind == "next_channel":
        delivery.refused_channels = ",".join(sorted(delivery.refused() | {delivery.channel}))
        delivery.status, delivery.last_error, delivery.next_attempt_at = "pending", f"{outcome.code}", None
        delivery.attempts -= 1  # not a failure of the recipient: try the next channel at once
    elif kind == "window_spent":  # the channel is not barred: the member's next message opens it again
        delivery.status, delivery.next_attempt_at = "pending", None
        delivery.last_error = f"{outcome.code} 客服窗口已用完，改走其他渠道"
        delivery.attempts -= 1
    elif kind == "unknown":  # never sent again on its own: it may have arrived
        delivery.status, delivery.last_error = "unknown", UNKNOWN_NOTE
    elif kind == "quota":
        delivery.status, delivery.last_error = "pending", "45009 今日配额已用完"
        delivery.attempts -= 1
    elif kind in ("unreachable", "unfollowed", "invalid"):
        delivery.status = "unreachable"
        delivery.last_error = reason or {"unfollowed": "43004 已取消关注", "invalid": "40003 openid 无效"}.get(kind, "")
    else:
        delivery.status, delivery.last_error = "failed", f"{outcome.code}"
    delivery.claimed_by, delivery.dispatched_at = "", None
    DELIVERIES.labels(delivery.status, delivery.channel or "none").inc()


def _count_use(writes: FollowerWrites, follower: Follower, channel: str, now: datetime) -> None:
    """Count a message against the follower's window or monthly mass limit (in memory too, for the
    channel choices of later batches of this round)."""
    if channel == "customer_service":
        writes.add(writes.SPEND_WINDOW, f_openid=follower.openid, spent_at=now)
        set_committed_value(follower, "cs_window_left", max(0, follower.cs_window_left - 1))
    elif channel == "mass":
        month = wechat_month(now)
        writes.add(writes.COUNT_MASS, f_openid=follower.openid, month=month)
        set_committed_value(follower, "mass_count", (follower.mass_count if follower.mass_month == month else 0) + 1)
        set_committed_value(follower, "mass_month", month)


def _spend_credit(session, delivery: Delivery, policy) -> None:
    if delivery.channel == "subscribe":
        session.execute(update(SubscriptionCredit).where(
            SubscriptionCredit.openid == delivery.openid,
            SubscriptionCredit.template_id == policy.subscribe_template_id,
            SubscriptionCredit.credits > 0).values(credits=SubscriptionCredit.credits - 1))


def finish_campaigns(session, now: datetime, inbox_days: float) -> None:
    """A sending campaign with no open delivery left is done (what waits in the inbox is handed back
    when its recipient next writes); waiting messages past their campaign's expiry are dropped."""
    expire_waiting(session, now, inbox_days)
    open_rows = select(Delivery.id).where(Delivery.campaign_id == Campaign.id, Delivery.status.in_(OPEN))
    session.execute(update(Campaign).where(Campaign.status == "sending", ~open_rows.exists())
                    .values(status="done", finished_at=now))
    session.commit()
