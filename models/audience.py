"""The one audience selector: who a broadcast, push or reminder goes to.

A spec is plain data: {"everyone": true} or any of {"units": [id], "stages": [...], "roles": [...],
"student_nos": [...]}; kinds combine with AND, values within a kind with OR; units include their
subtrees. An organiser's scope always applies: they can only address their own subtree.
"""
from __future__ import annotations

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from models.accounts import Scope, subtree_ids
from models.followers import Follower
from models.members import Member, OrgUnit, normalise_student_no


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
    return query


def in_audience(member: Member, spec: dict, units_of_member: set[int]) -> bool:
    """The same spec for one member, in memory (a material's or plan entry's audience; an empty spec
    is everyone). `units_of_member` is the member's unit and every unit above it (units_above)."""
    if spec.get("units") and not units_of_member & {int(u) for u in spec["units"]}:
        return False
    if spec.get("stages") and member.stage not in spec["stages"]:
        return False
    if spec.get("roles") and member.role not in spec["roles"]:
        return False
    numbers = spec.get("student_nos")
    return not numbers or member.student_no in {normalise_student_no(s) for s in numbers}


def units_above(member: Member) -> set[int]:
    found, unit = set(), member.org_unit
    while unit is not None:
        found.add(unit.id)
        unit = unit.parent
    return found


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
    return "；".join(parts) or "本组织全部成员"
