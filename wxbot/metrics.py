"""Prometheus metrics: what IT staff watch, counted where it happens and read at GET /metrics.

Under gunicorn every process writes its counters to files in PROMETHEUS_MULTIPROC_DIR (set by
gunicorn.conf.py, or by the systemd units for the scheduler and the workers on the same host), and
/metrics adds them up. The outbox, the heartbeats and the message-log backlog are read from the
database at scrape time, so every web process reports the same numbers.
"""
from __future__ import annotations

import hmac
import ipaddress
import os

from flask import Blueprint, Response, abort, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from wxbot import services

bp = Blueprint("metrics", __name__)

REQUESTS = Counter("wxbot_webhook_requests_total", "Messages and events WeChat posted, by outcome "
                   "(replied, success: answered with an empty success, refused_NNN)", ["outcome"])
DEDUP_HITS = Counter("wxbot_dedup_hits_total", "WeChat's redeliveries answered from the first delivery's reply")
ABANDONED = Counter("wxbot_abandoned_messages_total", "Messages whose first delivery died with its process, "
                    "handled by WeChat's retry")
LATE_REPLIES = Counter("wxbot_late_replies_total", "Replies sent later through customer service (budget spent)")
REQUEST_SECONDS = Histogram("wxbot_webhook_seconds", "Time to answer WeChat",
                            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 5, 10))
HANDLER_SECONDS = Histogram("wxbot_handler_seconds", "Time a handler took, by handler", ["handler"],
                            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 4))
APOLOGIES = Counter("wxbot_apologies_total", "Replies that were the apology (an error reached the error hook)")
DELIVERIES = Counter("wxbot_deliveries_total", "Delivery outcomes, by status and channel", ["status", "channel"])
JOB_RUNS = Counter("wxbot_scheduler_job_runs_total", "Scheduled job runs, by job and outcome", ["job", "outcome"])
SCREENING_HITS = Counter("wxbot_screening_hits_total", "Posts the screening held or refused, by verdict", ["verdict"])
WECHAT_ERRORS = Counter("wxbot_wechat_api_errors_total", "WeChat API calls that failed, by error code", ["code"])


def handler_name(func) -> str:
    """handlers.study.today -> study.today (a bounded set of labels: one per handler function)."""
    module = getattr(func, "__module__", "") or ""
    return f"{module.rsplit('.', 1)[-1]}.{getattr(func, '__qualname__', 'unknown')}"


class DatabaseCollector:
    """Gauges read at scrape time: the outbox, living processes, what waits for the next interaction."""

    def __init__(self, app):
        self.app = app

    def collect(self):
        from models.backups import last_backup
        from models.heartbeats import liveness
        from models.timeutil import utcnow
        from wxbot.health import outbox_depth
        try:
            with services.sessions(self.app)() as session:
                depth = outbox_depth(session, utcnow())
                alive = liveness(session, utcnow(), services.settings(self.app).health.dead_after_seconds)
                last = last_backup(session)
        except Exception:  # the database is down: /healthz says so; the counters still answer
            up = GaugeMetricFamily("wxbot_database_up", "Whether the database answered the scrape")
            up.add_metric([], 0)
            yield up
            return
        up = GaugeMetricFamily("wxbot_database_up", "Whether the database answered the scrape")
        up.add_metric([], 1)
        yield up
        outbox = GaugeMetricFamily("wxbot_outbox_depth", "Deliveries not yet sent, by status", labels=["status"])
        for status, count in depth.items():
            outbox.add_metric([status], count)
        yield outbox
        processes = GaugeMetricFamily("wxbot_processes_alive", "Processes with a recent heartbeat, by role",
                                      labels=["role"])
        for role, entry in alive.items():
            processes.add_metric([role], entry["alive"])
        yield processes
        if last is not None:  # alert when it grows past a day: the nightly backup stopped
            backup = GaugeMetricFamily("wxbot_last_backup_timestamp_seconds", "When the last backup finished")
            backup.add_metric([], last.finished_at.timestamp())
            yield backup


def _counters():
    """Every process's counters under gunicorn (multiprocess files); this process's otherwise."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # one process (flask run, tests)
        from prometheus_client import REGISTRY
        return REGISTRY
    from prometheus_client import multiprocess
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def _allowed(settings) -> bool:
    token = settings.health.metrics_token
    given = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return True
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(allowed, strict=False) for allowed in settings.health.metrics_allow)


@bp.get("/metrics")
def metrics():
    """Prometheus text format; only for configured addresses or with the token (404 for others,
    so that the endpoint is not advertised)."""
    from flask import current_app
    if not _allowed(services.settings()):
        abort(404)
    output = generate_latest(_counters()) + generate_latest(_OneCollector(DatabaseCollector(current_app)))
    return Response(output, mimetype=CONTENT_TYPE_LATEST)


class _OneCollector:
    """generate_latest takes a registry-like object with collect()."""

    def __init__(self, collector):
        self.collector = collector

    def collect(self):
        return self.collector.collect()
