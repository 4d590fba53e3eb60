"""Heartbeats written by the scheduler (as a job: it beats only while it runs jobs) and by each
delivery worker (from its own loop: it beats only while it works), read by /healthz."""
from __future__ import annotations

import logging
import time

from flask import Flask

from models.heartbeats import beat
from models.timeutil import utcnow
from wxbot import services

logger = logging.getLogger(__name__)


class Beater:
    """Beats for one role of this process at most every health.heartbeat_seconds."""

    def __init__(self, app: Flask, role: str):
        self.app, self.role = app, role
        self.every = services.settings(app).health.heartbeat_seconds
        self.started_at = utcnow()
        self.last = 0.0

    def __call__(self, session=None) -> None:
        if time.monotonic() - self.last < self.every * 0.9:  # an interval job may fire a little early
            return
        self.last = time.monotonic()
        try:
            if session is not None:
                beat(session, self.role, utcnow(), self.started_at)
                return
            with services.sessions(self.app)() as own:
                beat(own, self.role, utcnow(), self.started_at)
        except Exception as exc:  # the database is away: /healthz says so itself; try again next time
            if session is not None:
                session.rollback()
            logger.warning("heartbeat of %s not written: %s", self.role, type(exc).__name__)
