"""Study from the chat: 学习 (today's material), 往期 (the last days), 积分 and 排行."""
from __future__ import annotations

from datetime import timedelta

from flask import current_app
from markupsafe import escape

from models.points import leader_boards, standing
from models.study import plan_for
from models.timeutil import local_date
from wxbot.router import Context, News, Router
from wxbot.study import day_article, study_link

router = Router("study", topic="学习", display=("学习", "往期", "积分", "排行"))


@router.text("学习", who="member", help=("学习", "今天的学习内容（阅读满 1 分钟计入学习记录）"))
def today(ctx: Context):
    """Today's study as a news reply with the member's own link (the first material; its page links
    the others), named as the day's push names it."""
    day = local_date(ctx.now)
    entries = plan_for(ctx.session, ctx.member, day, day)
    if not entries:
        return "今天没有安排学习内容。发送“往期”查看最近的学习材料。"
    first = entries[0].material
    title, description = day_article([e.material for e in entries])
    return News(title, description, study_link(current_app, ctx.member.id, first.id), first.cover)


@router.text("往期", who="member", help=("往期", "最近几天的学习材料"))
def history(ctx: Context):
    """The last days' materials, each a personal link (a passive reply holds one article only)."""
    days = ctx.settings.study.history_days
    day = local_date(ctx.now)
    entries = plan_for(ctx.session, ctx.member, day - timedelta(days=days - 1), day)
    if not entries:
        return f"最近 {days} 天没有学习材料。"
    lines, budget = [f"最近 {days} 天的学习材料（点标题阅读）："], ctx.settings.wechat.text_reply_max_bytes - 60
    for entry in entries:
        link = study_link(current_app, ctx.member.id, entry.material_id)
        line = f"{entry.day.strftime('%m-%d')} <a href=\"{link}\">{escape(entry.material.title)}</a>"
        if len("\n".join(lines + [line]).encode()) > budget:  # never cut a link in half: leave the older ones out
            lines.append(f"（只列出了最近的 {len(lines) - 1} 篇）")
            break
        lines.append(line)
    return "\n".join(lines)


@router.text("积分", who="member", help=("积分", "今日积分、总积分、连续学习天数和支部排名"))
def points(ctx: Context):
    mine = standing(ctx.session, ctx.member, ctx.now)
    ranks = (f"支部排名：第 {mine.branch_rank} 名（共 {mine.branch_size} 人）\n全校排名：第 {mine.school_rank} 名"
             if mine.total > 0 else "排名：还没有积分，学习后就会上榜")
    next_step = "今天的学习已完成，明天继续保持。" if mine.studied_today else "发送“学习”开始今天的学习。"
    return (f"{ctx.member.name}的积分\n今日：{mine.today}\n总计：{mine.total}\n"
            f"连续学习：{mine.streak} 天\n{ranks}\n\n{next_step}")


@router.text("排行", who="member", help=("排行", "支部和全校积分前十名"))
def ranking(ctx: Context):
    mine = standing(ctx.session, ctx.member, ctx.now)
    branch, school = leader_boards(ctx.session, ctx.member.org_unit_id)
    place = (f"支部第 {mine.branch_rank} 名（共 {mine.branch_size} 人），全校第 {mine.school_rank} 名，{mine.total} 分"
             if mine.total > 0 else "还没有积分，学习后就会上榜")
    parts = [_board(f"{ctx.member.org_unit.name} 前十", [(name, total) for name, _branch, total in branch]),
             _board("全校前十", [(f"{name}（{branch_name}）", total) for name, branch_name, total in school]),
             f"你的位置：{place}"]
    return "\n\n".join(parts)


def _board(title: str, rows: list[tuple[str, int]]) -> str:
    """A board in order of points; members with the same points share a rank (1, 1, 3)."""
    if not rows:
        return f"{title}\n还没有人获得积分"
    lines = [f"{1 + sum(other > total for _n, other in rows)}. {name} {total} 分" for name, total in rows]
    return title + "\n" + "\n".join(lines)
