"""WeChat followers, their link to a member, and the customer-service window they open."""
from __future__ import annotations

import hmac
import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import Boolean, ForeignKey, Integer, String, bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, joinedload, mapped_column, relationship

from models.base import Base
from models.members import ROLES, Member, OrgUnit, member_by_student_no, normalise_name
from models.timeutil import utcnow

# Interaction times are kept to this precision: a burst of messages writes the row once. The stored
# window may end up to this much earlier than WeChat's: the safe side.
TOUCH_PRECISION = timedelta(seconds=60)


class Follower(Base):
    __tablename__ = "followers"

    id: Mapped[int] = mapped_column(primary_key=True)
    openid: Mapped[str] = mapped_column(String(64), unique=True)
    subscribed: Mapped[bool] = mapped_column(Boolean, default=True)
    subscribed_at: Mapped[datetime | None]
    unsubscribed_at: Mapped[datetime | None]
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_interaction_at: Mapped[datetime | None] = mapped_column(index=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), unique=True)
    bound_at: Mapped[datetime | None]
    # The person across the organisation's account and mini-program (from user/info, when WeChat
    # gives it: the Official Account is bound to an Open Platform account).
    unionid: Mapped[str | None] = mapped_column(String(64), index=True)
    # Customer-service window, as opened by the follower's last interactions.
    cs_window_until: Mapped[datetime | None]
    cs_window_left: Mapped[int] = mapped_column(Integer, default=0)
    # When a window message was last spent: an interaction older than that (two messages at once, one
    # recorded late) already had those sends counted against its grant and gives nothing back.
    cs_window_spent_at: Mapped[datetime | None]
    # Mass messages received this month ("YYYY-MM" Beijing time), for the per-follower monthly limit.
    mass_month: Mapped[str] = mapped_column(String(7), default="")
    mass_count: Mapped[int] = mapped_column(Integer, default=0)

    member: Mapped[Member | None] = relationship()


# The follower with its member, branch, college and school in one query, built once: every first
# message of a sender (a hall checking in after a quiet hour) runs it.
_FOLLOWER = select(Follower).where(Follower.openid == bindparam("openid")).options(
    joinedload(Follower.member).joinedload(Member.org_unit).joinedload(OrgUnit.parent).joinedload(OrgUnit.parent))


def find_follower(session: Session, openid: str) -> Follower | None:
    """The follower row for `openid` with its member and org path, if there is one."""
    return session.scalar(_FOLLOWER, {"openid": openid})


def follower_for(session: Session, openid: str, at: datetime) -> Follower:
    """The follower row for `openid` with its member and org path, created on first contact."""
    follower = find_follower(session, openid)
    if follower is not None:
        return follower
    try:
        with session.begin_nested():
            follower = Follower(openid=openid, subscribed=True, first_seen_at=at, subscribed_at=at)
            session.add(follower)
    except IntegrityError:  # created by a concurrent first message
        follower = find_follower(session, openid)
    return follower


