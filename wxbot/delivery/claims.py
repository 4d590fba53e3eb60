"""Claims on the outbox: campaigns that are due start; a worker claims a batch (several workers never
the same rows); a dead worker's claims are taken back at once, those it had handed to WeChat flagged
as possibly duplicated; a campaign with nothing open left is done."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import case, or_, select, update
from sqlalchemy.orm.attributes import set_committed_value

from models.delivery import OPEN, Campaign, Delivery
from models.heartbeats import is_dead
from models.inbox import expire_waiting

logger = logging.getLogger(__name__)
_deliveries = Delivery.__table__


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


def finish_campaigns(session, now: datetime, inbox_days: float) -> None:
    """A sending campaign with no open delivery left is done (what waits in the inbox is handed back
    when its recipient next writes); waiting messages past their campaign's expiry are dropped."""
    expire_waiting(session, now, inbox_days)
    open_rows = select(Delivery.id).where(Delivery.campaign_id == Campaign.id, Delivery.status.in_(OPEN))
    session.execute(update(Campaign).where(Campaign.status == "sending", ~open_rows.exists())
                    .values(status="done", finished_at=now))
    session.commit()
