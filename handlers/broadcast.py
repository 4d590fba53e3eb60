"""群发 from the chat, for organisers: audience, content, preview and summary, then 确认 or 取消."""
from __future__ import annotations

import re

from sqlalchemy import select

from models.accounts import Scope, scope_of
from models.audience import (
    AudienceError,
    count_audience,
    count_unreached,
    describe_audience,
    event_spec,
    unreached_note,
)
from models.delivery import (
    BROADCAST,
    CAMPAIGN_STATUSES,
    Campaign,
    audit_campaign,
    campaigns_counts,
    create_campaign,
)
from models.events import Event
from models.members import STAGES, OrgUnit
from wxbot.conversation import State, States
from wxbot.router import Context, Router

router = Router("broadcast", topic="群发", display=("群发", "群发进度"))
MAX_TEXT = 600


def never(_text: str, _data: dict) -> bool:
    """Any word may name an org unit: a command first, what no feature knows is the audience."""
    return False


def yes_or_no(text: str, _data: dict) -> bool:
    return text in ("确认", "取消")


class BroadcastFlow(States):
    audience = State("waits for who: 本支部, an org unit's name, or a 政治面貌", takes=never,
                     resume=lambda _data: "群发还在等你选择发送对象：回复本支部、组织名称或政治面貌"
                                          "（回复“退出”取消）。")
    # Free text: whatever comes is the content, a command's words too (the prompt says so).
    content = State("waits for the text to send")
    confirm = State("waits for 确认 or 取消", takes=yes_or_no,
                    resume=lambda data: f"群发（共 {data.get('count', 0)} 人）还在等你确认："
                                        "回复“确认”发送，回复“取消”放弃。")


def member_scope(ctx: Context) -> Scope:
    """An admin addresses everyone; an organiser their own unit and what lies below it."""
    return scope_of(ctx.session, ctx.member.role, ctx.member.org_unit_id)


def creator_name(ctx: Context) -> str:
    return f"{ctx.member.name}（{ctx.member.student_no}）"


@router.text("群发", who="organiser", help=("群发", "给本组织的成员发通知"))
def start(ctx: Context):
    """Enter the flow; asks who the message is for."""
    ctx.conversation.enter(BroadcastFlow.audience)
    return ("请选择发送对象，回复其中一项：\n· 本支部\n· 组织名称，例如：计算机学院\n· 政治面貌，例如：入党积极分子\n"
            "· 某个活动的人，例如：活动 12 缺席（也可以是 报名、签到、请假）\n随时回复“退出”取消。")


@router.state(BroadcastFlow.audience, who="organiser")
def choose_audience(ctx: Context):
    """Stores the audience spec and its count; asks for the content."""
    spec = audience_from_words(ctx, ctx.inbound.raw_text.strip())
    if spec is None:
        return ("没有找到这个对象。请回复：本支部、你负责范围内的组织名称、一种政治面貌，"
                "或 活动 编号 缺席 这样的活动对象。")
    count = count_audience(ctx.session, spec, member_scope(ctx))
    missing = unreached_note(count_unreached(ctx.session, spec, member_scope(ctx)))
    if not count:
        return "这个范围内还没有已关注公众号的成员，请换一个对象。" + (f"（{missing}）" if missing else "")
    ctx.conversation.enter(BroadcastFlow.content, spec=spec, count=count, missing=missing,
                           label=describe_audience(ctx.session, spec))
    return (f"发送对象：{describe_audience(ctx.session, spec)}，共 {count} 人{'；' + missing if missing else ''}。\n"
            f"请发送通知内容（文字，{MAX_TEXT} 字以内）。这一步发来的文字都作为通知内容，“活动”这样的命令也是；"
            "想先用别的功能，回复“退出”。")


# 活动 12 报名 / 签到 / 缺席 / 请假: the people of an event, in the words an organiser uses.
EVENT_WORDS = {"报名": "signed", "签到": "checked_in", "缺席": "absent", "请假": "on_leave"}
EVENT_AUDIENCE = re.compile(r"活动\s*#?(\d{1,9})\s*(报名|签到|缺席|请假)")


