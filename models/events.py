"""Offline events (主题党日, 三会一课, lectures): sign-up with a waiting list, leave, and check-in.

A member's relation to an event is read from four tables, each unique per event and member so that
whatever arrives twice counts once: Registration (signed up, waiting, offered a freed place),
LeaveRequest, CheckIn, and the event's audience (who is expected when no sign-up is needed).
Places are taken by those signed up and those offered a place; the waiting list is ordered by the
time each joined it.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    delete,
    func,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.audience import in_audience, units_above
from models.base import Base, insert_if_absent
from models.members import Member
from models.timeutil import show, utcnow

KINDS = ("主题党日", "支部党员大会", "支委会", "党小组会", "党课", "讲座", "志愿服务", "其他")
THREE_MEETINGS = ("支部党员大会", "支委会", "党小组会", "党课")  # 三会一课: the record a branch keeps
TAKING_PLACES = ("signed", "offered")


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


class Registration(Base):
    __tablename__ = "event_registrations"
    __table_args__ = (UniqueConstraint("event_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16))  # signed | waiting | offered | cancelled | lapsed
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)  # the waiting list's order
    offered_until: Mapped[datetime | None]


class LeaveRequest(Base):
    __tablename__ = "event_leaves"
    __table_args__ = (UniqueConstraint("event_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | approved | refused
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by: Mapped[str] = mapped_column(String(64), default="")
    decided_at: Mapped[datetime | None]


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


# ---- who may come, and where each member stands ----

def may_attend(event: Event, member: Member) -> bool:
    return in_audience(member, event.audience_spec(), units_above(member))


def upcoming_events(session: Session, member: Member, at: datetime, days: int) -> list[Event]:
    """Active events of the member's audience not yet over and starting within `days`, soonest first."""
    rows = session.scalars(select(Event).where(Event.status == "active", Event.ends_at > at,
                                               Event.starts_at < at + timedelta(days=days))
                           .order_by(Event.starts_at, Event.id))
    return [e for e in rows if may_attend(e, member)]


@dataclass(frozen=True)
class Standing:
    registration: Registration | None
    leave: LeaveRequest | None
    checkin: CheckIn | None
    waiting_position: int | None

    def label(self, event: Event) -> str:
        if self.checkin is not None:
            return "已签到（迟到）" if self.checkin.late else "已签到"
        if self.leave is not None and self.leave.status != "refused":
            return "已请假" if self.leave.status == "approved" else "请假待审批"
        reg = self.registration
        if reg is not None and reg.status == "signed":
            return "已报名"
        if reg is not None and reg.status == "offered":
            return f"有空位了，请在 {show(reg.offered_until, '%m-%d %H:%M')} 前回复“报名 {event.id}”确认"
        if reg is not None and reg.status == "waiting":
            return f"候补第 {self.waiting_position} 位"
        return "需参加" if not event.signup_required else "未报名"


def standing(session: Session, event: Event, member: Member) -> Standing:
    reg = _one(session, Registration, event, member)
    position = waiting_position(session, reg) if reg is not None and reg.status == "waiting" else None
    return Standing(reg, _one(session, LeaveRequest, event, member), _one(session, CheckIn, event, member), position)


def _one(session: Session, table, event: Event, member: Member):
    return session.scalar(select(table).where(table.event_id == event.id, table.member_id == member.id))


def waiting_position(session: Session, reg: Registration) -> int:
    return 1 + (session.scalar(select(func.count()).select_from(Registration).where(
        Registration.event_id == reg.event_id, Registration.status == "waiting",
        (Registration.joined_at < reg.joined_at)
        | ((Registration.joined_at == reg.joined_at) & (Registration.id < reg.id)))) or 0)


def places_taken(session: Session, event: Event) -> int:
    return session.scalar(select(func.count()).select_from(Registration).where(
        Registration.event_id == event.id, Registration.status.in_(TAKING_PLACES))) or 0


# ---- sign-up, cancel, waiting list ----

@dataclass(frozen=True)
class SignUp:
    outcome: str  # signed | waiting | already | accepted
    position: int | None = None


