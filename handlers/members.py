"""Following, binding a WeChat user to the roster, and 我的."""
from __future__ import annotations

from models.followers import bind_member, forget_follower, unbind_member
from wxbot.conversation import forget_conversation
from wxbot.router import Context, Router

router = Router("members")

BIND_HINT = "请发送：绑定 学号 姓名\n例如：绑定 2023001 张三"
BIND_REFUSALS = {
    "not_found": "没有找到这个学号。请核对后重试；如确认无误，请联系本支部组织员把你加入名单。",
    "name_mismatch": "学号与姓名不一致，请核对后重试。",
    "taken": "这个学号已绑定其他微信。如需更换微信，请联系本支部组织员解除原绑定。",
}


def _bind_failures_key(openid: str) -> str:
    return f"bindfail:{openid}"


@router.event("subscribe")
def welcome(ctx: Context):
    """A follow: greet, and tell an unbound user how to bind."""
    if ctx.member is not None:
        return f"欢迎回来，{ctx.member.name}！发送“帮助”查看可用功能。"
    school = ctx.settings.school.name
    return f"欢迎关注{school}党建公众号！\n\n首次使用请绑定身份，{BIND_HINT}\n\n发送“帮助”查看全部功能。"


@router.event("unsubscribe")
def farewell(ctx: Context):
    """An unfollow: erase the binding, the conversation and the message log (WeChat's rule)."""
    forget_follower(ctx.session, ctx.follower, ctx.now)
    forget_conversation(ctx.store, ctx.openid)
    return None


@router.regex(r"绑定\s*([0-9a-z][0-9a-z_-]*)\s*([^\s\d][^\d]*)", who="unbound", help=("绑定 学号 姓名", "绑定身份，之后才能学习、答题、报名"))
def bind(ctx: Context, student_no: str, name: str):
    """Check 学号 and 姓名 against the roster and link this WeChat user to the member."""
    members = ctx.settings.members
    key = _bind_failures_key(ctx.openid)
    if int(ctx.store.get(key) or 0) >= members.bind_max_failures:
        minutes = max(1, int((ctx.store.ttl(key) or 60) // 60))
        return f"绑定失败次数过多，请 {minutes} 分钟后再试，或联系本支部组织员。"
    result = bind_member(ctx.session, ctx.follower, student_no, name, ctx.now)
    if result.ok:
        ctx.store.delete(key)
        member = result.member
        return f"绑定成功！\n姓名：{member.name}\n支部：{member.org_unit.path()}\n政治面貌：{member.stage}\n\n发送“帮助”查看可用功能。"
    if result.reason == "already_bound":
        return f"你已绑定 {result.member.name}（{result.member.student_no}）。如需更换，请先发送“解绑”。"
    ctx.store.incr(key, members.bind_failure_window)
    return BIND_REFUSALS[result.reason]


@router.regex(r"绑定.*")
def bind_usage(ctx: Context):
    """绑定 without both 学号 and 姓名: show the format."""
    return f"格式不对。{BIND_HINT}"


@router.text("解绑", who="member", help=("解绑", "解除微信与学号的绑定"))
def unbind(ctx: Context):
    """Remove the link to the roster; the member's records stay."""
    member = unbind_member(ctx.follower)
    return f"已解除与 {member.name}（{member.student_no}）的绑定。需要时可重新发送“绑定 学号 姓名”。"


@router.text("我的", who="all", help=("我的", "查看我的身份信息"))
def my_profile(ctx: Context):
    """Who the user is on the roster."""
    member = ctx.member
    if member is None:
        return f"你还没有绑定身份。{BIND_HINT}"
    return (f"姓名：{member.name}\n学号：{member.student_no}\n支部：{member.org_unit.path()}\n"
            f"政治面貌：{member.stage}\n角色：{member.role_label}")
