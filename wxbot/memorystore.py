"""The in-process store of the embedded default: correct for one process with many threads, and only
for that. What must survive the process dying is written through to a small SQLite file."""
from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections import deque

from wxbot.store import Begun, Store

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
