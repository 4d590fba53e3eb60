"""Feedback (留言) from members to their branch's organisers, screened before anyone but the author
sees it, with personal data masked, and the organisers' answers on record.

A post's `status` says who may see it: `visible` (organisers, masked), `held` (waiting for a review),
`blocked` (never shown; kept for the record), `rejected` (after a review; the author was told why).
Its `state` says where the conversation is: new, answered, closed.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, Integer, String, Text, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base
from models.members import Member
from models.screening import Verdict, mask_personal
from models.timeutil import utcnow

STATUSES = {"visible": "已发布", "held": "待审核", "blocked": "已拦截", "rejected": "未通过审核"}
STATES = {"new": "待回复", "answered": "已回复", "closed": "已关闭"}


class Topic(Base):
    """A discussion opened by organisers for an audience: members reply, the replies that passed
    screening are shown on the topic's page."""
    __tablename__ = "topics"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    question: Mapped[str] = mapped_column(Text, default="")
    org_unit_id: Mapped[int | None] = mapped_column(Integer, index=True)  # the organiser's unit
    audience: Mapped[str] = mapped_column(Text, default="{}")
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | closed
    pinned: Mapped[bool] = mapped_column(default=False)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def audience_spec(self) -> dict:
        return json.loads(self.audience or "{}")