@dataclass(frozen=True)
class Profile:
    """What a message needs to know of its sender, kept in the store between messages so that most
    messages need no database at all: the follower and, when bound, the member and their branch."""

    openid: str
    follower_id: int
    subscribed: bool
    member_id: int | None = None
    name: str = ""
    student_no: str = ""
    stage: str = ""
    role: str = ""
    org_unit_id: int | None = None
    branch: str = ""  # the member's org unit
    unit_path: str = ""  # from the college down, as OrgUnit.path()

    @property
    def bound(self) -> bool:
        return self.member_id is not None

    @property
    def role_label(self) -> str:
        return ROLES.get(self.role, self.role)

    def dumps(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def loads(cls, raw: str) -> Profile:
        return cls(**json.loads(raw))


def profile_of(follower: Follower) -> Profile:
    member = follower.member
    if member is None:
        return Profile(follower.openid, follower.id, follower.subscribed)
    unit = member.org_unit
    return Profile(follower.openid, follower.id, follower.subscribed, member.id, member.name, member.student_no,
                   member.stage, member.role, member.org_unit_id, unit.name if unit else "",
                   unit.path() if unit else "")


def window_rule(kind: str, wechat) -> tuple[int, int] | None:
    """(seconds, messages) a customer-service window of this interaction kind grants, per config."""
    if kind == "message":
        return wechat.cs_window_message_seconds, wechat.cs_window_message_count
    if kind == "event":
        return wechat.cs_window_event_seconds, wechat.cs_window_event_count
    return None


def widened_window(until: datetime | None, left: int, rule: tuple[int, int], at: datetime,
                   precision: timedelta = timedelta(0),
                   spent_at: datetime | None = None) -> tuple[datetime | None, int]:
    """The window after an interaction: a fresh one when it was closed or had fewer messages left,
    else the same count for longer (not rewritten for less than `precision`). An interaction that
    is not newer than the window (one recorded late, or twice), or older than the last message
    spent (whose send WeChat counted against this interaction's grant), never gives back messages."""
    seconds, count = rule
    fresh = at + timedelta(seconds=seconds)
    if until is None or until < at:
        return fresh, count
    if fresh <= until:
        return until, left
    if count > left and (spent_at is None or spent_at <= at):
        return fresh, count
    return (fresh if fresh - until > precision else until), left


def record_interaction(follower: Follower, kind: str, at: datetime, wechat) -> None:
    """Note an interaction; it opens (or widens) the customer-service window."""
    if not follower.subscribed and kind != "unsubscribe":
        follower.subscribed, follower.subscribed_at, follower.unsubscribed_at = True, at, None
    if follower.last_interaction_at is None or at - follower.last_interaction_at >= TOUCH_PRECISION:
        follower.last_interaction_at = at
    rule = window_rule(kind, wechat)
    if rule is not None:
        until, left = widened_window(follower.cs_window_until, follower.cs_window_left, rule, at, TOUCH_PRECISION,
                                     follower.cs_window_spent_at)
        if (until, left) != (follower.cs_window_until, follower.cs_window_left):
            follower.cs_window_until, follower.cs_window_left = until, left


def spend_window_message(session: Session, openid: str, at: datetime) -> None:
    """One customer-service message sent outside the engine (a late reply) uses the window too."""
    session.execute(update(Follower).where(Follower.openid == openid, Follower.cs_window_left > 0)
                    .values(cs_window_left=Follower.cs_window_left - 1, cs_window_spent_at=at))


@dataclass(frozen=True)
class BindResult:
    ok: bool
    reason: str  # ok | not_found | name_mismatch | code_mismatch | taken | already_bound
    member: Member | None = None


def roster_match(session: Session, student_no: str, name: str, code: str | None = None,
                 require_code: bool = False) -> BindResult:
    """The roster member with this 学号 and 姓名 (and one-time binding code when `require_code`):
    what binding checks, in the chat and in the mini-program alike."""
    member = member_by_student_no(session, student_no)
    if member is None:
        return BindResult(False, "not_found")
    if normalise_name(member.name) != normalise_name(name):
        return BindResult(False, "name_mismatch")
    matches = bool(member.bind_code and code) and hmac.compare_digest(member.bind_code.encode(), code.encode())
    if require_code and not matches:
        return BindResult(False, "code_mismatch")
    return BindResult(True, "ok", member)


def bind_member(session: Session, follower: Follower, student_no: str, name: str, at: datetime,
                code: str | None = None, require_code: bool = False) -> BindResult:
    """Link a follower to the roster member with this 学号 and 姓名 (and one-time binding code when
    `require_code`); one openid per member. The reasons are for the log: users get one answer."""
    if follower.member is not None:
        return BindResult(False, "already_bound", follower.member)
    found = roster_match(session, student_no, name, code, require_code)
    if not found.ok:
        return found
    member = found.member
    holder = session.scalar(select(Follower).where(Follower.member_id == member.id))
    if holder is not None and holder.id != follower.id:
        return BindResult(False, "taken")
    try:
        with session.begin_nested():
            follower.member, follower.bound_at = member, at
            if require_code:
                member.bind_code = None  # one time: a code that leaked later binds nobody
            session.flush()
    except IntegrityError:  # another openid bound this member at the same moment
        follower.member, follower.bound_at = None, None
        return BindResult(False, "taken")
    return BindResult(True, "ok", member)


def unbind_member(follower: Follower) -> Member | None:
    """Remove the follower's link to the roster; returns the member it was bound to."""
    member = follower.member
    follower.member, follower.member_id, follower.bound_at = None, None, None
    return member
