"""帮助, and the fallback for anything no other handler took. Included last."""
from __future__ import annotations

from wxbot.router import Context, Router

router = Router("help")


def command_list(ctx: Context) -> str:
    """The commands this user can use now, built from the handlers' own help."""
    lines = [f"· {usage}：{summary}" for usage, summary in ctx.dispatcher.commands_for(ctx.audiences)]
    lines.append("· 退出：结束当前进行中的操作")
    return "\n".join(lines)


@router.text("帮助", "help", "?", "菜单", "你好", help=("帮助", "查看可用功能"), quick=True)
def show_help(ctx: Context):
    """List what the user can do now."""
    greeting = f"{ctx.profile.name}，你好！" if ctx.bound else "你好！你还没有绑定身份。"
    return f"{greeting}可以发送：\n{command_list(ctx)}"


# Contract vocabulary whose feature has not landed yet; remove a word when its router does.
@router.fallback(quick=True)
def not_understood(ctx: Context):
    """Anything else: say so, and show what works."""
    if ctx.inbound.text:
        return f"没有找到“{ctx.inbound.raw_text[:20]}”对应的功能。你可以发送：\n{command_list(ctx)}"
    return f"已收到。目前只能处理文字消息，你可以发送：\n{command_list(ctx)}"