class Post(Base):
    __tablename__ = "posts"

    id: Mapped[int] = mapped_column(primary_key=True)
    topic_id: Mapped[int | None] = mapped_column(ForeignKey("topics.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    org_unit_id: Mapped[int] = mapped_column(Integer, index=True)  # the author's branch when posting
    # The number its author and the organisers know it by (#12): only posts that exist to others get
    # one, so a blocked attempt does not leave a gap in anyone's numbers.
    number: Mapped[int | None] = mapped_column(Integer, unique=True)
    text: Mapped[str] = mapped_column(Text)  # as written: the author's, and an admin's on the record
    shown_text: Mapped[str] = mapped_column(Text)  # personal data masked: what organisers see
    personal: Mapped[str] = mapped_column(String(100), default="")  # kinds of personal data masked
    status: Mapped[str] = mapped_column(String(16), index=True)
    # JSON [{category, action, word}]: what matched, for the organisers; never shown to the author
    screening: Mapped[str] = mapped_column(Text, default="[]")
    flagged: Mapped[bool] = mapped_column(default=False)
    state: Mapped[str] = mapped_column(String(16), default="new", index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    reviewed_by: Mapped[str] = mapped_column(String(64), default="")
    reviewed_at: Mapped[datetime | None]
    reject_reason: Mapped[str] = mapped_column(String(200), default="")
    answer: Mapped[str] = mapped_column(Text, default="")
    answered_by: Mapped[str] = mapped_column(String(64), default="")
    answered_at: Mapped[datetime | None]

    def hits(self) -> list[dict]:
        return json.loads(self.screening or "[]")


def recent_posts(session: Session, member: Member, at: datetime, count: int, minutes: float) -> list[Post]:
    """The member's last `count` posts within `minutes` before `at`, oldest first: screened together
    with the next one (a word split across posts)."""
    if count <= 0:
        return []
    rows = session.scalars(select(Post).where(Post.member_id == member.id,
                                              Post.created_at >= at - timedelta(minutes=minutes))
                           .order_by(Post.id.desc()).limit(count)).all()
    return list(reversed(rows))


def submit(session: Session, member: Member, text: str, verdict: Verdict, at: datetime,
           topic: Topic | None = None, joined: list[int | None] = ()) -> Post:
    """Record a post with what screening found (a hit across the author's consecutive posts names
    those posts by number, `joined`; None for one that was blocked); blocked posts are kept (for the
    record) but never shown."""
    shown, kinds = mask_personal(text)
    status = {"block": "blocked", "hold": "held"}.get(verdict.action, "visible")
    hits = [{"category": h.category, "action": h.action, "word": h.word, "how": h.how}
            | ({"with": list(joined)} if h.how == "连续发言" else {}) for h in verdict.hits]
    post = Post(topic_id=topic.id if topic else None, member_id=member.id, org_unit_id=member.org_unit_id,
                text=text[:2000], shown_text=shown[:2000],
                personal="、".join(kinds), status=status, flagged=verdict.action == "flag",
                screening=json.dumps(hits, ensure_ascii=False), created_at=at)
    session.add(post)
    session.flush()
    if status != "blocked":
        number_post(session, post)
    return post


def number_post(session: Session, post: Post) -> None:
    """The next number (the unique key decides between two posts at the same moment)."""
    for _ in range(20):
        try:
            with session.begin_nested():
                post.number = (session.scalar(select(func.max(Post.number))) or 0) + 1
                session.flush()
            return
        except IntegrityError:
            continue
    raise RuntimeError("no post number after 20 tries")


def my_posts(session: Session, member: Member, limit: int = 10) -> list[Post]:
    """The member's 留言 and topic replies that went anywhere (a blocked attempt is not one)."""
    return list(session.scalars(select(Post).where(Post.member_id == member.id, Post.status != "blocked")
                                .order_by(Post.id.desc()).limit(limit)))


def review(post: Post, approve: bool, actor: str, at: datetime, reason: str = "") -> None:
    post.status = "visible" if approve else "rejected"
    post.reviewed_by, post.reviewed_at, post.reject_reason = actor, at, reason[:200]


def answer_post(post: Post, text: str, actor: str, at: datetime) -> None:
    post.answer, post.answered_by, post.answered_at, post.state = text[:2000], actor, at, "answered"


def open_topics(session: Session, member: Member) -> list[Topic]:
    """Open topics of the member's audience, pinned first, newest first."""
    from models.members import in_audience, units_above
    units = units_above(member)
    rows = session.scalars(select(Topic).where(Topic.status == "open")
                           .order_by(Topic.pinned.desc(), Topic.id.desc()))
    return [t for t in rows if in_audience(member, t.audience_spec(), units)]


def may_join(topic: Topic, member: Member) -> bool:
    from models.members import in_audience, units_above
    return in_audience(member, topic.audience_spec(), units_above(member))


def topic_replies(session: Session, topic: Topic, page: int, per_page: int = 20) -> tuple[list, int]:
    """(post, author's name) of the replies that passed screening, newest first; and how many there are."""
    base = select(Post).where(Post.topic_id == topic.id, Post.status == "visible")
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = session.execute(base.add_columns(Member.name).join(Member, Member.id == Post.member_id)
                           .order_by(Post.id.desc()).offset((page - 1) * per_page).limit(per_page)).all()
    return rows, total


def remind_unanswered(session: Session, now: datetime, after_days: int) -> int:
    """Tell each unit's organisers (members with the organiser role in the unit or above it, who follow
    the account) how many posts have waited more than `after_days` for an answer; once a day."""
    from collections import Counter
    from datetime import timedelta

    from models.accounts import subtree_ids
    from models.eventnotices import notify
    from models.jobs import claim_once
    from models.timeutil import local_date
    if not claim_once(session, f"feedback-reminder:{local_date(now).isoformat()}", now):
        return 0
    waiting = Counter(session.scalars(select(Post.org_unit_id).where(
        Post.topic_id.is_(None), Post.status == "visible", Post.state == "new",
        Post.created_at <= now - timedelta(days=after_days))))
    if not waiting:
        session.commit()
        return 0
    told = 0
    for organiser in session.scalars(select(Member).where(Member.role.in_(("organiser", "admin")))):
        theirs = subtree_ids(session, organiser.org_unit_id)
        mine = sum(n for unit, n in waiting.items() if unit in theirs)
        text = f"有 {mine} 条留言超过 {after_days} 天还没有回复，请到管理后台“留言”处理。"
        if mine and notify(session, [organiser.id], text, "留言未回复提醒", now):
            told += 1
    session.commit()
    return told