def sign_up(session: Session, event: Event, member: Member, at: datetime) -> SignUp:
    """Sign the member up, or put them on the waiting list when the event is full. The event row is
    locked first, so two sign-ups for the last place cannot both get it."""
    _lock(session, event)
    reg = _one(session, Registration, event, member)
    if reg is not None and reg.status == "signed":
        return SignUp("already")
    if reg is not None and reg.status == "waiting":
        return SignUp("already", waiting_position(session, reg))
    if reg is not None and reg.status == "offered":
        reg.status, reg.offered_until = "signed", None
        return SignUp("accepted")
    full = event.capacity is not None and places_taken(session, event) >= event.capacity
    status = "waiting" if full else "signed"
    if reg is None:
        reg = Registration(event_id=event.id, member_id=member.id, status=status, joined_at=at)
        session.add(reg)
    else:  # signing up again after cancelling: the back of the list
        reg.status, reg.joined_at, reg.offered_until = status, at, None
    session.flush()
    return SignUp(status, waiting_position(session, reg) if full else None)


def cancel_sign_up(session: Session, event: Event, member: Member) -> Registration | None:
    """The member's registration cancelled (None if there was nothing to cancel); a place it held
    is offered on by the caller (offer_freed_places)."""
    _lock(session, event)
    reg = _one(session, Registration, event, member)
    if reg is None or reg.status not in ("signed", "waiting", "offered"):
        return None
    reg.status, reg.offered_until = "cancelled", None
    session.flush()
    return reg


def offer_freed_places(session: Session, event: Event, at: datetime, offer_minutes: int) -> list[Registration]:
    """Offers lapsed by `at` pass on; then each free place goes to the first on the waiting list, with
    an offer valid `offer_minutes` (never past the sign-up deadline's end). Returns the new offers."""
    _lock(session, event)
    for reg in session.scalars(select(Registration).where(
            Registration.event_id == event.id, Registration.status == "offered", Registration.offered_until <= at)):
        reg.status = "lapsed"
    session.flush()
    if event.capacity is None or event.status != "active" or at >= signup_closes(event):
        return []
    free = event.capacity - places_taken(session, event)
    offers = []
    if free > 0:
        for reg in session.scalars(select(Registration).where(
                Registration.event_id == event.id, Registration.status == "waiting")
                .order_by(Registration.joined_at, Registration.id).limit(free)):
            reg.status = "offered"
            reg.offered_until = min(at + timedelta(minutes=offer_minutes), signup_closes(event))
            offers.append(reg)
    session.flush()
    return offers


def signup_closes(event: Event) -> datetime:
    return event.signup_deadline or event.starts_at


def _lock(session: Session, event: Event) -> None:
    """Serialise changes to one event's places (a row lock on PostgreSQL; SQLite has one writer)."""
    session.execute(select(Event.id).where(Event.id == event.id).with_for_update())


# ---- leave ----

def ask_leave(session: Session, event: Event, member: Member, reason: str, at: datetime) -> LeaveRequest:
    """A leave request (asked again: the new reason, back to pending unless already decided)."""
    leave = _one(session, LeaveRequest, event, member)
    if leave is None:
        leave = LeaveRequest(event_id=event.id, member_id=member.id, reason=reason[:200], created_at=at)
        session.add(leave)
    elif leave.status == "pending":
        leave.reason = reason[:200]
    session.flush()
    return leave


def decide_leave(leave: LeaveRequest, approve: bool, actor: str, at: datetime) -> None:
    leave.status, leave.decided_by, leave.decided_at = ("approved" if approve else "refused"), actor, at


# ---- check-in ----

def check_in(session: Session, event: Event, member: Member, at: datetime, method: str,
             flag: str = "") -> tuple[CheckIn, bool]:
    """(the check-in, whether it is new): one per event and member, whatever arrives twice (or at the
    same moment on another thread: the unique key decides)."""
    late = at > event.starts_at + timedelta(minutes=event.late_after_min)
    values = dict(event_id=event.id, member_id=member.id, at=at, late=late, method=method, flag=flag)
    if insert_if_absent(session, CheckIn, **values):
        return CheckIn(**values), True
    return _one(session, CheckIn, event, member), False


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


# ---- the rotating code: a QR scene and a 6-digit code per time slot, signed with the server's key ----

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


# ---- the event a form or an import row describes ----

FORM_TIME = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends
IMPORT_COLUMNS = ("标题", "类型", "开始时间", "结束时间", "地点", "组织", "需报名", "人数上限", "报名截止",
                  "积分", "学时", "主题")
IMPORT_REQUIRED = ("标题", "类型", "开始时间", "结束时间", "地点")
YES, NO = ("是", "需要", "yes", "y", "1", "true"), ("否", "不需要", "no", "n", "0", "false", "")


def _number(text: str, kind=int, low=0, high=100000):
    text = (text or "").strip()
    if not text:
        return None, None
    try:
        value = kind(text)
    except ValueError:
        return None, "不是数字"
    return (value, None) if low <= value <= high else (None, f"应在 {low} 到 {high} 之间")


