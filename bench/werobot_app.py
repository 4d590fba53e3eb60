"""The baseline of bench/webhook.py a university would write by hand in an afternoon with WeRoBot:
its own WSGI app (bottle), its Redis session storage, and for 我的 one SQLAlchemy query joining
follower, member and branch on the same PostgreSQL. With WEROBOT_KIND=echo it only echoes.

Nothing of what wxbot adds: no dedup (a retried message runs twice), no per-user order, no reply
budget, no message log, no apology when the database is down (WeRoBot logs and answers nothing).
"""
import os

import redis
from sqlalchemy import create_engine, select
from sqlalchemy.orm import sessionmaker
from werobot import WeRoBot
from werobot.session.redisstorage import RedisStorage

from models.followers import Follower
from models.members import Member, OrgUnit

KIND = os.environ.get("WEROBOT_KIND", "profile")
SAFE = os.environ.get("WEROBOT_MODE", "plain") == "safe"

robot = WeRoBot(token=os.environ["WEROBOT_TOKEN"], app_id=os.environ["WEROBOT_APPID"] if SAFE else None,
                encoding_aes_key=os.environ["WEROBOT_AES_KEY"] if SAFE else None,
                session_storage=RedisStorage(redis.Redis.from_url(os.environ["WEROBOT_REDIS_URL"]),
                                             prefix=os.environ.get("WEROBOT_REDIS_PREFIX", "ws_")))
engine = create_engine(os.environ.get("WEROBOT_DATABASE_URL", "sqlite://"), pool_size=10)
Session = sessionmaker(engine)


@robot.text
def answer(message, session):
    if KIND == "echo":
        return "echo"
    if message.content != "我的":
        return "发送“我的”查看你的信息"
    with Session() as db:
        row = db.execute(select(Member.name, Member.student_no, OrgUnit.name, Member.stage, Member.role)
                         .join(Follower, Follower.member_id == Member.id)
                         .join(OrgUnit, OrgUnit.id == Member.org_unit_id)
                         .where(Follower.openid == message.source)).first()
    session["last"] = message.content
    if row is None:
        return "请先绑定：绑定 学号 姓名"
    name, number, branch, stage, role = row
    return f"姓名：{name}\n学号：{number}\n支部：{branch}\n政治面貌：{stage}\n角色：{role}"


app = robot.wsgi
