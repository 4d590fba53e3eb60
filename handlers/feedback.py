"""留言 (feedback to the member's branch organisers), 我的留言, 话题 and 回复 (discussion topics):
screened before anyone else sees them, personal data masked for others, a receipt number, the
organisers' answers later through the delivery engine."""
from __future__ import annotations

from datetime import timedelta

from models.feedback import STATES, STATUSES, Topic, may_join, my_posts, open_topics, recent_posts, submit
from models.screening import Hit, Verdict
from models.timeutil import show
from wxbot.metrics import SCREENING_HITS
from wxbot.router import Context, Router
from wxbot.screeninglists import current_screener

router = Router("feedback", topic="留言", display=("留言 内容", "我的留言", "话题", "回复 编号 内容"))
RATE_KEY = "posts:{member_id}:{hour}"
MAX_LENGTH = 500


@router.text("我的留言", who="member", help=("我的留言", "我发过的留言和组织员的回复"))
def mine(ctx: Context):
    posts = my_posts(ctx.session, ctx.member)
    if not posts:
        return "你还没有留言。发送“留言 内容”给本支部组织员留言。"
    lines = ["你的留言和话题回复（最近 10 条）："]
    for post in posts:
        lines.append(f"#{post.number} {show(post.created_at, '%m-%d %H:%M')} {post_state(post)}：{post.text[:30]}")
        if post.answer:
            lines.append(f"  回复：{post.answer[:60]}")
        if post.status == "rejected" and post.reject_reason:
            lines.append(f"  原因：{post.reject_reason}")
    return "\n".join(lines)


def post_state(post) -> str:
    """Where a post stands, as its author reads it: a topic reply is published, not awaiting an answer."""
    if post.status != "visible":
        return STATUSES[post.status]
    return f"已发布在话题 #{post.topic_id}" if post.topic_id else STATES[post.state]


# What separates the command from the content: a space, or the colon people type after 留言.
SEPARATORS = " \t:：,，"


@router.regex(r"留言\s*(.*)", who="member", help=("留言 内容", "给本支部组织员留言，会收到回复"))
def leave_feedback(ctx: Context, text: str):
    text = ctx.inbound.raw_text[2:].strip().lstrip(SEPARATORS).strip()  # as written: what the organisers read
    if not text:
        return "请在“留言”后写上内容，例如：留言 希望主题党日安排在周五下午。"
    post = _post(ctx, text)
    if isinstance(post, str):
        return post
    if post.status == "blocked":
        return "你的留言含有不适合发布的内容，没有提交。请修改后再发。"
    if post.status == "held":
        return f"已收到你的留言（编号 #{post.number}），审核后会转给组织员。发送“我的留言”查看进度。"
    return f"已收到你的留言（编号 #{post.number}），已转给本支部组织员，回复后会通知你。发送“我的留言”查看。"


def _post(ctx: Context, text: str, topic: Topic | None = None):
    return post_feedback(ctx.session, ctx.store, ctx.member, text, ctx.now, ctx.settings, topic)


SEVERITY = ("pass", "flag", "hold", "block")


def post_feedback(session, store, member, text: str, now, settings, topic: Topic | None = None,
                  also: Hit | None = None):
    """The screened post (feedback, or a reply to `topic`), or what to tell the member instead: the
    same rules from the chat and the mini-program. `also` is another check's finding (WeChat's
    msg_sec_check for mini-program posts), counted as one more hit."""
    if len(text) > MAX_LENGTH:
        return f"最多 {MAX_LENGTH} 个字（这条有 {len(text)} 个字），请分几条发送。"
    waited = rate_limited(store, member, now, settings)
    if waited:
        return waited
    cfg = settings.feedback
    before = recent_posts(session, member, now, cfg.screen_together - 1, cfg.screen_together_minutes)
    verdict = current_screener().screen_joined(text, [p.text for p in before])
    if also is not None:
        action = max(verdict.action, also.action, key=SEVERITY.index)
        verdict = Verdict(action, (*verdict.hits, also))
    if verdict.action != "pass":
        SCREENING_HITS.labels(verdict.action).inc()
    return submit(session, member, text, verdict, now, topic, [p.number for p in before])


def rate_limited(store, member, now, settings) -> str | None:
    limit = settings.feedback.rate_per_hour
    hour = now.replace(minute=0, second=0, microsecond=0)
    key = RATE_KEY.format(member_id=member.id, hour=hour.strftime("%Y%m%d%H"))
    if store.incr(key, 3600) > limit:
        again = hour + timedelta(hours=1)
        return f"你这一小时已经留言 {limit} 条，请在 {show(again, '%H:%M')} 以后再发。"
    return None


def joinable_topic(session, member, topic_id: int) -> Topic | None:
    topic = session.get(Topic, topic_id)
    return topic if topic is not None and topic.status == "open" and may_join(topic, member) else None


@router.text("话题", who="member", help=("话题", "组织员发起的讨论，回复 编号 内容 参与"))
def topics(ctx: Context):
    from flask import current_app

    from wxbot.topics import topic_link
    rows = open_topics(ctx.session, ctx.member)
    if not rows:
        return "现在没有进行中的话题。"
    lines = ["进行中的话题："]
    for topic in rows[:8]:
        pin = "【置顶】" if topic.pinned else ""
        link = topic_link(current_app, ctx.member.id, topic.id)
        lines.append(f'{pin}【{topic.id}】<a href="{link}">{topic.title}</a>')
    lines.append(f"\n回复“回复 {rows[0].id} 你的看法”参与讨论；点标题查看大家的回复。")
    return "\n".join(lines)


@router.regex(r"回复\s*#?(\d{1,9})\s*(.*)", who="member", help=("回复 编号 内容", "在话题下发表看法"))
def reply(ctx: Context, number: str, _text: str):
    topic = joinable_topic(ctx.session, ctx.member, int(number))
    if topic is None:
        return "没有这个进行中的话题。发送“话题”查看编号。"
    text = ctx.inbound.raw_text.split(number, 1)[-1].strip() if number in ctx.inbound.raw_text else _text.strip()
    if not text:
        return f"请写上内容，例如：回复 {topic.id} 我认为……"
    post = _post(ctx, text, topic)
    if isinstance(post, str):
        return post
    if post.status == "blocked":
        return "你的回复含有不适合发布的内容，没有发布。请修改后再发。"
    if post.status == "held":
        return f"已收到你的回复（编号 #{post.number}），审核通过后会显示在话题《{topic.title}》下。"
    return f"已发布到话题《{topic.title}》（编号 #{post.number}）。"
