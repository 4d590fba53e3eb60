"""Work that must happen once however often it is tried: a row per piece of work, with a unique key.

A scheduled job that sends something (a reminder of the day, of an event) first claims its key in
the same transaction as what it creates; a second scheduler process, a restart or a catch-up run
finds the key taken and does nothing again.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base
from models.timeutil import utcnow


class DoneOnce(Base):
    __tablename__ = "done_once"

    key: Mapped[str] = mapped_column(String(120), primary_key=True)  # e.g. quiz-reminder:2026-11-26
    done_at: Mapped[datetime] = mapped_column(default=utcnow)


def claim_once(session: Session, key: str, at: datetime) -> bool:
    """True the first time `key` is claimed (commit with the work it guards), False ever after."""
    try:
        with session.begin_nested():
            session.add(DoneOnce(key=key[:120], done_at=at))
    except IntegrityError:
        return False
    return True
