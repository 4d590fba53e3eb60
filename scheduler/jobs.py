"""Scheduled jobs: plain functions of the app, each safe to run twice."""
from __future__ import annotations

import logging

from flask import Flask

from models.messagelog import purge_messages
from models.timeutil import utcnow
from wxbot.db import db

logger = logging.getLogger(__name__)


def purge_message_log(app: Flask) -> int:
    """Delete message-log entries older than message_log.retention_days."""
    with app.app_context():
        removed = purge_messages(db.session, app.config["WXBOT"].message_log.retention_days, utcnow())
        db.session.commit()
    logger.info("message log purge removed %s entries", removed)
    return removed
