"""What is erased when a WeChat user leaves (WeChat's rule, PIPL): everything tied to their openid.

The roster and what belongs to the member (points, readings, answers, check-ins) stay: they are the
organisation's records of its members, not of a WeChat account.
"""
from __future__ import annotations

from sqlalchemy import String, cast, delete, literal, select, update
from sqlalchemy.orm import Session

from models.checkins import LocationReport
from models.delivery import Delivery, SubscriptionCredit
from models.followers import Follower, unbind_member
from models.messagelog import erase_messages
from models.miniprogram import mini_user_of_member, unbind_user


def forget_follower(session: Session, follower: Follower) -> None:
    """Unfollow: WeChat (and PIPL) require the user's information to be deleted. The follower row
    goes with its times, counters and binding; the message log and subscription credits go; past
    deliveries stay counted in their campaigns but lose the openid, the member and the read time.
    Location reports go at once (not at their retention's end). The roster and what belongs to the
    member (points, readings) stay: they are the organisation's."""
    openid = follower.openid
    erase_messages(session, openid)
    session.execute(delete(LocationReport).where(LocationReport.openid == openid))
    session.execute(delete(SubscriptionCredit).where(SubscriptionCredit.openid == openid))
    session.execute(update(Delivery).where(Delivery.openid == openid).values(
        openid=literal("erased-", String) + cast(Delivery.id, String), member_id=None, read_at=None, wechat_msgid="",
        callback_status=""))
    follower.subscribed, follower.member = False, None
    session.delete(follower)


def forget_openid(session: Session, openid: str) -> None:
    """forget_follower for an openid WeChat says does not (or no longer) follow."""
    follower = session.scalar(select(Follower).where(Follower.openid == openid))
    if follower is not None:
        forget_follower(session, follower)


def notify_unbound(session: Session, actor: str, follower: Follower, member) -> None:
    """Tell a WeChat user, through the delivery engine, that an organiser unbound them from a member
    (before the unbinding: afterwards no audience would find them)."""
    from models.accounts import Scope
    from models.delivery import create_campaign
    from models.timeutil import utcnow
    text = (f"你的微信已由组织员解除与 {member.name}（{member.student_no}）的绑定。"
            "如需重新绑定，请发送：绑定 学号 姓名")
    create_campaign(session, actor, Scope(None), {"student_nos": [member.student_no]}, {"text": text}, utcnow(),
                    member.org_unit_id, recipients=[(follower.openid, member.id)])


def unbind_wechat(session: Session, actor: str, member) -> bool:
    """Free a member's 学号 from the WeChat account bound to it (a new phone): the follower is told
    first, then unbound; the mini-program user of the same person is unbound and its sessions end.
    False when neither was bound."""
    follower = session.scalar(select(Follower).where(Follower.member_id == member.id))
    mini = mini_user_of_member(session, member.id)
    if follower is None and mini is None:
        return False
    if follower is not None:
        notify_unbound(session, actor, follower, member)
        unbind_member(follower)
    if mini is not None:
        unbind_user(mini)
    return True
