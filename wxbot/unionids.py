"""Unionids of the account's followers, so that one person binds once: a mini-program user is linked
to the member the follower is bound to, and a follower to the member the mini-program user bound.

WeChat gives a follower's unionid in user/info only when the Official Account and the mini-program
are under one Open Platform account. We ask once per follower, bound ones first (batches of 100,
user/info's batch form), and keep the answer: a unionid, or "" for "WeChat gave none" (not asked
again). Whoever was waiting for that unionid is linked then (a unionid that arrives late: every
record belongs to the member, nothing moves).
"""
from __future__ import annotations

import logging

import requests
from flask import Flask
from sqlalchemy import select
from wechatpy.exceptions import WeChatClientException

from models.followers import Follower
from models.miniprogram import MiniUser, link_by_unionid, link_follower_by_unionid
from models.timeutil import utcnow
from wxbot.db import db
from wxbot.outbound import wechat_client

BATCH = 100  # user/info/batchget takes at most 100 openids
PER_RUN = 2000  # a run's bound: 20 calls; the next run takes the rest


def fill_unionids(app: Flask, limit: int = PER_RUN) -> dict:
    """Ask WeChat for the unionids of followers not asked yet, then link whoever waited for them:
    {learnt, linked}. Call inside the app context."""
    session = db.session
    openids = list(session.scalars(select(Follower.openid).where(Follower.unionid.is_(None))
                                   .order_by(Follower.member_id.is_(None), Follower.openid).limit(limit)))
    learnt = 0
    client = wechat_client()
    for start in range(0, len(openids), BATCH):
        batch = openids[start:start + BATCH]
        try:
            infos = client.user.get_batch(batch)
        except (WeChatClientException, requests.RequestException) as exc:
            logging.getLogger(__name__).warning("user/info/batchget failed (%s); next run tries again",
                                                getattr(exc, "errcode", exc.__class__.__name__))
            break
        found = {info.get("openid"): info.get("unionid") or "" for info in infos}
        for follower in session.scalars(select(Follower).where(Follower.openid.in_(batch))):
            follower.unionid = found.get(follower.openid, "")
            learnt += bool(follower.unionid)
        session.commit()
    return {"learnt": learnt, "linked": link_waiting()}


def link_waiting() -> int:
    """Mini-program users and followers without a member, linked where the other side of the same
    unionid is bound."""
    session, now, linked = db.session, utcnow(), 0
    users = session.scalars(select(MiniUser).where(MiniUser.member_id.is_(None), MiniUser.unionid.is_not(None),
                                                   MiniUser.unionid != "",
                                                   MiniUser.unionid.in_(select(Follower.unionid).where(
                                                       Follower.member_id.is_not(None)))))
    for user in list(users):
        linked += link_by_unionid(session, user, now)
    followers = session.scalars(select(Follower).where(Follower.member_id.is_(None), Follower.unionid.is_not(None),
                                                       Follower.unionid != "",
                                                       Follower.unionid.in_(select(MiniUser.unionid).where(
                                                           MiniUser.member_id.is_not(None)))))
    for follower in list(followers):
        linked += link_follower_by_unionid(session, follower, now)
    session.commit()
    return linked
