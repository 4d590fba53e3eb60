"""Check-in: one row per event and member, by the rotating code on the room's screen (a QR scene
and a 6-digit code per time slot, signed with the server's key), within the check-in window, and
inside the event's area when it has one (location reports, kept briefly)."""
from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Boolean, Float, ForeignKey, String, UniqueConstraint, delete
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, insert_if_absent
from models.events import Event, of_member
from models.members import Member
from models.timeutil import show, utcnow


class CheckIn(Base):
    __tablename__ = "event_checkins"
    __table_args__ = (UniqueConstraint("event_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    method: Mapped[str] = mapped_column(String(16))  # scan | code | bind (checked in on binding)
    flag: Mapped[str] = mapped_column(String(64), default="")  # for the organiser, e.g. no location shared


class LocationReport(Base):
    """The last location WeChat reported for a follower who agreed to share it (kept
    events.location_retention_hours, then deleted)."""
    __tablename__ = "location_reports"

    openid: Mapped[str] = mapped_column(String(64), primary_key=True)
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime] = mapped_column(index=True)


def check_in(session: Session, event: Event, member: Member, at: datetime, method: str,
             flag: str = "") -> tuple[CheckIn, bool]:
    """(the check-in, whether it is new): one per event and member, whatever arrives twice (or at the
    same moment on another thread: the unique key decides)."""
    late = at > event.starts_at + timedelta(minutes=event.late_after_min)
    values = dict(event_id=event.id, member_id=member.id, at=at, late=late, method=method, flag=flag)
    if insert_if_absent(session, CheckIn, **values):
        return CheckIn(**values), True
    return of_member(session, CheckIn, event, member), False


def checkin_window_refusal(event: Event, at: datetime) -> str | None:
    if event.status != "active":
        return f"活动《{event.title}》已取消。"
    if at < event.checkin_opens:
        return f"《{event.title}》的签到 {show(event.checkin_opens, '%H:%M')} 开始，请到时再签。"
    if at > event.checkin_closes:
        return f"《{event.title}》的签到已于 {show(event.checkin_closes, '%H:%M')} 结束。如确实到场，请联系组织员补签。"
    return None


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    r = 6371000.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


@dataclass(frozen=True)
class Geofence:
    refusal: str | None = None
    flag: str = ""


UNVERIFIED = "位置未核实"  # no recent location report: let in, flagged for the organiser


def geofence(session: Session, event: Event, openid: str, at: datetime, max_age_minutes: int) -> Geofence:
    """Where the member is, for an event with coordinates. One rule: a recent report (within
    events.location_max_age_minutes) must lie inside the radius; without one, whether the member never
    shared a location or shared it too long ago, they are let in and flagged 位置未核实 for the
    organiser (a phone that stopped reporting is not proof of absence, and sharing stays voluntary)."""
    if not event.geofenced:
        return Geofence()
    report = session.get(LocationReport, openid)
    if report is None or at - report.at > timedelta(minutes=max_age_minutes):
        return Geofence(flag=UNVERIFIED)
    far = distance_m(report.latitude, report.longitude, event.latitude, event.longitude)
    if far > event.radius_m:
        return Geofence(f"你的位置离活动地点约 {round(far)} 米，超出签到范围（{event.radius_m} 米），请到现场再签。")
    return Geofence()


def note_location(session: Session, openid: str, latitude: float, longitude: float, at: datetime) -> None:
    report = session.get(LocationReport, openid)
    if report is None:
        session.add(LocationReport(openid=openid, latitude=latitude, longitude=longitude, at=at))
    else:
        report.latitude, report.longitude, report.at = latitude, longitude, at


def forget_locations(session: Session, older_than: datetime) -> int:
    return session.execute(delete(LocationReport).where(LocationReport.at < older_than)).rowcount or 0


SCENE_PREFIX = "ck:"


def slot_of(at: datetime, seconds: int) -> int:
    return int(at.timestamp()) // seconds


def _signature(secret: str, event_id: int, slot: int, purpose: str) -> str:
    return hmac.new(secret.encode(), f"{purpose}:{event_id}:{slot}".encode(), hashlib.sha256).hexdigest()


def scene_for(secret: str, event_id: int, slot: int) -> str:
    """The QR scene for one slot, e.g. 'ck:12.118066417.3f9a0c1b2d4e' (WeChat allows 64 characters)."""
    return f"{SCENE_PREFIX}{event_id}.{slot}.{_signature(secret, event_id, slot, 'scene')[:12]}"


def code_for(secret: str, event_id: int, slot: int) -> str:
    return f"{int(_signature(secret, event_id, slot, 'code')[:12], 16) % 1_000_000:06d}"


def read_scene(secret: str, scene: str) -> tuple[int, int] | None:
    """(event id, slot) of a genuine scene (without the prefix), None for a forged or garbled one."""
    try:
        event_id, slot, signature = scene.split(".")
        event_id, slot = int(event_id), int(slot)
    except ValueError:
        return None
    expected = _signature(secret, event_id, slot, "scene")[:12]
    return (event_id, slot) if hmac.compare_digest(signature.encode(), expected.encode()) else None


def slot_is_current(slot: int, at: datetime, seconds: int) -> bool:
    """A code is good in its own slot and the one after (a scan made just before the change)."""
    return 0 <= slot_of(at, seconds) - slot <= 1
