"""Logging: one readable line (text) or one JSON object per line (log.format json), each with the
request id of the work it belongs to (models/tracing.py). Openids never reach a log line: code
logs them through replies.mask (a short hash)."""
from __future__ import annotations

import logging

from flask import Flask, request

from models.tracing import current_request_id, new_request_id

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every record (unless the caller gave one with extra=)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = current_request_id.get() or "-"
        return True


def configure_logging(level: str, form: str) -> None:
    root = logging.getLogger()
    if not any(isinstance(h, _WxbotHandler) for h in root.handlers):
        handler = _WxbotHandler()
        handler.addFilter(RequestIdFilter())
        root.addHandler(handler)
    for handler in root.handlers:
        if isinstance(handler, _WxbotHandler):
            handler.setFormatter(formatter(form))
    root.setLevel(level.upper())
    # Alembic names each of its plugins on every command, APScheduler every run of every job (the
    # heartbeat every few seconds): noise for IT staff, not information. Failures still show.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)


class _WxbotHandler(logging.StreamHandler):
    """Ours, so that building a second app (tests, CLI) reconfigures it rather than adding another."""


def formatter(form: str) -> logging.Formatter:
    if form == "json":
        from pythonjsonlogger.json import JsonFormatter
        return JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                             rename_fields={"asctime": "time", "levelname": "level", "name": "logger"})
    return logging.Formatter(TEXT_FORMAT)


def init_request_ids(app: Flask) -> None:
    """Every HTTP request gets an id: nginx's X-Request-Id when it sends one, else a new one; it is
    returned in the response's X-Request-Id. The webhook replaces it with one from the message."""

    @app.before_request
    def _start():
        given = request.headers.get("X-Request-Id", "")
        current_request_id.set(given[:32] if given.isalnum() else new_request_id())

    @app.after_request
    def _answer(response):
        response.headers["X-Request-Id"] = current_request_id.get()
        return response
