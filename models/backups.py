"""Backups the nightly job made: when, which files, how big. A backup that stops (cron missing, a
full disk, a wrong password) shows in the console's 运行情况 and in /healthz instead of going
unnoticed until the day it is needed."""
from __future__ import annotations

import socket
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, String, select
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class Backup(Base):
    __tablename__ = "backups"

    id: Mapped[int] = mapped_column(primary_key=True)
    finished_at: Mapped[datetime] = mapped_column(index=True)
    host: Mapped[str] = mapped_column(String(80))
    database_file: Mapped[str] = mapped_column(String(400))
    database_bytes: Mapped[int] = mapped_column(BigInteger)
    files_file: Mapped[str] = mapped_column(String(400), default="")


def record_backup(session, finished_at: datetime, database_file: str, database_bytes: int, files_file: str) -> Backup:
    backup = Backup(finished_at=finished_at, host=socket.gethostname()[:80], database_file=database_file[:400],
                    database_bytes=database_bytes, files_file=files_file[:400])
    session.add(backup)
    return backup


def last_backup(session) -> Backup | None:
    return session.scalars(select(Backup).order_by(Backup.finished_at.desc()).limit(1)).first()


def backup_overdue(last: Backup | None, now: datetime, warn_after_hours: float) -> bool:
    """No backup yet, or the last one is older than the nightly job allows."""
    return last is None or now - last.finished_at > timedelta(hours=warn_after_hours)
