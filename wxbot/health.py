"""GET /healthz: is the database reachable and migrated, does the store answer, are a scheduler and
a delivery worker alive (heartbeats), how much waits in the outbox. 503 when any of that fails."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import Blueprint, jsonify
from sqlalchemy import func, select

from models.delivery import Campaign, Delivery
from models.heartbeats import liveness
from models.timeutil import utcnow
from wxbot import services
from wxbot.config import is_sandbox
from wxbot.db import db
from wxbot.migrate import schema_is_current

bp = Blueprint("health", __name__)


def outbox_depth(session, now) -> dict[str, int]:
    """Deliveries of campaigns whose time has come, not yet out: pending (due or retrying) and
    being sent. A campaign scheduled for later is not a backlog."""
    due = (Campaign.status == "sending") | ((Campaign.status == "scheduled") & (Campaign.scheduled_at <= now))
    rows = session.execute(select(Delivery.status, func.count()).join(Campaign, Campaign.id == Delivery.campaign_id)
                           .where(due, Delivery.status.in_(("pending", "sending")))
                           .group_by(Delivery.status)).all()
    return {"pending": 0, "sending": 0} | {status: count for status, count in rows}


def _process_report(entry: dict, now, dead_after: float) -> str:
    if entry["alive"]:
        return "ok" if not entry["dead"] else f"ok ({entry['alive']} 个在运行，{entry['dead']} 个已停止)"
    if entry["last_beat"] is None:
        return "down: 没有运行过（启动它：见 docs/部署.md）"
    silent = int((now - entry["last_beat"]).total_seconds())
    return f"down: 最后一次心跳在 {silent} 秒前（超过 {dead_after:g} 秒即视为停止）"


@dataclass(frozen=True)
class HealthLine:
    """One line of the console's 运行情况: what, how it stands, and what to do (plain words)."""

    label: str
    value: str
    ok: bool
    advice: str = ""


def system_health(session, now, settings) -> list[HealthLine]:
    """The health a branch secretary can read: the day's push, what waits to be sent, WeChat's
    refusals in the last hour, and whether the scheduler and the sending processes run."""
    from models.study import DailyPush, PlanEntry
    from models.timeutil import local_date, show
    dead_after = settings.health.dead_after_seconds
    alive = liveness(session, now, dead_after)
    lines = []
    today = local_date(now)
    # The day's push in all its runs (a plan entry added later is pushed by a later run): the people
    # reached by any of the day's push campaigns, each once.
    first, runs = session.execute(select(func.min(DailyPush.created_at), func.count())
                                  .join(PlanEntry, PlanEntry.id == DailyPush.plan_entry_id)
                                  .where(PlanEntry.day == today)).one()
    recipients = session.scalar(select(func.count(Delivery.openid.distinct())).join(
        Campaign, Campaign.id == Delivery.campaign_id).where(Campaign.push_day == today))
    planned_today = session.scalar(select(func.count()).select_from(PlanEntry).where(PlanEntry.day == today))
    if runs:
        lines.append(HealthLine("今日学习推送", f"{show(first, '%H:%M')} 起推送给 {recipients or 0} 人", True))
    elif planned_today:
        lines.append(HealthLine("今日学习推送", f"还没有推送（计划在 {settings.push.daily_at}）", True,
                                "过了推送时间仍未推送，请联系信息中心检查定时任务。"))
    else:
        lines.append(HealthLine("今日学习推送", "今天的学习计划里没有内容", True, "在“学习计划”里安排今天的材料。"))
    depth = outbox_depth(session, now)
    waiting = depth["pending"] + depth["sending"]
    stuck = waiting and not alive["worker"]["alive"]
    lines.append(HealthLine("等待发送", f"{waiting} 条", not stuck,
                            "发送进程没有在运行，消息发不出去：请联系信息中心。" if stuck else ""))
    refused = session.scalar(select(func.count()).select_from(Delivery).where(
        Delivery.claimed_at >= now - timedelta(hours=1), Delivery.last_error != "",
        Delivery.status.in_(("pending", "failed")))) or 0
    advice = "微信接口频繁出错（如配额用完、网络不通），请联系信息中心查看日志。" if refused >= 20 else ""
    lines.append(HealthLine("近 1 小时微信接口出错", f"{refused} 次", refused < 20, advice))
    for role, label in (("scheduler", "定时任务"), ("worker", "发送进程")):
        running = alive[role]["alive"] > 0
        lines.append(HealthLine(label, "正常运行" if running else "已停止", running,
                                "" if running else "每日推送和活动提醒会停下来：请联系信息中心重启服务。"))
    backup = backup_line(session, now, settings)
    return lines + ([backup] if backup else [])


