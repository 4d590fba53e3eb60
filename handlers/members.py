"""Following, binding a WeChat user to the roster, and 我的."""
from __future__ import annotations

import logging
from collections.abc import Callable

from models.followers import bind_member, unbind_member
from models.members import Member
from models.privacy import forget_follower
from wxbot.conversation import forget_conversation
from wxbot.profiles import profile_key
from wxbot.replies import mask
from wxbot.router import Context, Router

logger = logging.getLogger(__name__)
router = Router("members", topic="我的", display=("我的", "绑定 学号 姓名", "解绑"))

BIND_EXAMPLE = "2025123456 张三"  # not a 学号 of the demo roster


def unbound_reply(ctx: Context) -> str:
    """What a member-only command says to someone who has not bound yet."""
    return f"该功能需要先绑定身份。{bind_hint(ctx.settings)}"


def bind_hint(settings) -> str:
    """How to bind, in the configured mode."""
    if settings.members.bind_mode == "code":
        return f"请发送：绑定 学号 姓名 绑定码（绑定码向本支部组织员领取）\n例如：绑定 {BIND_EXAMPLE} 48213957"
    return f"请发送：绑定 学号 姓名\n例如：绑定 {BIND_EXAMPLE}"


def bind_refused(settings) -> str:
    """One answer for every failed binding, so that nobody learns which 学号 exist or are bound."""
    what = "学号、姓名和绑定码" if settings.members.bind_mode == "code" else "学号和姓名"
    return (f"绑定没有成功。请核对{what}后重试。\n"
            "如果确认无误仍不成功（例如这个学号已绑定了别的微信），请联系本支部组织员。")


# What other features do when someone binds (e.g. the check-in of a newcomer who scanned first):
# each hook gets the context and the member, and may add a line to the reply.
AFTER_BIND: list[Callable[[Context, Member], str | None]] = []


def _bind_failures_key(openid: str) -> str:
    return f"bindfail:{openid}"


@router.event("subscribe")
def welcome(ctx: Context):
    """A follow: greet, and tell an unbound user how to bind."""
    if ctx.member is not None:
        return f"欢迎回来，{ctx.member.name}！发送“帮助”查看可用功能。"
    school = ctx.settings.school.name
    return f"欢迎关注{school}党建公众号！\n\n首次使用请绑定身份，{bind_hint(ctx.settings)}\n\n发送“帮助”查看全部功能。"


@router.event("unsubscribe")
def farewell(ctx: Context):
    """An unfollow: erase what we hold about the WeChat user (WeChat's rule, PIPL)."""
    forget_follower(ctx.session, ctx.follower)
    forget_conversation(ctx.store, ctx.openid)
    ctx.store.delete(_bind_failures_key(ctx.openid), profile_key(ctx.openid))
    return None


@router.regex(r"绑定\s*([0-9a-z][0-9a-z_-]*)\s*([^\s\d][^\d]*?)(?:\s*(\d{6,12}))?", who="unbound",
              help=("绑定 学号 姓名", "绑定身份，之后才能学习、答题、报名"))
def bind(ctx: Context, student_no: str, name: str, code: str | None):
    """Check 学号 and 姓名 (and the binding code) against the roster and link this WeChat user."""
    members = ctx.settings.members
    key = _bind_failures_key(ctx.openid)
    if int(ctx.store.get(key) or 0) >= members.bind_max_failures:
        minutes = max(1, int((ctx.store.ttl(key) or 60) // 60))
        return f"绑定失败次数过多，请 {minutes} 分钟后再试，或联系本支部组织员。"
    result = bind_member(ctx.session, ctx.follower, student_no, name.strip(), ctx.now, code,
                         require_code=members.bind_mode == "code")
    if result.ok:
        ctx.store.delete(key)
        member = result.member
        reply = (f"绑定成功！\n姓名：{member.name}\n支部：{member.org_unit.path()}\n政治面貌：{member.stage}\n\n"
                 "发送“帮助”查看可用功能。")
        extras = [extra for hook in AFTER_BIND if (extra := hook(ctx, member))]
        return "\n\n".join([reply, *extras])
    if result.reason == "already_bound":
        return f"你已绑定 {result.member.name}（{result.member.student_no}）。如需更换，请先发送“解绑”。"
    logger.info("binding refused for %s: %s", mask(ctx.openid), result.reason)
    ctx.store.incr(key, members.bind_failure_window)
    return bind_refused(ctx.settings)


@router.regex(r"绑定.*", quick=True)
def bind_usage(ctx: Context):
    """绑定 without both 学号 and 姓名: show the format."""
    return f"格式不对。{bind_hint(ctx.settings)}"


@router.text("解绑", who="member", help=("解绑", "解除微信与学号的绑定"))
def unbind(ctx: Context):
    """Remove the link to the roster; the member's records stay."""
    member = unbind_member(ctx.follower)
    return f"已解除与 {member.name}（{member.student_no}）的绑定。需要时可重新发送“绑定 学号 姓名”。"


@router.text("我的", who="all", help=("我的", "查看我的身份信息"), quick=True)
def my_profile(ctx: Context):
    """Who the user is on the roster (from the sender's profile: no database)."""
    if not ctx.bound:
        return f"你还没有绑定身份。{bind_hint(ctx.settings)}"
    me = ctx.profile
    return (f"姓名：{me.name}\n学号：{me.student_no}\n支部：{me.unit_path}\n"
            f"政治面貌：{me.stage}\n角色：{me.role_label}")
