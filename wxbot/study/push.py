"""The daily study push: a day's plan reaches each member once, through the delivery engine.

A day's study is whatever the plan gives the member that day: with a school-wide and a college
material on the same day, a member of that college gets one push naming both (its link opens the
first, whose page links the others), as `学习` shows them. Each plan entry is pushed once (its unique
DailyPush row decides: a second scheduler process, a restart or a run by hand send nothing again),
and a member who already had a push for the day is not pushed again by an entry planned later.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, contains_eager

from models.accounts import Scope
from models.audience import audience_query
from models.delivery import BROADCAST, NOTICE, Campaign, Delivery, create_campaign
from models.study import DailyPush, Material, PlanEntry
from models.timeutil import local_midnight
from wxbot import services
from wxbot.study import STUDY_LINK, day_article

logger = logging.getLogger(__name__)
PUSH_CREATOR = "每日学习推送"


@dataclass(frozen=True)
class Pushed:
    entry_id: int
    title: str
    recipients: int
    already: bool


def push_day(session: Session, day: date, now: datetime, mass_send: bool = False) -> list[Pushed]:
    """Push every published plan entry of `day` not pushed yet; returns what each entry reached.
    Mass sends are used only with `mass_send` (push.mass_send) or for an entry that allows them."""
    entries = list(session.scalars(select(PlanEntry).join(Material, Material.id == PlanEntry.material_id)
                                   .options(contains_eager(PlanEntry.material))
                                   .where(PlanEntry.day == day, Material.status == "published").order_by(PlanEntry.id)))
    done = {push.plan_entry_id: push for push in session.scalars(
        select(DailyPush).where(DailyPush.plan_entry_id.in_([e.id for e in entries])))}
    new = [e for e in entries if e.id not in done]
    reached = _push_entries(session, day, new, now, mass_send) if new and _claim(session, new, now) else {}
    session.commit()
    results = [Pushed(e.id, e.material.title, done[e.id].recipients, True) for e in entries if e.id in done]
    results += [Pushed(e.id, e.material.title, reached.get(e.id, 0), e.id not in reached) for e in new]
    return sorted(results, key=lambda r: r.entry_id)


def _claim(session: Session, entries: list[PlanEntry], now: datetime) -> bool:
    """Write the entries' push rows first: another process pushing them at the same moment fails here."""
    try:
        with session.begin_nested():
            session.add_all(DailyPush(plan_entry_id=e.id, created_at=now, recipients=0) for e in entries)
            session.flush()
    except IntegrityError:
        session.rollback()
        return False
    return True


def _push_entries(session: Session, day: date, entries: list[PlanEntry], now: datetime,
                  mass_send: bool) -> dict[int, int]:
    """One campaign per set of entries that members share; returns recipients per entry."""
    pushed_before = set(session.scalars(select(Delivery.member_id).join(Campaign, Campaign.id == Delivery.campaign_id)
                                        .where(Campaign.push_day == day)))
    sets: dict[tuple[int, ...], list[tuple[str, int]]] = defaultdict(list)
    for (openid, member_id), mine in _entries_by_recipient(session, entries).items():
        if member_id not in pushed_before:
            sets[tuple(mine)].append((openid, member_id))
    by_id, reached = {e.id: e for e in entries}, {e.id: 0 for e in entries}
    for entry_ids, recipients in sets.items():
        _campaign(session, day, [by_id[i] for i in entry_ids], recipients, now, mass_send)
        for entry_id in entry_ids:
            reached[entry_id] += len(recipients)
    for push in session.scalars(select(DailyPush).where(DailyPush.plan_entry_id.in_(list(reached)))):
        push.recipients = reached[push.plan_entry_id]
    logger.info("daily push of %s: %d entries, %d campaigns", day, len(entries), len(sets))
    return reached


def _entries_by_recipient(session: Session, entries: list[PlanEntry]) -> dict[tuple[str, int], list[int]]:
    """Each following member, and the entries (in plan order) whose audience includes them."""
    mine: dict[tuple[str, int], list[int]] = defaultdict(list)
    for entry in entries:
        spec = entry.audience_spec() or {"everyone": True}
        for openid, member_id in session.execute(audience_query(session, spec, Scope(None))):
            if member_id is not None:
                mine[(openid, member_id)].append(entry.id)
    return mine


def _campaign(session: Session, day: date, entries: list[PlanEntry], recipients, now: datetime,
              mass_send: bool) -> None:
    first = entries[0].material
    title, description = day_article([e.material for e in entries])
    # The day's study is worth delivering until the day's end; it spends mass sends only if allowed.
    by_mass = mass_send or any(e.by_mass for e in entries)
    campaign = create_campaign(session, PUSH_CREATOR, Scope(None), {"everyone": True},
                               {"title": title, "description": description, "link_kind": STUDY_LINK,
                                "link_ref": first.id, "cover": first.cover}, now, recipients=recipients,
                               expires_at=local_midnight(day + timedelta(days=1)),
                               excluded=BROADCAST if by_mass else NOTICE)
    campaign.push_day, campaign.audience_label = day, f"每日学习（{day.strftime('%m-%d')}）"


def push_forecast(session: Session, day: date, now: datetime):
    """How the day's push would reach its members if it went now: by channel, and who not (the plan
    page shows it before the push goes out)."""
    from wxbot.delivery.reach import forecast
    entries = list(session.scalars(select(PlanEntry).join(Material, Material.id == PlanEntry.material_id)
                                   .options(contains_eager(PlanEntry.material))
                                   .where(PlanEntry.day == day, Material.status == "published")))
    from models.channelsettings import channel_policy
    settings = services.settings()
    policy = channel_policy(session, settings)
    openids = [openid for openid, _member in _entries_by_recipient(session, entries)] if entries else []
    excluded = frozenset() if settings.push.mass_send or any(e.by_mass for e in entries) else frozenset({"mass"})
    return forecast(session, openids, policy, policy.account_type, now, excluded)
