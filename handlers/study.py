"""Study from the chat: 学习 (today's material), 往期 (the last days), 积分 and 排行."""
from __future__ import annotations

from datetime import timedelta

from flask import current_app

from models.points import leader_boards, standing
from models.study import plan_for
from models.timeutil import local_date
from wxbot.router import Context, News, Router
from wxbot.study import study_link

router = Router("study")


@router.text("学习", who="member", help=("学习", "今天的学习内容（阅读满 1 分钟计入学习记录）"))
def today(ctx: Context):
    """Today's material as a news reply with the member's own link."""
    day = local_date(ctx.now)
    entries = plan_for(ctx.session, ctx.member, day, day)
    if not entries:
        return "今天没有安排学习内容。发送“往期”查看最近的学习材料。"
    material = entries[0].material
    more = f"（今天共 {len(entries)} 篇，其余发送“往期”查看）" if len(entries) > 1 else ""
    return News(f"今日学习｜{material.title}", (material.summary or "点击阅读") + more,
                study_link(current_app, ctx.member.id, material.id), material.cover)


@router.text("往期", who="member", help=("往期", "最近几天的学习材料"))
def history(ctx: Context):
    """The last days' materials as a list of personal links (a passive reply holds one article only)."""
    days = ctx.settings.study.history_days
    day = local_date(ctx.now)
    entries = plan_for(ctx.session, ctx.member, day - timedelta(days=days - 1), day)
    if not entries:
        return f"最近 {days} 天没有学习材料。"
    lines = [f"最近 {days} 天的学习材料："]
    for entry in entries[:10]:
        lines.append(f"{entry.day.strftime('%m-%d')} {entry.material.title}\n"
                     f"{study_link(current_app, ctx.member.id, entry.material_id)}")
    return "\n".join(lines)


@router.text("积分", who="member", help=("积分", "今日积分、总积分、连续学习天数和支部排名"))
def points(ctx: Context):
    mine = standing(ctx.session, ctx.member, ctx.now)
    return (f"{ctx.member.name}的积分\n今日：{mine.today}\n总计：{mine.total}\n"
            f"连续学习：{mine.streak} 天\n{_places(mine)}\n\n发送“学习”开始今天的学习。")


@router.text("排行", who="member", help=("排行", "支部和全校积分前十名"))
def ranking(ctx: Context):
    mine = standing(ctx.session, ctx.member, ctx.now)
    branch, school = leader_boards(ctx.session, ctx.member.org_unit_id)
    parts = [_board(f"{ctx.member.org_unit.name} 前十", [(name, total) for name, _branch, total in branch]),
             _board("全校前十", [(f"{name}（{branch_name}）", total) for name, branch_name, total in school]),
             "你的位置：" + _places(mine).replace("\n", "，")]
    return "\n\n".join(parts)


def _places(mine) -> str:
    if mine.total <= 0:
        return "排名：还没有积分，学习后就会上榜"
    return (f"支部排名：第 {mine.branch_rank} 名（共 {mine.branch_size} 人）\n"
            f"全校排名：第 {mine.school_rank} 名，{mine.total} 分")


def _board(title: str, rows: list[tuple[str, int]]) -> str:
    if not rows:
        return f"{title}\n还没有人获得积分"
    return title + "\n" + "\n".join(f"{n}. {name} {total} 分" for n, (name, total) in enumerate(rows, 1))
