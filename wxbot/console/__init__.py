"""The organisers' console at /admin/: accounts, the org tree, members, monitoring, audit."""
from __future__ import annotations

from flask import Blueprint, Flask
from flask_login import LoginManager
from flask_wtf.csrf import CSRFError, CSRFProtect

from wxbot import services

bp = Blueprint("console", __name__, url_prefix="/admin", template_folder="templates", static_folder="static")
csrf = CSRFProtect()
login_manager = LoginManager()


def init_console(app: Flask) -> None:
    """Sessions, CSRF on every console form, and the blueprint."""
    cfg = services.settings(app)
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_SECURE=cfg.server.https, WTF_CSRF_TIME_LIMIT=None,
                      MAX_FORM_MEMORY_SIZE=cfg.console.upload_max_bytes)
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "console.login"
    login_manager.login_message = "请先登录。"
    # The page modules register their routes on bp when imported.
    from wxbot.console import (  # noqa: F401
        auth,
        campaigns,
        channels,
        contests,
        development,
        events,
        feedback,
        materials,
        meetings,
        members,
        pages,
        plan,
        points,
        questions,
        reports,
        roster,
        studystats,
    )
    app.register_blueprint(bp)
    app.register_error_handler(CSRFError, lambda e: _error_page(400, "页面已过期",
                                                                "表单已过期或来源不明，请刷新页面后重试。"))
    for status, title, message in ERRORS:
        app.register_error_handler(status, lambda e, s=status, t=title, m=message: _error_page(s, t, m))


ERRORS = (
    (400, "请求有误", "提交的内容不完整或格式不对，请返回重试。"),
    (403, "没有权限", "你的账号不能访问这个页面。"),
    (404, "找不到这个页面", "地址有误，或者它不在你负责的范围内。"),
    (405, "不支持这种请求", "这个地址不接受这种请求方式。"),
    (413, "文件太大", "上传的文件超过了大小限制。"),
    (500, "系统出了点问题", "我们已记录下来，请稍后再试。"),
)


API_MESSAGES = {404: "没有这个接口。", 405: "这个接口不接受这种请求方式。", 400: "请求的格式不对。"}


def _error_page(status: int, title: str, message: str):
    """Chinese error pages for the console; the webhook answers WeChat in its own way."""
    from flask import jsonify, render_template, request
    if request.path.startswith("/api/"):  # the mini-program reads {code, message}
        return jsonify(code=f"http_{status}", message=API_MESSAGES.get(status, message)), status
    if not request.path.startswith("/admin"):
        return f"{status} {title}", status, {"Content-Type": "text/plain; charset=utf-8"}
    return render_template("console/error.html", title=title, message=message), status
