"""The one error hook: every failure that no user sees directly (a handler, a late reply, a job, a
background write) is reported here, with what was being done. Details go to the log; openids never
do (callers pass masked ones)."""
from __future__ import annotations

import logging
import threading
from collections import Counter

logger = logging.getLogger("wxbot.errors")
_counts: Counter[str] = Counter()
_lock = threading.Lock()


def report_failure(what: str, exc: BaseException | None = None) -> None:
    """Log a failure of `what` (e.g. "scheduled job study.daily_push"), with the exception's trace."""
    with _lock:
        _counts[what.split(" ", 1)[0]] += 1
    if exc is not None:
        logger.error("%s failed", what, exc_info=(type(exc), exc, exc.__traceback__))
    else:
        logger.exception("%s failed", what)


def failure_counts() -> dict[str, int]:
    """Failures reported so far in this process, by kind (the first word of `what`)."""
    with _lock:
        return dict(_counts)
