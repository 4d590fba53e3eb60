"""The daily study push: today's plan entries, each sent once through the delivery engine."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, contains_eager

from models.accounts import Scope
from models.audience import AudienceError
from models.delivery import Delivery, create_campaign
from models.study import DailyPush, Material, PlanEntry
from wxbot.study import STUDY_LINK

logger = logging.getLogger(__name__)
PUSH_CREATOR = "每日学习推送"


@dataclass(frozen=True)
class Pushed:
    entry_id: int
    title: str
    recipients: int
    already: bool


def push_day(session: Session, day: date, now: datetime) -> list[Pushed]:
    """Create the push campaign of every published plan entry of `day` that has none yet.

    The unique key on the entry decides: a second scheduler process, a restart or a run by hand
    finds the row (or loses the race at commit) and sends nothing again."""
    results = []
    entries = list(session.scalars(select(PlanEntry).join(Material, Material.id == PlanEntry.material_id)
                                   .options(contains_eager(PlanEntry.material))
                                   .where(PlanEntry.day == day, Material.status == "published").order_by(PlanEntry.id)))
    done = {push.plan_entry_id: push for push in session.scalars(
        select(DailyPush).where(DailyPush.plan_entry_id.in_([e.id for e in entries])))}
    counts = _recipients_of(session, [push.campaign_id for push in done.values() if push.campaign_id])
    for entry in entries:
        if entry.id in done:
            results.append(Pushed(entry.id, entry.material.title, counts.get(done[entry.id].campaign_id, 0), True))
            continue
        results.append(_push_entry(session, entry, now))
    return results


def _push_entry(session: Session, entry: PlanEntry, now: datetime) -> Pushed:
    material = entry.material
    try:
        with session.begin_nested():
            push = DailyPush(plan_entry_id=entry.id, created_at=now)
            session.add(push)
            session.flush()
    except IntegrityError:  # another process is pushing this entry, or has
        session.rollback()
        return Pushed(entry.id, material.title, 0, True)
    content = {"title": f"今日学习｜{material.title}", "description": material.summary or "点击阅读今天的学习内容",
               "link_kind": STUDY_LINK, "link_ref": material.id, "cover": material.cover}
    try:
        with session.begin_nested():
            campaign = create_campaign(session, PUSH_CREATOR, Scope(None), entry.audience_spec() or
                                       {"everyone": True}, content, now)
    except AudienceError:  # nobody in the audience follows the account: remembered, nothing sent
        campaign = None
    if campaign is not None:
        push.campaign_id = campaign.id
    session.commit()
    recipients = _recipients(session, push.campaign_id)
    logger.info("daily push of plan entry %s: %s recipients", entry.id, recipients)
    return Pushed(entry.id, material.title, recipients, False)


def _recipients(session: Session, campaign_id: int | None) -> int:
    return _recipients_of(session, [campaign_id]).get(campaign_id, 0) if campaign_id else 0


def _recipients_of(session: Session, campaign_ids: list[int]) -> dict[int, int]:
    """Recipients per campaign, in one query."""
    return dict(session.execute(select(Delivery.campaign_id, func.count()).where(Delivery.campaign_id.in_(campaign_ids))
                                .group_by(Delivery.campaign_id)).all())
