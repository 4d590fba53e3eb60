"""GET /healthz: is the database usable, does the store answer."""
from __future__ import annotations

from flask import Blueprint, jsonify

from wxbot import services
from wxbot.config import is_sandbox
from wxbot.db import db
from wxbot.migrate import schema_is_current

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    cfg = services.settings()
    database = db.ping()
    store = services.store().ping()
    schema = database and schema_is_current()
    body = {
        "database": "ok" if database else "down",
        "schema": "ok" if schema else "outdated: run flask --app wxbot db upgrade",
        "redis": ("ok" if store else "down") if cfg.redis_url else "embedded",
        "sandbox": is_sandbox(cfg),
        "encrypt_mode": cfg.wechat.encrypt_mode,
    }
    return jsonify(body), 200 if database and store and schema else 503
