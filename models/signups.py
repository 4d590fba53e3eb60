"""Signing up for an event, its waiting list, and leave. Places are taken by those signed up and
those offered a freed place; the waiting list is ordered by the time each joined it."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, String, UniqueConstraint, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base
from models.checkins import CheckIn
from models.events import Event, of_member
from models.members import Member
from models.timeutil import show, utcnow

TAKING_PLACES = ("signed", "offered")


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
    reg = of_member(session, Registration, event, member)
    position = waiting_position(session, reg) if reg is not None and reg.status == "waiting" else None
    leave, checkin = of_member(session, LeaveRequest, event, member), of_member(session, CheckIn, event, member)
    return Standing(reg, leave, checkin, position)


def waiting_position(session: Session, reg: Registration) -> int:
    return 1 + (session.scalar(select(func.count()).select_from(Registration).where(
        Registration.event_id == reg.event_id, Registration.status == "waiting",
        (Registration.joined_at < reg.joined_at)
        | ((Registration.joined_at == reg.joined_at) & (Registration.id < reg.id)))) or 0)


def places_taken(session: Session, event: Event) -> int:
    return session.scalar(select(func.count()).select_from(Registration).where(
        Registration.event_id == event.id, Registration.status.in_(TAKING_PLACES))) or 0


@dataclass(frozen=True)
class SignUp:
    outcome: str  # signed | waiting | already | accepted
    position: int | None = None


def sign_up(session: Session, event: Event, member: Member, at: datetime) -> SignUp:
    """Sign the member up, or put them on the waiting list when the event is full. The event row is
    locked first, so two sign-ups for the last place cannot both get it."""
    _lock(session, event)
    reg = of_member(session, Registration, event, member)
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
    reg = of_member(session, Registration, event, member)
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


def ask_leave(session: Session, event: Event, member: Member, reason: str, at: datetime) -> LeaveRequest:
    """A leave request (asked again: the new reason, back to pending unless already decided)."""
    leave = of_member(session, LeaveRequest, event, member)
    if leave is None:
        leave = LeaveRequest(event_id=event.id, member_id=member.id, reason=reason[:200], created_at=at)
        session.add(leave)
    elif leave.status == "pending":
        leave.reason = reason[:200]
    session.flush()
    return leave


def decide_leave(leave: LeaveRequest, approve: bool, actor: str, at: datetime) -> None:
    leave.status, leave.decided_by, leave.decided_at = ("approved" if approve else "refused"), actor, at
