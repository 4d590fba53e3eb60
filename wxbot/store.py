"""The shared key-value store: Redis in production, an in-process store in the embedded default.

One small interface, two backends; tests/test_store_contract.py runs one suite against both. Used
for message dedup, conversation state, per-user locks, rate counters, the shared access token, and
the queue of message-log entries waiting to be written.

What must survive the web process dying (kill -9, a crash, a deploy) survives it on both: Redis
keeps it in its own process; the in-process store writes the keys under DURABLE_PREFIXES and every
list through to a small SQLite file next to the database, and reads them back on start. So a retry
WeChat sends after a restart still gets the first reply, and no logged message is lost.
The interface is here; the backends are wxbot/memorystore.py and wxbot/redisstore.py.
"""
from __future__ import annotations

import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


class LockTimeout(Exception):
    """The lock could not be had within the wait time."""


class Store(ABC):
    """Keys are strings without the deployment prefix; values are strings."""

    @abstractmethod
    def get(self, key: str) -> str | None: ...

    @abstractmethod
    def set(self, key: str, value: str, ttl: float | None = None) -> None: ...

    @abstractmethod
    def add(self, key: str, value: str, ttl: float) -> bool:
        """Set only if absent; True when this call set it."""

    @abstractmethod
    def delete(self, *keys: str) -> None: ...

    @abstractmethod
    def delete_if(self, key: str, value: str) -> bool:
        """Delete `key` only while it still holds `value` (nobody wrote it since it was read)."""

    @abstractmethod
    def incr(self, key: str, ttl: float) -> int:
        """Add one; the TTL starts when the key is created and is not extended."""

    @abstractmethod
    def ttl(self, key: str) -> float | None:
        """Seconds left, or None for a missing key or one without expiry."""

    @abstractmethod
    def take_lock(self, name: str, token: str, timeout: float) -> bool:
        """Take `name` for `token` for at most `timeout` s if nobody holds it; True when taken."""

    @abstractmethod
    def unlock(self, name: str, token: str) -> None:
        """Free `name` if `token` still holds it (a holder that overran may have lost it)."""

    def wait_lock(self, name: str, token: str, timeout: float, wait: float) -> None:
        """Take `name` for `token`, waiting up to `wait` s for it, else LockTimeout."""
        deadline = time.monotonic() + wait
        while not self.take_lock(name, token, timeout):
            if time.monotonic() >= deadline:
                raise LockTimeout(name)
            time.sleep(0.01)

    @contextmanager
    def lock(self, name: str, timeout: float, wait: float) -> Iterator[None]:
        """Hold `name` for at most `timeout` s; wait up to `wait` s for it, else LockTimeout."""
        token = uuid.uuid4().hex
        self.wait_lock(name, token, timeout, wait)
        try:
            yield
        finally:
            self.unlock(name, token)

    @abstractmethod
    def begin_message(self, claim: str, pending: str, claim_ttl: float, lock: str, token: str, lock_ttl: float,
                      reads: list[str]) -> Begun:
        """The first step of an inbound message, in one round trip: claim it (set `claim` if absent);
        if claimed, try the sender's lock and read `reads`; if someone else claimed it first, say what
        they stored (the pending mark, or their reply)."""

    @abstractmethod
    def take_over(self, claim: str, stale: str, lock: str, token: str) -> bool:
        """Drop a claim whose holder died (only if it still reads `stale`), and that holder's lock
        (only if it still holds `token`), in one step; True when the claim was dropped."""

    @abstractmethod
    def finish_message(self, sets: list[tuple[str, str, float | None]], deletes: list[str],
                       pushes: list[tuple[str, str]], unlock: tuple[str, str] | None) -> None:
        """The last step, in one round trip: set and delete keys, append to lists, free the lock."""

    @abstractmethod
    def push(self, key: str, *values: str) -> None:
        """Append to the list `key` (kept until trimmed; no expiry)."""

    @abstractmethod
    def peek(self, key: str, count: int) -> list[str]:
        """The first `count` values of the list, oldest first, without removing them."""

    @abstractmethod
    def trim(self, key: str, count: int) -> None:
        """Remove the first `count` values of the list (after they were dealt with)."""

    @abstractmethod
    def ping(self) -> bool: ...

    @abstractmethod
    def clear(self) -> None:
        """Delete every key of this deployment (sandbox reset, tests)."""


@dataclass(frozen=True)
class Begun:
    claimed: bool  # False: another delivery of the message claimed it first
    existing: str | None = None  # what that delivery stored under the claim (when not claimed)
    locked: bool = False  # the sender's lock is ours
    values: tuple[str | None, ...] = ()  # the values of `reads`, in order


def make_store(url: str, prefix: str, path: str | None = None) -> Store:
    """Redis when a URL is configured, else the in-process store (durable in `path` when given)."""
    if url:
        from wxbot.redisstore import RedisStore
        return RedisStore(url, prefix)
    from wxbot.memorystore import MemoryStore
    return MemoryStore(path)
