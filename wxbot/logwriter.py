"""The message log (and senders' interactions) are written in batches, off the reply path, and
nothing of them is lost in a crash.

Every message used to cost two INSERTs inside WeChat's 5 seconds. Now handlers append entries to a
list in the shared store (Redis, or the embedded store's file), and one thread per process moves
them to the database every `message_log.flush_seconds`, in one statement, under a store lock so
that several processes never write the same entries. An entry leaves the list only after its batch
is committed: a process killed at any moment leaves its entries for the next flush (here or in
another process); the worst a crash can do is write one batch twice.
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
from datetime import datetime

from flask import Flask
from sqlalchemy import delete, exists, insert, select
from sqlalchemy.exc import DataError, IntegrityError

from models.followers import Follower, record_interaction
from models.messagelog import MessageLog
from wxbot import services
from wxbot.errors import report_failure
from wxbot.store import LockTimeout

logger = logging.getLogger(__name__)
QUEUE = "msglog"
# Interactions of known senders (the time and the customer-service window they open), recorded off
# the reply path with the log: the window opens in the database within flush_seconds.
INTERACTIONS = "interactions"
BATCH = 500


class MessageLogWriter:
    def __init__(self, app: Flask):
        self.app = app
        self.interval = services.settings(app).message_log.flush_seconds
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._start_lock = threading.Lock()
        self._stop = threading.Event()
        self._outage = Outage("message log batch", self.interval)

    @property
    def store(self):
        return services.store(self.app)

    def add(self, **entry) -> None:
        """Queue one entry (openid, member_id, direction, kind, content, created_at)."""
        self.store.push(QUEUE, self.encode(entry))

    def encode(self, entry: dict) -> str:
        """An entry as queued (the caller pushes it with its other writes); starts the flushing."""
        self.start()
        return encode(entry)

    def flush(self) -> int:
        """Write everything queued now (by any process); returns how many log entries were written."""
        written = 0
        try:
            with self.store.lock(f"{QUEUE}:flush", timeout=60, wait=5):
                self._drain(INTERACTIONS, self._record_interactions)
                written = self._drain(QUEUE, lambda raw: self._write_batch([decode(item) for item in raw]))
        except LockTimeout:  # another process is flushing right now
            pass
        return written

    def _drain(self, queue: str, write) -> int:
        done = 0
        while True:
            raw = self.store.peek(queue, BATCH)
            if not raw:
                return done
            write(raw)
            self.store.trim(queue, len(raw))
            done += len(raw)

    def _record_interactions(self, raw: list[str]) -> None:
        """Apply queued interactions to their followers, in order (one SELECT, one commit); someone
        who unfollowed meanwhile has no row, and nothing is recorded."""
        touches = [json.loads(item) for item in raw]
        wechat = services.settings(self.app).wechat
        with services.sessions(self.app)() as session, session.begin():
            followers = {f.openid: f for f in session.scalars(
                select(Follower).where(Follower.openid.in_({t["openid"] for t in touches})))}
            for touch in touches:
                follower = followers.get(touch["openid"])
                if follower is not None:
                    record_interaction(follower, touch["kind"], datetime.fromisoformat(touch["at"]), wechat)

    def _write_batch(self, entries: list[dict]) -> None:
        """One statement for the batch; an entry the database refuses (its member deleted meanwhile)
        is dropped on its own, with a line in the log, instead of blocking the queue forever. A
        database that cannot be reached raises, and the batch waits in the queue."""
        try:
            self._write(entries)
        except (IntegrityError, DataError):
            for entry in entries:
                try:
                    self._write([entry])
                except (IntegrityError, DataError):
                    logger.error("message log entry refused by the database and dropped (%s)", entry["kind"])

    def _write(self, entries: list[dict]) -> None:
        factory = services.sessions(self.app)
        openids = {e["openid"] for e in entries}
        log, followers = MessageLog.__table__, Follower.__table__
        with factory() as session, session.begin():
            connection = session.connection()
            insert_entries(connection, entries)
            # Someone who unfollowed meanwhile must leave no trace (WeChat's rule): their follower row is
            # gone. One statement, decided by the database.
            connection.execute(delete(log).where(log.c.openid.in_(openids), ~exists().where(
                followers.c.openid == log.c.openid, followers.c.subscribed.is_(True))))

    def start(self) -> None:
        """Start this process's flushing thread (once; it also drains what a dead process left)."""
        # One thread per process, started on first use: a thread must not cross gunicorn's fork.
        if self._thread is not None and self._pid == os.getpid():
            return
        with self._start_lock:
            if self._thread is None or self._pid != os.getpid():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._loop, name="wxbot-log-writer", daemon=True)
                self._thread.start()
                atexit.register(self.flush_quietly)

    def stop(self) -> None:
        """End the flushing thread after one last flush (tests, shutdown)."""
        self._stop.set()
        if self._thread is not None and self._pid == os.getpid():
            self._thread.join(5)
        else:
            self.flush_quietly()

    def _loop(self) -> None:
        while not self._stop.wait(self._outage.delay):
            self.flush_quietly()
        self.flush_quietly()

    def flush_quietly(self) -> None:
        """Flush, logging instead of raising (the background loop, and shutdown)."""
        try:
            self.flush()
        except Exception as exc:  # the database may be down for a moment; the entries wait for the next round
            self._outage.failed(exc)
        else:
            self._outage.passed()


