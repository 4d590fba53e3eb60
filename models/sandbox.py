"""State of the sandbox, the offline WeChat: its users, what it delivered, QR codes, tokens, quotas.

Kept in the database so that every web worker sees the same WeChat and a demo survives a restart.
"""
from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base


class SandboxUser(Base):
    """A WeChat user as WeChat knows them: following or not, and the customer-service messages their
    interactions allow: a message grants 5 for 48 h (the message grant, cs_window_*), a menu click, a
    follow or a scan 3 for a minute (the event grant, cs_event_*); each new interaction renews its own
    grant, and a send uses whichever grant is open."""

    __tablename__ = "sandbox_users"

    openid: Mapped[str] = mapped_column(String(64), primary_key=True)
    nickname: Mapped[str] = mapped_column(String(64), default="")
    subscribed: Mapped[bool] = mapped_column(Boolean, default=False)
    subscribed_at: Mapped[datetime | None]
    cs_window_until: Mapped[datetime | None]
    cs_window_left: Mapped[int] = mapped_column(Integer, default=0)
    cs_event_until: Mapped[datetime | None]
    cs_event_left: Mapped[int] = mapped_column(Integer, default=0)
    tags: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of tag ids
    credits: Mapped[str] = mapped_column(Text, default="{}")  # JSON: template id -> one-time credits
    mass_received: Mapped[str] = mapped_column(Text, default="{}")  # JSON: "YYYY-MM" -> count

    def json_field(self, name: str):
        return json.loads(getattr(self, name) or "null")

    def set_json(self, name: str, value) -> None:
        setattr(self, name, json.dumps(value, ensure_ascii=False))


class SandboxMessage(Base):
    """One message the account delivered to a user, through any channel."""

    __tablename__ = "sandbox_messages"
    __table_args__ = (Index("ix_sandbox_messages_touser_id", "touser", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    touser: Mapped[str] = mapped_column(String(64))
    # reply, customer_service, template, subscribe, mass, preview; "user" for what the user sent
    channel: Mapped[str] = mapped_column(String(32))
    msgtype: Mapped[str] = mapped_column(String(32))
    content: Mapped[str] = mapped_column(Text)  # JSON
    created_at: Mapped[datetime]

    def as_dict(self) -> dict:
        return {"id": self.id, "touser": self.touser, "channel": self.channel, "msgtype": self.msgtype,
                "content": json.loads(self.content), "created_at": self.created_at.isoformat()}


class SandboxQRCode(Base):
    __tablename__ = "sandbox_qrcodes"

    ticket: Mapped[str] = mapped_column(String(128), primary_key=True)
    scene: Mapped[str] = mapped_column(String(64))
    permanent: Mapped[bool] = mapped_column(Boolean, default=False)
    expire_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class SandboxToken(Base):
    __tablename__ = "sandbox_tokens"

    token: Mapped[str] = mapped_column(String(128), primary_key=True)
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(index=True)


class SandboxValue(Base):
    """A named JSON value (the menu, tags, fault settings) or a counter (quotas)."""

    __tablename__ = "sandbox_values"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(Text, default="null")
    count: Mapped[int] = mapped_column(Integer, default=0)


def get_value(session: Session, key: str, default=None):
    row = session.get(SandboxValue, key)
    return json.loads(row.value) if row is not None else default


def put_value(session: Session, key: str, value) -> None:
    row = session.get(SandboxValue, key) or SandboxValue(key=key)
    row.value = json.dumps(value, ensure_ascii=False)
    session.add(row)


def messages_to(session: Session, touser: str, after_id: int = 0, include_user: bool = False) -> list[SandboxMessage]:
    """What arrived on a user's phone; with include_user, also what the user sent (channel "user")."""
    query = select(SandboxMessage).where(SandboxMessage.touser == touser, SandboxMessage.id > after_id)
    if not include_user:
        query = query.where(SandboxMessage.channel != "user")
    return list(session.scalars(query.order_by(SandboxMessage.id)))
