"""APScheduler setup and the jobs table (stable ids; each job safe to run more than once)."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from apscheduler.events import EVENT_JOB_ERROR
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from flask import Flask

from scheduler.jobs import daily_push_job, events_job, feedback_reminder_job, purge_message_log, quiz_reminder_job
from wxbot import services
from wxbot.errors import report_failure

logger = logging.getLogger(__name__)


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
    JobSpec("feedback.reminder", feedback_reminder_job, "feedback.remind_at"),
]


def _setting(settings, dotted: str):
    section, key = dotted.split(".")
    return settings[section][key]


def build_scheduler(app: Flask, blocking: bool = False):
    """A scheduler with every job of the table, in the configured time zone."""
    settings = services.settings(app)
    cfg = settings.scheduler
    kind = BlockingScheduler if blocking else BackgroundScheduler
    sched = kind(timezone=cfg.timezone, job_defaults={"coalesce": True, "misfire_grace_time": 3600,
                                                      "max_instances": 1})
    for job in JOBS:
        if job.enabled_setting and not _setting(settings, job.enabled_setting):
            continue
        if job.every:
            trigger = IntervalTrigger(minutes=_setting(settings, job.at_setting), timezone=cfg.timezone)
        else:
            hour, minute = _setting(settings, job.at_setting).split(":")
            trigger = CronTrigger(hour=int(hour), minute=int(minute), timezone=cfg.timezone)
        sched.add_job(job.func, trigger, args=[app], id=job.id, replace_existing=True)
    sched.add_listener(_report_job_failure, EVENT_JOB_ERROR)
    return sched


def _report_job_failure(event) -> None:
    """A job that raised goes to the one error hook (APScheduler would only log it in its own words)."""
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
