"""The shared key-value store: Redis in production, an in-process store in the embedded default.

One small interface, two backends; tests/test_store_contract.py runs one suite against both. Used
for message dedup, conversation state, per-user locks, rate counters and the shared access token.
"""
from __future__ import annotations

import threading
import time
import uuid
from abc import ABC, abstractmethod
from contextlib import contextmanager
from typing import Iterator

import redis


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
    def incr(self, key: str, ttl: float) -> int:
        """Add one; the TTL starts when the key is created and is not extended."""

    @abstractmethod
    def ttl(self, key: str) -> float | None:
        """Seconds left, or None for a missing key or one without expiry."""

    @abstractmethod
    @contextmanager
    def lock(self, name: str, timeout: float, wait: float) -> Iterator[None]:
        """Hold `name` for at most `timeout` s; wait up to `wait` s for it, else LockTimeout."""

    @abstractmethod
    def ping(self) -> bool: ...

    @abstractmethod
    def clear(self) -> None:
        """Delete every key of this deployment (sandbox reset, tests)."""


class MemoryStore(Store):
    """In-process store: correct for one process with many threads, and only for that."""

    def __init__(self):
        self._data: dict[str, tuple[str, float | None]] = {}
        self._mutex = threading.Condition()

    def _live(self, key: str) -> tuple[str, float | None] | None:
        item = self._data.get(key)
        if item is not None and item[1] is not None and item[1] <= time.monotonic():
            del self._data[key]
            return None
        return item

    @staticmethod
    def _expiry(ttl: float | None) -> float | None:
        return time.monotonic() + ttl if ttl else None

    def get(self, key):
        with self._mutex:
            item = self._live(key)
            return item[0] if item else None

    def set(self, key, value, ttl=None):
        with self._mutex:
            self._data[key] = (value, self._expiry(ttl))
            self._mutex.notify_all()

    def add(self, key, value, ttl):
        with self._mutex:
            if self._live(key) is not None:
                return False
            self._data[key] = (value, self._expiry(ttl))
            return True

    def delete(self, *keys):
        with self._mutex:
            for key in keys:
                self._data.pop(key, None)
            self._mutex.notify_all()

    def incr(self, key, ttl):
        with self._mutex:
            item = self._live(key)
            value = int(item[0]) + 1 if item else 1
            self._data[key] = (str(value), item[1] if item else self._expiry(ttl))
            return value

    def ttl(self, key):
        with self._mutex:
            item = self._live(key)
            if item is None or item[1] is None:
                return None
            return max(0.0, item[1] - time.monotonic())

    @contextmanager
    def lock(self, name, timeout, wait):
        key, token = f"lock:{name}", uuid.uuid4().hex
        deadline = time.monotonic() + wait
        with self._mutex:
            while not self._take(key, token, timeout):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LockTimeout(name)
                self._mutex.wait(min(left, 0.05))
        try:
            yield
        finally:
            with self._mutex:
                if (self._live(key) or (None,))[0] == token:
                    del self._data[key]
                self._mutex.notify_all()

    def _take(self, key: str, token: str, timeout: float) -> bool:
        if self._live(key) is not None:
            return False
        self._data[key] = (token, self._expiry(timeout))
        return True

    def ping(self):
        return True

    def clear(self):
        with self._mutex:
            self._data.clear()


class RedisStore(Store):
    """Redis backend; every key carries the deployment prefix."""

    def __init__(self, url: str, prefix: str):
        self.redis = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5,
                                          socket_connect_timeout=2, health_check_interval=30)
        self.prefix = prefix.rstrip(":") + ":"

    def _k(self, key: str) -> str:
        return self.prefix + key

    def get(self, key):
        return self.redis.get(self._k(key))

    def set(self, key, value, ttl=None):
        self.redis.set(self._k(key), value, px=int(ttl * 1000) if ttl else None)

    def add(self, key, value, ttl):
        return bool(self.redis.set(self._k(key), value, px=int(ttl * 1000), nx=True))

    def delete(self, *keys):
        if keys:
            self.redis.delete(*(self._k(k) for k in keys))

    def incr(self, key, ttl):
        pipe = self.redis.pipeline()
        pipe.incr(self._k(key))
        pipe.pexpire(self._k(key), int(ttl * 1000), nx=True)
        return int(pipe.execute()[0])

    def ttl(self, key):
        millis = self.redis.pttl(self._k(key))
        return None if millis < 0 else millis / 1000.0

    @contextmanager
    def lock(self, name, timeout, wait):
        lock = self.redis.lock(self._k(f"lock:{name}"), timeout=timeout, blocking_timeout=wait,
                               sleep=0.01)
        if not lock.acquire():
            raise LockTimeout(name)
        try:
            yield
        finally:
            try:
                lock.release()
            except redis.exceptions.LockError:  # expired and maybe taken by another: not ours to free
                pass

    def ping(self):
        try:
            return bool(self.redis.ping())
        except redis.RedisError:
            return False

    def clear(self):
        cursor = 0
        while True:
            cursor, keys = self.redis.scan(cursor, match=self.prefix + "*", count=500)
            if keys:
                self.redis.delete(*keys)
            if cursor == 0:
                return


def make_store(url: str, prefix: str) -> Store:
    """Redis when a URL is configured, else the in-process store."""
    return RedisStore(url, prefix) if url else MemoryStore()