def check_event(raw: dict, now: datetime, time_format: str = FORM_TIME) -> tuple[dict | None, str | None]:
    """The event's fields a form (or an import row, with its own labels mapped) describes, or why not."""
    from models.timeutil import parse_local_time
    title = (raw.get("title") or "").strip()
    if not title:
        return None, "请填写活动名称"
    kind = raw.get("kind") or ""
    if kind not in KINDS:
        return None, f"类型“{kind}”应为：{'、'.join(KINDS)}"
    starts = parse_local_time(raw.get("starts_at"), time_format)
    ends = parse_local_time(raw.get("ends_at"), time_format)
    if starts is None or ends is None:
        return None, "请填写开始和结束时间（如 2026-12-01 14:00）"
    if ends <= starts:
        return None, "结束时间要晚于开始时间"
    if ends <= now:
        return None, "结束时间已经过去了"
    deadline = None
    if (raw.get("signup_deadline") or "").strip():
        deadline = parse_local_time(raw.get("signup_deadline"), time_format)
        if deadline is None or deadline > starts:
            return None, "报名截止时间应早于活动开始"
    fields = {"title": title[:100], "kind": kind, "place": (raw.get("place") or "").strip()[:200],
              "topic": (raw.get("topic") or "").strip()[:2000], "starts_at": starts, "ends_at": ends,
              "signup_deadline": deadline, "signup_required": bool(raw.get("signup_required"))}
    if not fields["place"]:
        return None, "请填写地点"
    for key, label, kind_, low, high in (("capacity", "人数上限", int, 1, 100000), ("points", "积分", int, 0, 100),
                                         ("study_hours", "学时", float, 0, 24),
                                         ("checkin_before_min", "提前签到分钟", int, 0, 720),
                                         ("checkin_after_min", "开始后可签到分钟", int, 0, 720),
                                         ("late_after_min", "迟到分钟", int, 0, 720),
                                         ("radius_m", "签到半径", int, 20, 100000)):
        value, problem = _number(raw.get(key), kind_, low, high)
        if problem:
            return None, f"{label}{problem}"
        if value is not None or key in ("capacity", "radius_m"):
            fields[key] = value
    coordinates = [(raw.get(k) or "").strip() for k in ("latitude", "longitude")]
    if any(coordinates):
        try:
            lat, lng = float(coordinates[0]), float(coordinates[1])
        except ValueError:
            return None, "经纬度应为数字，如 26.5783, 106.7135"
        if not (-90 <= lat <= 90 and -180 <= lng <= 180) or not fields.get("radius_m"):
            return None, "经纬度超出范围，或没有填写签到半径（米）"
        fields.update(latitude=lat, longitude=lng)
    else:
        fields.update(latitude=None, longitude=None, radius_m=None)
    return fields, None


def event_form_values(event: Event) -> dict:
    """An event as its form shows it (the inverse of check_event)."""
    def text(value):
        return "" if value is None else f"{value:g}" if isinstance(value, float) else str(value)
    return {"title": event.title, "kind": event.kind, "place": event.place, "topic": event.topic,
            "starts_at": show(event.starts_at, FORM_TIME), "ends_at": show(event.ends_at, FORM_TIME),
            "signup_deadline": show(event.signup_deadline, FORM_TIME) if event.signup_deadline else "",
            "signup_required": "1" if event.signup_required else "", "capacity": text(event.capacity),
            "points": text(event.points), "study_hours": text(event.study_hours),
            "checkin_before_min": text(event.checkin_before_min), "checkin_after_min": text(event.checkin_after_min),
            "late_after_min": text(event.late_after_min), "latitude": text(event.latitude),
            "longitude": text(event.longitude), "radius_m": text(event.radius_m),
            "material_ids": ", ".join(map(str, event.materials()))}


@dataclass(frozen=True)
class EventRow:
    line: int
    fields: dict
    unit_name: str


def read_events(path: str, content: bytes | None, now: datetime) -> tuple[list[EventRow], list[tuple[int, str]]]:
    """A term's schedule: good rows, and (row number, reason) for each bad one; blank rows ignored."""
    from models.tables import read_table
    good, bad = [], []
    for line, raw in enumerate(read_table(path, content, IMPORT_REQUIRED, IMPORT_COLUMNS), start=2):
        if not any(raw.values()):
            continue
        needs = raw.get("需报名", "").strip().lower()
        if needs not in YES + NO:
            bad.append((line, f"需报名“{raw.get('需报名')}”应为 是 或 否"))
            continue
        form = {"title": raw.get("标题"), "kind": raw.get("类型"), "starts_at": raw.get("开始时间"),
                "ends_at": raw.get("结束时间"), "place": raw.get("地点"), "signup_required": needs in YES,
                "capacity": raw.get("人数上限"), "signup_deadline": raw.get("报名截止"), "points": raw.get("积分"),
                "study_hours": raw.get("学时"), "topic": raw.get("主题")}
        fields, reason = check_event(form, now, "%Y-%m-%d %H:%M")
        if reason:
            bad.append((line, reason))
        else:
            good.append(EventRow(line, fields, raw.get("组织", "").strip()))
    return good, bad


