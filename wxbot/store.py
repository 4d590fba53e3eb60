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

import os
import sqlite3
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

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


# Keys the in-process store writes through to its file: the claim and first reply of each WeChat
# message, so that a retry arriving after a restart is answered, not handled again; and a newcomer's
# scan of a check-in code, so that binding after a restart still checks them in.
DURABLE_PREFIXES = ("dedup:", "checkin:pending:")


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

    def delete_if(self, key, value):
        with self._mutex:
            if (self._live(key) or (None,))[0] != value:
                return False
            self.delete(key)
            return True

    def take_lock(self, name, token, timeout):
        with self._mutex:
            return self._take(f"lock:{name}", token, timeout)

    def unlock(self, name, token):
        with self._mutex:
            self._release(f"lock:{name}", token)

    def _take(self, key: str, token: str, timeout: float) -> bool:
        if self._live(key) is not None:
            return False
        self._data[key] = (token, self._expiry(timeout))
        return True

    def _release(self, key: str, token: str) -> None:
        if (self._live(key) or (None,))[0] == token:
            del self._data[key]

    def begin_message(self, claim, pending, claim_ttl, lock, token, lock_ttl, reads):
        with self._mutex:
            existing = self._live(claim)
            if existing is not None:
                return Begun(False, existing[0])
            self._data[claim] = (pending, self._expiry(claim_ttl))
            self._write_through(claim, pending, claim_ttl)
            locked = self._take(f"lock:{lock}", token, lock_ttl)
            return Begun(True, None, locked, tuple((self._live(k) or (None,))[0] for k in reads))

    def take_over(self, claim, stale, lock, token):
        with self._mutex:
            if (self._live(claim) or (None,))[0] != stale:
                return False
            self.delete(claim)
            self._release(f"lock:{lock}", token)
            return True

    def finish_message(self, sets, deletes, pushes, unlock):
        with self._mutex:
            for key, value, ttl in sets:
                self._data[key] = (value, self._expiry(ttl))
                self._write_through(key, value, ttl)
            for key in deletes:
                self._data.pop(key, None)
            for key, value in pushes:
                self._lists.setdefault(key, deque()).append(value)
                if self._file is not None:
                    self._file.push(key, (value,))
            if unlock is not None:
                self._release(f"lock:{unlock[0]}", unlock[1])

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


# KEYS: claim, lock; ARGV: the stale claim, the dead holder's lock token.
TAKE_OVER = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end
return 1
"""

# Free a lock only for the token that holds it; delete a key only while it holds the value.
UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: claim, lock, reads...; ARGV: pending, claim ttl ms, token, lock ttl ms.
# Returns {0, what is stored} when the message was claimed before, else {1, locked, reads...}
# (a missing key reads as false, which reaches Python as None).
BEGIN = """
local existing = redis.call('GET', KEYS[1])
if existing then return {0, existing} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local reply = {1, redis.call('SET', KEYS[2], ARGV[3], 'NX', 'PX', ARGV[4]) and 1 or 0}
for i = 3, #KEYS do reply[i] = redis.call('GET', KEYS[i]) end
return reply
"""

# KEYS: the keys to set, to delete, the lists to push to, then the lock (if any).
# ARGV: counts of sets, deletes, pushes; the values to set; their ttls (ms, 0 for none);
# the values to push; the lock's token (if any).
FINISH = """
local sets, dels, pushes = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 1, sets do
  local ttl = tonumber(ARGV[3 + sets + i])
  if ttl > 0 then redis.call('SET', KEYS[i], ARGV[3 + i], 'PX', ttl) else redis.call('SET', KEYS[i], ARGV[3 + i]) end
end
for i = 1, dels do redis.call('DEL', KEYS[sets + i]) end
for i = 1, pushes do redis.call('RPUSH', KEYS[sets + dels + i], ARGV[3 + 2 * sets + i]) end
local lock = sets + dels + pushes + 1
if KEYS[lock] and redis.call('GET', KEYS[lock]) == ARGV[3 + 2 * sets + pushes + 1] then
  redis.call('DEL', KEYS[lock])
end
"""


class RedisStore(Store):
    """Redis backend; every key carries the deployment prefix."""

    def __init__(self, url: str, prefix: str):
        self.redis = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5,
                                          socket_connect_timeout=2, health_check_interval=30)
        self.prefix = prefix.rstrip(":") + ":"
        self._unlock = self.redis.register_script(UNLOCK)
        self._begin = self.redis.register_script(BEGIN)
        self._finish = self.redis.register_script(FINISH)
        self._take_over = self.redis.register_script(TAKE_OVER)

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

    def delete_if(self, key, value):
        return bool(self._unlock(keys=[self._k(key)], args=[value]))

    def take_lock(self, name, token, timeout):
        return bool(self.redis.set(self._k(f"lock:{name}"), token, px=int(timeout * 1000), nx=True))

    def unlock(self, name, token):
        self._unlock(keys=[self._k(f"lock:{name}")], args=[token])

    def begin_message(self, claim, pending, claim_ttl, lock, token, lock_ttl, reads):
        reply = self._begin(keys=[self._k(claim), self._k(f"lock:{lock}"), *(self._k(k) for k in reads)],
                            args=[pending, int(claim_ttl * 1000), token, int(lock_ttl * 1000)])
        if not reply[0]:
            return Begun(False, reply[1])
        return Begun(True, None, bool(reply[1]), tuple(reply[2:]))

    def take_over(self, claim, stale, lock, token):
        return bool(self._take_over(keys=[self._k(claim), self._k(f"lock:{lock}")], args=[stale, token]))

    def finish_message(self, sets, deletes, pushes, unlock):
        keys = [self._k(k) for k, _v, _t in sets] + [self._k(k) for k in deletes] + [self._k(k) for k, _v in pushes]
        args = [len(sets), len(deletes), len(pushes)]
        args += [v for _k, v, _t in sets] + [int(t * 1000) if t else 0 for _k, _v, t in sets]
        args += [v for _k, v in pushes]
        if unlock is not None:
            keys.append(self._k(f"lock:{unlock[0]}"))
            args.append(unlock[1])
        self._finish(keys=keys, args=args)

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
