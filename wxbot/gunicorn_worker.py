"""gunicorn's threaded worker, with a time limit on reading a request's headers (see wxbot.bodyread)."""
from __future__ import annotations

import time

from gunicorn.workers.gthread import ThreadWorker

from wxbot.bodyread import watch_headers


class TimedThreadWorker(ThreadWorker):
    """gthread, except that a request whose headers arrive too slowly is cut off instead of holding a
    thread. The time counts from when the connection was handed to the thread pool, so slow senders
    queued behind each other are cut as soon as a thread picks them up. The limit is
    server.read_timeout, handed over by gunicorn.conf.py."""

    read_timeout = 5.0

    def enqueue_req(self, conn):
        conn.wxbot_queued_at = time.monotonic()
        super().enqueue_req(conn)

    def handle(self, conn):
        since = getattr(conn, "wxbot_queued_at", time.monotonic())
        done = watch_headers(conn.sock, since + self.read_timeout)
        try:
            return super().handle(conn)
        finally:
            done()