def template_rows() -> list[list]:
    return [list(IMPORT_COLUMNS),
            ["主题党日：重温入党誓词", "主题党日", "2026-12-05 14:00", "2026-12-05 16:00", "图书馆 301",
             "本科生第一党支部", "是", "60", "2026-12-04 18:00", "3", "2", "重温入党誓词，交流学习体会"],
            ["十二月支部党员大会", "支部党员大会", "2026-12-10 19:00", "2026-12-10 20:30", "学院 204", "", "否",
             "", "", "2", "1.5", "讨论发展对象"]]


# ---- attendance afterwards ----

ATTENDANCE = {"present": "出席", "late": "迟到", "leave": "请假", "absent": "缺席"}


@dataclass(frozen=True)
class Attendee:
    member_id: int
    name: str
    student_no: str
    unit_id: int
    branch: str
    state: str  # a key of ATTENDANCE
    at: datetime | None
    flag: str


def attendance(session: Session, event: Event, expected: list[int]) -> list[Attendee]:
    """Everyone expected or checked in: present, late, on leave (approved) or absent."""
    from models.members import OrgUnit
    checkins = {c.member_id: c for c in session.scalars(select(CheckIn).where(CheckIn.event_id == event.id))}
    leaves = set(session.scalars(select(LeaveRequest.member_id).where(
        LeaveRequest.event_id == event.id, LeaveRequest.status == "approved")))
    ids = set(expected) | set(checkins) | leaves
    rows = session.execute(select(Member.id, Member.name, Member.student_no, OrgUnit.id, OrgUnit.name)
                           .join(OrgUnit, OrgUnit.id == Member.org_unit_id).where(Member.id.in_(ids))).all()
    result = []
    for member_id, name, number, unit_id, branch in rows:
        found = checkins.get(member_id)
        state = ("late" if found.late else "present") if found else ("leave" if member_id in leaves else "absent")
        result.append(Attendee(member_id, name, number, unit_id, branch, state, found.at if found else None,
                               found.flag if found else ""))
    order = list(ATTENDANCE)
    return sorted(result, key=lambda a: (order.index(a.state), a.branch, a.student_no))


def import_events(session: Session, rows: list[EventRow], bad: list[tuple[int, str]], creator: str,
                  default_unit: int | None, allows_unit) -> int:
    """Add every row's event, each for its 组织 (a unit's name, or 学院/支部 when a name repeats;
    empty: `default_unit`) and that unit's whole subtree; a unit that does not exist, repeats, or lies
    outside `allows_unit` makes its row bad. Nothing is added while any row is bad. Returns the count."""
    from models.members import OrgUnit
    units = {}
    for row in rows:
        if not row.unit_name:
            units[row.line] = default_unit
            continue
        parts = [p.strip() for p in row.unit_name.replace(" / ", "/").split("/") if p.strip()]
        found = [u for u in session.scalars(select(OrgUnit).where(OrgUnit.name == parts[-1]))
                 if len(parts) == 1 or (u.parent is not None and u.parent.name == parts[-2])]
        if not found:
            bad.append((row.line, f"组织“{row.unit_name}”不存在"))
        elif len(found) > 1:
            bad.append((row.line, f"组织“{row.unit_name}”重名，请写成 学院/支部"))
        elif not allows_unit(found[0].id):
            bad.append((row.line, f"组织“{row.unit_name}”不在你的管理范围内"))
        else:
            units[row.line] = found[0].id
    from models.screening import screener_of
    screener = screener_of(session)  # the titles and places reach members in every reminder
    for row in rows:
        words = screener.screen(f"{row.fields['title']}\n{row.fields['place']}\n{row.fields.get('topic', '')}").words
        if words:
            bad.append((row.line, f"内容中有词表里的词：【{'】【'.join(words)}】"))
    if bad:
        return 0
    for row in rows:
        unit = units[row.line]
        session.add(Event(created_by=creator, org_unit_id=unit, **row.fields,
                          audience=json.dumps({"units": [unit]} if unit else {})))
    session.flush()
    return len(rows)
