"""The message log is written in batches, off the reply path.

Every message used to cost two INSERTs inside WeChat's 5 seconds; now handlers queue entries and
one thread per process writes them every `message_log.flush_seconds` in one statement. What a
crash can lose is that last fraction of a second of the monitoring record, never a member's data.
"""
from __future__ import annotations

import atexit
import logging
import os
import queue
import threading

from flask import Flask
from sqlalchemy import delete, insert, select

from models.followers import Follower
from models.messagelog import MessageLog

logger = logging.getLogger(__name__)
MAX_ATTEMPTS = 3


class MessageLogWriter:
    def __init__(self, app: Flask):
        self.app = app
        self.interval = app.config["WXBOT"].message_log.flush_seconds
        self._queue: queue.SimpleQueue[dict] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._start_lock = threading.Lock()

    def add(self, **entry) -> None:
        """Queue one entry (openid, member_id, direction, kind, content, created_at)."""
        entry["content"] = entry["content"][:4000]
        self._queue.put(entry)
        self._ensure_thread()

    def flush(self) -> int:
        """Write everything queued now; returns how many entries were written."""
        entries = []
        while True:
            try:
                entries.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if entries:
            try:
                self._write(entries)
            except Exception:
                self._retry_later(entries)
                raise
        return len(entries)

    def _retry_later(self, entries: list[dict]) -> None:
        """Keep a failed batch for the next rounds; give it up after MAX_ATTEMPTS (a poison row)."""
        for entry in entries:
            entry["_attempts"] = entry.get("_attempts", 0) + 1
            if entry["_attempts"] < MAX_ATTEMPTS:
                self._queue.put(entry)
            else:
                logger.error("message log entry dropped after %d failed writes", MAX_ATTEMPTS)

    def _write(self, entries: list[dict]) -> None:
        factory = self.app.extensions["wxbot.db"]
        openids = {e["openid"] for e in entries}
        rows = [{k: v for k, v in e.items() if not k.startswith("_")} for e in entries]
        with factory() as session, session.begin():
            session.execute(insert(MessageLog), rows)
            # Someone who unfollowed meanwhile must leave no trace (WeChat's rule).
            gone = select(Follower.openid).where(Follower.openid.in_(openids), Follower.subscribed.is_(False))
            session.execute(delete(MessageLog).where(MessageLog.openid.in_(gone)))

    def _ensure_thread(self) -> None:
        # One thread per process, started on first use: a thread must not cross gunicorn's fork.
        if self._thread is not None and self._pid == os.getpid():
            return
        with self._start_lock:
            if self._thread is None or self._pid != os.getpid():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._loop, name="wxbot-log-writer", daemon=True)
                self._thread.start()
                atexit.register(self._flush_quietly)

    def _loop(self) -> None:
        stop = threading.Event()
        while not stop.wait(self.interval):
            self._flush_quietly()

    def _flush_quietly(self) -> None:
        try:
            self.flush()
        except Exception:  # the database may be down for a moment; the next round tries again
            logger.exception("message log batch failed")
