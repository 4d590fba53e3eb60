"""wxbot: the WeChat-facing core. `create_app` builds everything; nothing is built at import time."""
from __future__ import annotations

import logging
import os
import secrets

from flask import Flask

from wxbot.config import ConfigError, Settings, is_sandbox, load_settings


def create_app(test_config: dict | None = None) -> Flask:
    """The application factory. `test_config` overrides settings ({"wechat.token": ...})."""
    try:
        settings = load_settings(test_config)
    except ConfigError as exc:
        if test_config is not None:
            raise
        raise SystemExit(str(exc)) from None  # one line naming the setting, exit status 1
    app = Flask(__name__)
    app.config["WXBOT"] = settings
    app.config["SECRET_KEY"] = settings.secret_key or _instance_secret(app)
    _configure_logging(settings)
    _init_extensions(app, settings)
    _register_blueprints(app, settings)
    from wxbot.cli import register_commands
    register_commands(app)
    return app


def _init_extensions(app: Flask, settings: Settings) -> None:
    import handlers
    from wxbot.db import db
    from wxbot.logwriter import MessageLogWriter
    from wxbot.pipeline import Pipeline
    from wxbot.router import Dispatcher
    from wxbot.store import make_store

    db.init_app(app)
    app.extensions["wxbot.store"] = make_store(settings.redis_url, settings.redis_prefix)
    app.extensions["wxbot.dispatcher"] = Dispatcher(handlers.ROUTERS)
    app.extensions["wxbot.pipeline"] = Pipeline(app)
    app.extensions["wxbot.logwriter"] = MessageLogWriter(app)


def _register_blueprints(app: Flask, settings: Settings) -> None:
    from models.timeutil import show
    from wxbot import health, webhook
    from wxbot.console import csrf, init_console
    from wxbot.delivery.views import bp as delivery_bp
    from wxbot.study import bp as study_bp

    init_console(app)
    app.add_template_filter(show, "localtime")
    # WeChat and the sandbox's API callers sign their requests, and a reading page's beacon carries
    # its signed link; CSRF tokens are for console forms.
    for blueprint in (webhook.bp, health.bp, delivery_bp, study_bp):
        csrf.exempt(blueprint)
        app.register_blueprint(blueprint)
    if is_sandbox(settings):  # never with a real AppSecret
        from wxbot.sandbox import bp as sandbox_bp
        csrf.exempt(sandbox_bp)
        app.register_blueprint(sandbox_bp)


def _instance_secret(app: Flask) -> str:
    """A secret generated once per instance folder, so sessions survive restarts."""
    path = os.path.join(app.instance_path, "secret_key")
    os.makedirs(app.instance_path, exist_ok=True)
    if not os.path.exists(path):
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(secrets.token_hex(32))
    with open(path) as f:
        return f.read().strip()


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
