"""我的发展 (a member's own path to membership) and 发展 学号 (an organiser's look at someone in their
scope). Dates and steps only: 政审 and other notes never go out in chat."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from models.accounts import scope_of
from models.development import history_of, record_of, rules_in_force
from models.devrules import next_steps
from models.members import Member, member_by_student_no
from models.timeutil import local_date
from wxbot.router import Context, Router

router = Router("development", topic="我的", display=("我的发展",))

# Who takes each step, as a member reads it ("由支部讨论").
ACTORS = {"apply": "本人递交", "full_application": "本人向支部提交", "activist_filing": "由上级党委备案",
          "candidate_filing": "由上级党委备案", "pre_review": "由基层党委预审", "committee_talk": "由上级党委派人",
          "approval": "由基层党委审批", "full_approval": "由基层党委审批", "archive": "由组织部门归档",
          "candidate": "由支部讨论", "activist": "由支部委员会讨论", "branch_meeting": "由支部大会讨论",
          "full_meeting": "由支部大会讨论", "training": "由党校或党委组织", "application_form": "本人在支部指导下填写"}


@router.text("我的发展", who="member", help=("我的发展", "我的入党进度：已完成的步骤和下一步的时间"))
def my_development(ctx: Context):
    return progress(ctx, ctx.member, "你")


@router.regex(r"发展\s*([0-9a-z][0-9a-z_-]*)", who="organiser", help=("发展 学号", "本组织一名同志的发展进度"))
def their_development(ctx: Context, student_no: str):
    person = member_by_student_no(ctx.session, student_no)
    scope = scope_of(ctx.session, ctx.member.role, ctx.member.org_unit_id)
    if person is None or not scope.allows_unit(person.org_unit_id):
        return f"你负责的范围内没有学号 {student_no.upper()}。"
    return progress(ctx, person, person.name)


@dataclass(frozen=True)
class Progress:
    """A member's path to membership as they may see it: dates and steps, never notes."""

    stage: str
    has_record: bool
    done: list[tuple[date, str]]
    closed: str | None
    probation_end: date | None
    upcoming: list[str]  # the next steps in plain words, at most three


def progress_of(session, member: Member, today: date) -> Progress:
    record = record_of(session, member)
    if record is None:
        return Progress(member.stage, False, [], None, None, [])
    rules = rules_in_force(session)
    done = [(step.done_on, rules.name(step.key)) for step in sorted(record.steps, key=lambda s: (s.done_on, s.id))]
    if record.status != "active":
        return Progress(member.stage, True, done, record.closed_reason, None, [])
    probation = (record.probation_end if record.probation_end and not any(s.key == "full_approval"
                                                                          for s in record.steps) else None)
    upcoming = [when_words(due, today) for due in next_steps(rules, history_of(record))[:3]]
    return Progress(member.stage, True, done, None, probation, upcoming)


def progress(ctx: Context, member: Member, who: str) -> str:
    """The stage, the steps done with their dates, and the next steps with their windows in plain words."""
    mine = progress_of(ctx.session, member, local_date(ctx.now))
    if not mine.has_record:
        if who == "你":
            return (f"你目前的政治面貌是{member.stage}，还没有发展记录。\n"
                    "向党支部递交入党申请书后，组织员会为你建立记录，之后可以在这里查看每一步的进度。")
        return f"{member.name}（{member.stage}）还没有发展记录。"
    lines = [f"{who}的发展进度（{member.stage}）："]
    lines += [f"✓ {day.isoformat()} {name}" for day, name in mine.done]
    if mine.closed is not None:
        lines.append(f"记录已关闭：{mine.closed}")
        return "\n".join(lines)
    if mine.probation_end:
        lines.append(f"预备期满：{mine.probation_end.isoformat()}")
    lines += [("下一步：" if n == 0 else "另外：") + words for n, words in enumerate(mine.upcoming)]
    return "\n".join(lines)


def when_words(due, today) -> str:
    """"确定为发展对象最早在 2027-03-15 以后，由支部讨论"; a date already passed is said to be."""
    step, window = due.step, due.window
    parts = [step.name]
    if window.latest and window.latest < today:
        parts.append(f"应在 {window.latest.isoformat()} 以前完成（已逾期，请与支部联系）")
    elif window.earliest and window.latest:
        parts.append(f"在 {window.earliest.isoformat()} 至 {window.latest.isoformat()} 之间")
    elif window.earliest:
        parts.append(f"最早在 {window.earliest.isoformat()} 以后")
    elif window.latest:
        parts.append(f"最迟在 {window.latest.isoformat()} 以前")
    text = "".join(parts)
    if step.key in ACTORS:
        text += f"，{ACTORS[step.key]}"
    if window.provisional:
        text += "（日期暂定：节假日安排尚未公布）"
    return text
