"""WeChat's redeliveries of one message (up to four, at once or in turn): the first delivery leaves a
mark under the message's dedup key until its reply replaces it; every other delivery waits for that
reply within the budget. A first delivery whose process died is taken over, so that the message is
handled once, not never."""
from __future__ import annotations

import os
import socket
import time

from models.heartbeats import process_alive
from wxbot.metrics import ABANDONED, DEDUP_HITS
from wxbot.store import Store

PENDING = "\x00pending"
# Seconds past the reply budget after which a pending mark is taken for a dead process's.
ABANDON_MARGIN = 1.5
HOST = socket.gethostname()


def user_lock(openid: str) -> str:
    return f"user:{openid}"


def pending_mark(token: str) -> str:
    """The first delivery's mark: when it began, in which process, and its lock token (to free
    the sender's lock if that process died)."""
    return f"{PENDING}:{time.time():.3f}:{HOST}:{os.getpid()}:{token}"


def first_reply(store: Store, key: str, deadline: float, stored: str | None, openid: str,
                reply_budget: float) -> str | None:
    """A retry: the first delivery's reply, waited for until `deadline` (monotonic); None when the
    first delivery was abandoned (its process killed) and this one took the message over."""
    DEDUP_HITS.inc()
    while stored is None or stored.startswith(PENDING):
        if openid and stored and abandoned(stored, reply_budget) and take_over(store, key, stored, openid):
            return None
        if time.monotonic() >= deadline:
            return "success"
        time.sleep(0.01)
        stored = store.get(key)
    return stored


def take_over(store: Store, key: str, pending: str, openid: str) -> bool:
    """Drop the dead holder's mark and lock (its token ends the mark), unless another retry did."""
    taken = store.take_over(key, pending, user_lock(openid), pending.rsplit(":", 1)[-1])
    if taken:
        ABANDONED.inc()
    return taken


def abandoned(pending: str, reply_budget: float) -> bool:
    """Whether the first delivery's process died: on this host the kernel says so at once;
    elsewhere, a live first delivery replaces its mark within the reply budget (with its reply,
    or with "success" when the reply goes out later), so a mark older than that was left by a
    dead process. The mark's time is wall-clock: hosts must keep NTP time (as the timestamp
    window already requires)."""
    try:
        _, since, host, pid, _token = pending.split(":")
        since, pid = float(since), int(pid)
    except ValueError:  # a plain mark (job callbacks): never abandoned
        return False
    if host == HOST and not process_alive(pid):
        return True
    return time.time() - since > reply_budget + ABANDON_MARGIN
