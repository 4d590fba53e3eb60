"""Mini-program users: the openid `wx.login` gives, linked to the same roster member as the chat.

One person appears under two openids (the Official Account's and the mini-program's). They are one
member when WeChat gives the same unionid for both, or when the mini-program user binds to the member
the follower is bound to (学号 and 姓名, or the binding code: the chat's rules). A unionid that arrives
late links an unbound mini-program user then; every record belongs to the member, so nothing moves.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from models.base import Base
from models.checkins import LocationReport
from models.delivery import SubscriptionCredit, grant_subscription
from models.followers import BindResult, Follower, roster_match
from models.members import Member


class MiniUser(Base):
    __tablename__ = "mini_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    openid: Mapped[str] = mapped_column(String(64), unique=True)
    unionid: Mapped[str | None] = mapped_column(String(64), index=True)
    # One mini-program user per member, as one follower per member.
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), unique=True)
    bound_at: Mapped[datetime | None]
    # WeChat's session_key of the last login: kept on the server, never sent to the client.
    session_key: Mapped[str] = mapped_column(String(64), default="")
    # Raised on unbinding and erasure: every session signed in before it stops working at once.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]

    member: Mapped[Member | None] = relationship()


def user_of(session: Session, openid: str) -> MiniUser | None:
    return session.scalar(select(MiniUser).where(MiniUser.openid == openid))


def log_in(session: Session, openid: str, unionid: str | None, session_key: str, at: datetime) -> MiniUser:
    """The mini-program user of this `wx.login`, created on first login; linked to the member of the
    follower with the same unionid when it is bound and this user is not."""
    user = user_of(session, openid)
    if user is None:
        try:
            with session.begin_nested():
                user = MiniUser(openid=openid, created_at=at)
                session.add(user)
        except IntegrityError:  # two first logins at once
            user = user_of(session, openid)
    user.session_key, user.last_login_at = session_key, at
    if unionid:
        user.unionid = unionid
        link_by_unionid(session, user, at)
    return user


def link_by_unionid(session: Session, user: MiniUser, at: datetime) -> bool:
    """Bind `user` to the member of the follower sharing its unionid (both unbound → nothing to do;
    both bound to different members → left as they are: the roster decides, not WeChat)."""
    if user.member_id is not None or not user.unionid:
        return False
    follower = session.scalar(select(Follower).where(Follower.unionid == user.unionid,
                                                    Follower.member_id.is_not(None)))
    if follower is None or _holder(session, follower.member_id) is not None:
        return False
    return _link(session, user, follower.member, at)


def link_follower_by_unionid(session: Session, follower: Follower, at: datetime) -> bool:
    """The other way round: bind an unbound follower to the member of the mini-program user sharing its
    unionid (a member who bound in the mini-program and follows the account later binds once)."""
    if follower.member_id is not None or not follower.unionid:
        return False
    user = session.scalar(select(MiniUser).where(MiniUser.unionid == follower.unionid,
                                                MiniUser.member_id.is_not(None)))
    if user is None or session.scalar(select(Follower.id).where(Follower.member_id == user.member_id)) is not None:
        return False
    try:
        with session.begin_nested():
            follower.member, follower.bound_at = user.member, at
            session.flush()
    except IntegrityError:  # the member bound in the chat at the same moment
        follower.member, follower.member_id, follower.bound_at = None, None, None
        return False
    return True


def bind_user(session: Session, user: MiniUser, student_no: str, name: str, at: datetime,
              code: str | None = None, require_code: bool = False) -> BindResult:
    """Bind as the chat binds (bind_member): the roster's check, one mini-program user per member."""
    if user.member is not None:
        return BindResult(False, "already_bound", user.member)
    found = roster_match(session, student_no, name, code, require_code)
    if not found.ok:
        return found
    member = found.member
    holder = _holder(session, member.id)
    if holder is not None and holder.id != user.id:
        return BindResult(False, "taken")
    if not _link(session, user, member, at):
        return BindResult(False, "taken")
    if require_code:
        member.bind_code = None  # one time, as in the chat
    return BindResult(True, "ok", member)


def unbind_user(user: MiniUser) -> Member | None:
    """Remove the link to the roster; the member's records stay, the user's sessions end."""
    member = user.member
    user.member, user.member_id, user.bound_at = None, None, None
    user.session_epoch += 1
    return member


def forget_user(session: Session, user: MiniUser) -> None:
    """Erasure (the member's request): the mini-program user goes with its session_key, unionid,
    subscription-message credits and shared location; the member's records stay, as when a
    follower leaves."""
    session.execute(delete(SubscriptionCredit).where(SubscriptionCredit.openid == user.openid))
    session.execute(delete(LocationReport).where(LocationReport.openid == user.openid))
    session.delete(user)


def mini_reach(session: Session, member_ids: list[int], template_id: str) -> dict[int, tuple[str, int]]:
    """Member id → (their mini-program openid, subscription-message credits for `template_id`), for
    members who allowed at least one; the delivery engine's and the forecast's view."""
    if not template_id or not member_ids:
        return {}
    rows = session.execute(select(MiniUser.member_id, MiniUser.openid, SubscriptionCredit.credits)
                           .join(SubscriptionCredit, (SubscriptionCredit.openid == MiniUser.openid)
                                 & (SubscriptionCredit.template_id == template_id))
                           .where(MiniUser.member_id.in_(member_ids), SubscriptionCredit.credits > 0))
    return {member_id: (openid, credits) for member_id, openid, credits in rows}


def record_consent(session: Session, openid: str, event: str, items: list[dict], template_id: str) -> int:
    """What a member chose for our subscription-message template, as WeChat pushed it: a popup's
    "accept" is one more message we may send; a settings change to "reject" takes the credits away.
    Returns how many of the items were ours."""
    ours = [i for i in items if template_id and i.get("TemplateId") == template_id]
    for item in ours:
        status = item.get("SubscribeStatusString", "")
        if event == "subscribe_msg_popup_event" and status == "accept":
            grant_subscription(session, openid, template_id)
        elif event == "subscribe_msg_change_event" and status == "reject":
            session.execute(update(SubscriptionCredit).where(SubscriptionCredit.openid == openid,
                                                             SubscriptionCredit.template_id == template_id)
                            .values(credits=0))
    return len(ours)


def mini_user_of_member(session: Session, member_id: int) -> MiniUser | None:
    return _holder(session, member_id)


def _holder(session: Session, member_id: int) -> MiniUser | None:
    return session.scalar(select(MiniUser).where(MiniUser.member_id == member_id))


def _link(session: Session, user: MiniUser, member: Member, at: datetime) -> bool:
    try:
        with session.begin_nested():
            user.member, user.bound_at = member, at
            session.flush()
    except IntegrityError:  # another mini-program user bound this member at the same moment
        user.member, user.member_id, user.bound_at = None, None, None
        return False
    return True
