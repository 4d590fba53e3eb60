"""Scheduled jobs: plain functions of the app, each safe to run twice."""
from __future__ import annotations

import logging

from flask import Flask

from models.messagelog import purge_messages
from models.timeutil import utcnow
from wxbot import services
from wxbot.db import db

logger = logging.getLogger(__name__)


def purge_message_log(app: Flask) -> int:
    """Delete message-log entries older than message_log.retention_days (and the heartbeats of
    processes gone for a week: replaced hosts and old pids)."""
    from models.heartbeats import forget_long_dead
    with app.app_context():
        removed = purge_messages(db.session, services.settings(app).message_log.retention_days, utcnow())
        db.session.commit()
        forget_long_dead(db.session, utcnow())
    logger.info("message log purge removed %s entries", removed)
    return removed


def daily_push_job(app: Flask) -> int:
    """Push today's study plan through the delivery engine; a second run sends nothing again."""
    from models.timeutil import local_date
    from wxbot.study.push import push_day
    with app.app_context():
        results = push_day(db.session, local_date(), utcnow(), services.settings(app).push.mass_send)
    sent = sum(r.recipients for r in results if not r.already)
    logger.info("daily push: %d plan entries, %d new recipients", len(results), sent)
    return sent


def quiz_reminder_job(app: Flask) -> int:
    """Remind members who have not answered today's quiz (quiz.reminder_enabled); once a day."""
    from models.quizplay import remind_quiz
    from models.timeutil import local_date
    with app.app_context():
        sent = remind_quiz(db.session, local_date(), utcnow(), services.settings(app).quiz.questions_per_quiz)
    logger.info("quiz reminder: %d recipients", sent)
    return sent


def quiz_sweep_job(app: Flask) -> int:
    """Close quizzes and contest attempts that ended while their members were away (points credited
    once, results true); safe to run twice."""
    from models.quizplay import close_stale_attempts
    with app.app_context():
        closed = close_stale_attempts(db.session, utcnow(), services.settings(app))
    if closed:
        logger.info("quiz sweep closed %d attempts", closed)
    return closed


def events_job(app: Flask) -> dict:
    """Event reminders due, offers of freed places that lapsed, and location reports past retention;
    each safe to run twice and from two schedulers (reminders are claimed once per event and hour)."""
    from datetime import timedelta

    from models.checkins import forget_locations
    from models.eventnotices import lapse_offers, remind_events
    with app.app_context():
        settings, now = services.settings(app), utcnow()
        done = {"reminders": remind_events(db.session, now, settings),
                "offers": lapse_offers(db.session, now, settings)}
        done["locations_deleted"] = forget_locations(
            db.session, now - timedelta(hours=settings.events.location_retention_hours))
        db.session.commit()
    logger.info("events job: %s", done)
    return done


def feedback_reminder_job(app: Flask) -> int:
    """Remind organisers of posts unanswered for feedback.remind_after_days; once a day."""
    from models.feedback import remind_unanswered
    with app.app_context():
        told = remind_unanswered(db.session, utcnow(), services.settings(app).feedback.remind_after_days)
    logger.info("feedback reminder: %d organisers told", told)
    return told


def development_reminder_job(app: Flask) -> dict:
    """发展党员: each organiser's steps due soon or overdue, and members' own notices; each step and due
    date once, whatever runs the job (two schedulers, a restart)."""
    from models.devremind import remind_development
    with app.app_context():
        done = remind_development(db.session, utcnow(), services.settings(app).development)
    logger.info("development reminder: %s", done)
    return done


def meetings_warning_job(app: Flask) -> int:
    """三会一课: tell the organisers of each branch whose required meeting is not held by the warning
    day; once per branch, kind and period, whatever runs the job."""
    from models.meetings import warn_missing
    with app.app_context():
        told = warn_missing(db.session, utcnow(), int(services.settings(app).meetings.warn_day))
    logger.info("meetings warning: %d branches told", told)
    return told


def reports_job(app: Flask) -> dict:
    """工作报告: the daily sums of the days that have settled (a push's last delivery may wait
    delivery.inbox_days), last month's draft for every branch (once a month), then the reminders to
    branches that have not submitted and committees that have not reviewed (each once, whatever runs it)."""
    from models.reportdays import settle
    from models.reportflow import monthly_drafts, remind_reports
    cfg = services.settings(app)
    with app.app_context():
        days = settle(db.session, utcnow(), int(cfg.delivery.inbox_days) + 1)
        drafts = monthly_drafts(db.session, utcnow(), int(cfg.reports.deadline_day), cfg)
        told = remind_reports(db.session, utcnow(), int(cfg.reports.remind_days_before))
    done = {"days": days, "drafts": drafts, "told": told}
    logger.info("reports: %s", done)
    return done


def unionid_job(app: Flask) -> dict:
    """Learn bound followers' unionids and link the mini-program users waiting for them; safe to run
    twice (a follower asked once keeps the answer)."""
    from wxbot.unionids import fill_unionids
    with app.app_context():
        done = fill_unionids(app)
    if any(done.values()):
        logger.info("unionids: %s", done)
    return done