def backup_line(session, now, settings) -> HealthLine | None:
    """The last backup; a warning when the nightly one has stopped. A trial in the sandbox is not
    expected to be backed up: nothing is said there until it is."""
    from models.backups import backup_overdue, last_backup
    from models.timeutil import show
    from wxbot.backup import human_size
    last = last_backup(session)
    if last is None and is_sandbox(settings):
        return None
    if last is None:
        return HealthLine("数据备份", "还没有备份过", False, BACKUP_ADVICE)
    when = f"{show(last.finished_at, '%m-%d %H:%M')}，数据库 {human_size(last.database_bytes)}"
    if backup_overdue(last, now, settings.backup.warn_after_hours):
        hours = int((now - last.finished_at).total_seconds() // 3600)
        return HealthLine("数据备份", f"已经 {hours} 小时没有备份（最近一次 {when}）", False, BACKUP_ADVICE)
    return HealthLine("数据备份", f"最近一次 {when}", True)


BACKUP_ADVICE = "每日备份没有按时完成：请联系信息中心检查（docs/部署.md 第 8 节）。"


def backup_report(session, now, settings) -> str:
    """/healthz's backup field. It does not make /healthz fail: a load balancer must not take a
    healthy server out of service because last night's backup did not run."""
    from models.backups import backup_overdue, last_backup
    last = last_backup(session)
    if last is None:
        return "never: no backup recorded (bin/wxbot backup run, docs/部署.md)"
    age = int((now - last.finished_at).total_seconds())
    state = "overdue" if backup_overdue(last, now, settings.backup.warn_after_hours) else "ok"
    return f"{state}: last {age // 3600} h {age % 3600 // 60} min ago"


@bp.get("/healthz")
def healthz():
    cfg = services.settings()
    database = db.ping()
    store = services.store().ping()
    body = {
        "database": "ok" if database else "down: 连不上数据库（检查 PostgreSQL 是否在运行、database_url 是否正确）",
        "redis": ("ok" if store else "down") if cfg.redis_url else "embedded",
        "sandbox": is_sandbox(cfg),
        "encrypt_mode": cfg.wechat.encrypt_mode,
    }
    healthy = database and store
    if database:  # an outage is not an outdated schema: only a reachable database is asked
        schema = schema_is_current()
        body["schema"] = "ok" if schema else "outdated: run bin/wxbot db upgrade"
        healthy = healthy and schema
        if schema:
            now, dead_after = utcnow(), cfg.health.dead_after_seconds
            alive = liveness(db.session, now, dead_after)
            for role in ("scheduler", "worker"):
                body[role] = _process_report(alive[role], now, dead_after)
                healthy = healthy and alive[role]["alive"] > 0
            body["workers_alive"] = alive["worker"]["alive"]
            body["outbox"] = outbox_depth(db.session, now)
            oldest = db.session.scalar(select(func.min(Delivery.claimed_at)).where(Delivery.status == "sending"))
            body["oldest_claim_seconds"] = int((now - oldest).total_seconds()) if oldest else 0
            body["stuck"] = bool(oldest and now - oldest > timedelta(seconds=cfg.delivery.lease_seconds))
            if not is_sandbox(cfg):
                body["backup"] = backup_report(db.session, now, cfg)
    return jsonify(body), 200 if healthy else 503