class Outage:
    """A loop's failures told once per outage, with the loop slowed down meanwhile: with Redis or the
    database down, every web process would otherwise log a traceback five times a second. The first
    failure is logged with its trace, the recovery with how long it lasted."""

    MAX_DELAY = 5.0

    def __init__(self, what: str, interval: float):
        self.what, self.interval = what, interval
        self.delay = interval
        self.since: float | None = None

    def failed(self, exc: BaseException) -> None:
        if self.since is None:
            self.since = time.monotonic()
            report_failure(self.what, exc)
            logger.error("%s: retrying quietly until it works again", self.what)
        self.delay = min(self.delay * 2, self.MAX_DELAY)

    def passed(self) -> None:
        if self.since is not None:
            logger.warning("%s works again after %.0f s", self.what, time.monotonic() - self.since)
            self.since = None
        self.delay = self.interval


LOG_COLUMNS = ("openid", "member_id", "direction", "kind", "content", "created_at")


def insert_entries(connection, entries: list[dict]) -> None:
    """A batch of log entries: PostgreSQL's COPY (several times cheaper than an INSERT per row, and
    the log is most of what the webhook writes), a plain executemany elsewhere."""
    if connection.dialect.name != "postgresql":
        connection.execute(insert(MessageLog.__table__), entries)
        return
    utc, dbapi = MessageLog.__table__.c.created_at.type, connection.dialect.dbapi  # naive UTC, as every write
    try:
        with connection.connection.driver_connection.cursor() as cursor, \
                cursor.copy(f"COPY message_log ({', '.join(LOG_COLUMNS)}) FROM STDIN") as copy:
            for entry in entries:
                copy.write_row((*(entry[c] for c in LOG_COLUMNS[:-1]),
                                utc.process_bind_param(entry["created_at"], connection.dialect)))
    except dbapi.IntegrityError as exc:  # the same exceptions as through SQLAlchemy
        raise IntegrityError("COPY message_log", None, exc) from exc
    except dbapi.DataError as exc:
        raise DataError("COPY message_log", None, exc) from exc


def encode_interaction(openid: str, kind: str, at: datetime) -> str:
    return json.dumps({"openid": openid, "kind": kind, "at": at.isoformat()})


def encode(entry: dict) -> str:
    entry = dict(entry, content=entry["content"][:4000], created_at=entry["created_at"].isoformat())
    return json.dumps(entry, ensure_ascii=False)


def decode(raw: str) -> dict:
    entry = json.loads(raw)
    entry["created_at"] = datetime.fromisoformat(entry["created_at"])
    return entry
