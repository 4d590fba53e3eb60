"""留言, 我的留言, 话题 and 回复 from the mini-program: the chat's screening and limits
(handlers/feedback.post_feedback), and WeChat's msg_sec_check (v2), which WeChat requires for what
users post in a mini-program. WeChat's risky verdict blocks the post; review, or no answer from
WeChat, holds it for an organiser (nothing unchecked is shown to others)."""
from __future__ import annotations

import logging

import requests
from flask import current_app, request
from wechatpy.exceptions import WeChatClientException

from handlers.feedback import joinable_topic, post_feedback, post_state
from models.feedback import Post, my_posts, open_topics
from models.screening import Hit
from models.timeutil import utcnow
from wxbot import services
from wxbot.api import answers, bp, call, problem, spec
from wxbot.api.schemas import PostIn, PostList, PostOut, PostResult, TopicList, TopicOut
from wxbot.api.wechat import NotConfigured, msg_sec_check
from wxbot.db import db
from wxbot.topics import topic_link

logger = logging.getLogger(__name__)
SESSION = {"session": []}
WECHAT_CHECK = "微信内容安全"


def wechat_finding(openid: str, text: str) -> Hit | None:
    """WeChat's msg_sec_check as one more screening hit: risky blocks, review (or no verdict) holds."""
    if not services.settings().miniprogram.msg_sec_check:
        return None
    try:
        suggest = msg_sec_check(openid, text)
    except (WeChatClientException, requests.RequestException, NotConfigured, ValueError) as exc:
        logger.warning("msg_sec_check failed (%s): the post waits for an organiser", exc.__class__.__name__)
        return Hit(WECHAT_CHECK, "hold", "", "微信未答复")
    if suggest == "risky":
        return Hit(WECHAT_CHECK, "block", "", "微信判定有风险")
    if suggest == "review":
        return Hit(WECHAT_CHECK, "hold", "", "微信建议人工审核")
    return None


def post_out(post: Post) -> PostOut:
    return PostOut(number=post.number or 0, status=post.status, state=post_state(post), text=post.text,
                   answer=post.answer or None, topic_id=post.topic_id, created_at=post.created_at)


def _posted(user, member, text: str, topic=None) -> PostResult:
    text = text.strip()
    if not text:
        raise problem(400, "empty", "请写上内容。")
    post = post_feedback(db.session, services.store(), member, text, utcnow(), services.settings(), topic,
                         wechat_finding(user.openid, text))
    if isinstance(post, str):
        raise problem(429 if "这一小时" in post else 400, "refused", post)
    what = "回复" if topic is not None else "留言"
    if post.status == "blocked":
        return PostResult(code="blocked", post=None,
                          message=f"你的{what}含有不适合发布的内容，没有提交。请修改后再发。")
    if post.status == "held":
        return PostResult(code="held", message=f"已收到你的{what}（编号 #{post.number}），审核后再转给组织员或显示。",
                          post=post_out(post))
    done = (f"已发布到话题《{topic.title}》（编号 #{post.number}）。" if topic is not None
            else f"已收到你的留言（编号 #{post.number}），已转给本支部组织员，回复后会通知你。")
    return PostResult(code="ok", message=done, post=post_out(post))


@bp.post("/feedback")
@spec.validate(json=PostIn, resp=answers(PostResult, 400, 403), tags=["留言"], security=SESSION)
@call(write=True)
def leave_feedback(user, member):
    """留言：给本支部组织员；经过筛查和微信内容安全检测。"""
    return _posted(user, member, request.context.json.text)


@bp.get("/feedback/mine")
@spec.validate(resp=answers(PostList, 403), tags=["留言"], security=SESSION)
@call()
def mine(_user, member):
    """我的留言：最近 10 条留言和话题回复，及组织员的回复。"""
    return PostList(items=[post_out(p) for p in my_posts(db.session, member)])


@bp.get("/topics")
@spec.validate(resp=answers(TopicList, 403), tags=["留言"], security=SESSION)
@call()
def topics(_user, member):
    """进行中的话题（置顶在前）。"""
    return TopicList(items=[TopicOut(id=t.id, title=t.title, pinned=t.pinned,
                                     url=topic_link(current_app, member.id, t.id))
                            for t in open_topics(db.session, member)])


@bp.post("/topics/<int:topic_id>/replies")
@spec.validate(json=PostIn, resp=answers(PostResult, 400, 403, 404), tags=["留言"], security=SESSION)
@call(write=True)
def reply(user, member, topic_id: int):
    """在话题下发表看法：经过筛查和微信内容安全检测。"""
    topic = joinable_topic(db.session, member, topic_id)
    if topic is None:
        raise problem(404, "not_found", "没有这个进行中的话题。")
    return _posted(user, member, request.context.json.text, topic)
