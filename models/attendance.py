"""Attendance: who came, late, on leave or absent. Nobody is absent while they still may check in:
until the check-in closes (or the event ends, if sooner), those not there yet are 未签到."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.checkins import CheckIn
from models.events import Event
from models.members import Member
from models.signups import LeaveRequest

ATTENDANCE = {"present": "出席", "late": "迟到", "leave": "请假", "pending": "未签到", "absent": "缺席"}


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


def attendance(session: Session, event: Event, expected: list[int], at: datetime) -> list[Attendee]:
    """Everyone expected or checked in at `at`: present, late, on leave (approved), and the others
    pending until the check-in closes, absent after."""
    from models.members import OrgUnit
    checkins = {c.member_id: c for c in session.scalars(select(CheckIn).where(CheckIn.event_id == event.id))}
    leaves = set(session.scalars(select(LeaveRequest.member_id).where(
        LeaveRequest.event_id == event.id, LeaveRequest.status == "approved")))
    ids = set(expected) | set(checkins) | leaves
    rows = session.execute(select(Member.id, Member.name, Member.student_no, OrgUnit.id, OrgUnit.name)
                           .join(OrgUnit, OrgUnit.id == Member.org_unit_id).where(Member.id.in_(ids))).all()
    result, missing = [], "pending" if at <= min(event.checkin_closes, event.ends_at) else "absent"
    for member_id, name, number, unit_id, branch in rows:
        found = checkins.get(member_id)
        state = ("late" if found.late else "present") if found else ("leave" if member_id in leaves else missing)
        result.append(Attendee(member_id, name, number, unit_id, branch, state, found.at if found else None,
                               found.flag if found else ""))
    order = list(ATTENDANCE)
    return sorted(result, key=lambda a: (order.index(a.state), a.branch, a.student_no))
