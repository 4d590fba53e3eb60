"""Offline events (主题党日, 三会一课, lectures): what an event is, and who it is for.

A member's relation to an event is read from four facts, each in its own module and each unique
per event and member so that whatever arrives twice counts once: sign-up and leave
(models/signups.py), check-in (models/checkins.py), and the event's audience here (who is expected
when no sign-up is needed). What the console's form and a term's import describe is
models/eventforms.py; the attendance afterwards models/attendance.py.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, cached_rows
from models.members import Member, in_audience, units_above
from models.timeutil import show, utcnow

KINDS = ("主题党日", "支部党员大会", "支委会", "党小组会", "党课", "组织生活会", "民主评议", "讲座", "志愿服务", "其他")


THREE_MEETINGS = ("支部党员大会", "支委会", "党小组会", "党课")  # 三会一课: the record a branch keeps


class Event(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16), default="主题党日")
    topic: Mapped[str] = mapped_column(Text, default="")  # what was discussed: the 三会一课 record
    org_unit_id: Mapped[int | None] = mapped_column(Integer, index=True)  # the organising unit
    audience: Mapped[str] = mapped_column(Text, default="{}")  # audience spec: units, stages, roles, 学号
    place: Mapped[str] = mapped_column(String(200), default="")
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    radius_m: Mapped[int | None] = mapped_column(Integer)
    starts_at: Mapped[datetime] = mapped_column(index=True)
    ends_at: Mapped[datetime]
    signup_deadline: Mapped[datetime | None]
    capacity: Mapped[int | None] = mapped_column(Integer)  # None: no limit
    signup_required: Mapped[bool] = mapped_column(Boolean, default=True)  # False: the audience is expected
    checkin_before_min: Mapped[int] = mapped_column(Integer, default=30)
    checkin_after_min: Mapped[int] = mapped_column(Integer, default=30)
    late_after_min: Mapped[int] = mapped_column(Integer, default=10)
    points: Mapped[int] = mapped_column(Integer, default=0)
    study_hours: Mapped[float] = mapped_column(Float, default=0.0)
    material_ids: Mapped[str] = mapped_column(Text, default="[]")  # JSON: study materials attached
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | cancelled
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Messages already sent for it (each once): the cancellation notice and 送学.
    cancel_campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    study_campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))

    def audience_spec(self) -> dict:
        return json.loads(self.audience or "{}")

    def materials(self) -> list[int]:
        return json.loads(self.material_ids or "[]")

    @property
    def checkin_opens(self) -> datetime:
        return self.starts_at - timedelta(minutes=self.checkin_before_min)

    @property
    def checkin_closes(self) -> datetime:
        return self.starts_at + timedelta(minutes=self.checkin_after_min)

    @property
    def geofenced(self) -> bool:
        return self.latitude is not None and self.longitude is not None and bool(self.radius_m)

    def when(self) -> str:
        """e.g. 11-28 14:00-16:00"""
        return f"{show(self.starts_at, '%m-%d %H:%M')}-{show(self.ends_at, '%H:%M')}"


def read_events_of(session: Session, ids: list[int]) -> dict[int, Event]:
    """Events by id as snapshots: transient copies of their rows, never in a session (safe to keep
    between messages and to share between threads; to change an event, get it from the session)."""
    rows = session.execute(select(Event.__table__).where(Event.__table__.c.id.in_(ids))).mappings()
    return {row["id"]: Event(**row) for row in rows}


def event_snapshot(session: Session, event_id: int) -> Event | None:
    """The event as it is now, from the app's cache when it has one (a scan's event: read once per
    process for a whole hall)."""
    return cached_rows(session, Event.__tablename__, [event_id], read_events_of).get(event_id)


def may_attend(event: Event, member: Member) -> bool:
    return in_audience(member, event.audience_spec(), units_above(member))


def upcoming_events(session: Session, member: Member, at: datetime, days: int) -> list[Event]:
    """Active events of the member's audience not yet over and starting within `days`, soonest first."""
    rows = session.scalars(select(Event).where(Event.status == "active", Event.ends_at > at,
                                               Event.starts_at < at + timedelta(days=days))
                           .order_by(Event.starts_at, Event.id))
    return [e for e in rows if may_attend(e, member)]


def of_member(session: Session, table, event: Event, member: Member):
    """The member's row of a table keyed by event and member (a registration, a leave, a check-in)."""
    return session.scalar(select(table).where(table.event_id == event.id, table.member_id == member.id))
