"""The shared key-value store: Redis in production, an in-process store in the embedded default.

One small interface, two backends; tests/test_store_contract.py runs one suite against both. Used
for message dedup, conversation state, per-user locks, rate counters, the shared access token, and
the queue of message-log entries waiting to be written.

What must survive the web process dying (kill -9, a crash, a deploy) survives it on both: Redis
keeps it in its own process; the in-process store writes the keys under DURABLE_PREFIXES and every
list through to a small SQLite file next to the database, and reads them back on start. So a retry
WeChat sends after a restart still gets the first reply, and no logged message is lost.
"""
from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

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


# Keys the in-process store writes through to its file: the claim and first reply of each WeChat
# message, so that a retry arriving after a restart is answered, not handled again.
DURABLE_PREFIXES = ("dedup:",)


class MemoryStore(Store):
    """In-process store: correct for one process with many threads, and only for that. With a
    `path`, durable keys and lists are also kept in that SQLite file and read back on start."""

    def __init__(self, path: str | None = None):
        self._data: dict[str, tuple[str, float | None]] = {}
        self._lists: dict[str, deque[str]] = {}
        self._mutex = threading.Condition()
        self._file = _DurableFile(path) if path else None
        if self._file is not None:
            self._data.update(self._file.load_keys())
            self._lists.update(self._file.load_lists())

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
            self._write_through(key, value, ttl)
            self._mutex.notify_all()

    def add(self, key, value, ttl):
        with self._mutex:
            if self._live(key) is not None:
                return False
            self._data[key] = (value, self._expiry(ttl))
            self._write_through(key, value, ttl)
            return True

    def delete(self, *keys):
        with self._mutex:
            for key in keys:
                self._data.pop(key, None)
                self._lists.pop(key, None)
            if self._file is not None:
                self._file.delete(keys)
            self._mutex.notify_all()

    def _write_through(self, key: str, value: str, ttl: float | None) -> None:
        if self._file is not None and key.startswith(DURABLE_PREFIXES):
            self._file.put(key, value, time.time() + ttl if ttl else None)

    def push(self, key, *values):
        with self._mutex:
            self._lists.setdefault(key, deque()).extend(values)
            if self._file is not None:
                self._file.push(key, values)

    def peek(self, key, count):
        with self._mutex:
            items = self._lists.get(key) or ()
            return [items[i] for i in range(min(count, len(items)))]

    def trim(self, key, count):
        with self._mutex:
            items = self._lists.get(key)
            for _ in range(min(count, len(items or ()))):
                items.popleft()
            if self._file is not None:
                self._file.trim(key, count)

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
            self._lists.clear()
            if self._file is not None:
                self._file.clear()


class _DurableFile:
    """The in-process store's SQLite file: durable keys with their expiry, and lists. Called under
    the store's mutex; WAL with synchronous=NORMAL survives the process dying (not the machine)."""

    def __init__(self, path: str):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT, expires REAL)")
        self.db.execute("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT, value TEXT)")
        self.db.execute("DELETE FROM kv WHERE expires IS NOT NULL AND expires < ?", (time.time(),))

    def load_keys(self) -> dict[str, tuple[str, float | None]]:
        now, mono = time.time(), time.monotonic()
        return {key: (value, None if expires is None else mono + expires - now)
                for key, value, expires in self.db.execute("SELECT key, value, expires FROM kv")}

    def load_lists(self) -> dict[str, deque[str]]:
        lists: dict[str, deque[str]] = {}
        for key, value in self.db.execute("SELECT key, value FROM items ORDER BY id"):
            lists.setdefault(key, deque()).append(value)
        return lists

    def put(self, key: str, value: str, expires: float | None) -> None:
        self.db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?, ?)", (key, value, expires))

    def delete(self, keys) -> None:
        self.db.executemany("DELETE FROM kv WHERE key = ?", [(k,) for k in keys])
        self.db.executemany("DELETE FROM items WHERE key = ?", [(k,) for k in keys])

    def push(self, key: str, values) -> None:
        self.db.executemany("INSERT INTO items (key, value) VALUES (?, ?)", [(key, v) for v in values])

    def trim(self, key: str, count: int) -> None:
        self.db.execute("DELETE FROM items WHERE id IN (SELECT id FROM items WHERE key = ? ORDER BY id LIMIT ?)",
                        (key, count))

    def clear(self) -> None:
        self.db.execute("DELETE FROM kv")
        self.db.execute("DELETE FROM items")


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
            with contextlib.suppress(redis.exceptions.LockError):  # expired, maybe taken: not ours to free
                lock.release()

    def push(self, key, *values):
        if values:
            self.redis.rpush(self._k(key), *values)

    def peek(self, key, count):
        return self.redis.lrange(self._k(key), 0, count - 1) if count > 0 else []

    def trim(self, key, count):
        if count > 0:
            self.redis.ltrim(self._k(key), count, -1)

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


def make_store(url: str, prefix: str, path: str | None = None) -> Store:
    """Redis when a URL is configured, else the in-process store (durable in `path` when given)."""
    return RedisStore(url, prefix) if url else MemoryStore(path)
