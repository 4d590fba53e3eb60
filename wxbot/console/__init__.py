"""The organisers' console at /admin/: accounts, the org tree, members, monitoring, audit."""
from __future__ import annotations

from flask import Blueprint, Flask
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

bp = Blueprint("console", __name__, url_prefix="/admin", template_folder="templates", static_folder="static")
csrf = CSRFProtect()
login_manager = LoginManager()


def init_console(app: Flask) -> None:
    """Sessions, CSRF on every console form, and the blueprint."""
    cfg = app.config["WXBOT"]
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_SECURE=cfg.server.https, WTF_CSRF_TIME_LIMIT=None,
                      MAX_FORM_MEMORY_SIZE=cfg.console.upload_max_bytes)
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "console.login"
    login_manager.login_message = "请先登录。"
    from wxbot.console import auth, members, pages  # noqa: F401  (they register their routes on bp)
    app.register_blueprint(bp)
