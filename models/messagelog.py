"""The message log: every inbound message and every reply, the organisers' monitoring record."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, Index, String, Text, delete
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base


class MessageLog(Base):
    __tablename__ = "message_log"
    __table_args__ = (Index("ix_message_log_openid_created", "openid", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    openid: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"), index=True)
    direction: Mapped[str] = mapped_column(String(3))
    # in: text, event:subscribe, image ...; out: the channel (reply, customer_service ...)
    kind: Mapped[str] = mapped_column(String(48))
    content: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(index=True)


def erase_messages(session: Session, openid: str) -> None:
    """Delete everything logged for one WeChat user (on unfollow)."""
    session.execute(delete(MessageLog).where(MessageLog.openid == openid))


def purge_messages(session: Session, retention_days: int, now: datetime) -> int:
    """Delete entries older than the retention; returns how many went."""
    cutoff = now - timedelta(days=retention_days)
    result = session.execute(delete(MessageLog).where(MessageLog.created_at < cutoff))
    return result.rowcount or 0
