"""Attendance afterwards: who came, late, on leave or absent (only once the event has begun)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.checkins import CheckIn
from models.events import Event
from models.members import Member
from models.signups import LeaveRequest

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
