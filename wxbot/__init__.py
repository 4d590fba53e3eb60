"""wxbot: the WeChat-facing core. `create_app` builds everything; nothing is built at import time."""
from __future__ import annotations

import os
import secrets

from flask import Flask

from wxbot import services
from wxbot.config import ConfigError, Settings, is_sandbox, load_settings


def create_app(test_config: dict | None = None) -> Flask:
    """The application factory. `test_config` overrides settings ({"wechat.token": ...})."""
    try:
        settings = load_settings(test_config)
    except ConfigError as exc:
        if test_config is not None:
            raise
        raise SystemExit(str(exc)) from None  # one line naming the setting, exit status 1
    unloaded = unloaded_production_env(settings)
    if unloaded:
        raise SystemExit(unloaded)
    from models.timeutil import set_local_zone
    set_local_zone(settings.scheduler.timezone)  # one zone for every shown date, day boundary and job
    app = Flask(__name__)
    from wxbot.console.forms import DbIdConverter
    app.url_map.converters["int"] = DbIdConverter  # before any route is added
    app.config["WXBOT"] = settings
    app.config["SECRET_KEY"] = settings.secret_key or _instance_secret(app)
    from wxbot.logs import configure_logging
    configure_logging(settings.log_level, settings.log_format)
    from wxbot.bodyread import BodyDeadline
    app.wsgi_app = BodyDeadline(app.wsgi_app, settings.server.read_timeout)
    if settings.server.trusted_proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix
        n = settings.server.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)
    _init_extensions(app, settings)
    _register_blueprints(app, settings)
    from wxbot.commands import register_commands
    register_commands(app)
    return app


def _init_extensions(app: Flask, settings: Settings) -> None:
    import handlers
    from wxbot.db import db
    from wxbot.logwriter import MessageLogWriter
    from wxbot.pipeline import Pipeline
    from wxbot.store import make_store

    db.init_app(app)
    app.extensions[services.STORE] = make_store(settings.redis_url, settings.redis_prefix, store_path(app))
    from wxbot.profiles import watch_identity_changes
    watch_identity_changes(app.extensions[services.SESSIONS], app.extensions[services.STORE])
    app.extensions[services.DISPATCHER] = handlers.dispatcher()
    from models.base import ROW_CACHES
    from models.events import Event, read_events_of
    from models.quiz import Question, read_questions_of
    from models.screening import SCREENER_KEY
    from wxbot.rowcache import RowCache, watch_row_changes
    from wxbot.screeninglists import current_screener
    store = app.extensions[services.STORE]
    cached = {Question: read_questions_of, Event: read_events_of}
    watch_row_changes(app.extensions[services.SESSIONS], store, list(cached))
    caches = {model.__tablename__: RowCache(store, model.__tablename__, load) for model, load in cached.items()}
    app.extensions[services.SESSIONS].configure(info={SCREENER_KEY: lambda: current_screener(app),
                                                      ROW_CACHES: caches})
    app.extensions[services.PIPELINE] = Pipeline(app)
    app.extensions[services.LOGWRITER] = MessageLogWriter(app)


def _register_blueprints(app: Flask, settings: Settings) -> None:
    from models.timeutil import show
    from wxbot import health, metrics, webhook
    from wxbot.console import csrf, init_console
    from wxbot.covers import bp as covers_bp
    from wxbot.delivery.views import bp as delivery_bp
    from wxbot.headers import init_security_headers
    from wxbot.logs import init_request_ids
    from wxbot.study import bp as study_bp
    from wxbot.topics import bp as topics_bp

    init_console(app)
    init_security_headers(app)
    init_request_ids(app)
    app.add_template_filter(show, "localtime")
    from wxbot.replies import as_read
    app.add_template_filter(as_read, "as_read")
    # WeChat and the sandbox's API callers sign their requests, and a reading page's beacon carries
    # its signed link; CSRF tokens are for console forms.
    for blueprint in (webhook.bp, health.bp, metrics.bp, delivery_bp, study_bp, topics_bp, covers_bp):
        csrf.exempt(blueprint)
        app.register_blueprint(blueprint)
    from wxbot.api import bp as api_bp
    from wxbot.api import init_api
    csrf.exempt(api_bp)  # the mini-program signs in with its Bearer token, not a console cookie
    init_api(app)
    from wxbot.api.push import bp as mini_push_bp
    csrf.exempt(mini_push_bp)  # WeChat signs its pushes
    app.register_blueprint(mini_push_bp)
    if is_sandbox(settings):  # never with a real AppSecret
        from wxbot.sandbox import bp as sandbox_bp
        csrf.exempt(sandbox_bp)
        app.register_blueprint(sandbox_bp)


def unloaded_production_env(settings: Settings) -> str:
    """A process on a production host that did not load its environment file would quietly create an
    empty SQLite database and work there (a broadcast sent into it reaches nobody): refuse instead."""
    marker = os.environ.get("WXBOT_ENV_FILE", "/etc/wxbot.env")
    if settings.database_url or not os.path.exists(marker):
        return ""
    return (f"配置错误 database_url: 这台机器有正式环境的环境文件 {marker}，"
            "但本进程没有加载它（没有 WXBOT_DATABASE_URL）。"
            "命令请用 bin/wxbot 运行（它会加载环境文件），服务由 systemd 的 EnvironmentFile 加载；"
            "确实要在这台机器上用内置 SQLite，请设置 WXBOT_ENV_FILE=none。")


def store_path(app: Flask) -> str:
    """Where the embedded store keeps what must survive a restart: next to the SQLite database."""
    from wxbot.db import database_url
    url = database_url(app)
    if url.startswith("sqlite:///") and not url.endswith(":memory:"):
        return url[len("sqlite:///"):] + ".store"
    return os.path.join(app.instance_path, "store.sqlite3")


def _instance_secret(app: Flask) -> str:
    """A secret generated once per instance folder, so sessions survive restarts."""
    path = os.path.join(app.instance_path, "secret_key")
    os.makedirs(app.instance_path, exist_ok=True)
    if not os.path.exists(path):
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(secrets.token_hex(32))
    with open(path) as f:
        return f.read().strip()