def audience_from_words(ctx: Context, words: str) -> dict | None:
    if words == "本支部":
        return {"units": [ctx.member.org_unit_id]}
    if words in STAGES:
        return {"stages": [words]}
    scope = member_scope(ctx)
    found = EVENT_AUDIENCE.fullmatch(words)
    if found:  # any event: who it selects is still only those of the organiser's scope
        event = ctx.session.get(Event, int(found.group(1)))
        return {"event": event_spec(event.id, EVENT_WORDS[found.group(2)])} if event is not None else None
    unit = ctx.session.scalar(scope.filter(select(OrgUnit).where(OrgUnit.name == words), OrgUnit.id))
    return {"units": [unit.id]} if unit is not None else None


@router.state(BroadcastFlow.content, who="organiser")
def take_content(ctx: Context):
    """Stores the text; shows the preview and the summary; asks for 确认."""
    text = ctx.inbound.raw_text.strip()
    if not text or len(text) > MAX_TEXT:
        return f"内容需要 1 到 {MAX_TEXT} 个字，请重新发送。"
    data = ctx.conversation.data
    ctx.conversation.enter(BroadcastFlow.confirm, **data, text=text)
    from wxbot.delivery.reach import audience_forecast
    reach = audience_forecast(ctx.session, data["spec"], member_scope(ctx), ctx.now).text()
    missing = f"（{data['missing']}）" if data.get("missing") else ""
    return (f"预览：\n————\n{text}\n————\n将发送给 {data['label']}，共 {data['count']} 人{missing}。\n{reach}\n"
            "回复“确认”发送，回复“取消”放弃。")


@router.state(BroadcastFlow.confirm, who="organiser")
def confirm(ctx: Context):
    """确认 creates the campaign (its recipients fixed now); 取消 drops it."""
    answer, data = ctx.text, ctx.conversation.data
    if answer == "取消":
        ctx.conversation.finish()
        return "已取消，本次没有发送。"
    if answer != "确认":
        return "请回复“确认”发送，或回复“取消”放弃。"
    try:
        campaign = create_campaign(ctx.session, creator_name(ctx), member_scope(ctx), data["spec"],
                                   {"text": data["text"]}, ctx.now, ctx.member.org_unit_id, ctx.member.id,
                                   excluded=BROADCAST)
    except AudienceError as exc:
        ctx.conversation.finish()
        return f"没有发送：{exc}"
    audit_campaign(ctx.session, f"微信：{creator_name(ctx)}", campaign, f"微信群发 #{campaign.id}：{campaign.label}",
                   {"对象": campaign.audience_label, "内容": campaign.text, "人数": data["count"]})
    ctx.conversation.finish()
    return f"已提交群发 #{campaign.id}，共 {data['count']} 人，正在发送。回复“群发进度”查看进度。"


@router.text("群发进度", who="organiser", help=("群发进度", "查看最近几次群发的送达情况"))
def progress(ctx: Context):
    """The latest campaigns this organiser started, with their counts."""
    campaigns = ctx.session.scalars(select(Campaign).where(Campaign.creator_member_id == ctx.member.id)
                                    .order_by(Campaign.id.desc()).limit(5)).all()
    if not campaigns:
        return "你还没有发起过群发。回复“群发”开始。"
    counts = campaigns_counts(ctx.session, [c.id for c in campaigns])
    lines = []
    for campaign in campaigns:
        c = counts[campaign.id]
        lines.append(f"#{campaign.id} {campaign.label}（{CAMPAIGN_STATUSES[campaign.status]}）\n"
                     f"  共 {c['total']} 人，已送达 {c['sent']}，无法触达 {c['unreachable']}，失败 {c['failed']}")
    return "最近的群发：\n" + "\n".join(lines)
