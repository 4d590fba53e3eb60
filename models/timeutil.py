"""The one time helper: times are stored in UTC and shown in the configured local time zone.

The zone is `scheduler.timezone` (default Asia/Shanghai); the app sets it once at start-up
(`set_local_zone`), so that every day boundary, streak, shown date and scheduled job agrees.
"""
from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
# WeChat's own clock: its daily quotas reset and its months turn at Beijing midnight, whatever zone
# the university shows its dates in.
WECHAT_TZ = ZoneInfo("Asia/Shanghai")
# Dates people may type: anything outside is a typo (9999-12-31, 0001-01-01), not a plan.
EARLIEST, LATEST = date(1970, 1, 1), date(2200, 12, 31)


def set_local_zone(name: str) -> None:
    """Use `name` (an IANA zone) for every local date and time from now on."""
    global LOCAL_TZ
    LOCAL_TZ = ZoneInfo(name)


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def to_local(at: datetime) -> datetime:
    """A stored UTC time as local time."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(LOCAL_TZ)


def local_date(at: datetime | None = None) -> date:
    """The local calendar day of `at` (default: now)."""
    return to_local(at or utcnow()).date()


def local_midnight(day: date) -> datetime:
    """The start of a local calendar day, as an aware datetime."""
    return datetime.combine(day, time.min, tzinfo=LOCAL_TZ)


def month_key(at: datetime) -> str:
    """The local month of `at`, as "YYYY-MM" (monthly quotas, calendars)."""
    return to_local(at).strftime("%Y-%m")


def wechat_month(at: datetime) -> str:
    """WeChat's month of `at` ("YYYY-MM", Beijing time): the per-follower monthly mass limit."""
    return at.astimezone(WECHAT_TZ).strftime("%Y-%m")


def next_wechat_midnight(at: datetime) -> datetime:
    """When WeChat's daily quotas reset next (midnight, Beijing time)."""
    tomorrow = at.astimezone(WECHAT_TZ).date() + timedelta(days=1)
    return datetime.combine(tomorrow, time.min, tzinfo=WECHAT_TZ)


def show(at: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Format a stored time for a user, in local time."""
    return to_local(at).strftime(fmt) if at else ""


def parse_day(text: str | None) -> date | None:
    """A YYYY-MM-DD day someone typed, or None when it is not one (or absurdly far away)."""
    try:
        day = date.fromisoformat((text or "").strip())
    except ValueError:
        return None
    return day if EARLIEST <= day <= LATEST else None


def parse_month(text: str | None) -> date | None:
    """The first day of a YYYY-MM month someone typed, or None."""
    return parse_day(f"{(text or '').strip()}-01") if len((text or "").strip()) == 7 else None


def parse_local_time(text: str | None, fmt: str = "%Y-%m-%d %H:%M") -> datetime | None:
    """A local date and time someone typed (in `fmt`), as an aware datetime; None when it is not one."""
    try:
        at = datetime.strptime((text or "").strip(), fmt)
    except ValueError:
        return None
    return at.replace(tzinfo=LOCAL_TZ) if EARLIEST <= at.date() <= LATEST else None


def day_range(first: date, last: date) -> tuple[datetime, datetime]:
    """[start, end) of local days first..last, for queries over stored UTC times."""
    return local_midnight(first), local_midnight(last + timedelta(days=1))
