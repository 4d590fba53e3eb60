"""APScheduler setup and the jobs table (stable ids; each job safe to run more than once)."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from flask import Flask

from models.tracing import current_request_id, new_request_id
from scheduler.jobs import (
    daily_push_job,
    development_reminder_job,
    events_job,
    feedback_reminder_job,
    meetings_warning_job,
    purge_message_log,
    quiz_reminder_job,
    quiz_sweep_job,
    reports_job,
    unionid_job,
)
from wxbot import services
from wxbot.errors import report_failure
from wxbot.heartbeat import Beater

logger = logging.getLogger(__name__)
# A job whose time passed less than this long ago still runs (a busy or restarted scheduler).
MISFIRE_GRACE_SECONDS = 3600


@dataclass(frozen=True)
class JobSpec:
    id: str
    func: Callable[[Flask], object]
    at_setting: str  # dotted name of the setting holding HH:MM, or of minutes between runs (every=True)
    enabled_setting: str = ""  # dotted name of a true/false setting that switches the job on ("": always on)
    every: bool = False


JOBS = [
    JobSpec("message_log.purge", purge_message_log, "scheduler.purge_at"),
    JobSpec("study.daily_push", daily_push_job, "push.daily_at"),
    JobSpec("quiz.reminder", quiz_reminder_job, "quiz.reminder_at", "quiz.reminder_enabled"),
    JobSpec("events.tick", events_job, "events.job_every_minutes", every=True),
    JobSpec("quiz.sweep", quiz_sweep_job, "quiz.sweep_every_minutes", every=True),
    JobSpec("feedback.reminder", feedback_reminder_job, "feedback.remind_at"),
    JobSpec("development.reminder", development_reminder_job, "development.remind_at"),
    JobSpec("meetings.warn", meetings_warning_job, "meetings.warn_at"),
    JobSpec("reports.daily", reports_job, "reports.remind_at"),
    JobSpec("miniprogram.unionids", unionid_job, "miniprogram.unionid_every_minutes", every=True),
]


def _setting(settings, dotted: str):
    section, key = dotted.split(".")
    return settings[section][key]


def build_scheduler(app: Flask, blocking: bool = False):
    """A scheduler with every job of the table, in the configured time zone."""
    settings = services.settings(app)
    cfg = settings.scheduler
    kind = BlockingScheduler if blocking else BackgroundScheduler
    sched = kind(timezone=cfg.timezone, job_defaults={"coalesce": True, "misfire_grace_time": MISFIRE_GRACE_SECONDS,
                                                      "max_instances": 1})
    now = datetime.now(ZoneInfo(cfg.timezone))
    for job in JOBS:
        if job.enabled_setting and not _setting(settings, job.enabled_setting):
            continue
        if job.every:  # also once at start: a restarted scheduler catches up at once
            trigger = IntervalTrigger(minutes=_setting(settings, job.at_setting), timezone=cfg.timezone)
            first = now
        else:
            hour, minute = _setting(settings, job.at_setting).split(":")
            trigger = CronTrigger(hour=int(hour), minute=int(minute), timezone=cfg.timezone)
            first = now if _missed_lately(now, int(hour), int(minute)) else None
        extra = {"next_run_time": first} if first else {}
        sched.add_job(_traced, trigger, args=[job.id, job.func, app], id=job.id, replace_existing=True, **extra)
    # The beat is a job, so that /healthz sees a scheduler that runs jobs, not merely a process.
    sched.add_job(Beater(app, "scheduler"), IntervalTrigger(seconds=settings.health.heartbeat_seconds),
                  id="health.beat", name="heartbeat", replace_existing=True, next_run_time=now)
    sched.add_listener(_count_job_run, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    return sched


def _missed_lately(now: datetime, hour: int, minute: int) -> bool:
    """Whether today's run time passed within MISFIRE_GRACE_SECONDS: a scheduler (re)started then
    runs the job at once (every job is safe to run twice), instead of skipping a day's push."""
    passed = (now - now.replace(hour=hour, minute=minute, second=0, microsecond=0)).total_seconds()
    return 0 <= passed <= MISFIRE_GRACE_SECONDS


def _traced(job_id: str, func: Callable[[Flask], object], app: Flask):
    """A job run gets a request id of its own (job-<id>-<hex>): its log lines and the campaigns it
    creates carry it."""
    token = current_request_id.set(f"job-{job_id}-{new_request_id()[:6]}")
    try:
        return func(app)
    finally:  # the executor's thread runs other jobs next
        current_request_id.reset(token)


def _count_job_run(event) -> None:
    """Runs and failures per job for /metrics; a job that raised also goes to the one error hook
    (APScheduler would only log it in its own words)."""
    from wxbot.metrics import JOB_RUNS
    JOB_RUNS.labels(job=event.job_id, outcome="failed" if event.exception else "ok").inc()
    if event.exception:
        report_failure(f"scheduled job {event.job_id}", event.exception)


def embedded(app: Flask) -> bool:
    """Whether the web process runs the scheduler itself (the embedded default)."""
    setting = services.settings(app).scheduler.embedded
    return setting == "true" or (setting == "auto" and not services.settings(app).redis_url)


def start_embedded(app: Flask):
    sched = build_scheduler(app)
    sched.start()
    logger.info("embedded scheduler started with %d jobs", len(sched.get_jobs()))
    return sched


def run_blocking(app: Flask) -> None:
    sched = build_scheduler(app, blocking=True)
    logger.info("scheduler process started with %d jobs", len(sched.get_jobs()))
    sched.start()
