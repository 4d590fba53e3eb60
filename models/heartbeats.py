"""Process heartbeats: which schedulers and delivery workers are alive, on any host (a web process
shows it is alive by answering /healthz itself).

A row per process, rewritten every few seconds. /healthz reads them (a dead scheduler or worker
is an outage, not a quiet 200), and the delivery engine takes over the claims of a dead worker
at once instead of waiting for their lease."""
from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

from sqlalchemy import String, delete, select, update
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, insert_if_absent

ROLES = ("scheduler", "worker")


class Heartbeat(Base):
    __tablename__ = "process_heartbeats"

    name: Mapped[str] = mapped_column(String(120), primary_key=True)  # role@host:pid
    role: Mapped[str] = mapped_column(String(16))
    host: Mapped[str] = mapped_column(String(80))
    pid: Mapped[int]
    started_at: Mapped[datetime]
    beat_at: Mapped[datetime]


def process_name(role: str, host: str | None = None, pid: int | None = None) -> str:
    return f"{role}@{host or socket.gethostname()}:{pid or os.getpid()}"


def beat(session, role: str, now: datetime, started_at: datetime) -> None:
    """Say this process is alive (one row per process and role)."""
    name = process_name(role)
    updated = session.execute(update(Heartbeat).where(Heartbeat.name == name).values(beat_at=now)).rowcount
    if not updated:
        insert_if_absent(session, Heartbeat, name=name, role=role, host=socket.gethostname(), pid=os.getpid(),
                         started_at=started_at, beat_at=now)
    session.commit()


def liveness(session, now: datetime, dead_after: float) -> dict[str, dict]:
    """Per role: how many processes are alive, and the newest beat of those that are not."""
    report = {role: {"alive": 0, "dead": 0, "last_beat": None} for role in ROLES}
    here = socket.gethostname()
    for row in session.scalars(select(Heartbeat)):
        entry = report.setdefault(row.role, {"alive": 0, "dead": 0, "last_beat": None})
        # On this host the kernel knows at once: a process just stopped (a restart, a reboot) is not
        # counted alive for the rest of dead_after beside its successor.
        alive = row.beat_at >= now - timedelta(seconds=dead_after) and (row.host != here or process_alive(row.pid))
        if alive:
            entry["alive"] += 1
        elif row.beat_at >= now - timedelta(hours=1):  # stopped lately; older ones are history (restarts)
            entry["dead"] += 1
        if entry["last_beat"] is None or row.beat_at > entry["last_beat"]:
            entry["last_beat"] = row.beat_at
    return report


def forget_long_dead(session, now: datetime, days: int = 7) -> None:
    """Rows of processes dead for a week (replaced hosts, old pids) stop being reported."""
    session.execute(delete(Heartbeat).where(Heartbeat.beat_at < now - timedelta(days=days)))
    session.commit()


def process_alive(pid: int) -> bool:
    """Whether a process of this host with this pid exists (another user's counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_dead(session, host: str, pid: int, now: datetime, dead_after: float) -> bool:
    """Whether the process host:pid is gone: on this host the kernel knows at once; elsewhere, its
    heartbeats have stopped (or it never beat)."""
    if host == socket.gethostname() and not process_alive(pid):
        return True
    newest = session.scalar(select(Heartbeat.beat_at).where(Heartbeat.host == host, Heartbeat.pid == pid)
                            .order_by(Heartbeat.beat_at.desc()).limit(1))
    if newest is None:
        return host != socket.gethostname()
    return newest < now - timedelta(seconds=dead_after)
