"""The one audience selector: who a broadcast, push or reminder goes to.

A spec is plain data: {"everyone": true} or any of {"units": [id], "stages": [...], "roles": [...],
"student_nos": [...], "event": {"id": id, "who": signed|checked_in|absent|on_leave}}; kinds combine
with AND, values within a kind with OR; units include their subtrees. An organiser's scope always
applies: they can only address their own subtree.
"""
from __future__ import annotations

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from models.accounts import Scope, subtree_ids
from models.checkins import CheckIn
from models.events import Event
from models.followers import Follower
from models.members import Member, OrgUnit, normalise_student_no
from models.signups import TAKING_PLACES, LeaveRequest, Registration

# Who of an event a broadcast may address, in an organiser's words.
EVENT_GROUPS = {"signed": "已报名", "checked_in": "已签到", "absent": "缺席（未签到、未请假）", "on_leave": "已请假"}


class AudienceError(ValueError):
    """The spec selects nobody it may, or is malformed; the message says why."""


def audience_query(session: Session, spec: dict, scope: Scope) -> Select:
    """(openid, member_id) of the following recipients the spec selects within the scope."""
    query = select(Follower.openid, Follower.member_id).where(Follower.subscribed.is_(True))
    if spec.get("everyone") and scope.everything:
        return query
    return _selected(session, spec, scope.members(query.join(Member, Member.id == Follower.member_id)))


def audience_members(session: Session, spec: dict) -> Select:
    """Ids of every member the spec selects, following the account or not (who an event expects)."""
    return _selected(session, spec, select(Member.id))


def _selected(session: Session, spec: dict, query: Select) -> Select:
    if spec.get("units"):
        units = set().union(*(subtree_ids(session, int(u)) for u in spec["units"]))
        query = query.where(Member.org_unit_id.in_(units))
    if spec.get("stages"):
        query = query.where(Member.stage.in_(spec["stages"]))
    if spec.get("roles"):
        query = query.where(Member.role.in_(spec["roles"]))
    if spec.get("student_nos"):
        query = query.where(Member.student_no.in_([normalise_student_no(s) for s in spec["student_nos"]]))
    if spec.get("event"):
        query = query.where(Member.id.in_(event_people(session, int(spec["event"]["id"]), spec["event"]["who"])))
    return query


def event_people(session: Session, event_id: int, who: str) -> Select:
    """Ids of an event's members in one of EVENT_GROUPS: signed up (or offered a place), checked in,
    on approved leave, or absent (expected, neither checked in nor on leave)."""
    came = select(CheckIn.member_id).where(CheckIn.event_id == event_id)
    leave = select(LeaveRequest.member_id).where(LeaveRequest.event_id == event_id, LeaveRequest.status == "approved")
    signed = select(Registration.member_id).where(Registration.event_id == event_id,
                                                  Registration.status.in_(TAKING_PLACES))
    if who == "signed":
        return signed
    if who == "checked_in":
        return came
    if who == "on_leave":
        return leave
    event = session.get(Event, event_id)
    expected = signed if event is None or event.signup_required else audience_members(session, event.audience_spec())
    return select(Member.id).where(Member.id.in_(expected), Member.id.not_in(came), Member.id.not_in(leave))


def count_audience(session: Session, spec: dict, scope: Scope) -> int:
    return session.scalar(select(func.count()).select_from(audience_query(session, spec, scope).subquery())) or 0


def count_unreached(session: Session, spec: dict, scope: Scope) -> int:
    """Members on the roster the spec selects within the scope who follow with no bound WeChat: they
    cannot receive anything, and an organiser counting on them should know."""
    members = scope.members(select(Member.id))
    if not (spec.get("everyone") and scope.everything):
        members = _selected(session, spec, members)
    reached = select(Follower.member_id).where(Follower.subscribed.is_(True), Follower.member_id.is_not(None))
    return session.scalar(select(func.count()).select_from(members.where(Member.id.not_in(reached)).subquery())) or 0


def unreached_note(unreached: int) -> str:
    """"另有 2 人未绑定或未关注，收不到" (empty when everyone selected can be reached)."""
    return f"另有 {unreached} 人未绑定微信或未关注公众号，收不到" if unreached else ""


def describe_audience(session: Session, spec: dict) -> str:
    """The audience in words, e.g. '计算机学院；正式党员、预备党员'."""
    if spec.get("everyone"):
        return "全部"
    parts = []
    if spec.get("units"):
        parts.append("、".join(session.scalars(select(OrgUnit.name).where(OrgUnit.id.in_(spec["units"])))))
    for key in ("stages", "roles"):
        if spec.get(key):
            parts.append("、".join(spec[key]))
    if spec.get("student_nos"):
        parts.append(f"{len(spec['student_nos'])} 个指定学号")
    if spec.get("event"):
        event = session.get(Event, int(spec["event"]["id"]))
        title = event.title if event else "已删除的活动"
        parts.append(f"《{title}》{EVENT_GROUPS.get(spec['event']['who'], '')}的成员")
    return "；".join(parts) or "本组织全部成员"


def event_spec(event_id, who: str) -> dict | None:
    """An event audience as a spec part, or None when `who` is not one of EVENT_GROUPS."""
    return {"id": int(event_id), "who": who} if who in EVENT_GROUPS and str(event_id).isdigit() else None
