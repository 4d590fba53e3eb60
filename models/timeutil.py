"""The one time helper: times are stored in UTC and shown in Asia/Shanghai."""
from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Shanghai")


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


def to_local(at: datetime) -> datetime:
    """A stored UTC time as Asia/Shanghai time."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return at.astimezone(LOCAL_TZ)


def local_date(at: datetime | None = None) -> date:
    """The Asia/Shanghai calendar day of `at` (default: now)."""
    return to_local(at or utcnow()).date()


def show(at: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Format a stored time for a user, in Asia/Shanghai time."""
    return to_local(at).strftime(fmt) if at else ""
