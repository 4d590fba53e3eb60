"""gunicorn's threaded worker, with a time limit on reading a request's headers (see wxbot.bodyread),
and a cheaper access log."""
from __future__ import annotations

import time
import traceback

from gunicorn.glogging import Logger
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


class AccessLogger(Logger):
    """gunicorn's logger, writing its own lines (start, workers, errors) and the access log in wxbot's
    format (log.format: one JSON object per line, or text), each with a request id: the web service
    writes one format, whoever wrote the line.

    The access line is built directly: `address "METHOD /path" status bytes NNms`, with the request
    id the response carries (nginx's X-Request-Id, or the message's). gunicorn's own formatting
    gathers every header and environ value of every request into a dict first, a few percent of the
    webhook's time. The path is logged without its query string: WeChat puts the user's openid
    there, and it must not reach the log. Health probes that pass are not logged at all."""

    QUIET_PATHS = ("/healthz", "/metrics")  # probes every few seconds: logged only when they fail

    def setup(self, cfg):
        super().setup(cfg)
        from wxbot.logs import RequestIdFilter, formatter
        form = _log_format()
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                if getattr(handler, "_gunicorn", False):
                    handler.setFormatter(formatter(form))
                    handler.addFilter(RequestIdFilter())

    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        if req.path in self.QUIET_PATHS and resp.status_code == 200:
            return
        millis = request_time.seconds * 1000 + request_time.microseconds // 1000
        headers = getattr(resp, "headers", None) or ()  # a logger never fails on what it is given
        request_id = next((value for name, value in headers if name.lower() == "x-request-id"), "-")
        try:
            self.access_log.info('%s "%s %s" %s %s %sms', environ.get("REMOTE_ADDR", "-"), req.method, req.path,
                                 resp.status_code, getattr(resp, "sent", "-"), millis,
                                 extra={"request_id": request_id, "status": resp.status_code, "ms": millis})
        except Exception:
            self.error(traceback.format_exc())


def _log_format() -> str:
    """log.format from the settings; text while they cannot be read (on_starting says what is wrong)."""
    from wxbot.config import ConfigError, load_settings
    try:
        return load_settings().log_format
    except ConfigError:
        return "text"
