"""帮助, and the fallback for anything no other handler took. Included last.

帮助 is short: the commands used most, then one line per section (学习, 答题, 活动, 留言, 我的, and 群发
for organisers) naming its commands; `帮助 活动` lists a section's commands with what each does. All of
it is built from the handlers' own help and the routers' topics: a new command appears by itself.
"""
from __future__ import annotations

from wxbot.router import Context, Router

router = Router("help")
EXIT_LINE = "随时回复“退出”结束进行中的操作。"
COMMON = ("学习", "答题", "活动", "积分")  # what members use most, first in 帮助


def overview(ctx: Context) -> str:
    """The sections this user can use now, each with its commands' first words."""
    topics = ctx.dispatcher.help_topics(ctx.audiences)
    available = {usage.split()[0] for commands in topics.values() for usage, _summary in commands}
    common = [word for word in COMMON if word in available]
    lines = [f"可以发送：{'、'.join(common)}", "分类帮助（发送左边的字）："] if ctx.bound else ["现在可以发送："]
    for topic, commands in topics.items():
        names = "、".join(dict.fromkeys(usage.split()[0] for usage, _summary in commands))
        lines.append(f"· 帮助 {topic}：{names}")
    lines.append(EXIT_LINE)
    return "\n".join(lines)


@router.text("帮助", "help", "?", "菜单", "你好", quick=True)
def show_help(ctx: Context):
    """What the user can do now, in short."""
    if not ctx.bound:
        from handlers.members import bind_hint
        return (f"你好！你还没有绑定身份。{bind_hint(ctx.settings)}\n绑定后可以学习、答题、报名活动、留言。\n"
                f"{overview(ctx)}")
    return f"{ctx.profile.name}，你好！{overview(ctx)}"


@router.regex(r"(?:帮助|help)\s*(\S+)", quick=True)
def topic_help(ctx: Context, topic: str):
    """One section's commands, each with what it does."""
    commands = ctx.dispatcher.help_topics(ctx.audiences).get(topic)
    if not commands:
        return f"没有“{topic}”这一类。{overview(ctx)}"
    return f"{topic}：\n" + "\n".join(f"· {usage}：{summary}" for usage, summary in commands)


@router.fallback(quick=True)
def not_understood(ctx: Context):
    """Anything else: say so, and show what works."""
    if ctx.inbound.text:
        return f"没有找到“{ctx.inbound.raw_text[:20]}”对应的功能。\n{overview(ctx)}"
    return f"已收到。目前只能处理文字消息。\n{overview(ctx)}"
