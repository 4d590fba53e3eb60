"""GET /healthz: is the database reachable and migrated, does the store answer, are a scheduler and
a delivery worker alive (heartbeats), how much waits in the outbox. 503 when any of that fails."""
from __future__ import annotations

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


def outbox_depth(session) -> dict[str, int]:
    """Deliveries of sending campaigns not yet out: pending (due or retrying) and being sent."""
    rows = session.execute(select(Delivery.status, func.count()).join(Campaign, Campaign.id == Delivery.campaign_id)
                           .where(Campaign.status == "sending", Delivery.status.in_(("pending", "sending")))
                           .group_by(Delivery.status)).all()
    return {"pending": 0, "sending": 0} | {status: count for status, count in rows}


def _process_report(entry: dict, now, dead_after: float) -> str:
    if entry["alive"]:
        return "ok" if not entry["dead"] else f"ok ({entry['alive']} 个在运行，{entry['dead']} 个已停止)"
    if entry["last_beat"] is None:
        return "down: 没有运行过（启动它：见 docs/部署.md）"
    silent = int((now - entry["last_beat"]).total_seconds())
    return f"down: 最后一次心跳在 {silent} 秒前（超过 {dead_after:g} 秒即视为停止）"


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
            body["outbox"] = outbox_depth(db.session)
            oldest = db.session.scalar(select(func.min(Delivery.claimed_at)).where(Delivery.status == "sending"))
            body["oldest_claim_seconds"] = int((now - oldest).total_seconds()) if oldest else 0
            body["stuck"] = bool(oldest and now - oldest > timedelta(seconds=cfg.delivery.lease_seconds))
    return jsonify(body), 200 if healthy else 503
