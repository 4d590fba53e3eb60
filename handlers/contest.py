"""竞赛: contests between branches, listed, started and ranked from the chat; answered in the quiz flow."""
from __future__ import annotations

from handlers.quiz import _rng, enter, resume
from models.contest import (
    Contest,
    attempts_used,
    branch_results,
    may_enter,
    may_see_results,
    member_results,
    paper,
    refusal,
    visible_contests,
)
from models.contestreview import answer_sheet
from models.quizplay import live_attempt, new_attempt
from models.quizsay import closed_lines
from models.timeutil import show
from wxbot.router import Context, Router

router = Router("contest", topic="答题")


@router.text("竞赛", who="member",
             help=("竞赛", "进行中的知识竞赛；竞赛 编号 参加，竞赛 编号 排行 看排名，竞赛 编号 答案 看答错的题"))
def contests(ctx: Context):
    """The contests of the member's audience that are open or coming this week."""
    rows = visible_contests(ctx.session, ctx.member, ctx.now)
    if not rows:
        return "现在没有进行中的竞赛。"
    lines = []
    for contest in rows:
        if contest.state(ctx.now) == "open":
            used = attempts_used(ctx.session, contest, ctx.member)
            lines.append(f"#{contest.id} {contest.title}（截止 {show(contest.ends_at, '%m-%d %H:%M')}，"
                         f"已答 {used}/{contest.attempts_allowed} 次）")
        else:
            lines.append(f"#{contest.id} {contest.title}（{show(contest.starts_at, '%m-%d %H:%M')} 开始）")
    return "知识竞赛：\n" + "\n".join(lines) + "\n\n发送“竞赛 编号”开始，例如：竞赛 " + str(rows[0].id)


@router.regex(r"竞赛\s*#?(\d{1,9})\s*排行", who="member")
def leaderboard(ctx: Context, number: str):
    """A contest's branches (by participation and average score) and its top ten members."""
    contest = ctx.session.get(Contest, int(number))
    if contest is None or contest.state(ctx.now) == "upcoming" or not may_see_results(ctx.session, contest, ctx.member):
        return "没有这个竞赛，发送“竞赛”查看面向你的竞赛。"
    people = member_results(ctx.session, contest)
    branches = branch_results(ctx.session, contest, people)
    lines = [f"《{contest.title}》排行", "支部（参与率 × 平均正确率，满分 100）："]
    lines += [f"{n}. {b.name} {b.score} 分（参与 {b.players}/{b.audience}，平均 {round(100 * b.average)}%）"
              for n, b in enumerate(branches[:5], 1)] or ["还没有人参加"]
    lines.append("个人前十：")
    lines += [f"{n}. {r.name}（{r.branch}） {r.best}/{r.total}，{r.seconds // 60}:{r.seconds % 60:02d}"
              for n, r in enumerate(people[:10], 1)] or ["还没有人答完"]
    mine = next((n for n, r in enumerate(people, 1) if r.member_id == ctx.member.id), None)
    lines.append(f"你：第 {mine} 名" if mine else "你还没有参加。")
    return "\n".join(lines)


@router.regex(r"竞赛\s*#?(\d{1,9})\s*答案", who="member")
def answers(ctx: Context, number: str):
    """After a contest closes: the questions the member got wrong or skipped, with the right answers."""
    contest = ctx.session.get(Contest, int(number))
    if contest is None or not may_enter(contest, ctx.member):
        return "没有这个竞赛，发送“竞赛”查看面向你的竞赛。"
    if contest.state(ctx.now) != "ended":
        return f"竞赛《{contest.title}》{show(contest.ends_at, '%m-%d %H:%M')} 结束，结束后公布正确答案和解析。"
    return answer_sheet(ctx.session, contest, ctx.member)


@router.regex(r"竞赛\s*#?(\d{1,9})", who="member")
def enter_contest(ctx: Context, number: str):
    """Start an attempt at a contest, if it is open, for the member, with attempts left; an attempt
    of this contest in progress is resumed where it was, on its own clock."""
    contest = ctx.session.get(Contest, int(number))
    if contest is None:
        return "没有这个竞赛，发送“竞赛”查看进行中的竞赛。"
    attempt, closed = live_attempt(ctx.session, ctx.member, ctx.now, ctx.settings)
    before = closed_lines(closed)
    if attempt is not None and attempt.contest_id == contest.id:
        return before + resume(ctx, attempt)
    if attempt is not None:
        return f"你正在答题。答完（或回复“退出”）后再参加竞赛。\n\n{resume(ctx, attempt)}"
    reason = refusal(ctx.session, contest, ctx.member, ctx.now)
    if reason:
        return before + reason
    ids = paper(ctx.session, contest, ctx.member, ctx.now, _rng)
    if not ids:
        return before + "这个竞赛还没有题目，请联系组织员。"
    attempt = new_attempt(ctx.session, ctx.member, "contest", ids, ctx.now, _rng, contest_id=contest.id)
    limit = f"，限时 {contest.time_limit_seconds // 60} 分钟" if contest.time_limit_seconds else ""
    used = attempts_used(ctx.session, contest, ctx.member)
    return before + enter(ctx, attempt, f"竞赛《{contest.title}》，共 {attempt.total} 题{limit}，"
                                        f"第 {used}/{contest.attempts_allowed} 次作答（中途退出也算一次）。"
                                        "竞赛期间只告诉你对错，正确答案和解析在竞赛结束后公布。")
