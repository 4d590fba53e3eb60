"""Signing in and out: hashed passwords, throttling, an idle timeout, and the current scope."""
from __future__ import annotations

import time

from flask import current_app, flash, g, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select

from models.accounts import AdminUser, audit, check_password, scope_for
from models.timeutil import utcnow
from wxbot.console import bp, login_manager
from wxbot.db import db


@login_manager.user_loader
def load_account(account_id: str):
    return db.session.get(AdminUser, int(account_id)) if account_id.isdigit() else None


def _throttle_key(username: str) -> str:
    return f"login-fail:{username.lower()}:{request.remote_addr}"


@bp.route("/login", methods=["GET", "POST"])
def login():
    """The sign-in form; 5 failures in 15 minutes per name and address lock it for a while."""
    if request.method == "GET":
        return render_template("console/login.html")
    console, store = current_app.config["WXBOT"].console, current_app.extensions["wxbot.store"]
    username, password = request.form.get("username", "").strip(), request.form.get("password", "")
    key = _throttle_key(username)
    if int(store.get(key) or 0) >= console.login_max_failures:
        minutes = max(1, int((store.ttl(key) or 60) // 60))
        flash(f"登录失败次数过多，请 {minutes} 分钟后再试。", "danger")
        return render_template("console/login.html", username=username), 429
    account = db.session.scalar(select(AdminUser).where(AdminUser.username == username))
    if not check_password(account, password):
        store.incr(key, console.login_failure_window)
        flash("用户名或密码错误。", "danger")
        return render_template("console/login.html", username=username), 401
    store.delete(key)
    login_user(account)
    session["seen"] = time.time()
    account.last_login_at = utcnow()
    audit(db.session, account, "login", "account", account.id, "登录", org_unit_id=account.org_unit_id)
    db.session.commit()
    return redirect(_safe_next(request.args.get("next")))


def _safe_next(target: str | None) -> str:
    """Only paths inside the console: never redirect a signed-in organiser elsewhere."""
    return target if target and target.startswith("/admin/") and "//" not in target else url_for("console.dashboard")


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    session.clear()
    flash("已退出登录。", "success")
    return redirect(url_for("console.login"))


@bp.before_request
def idle_timeout():
    """Sign out after `console.idle_minutes` without a request."""
    if not current_user.is_authenticated:
        return None
    limit = current_app.config["WXBOT"].console.idle_minutes * 60
    if time.time() - session.get("seen", 0) > limit:
        logout_user()
        session.clear()
        flash("长时间未操作，已自动退出，请重新登录。", "warning")
        return redirect(url_for("console.login", next=request.path))
    session["seen"] = time.time()
    g.scope = scope_for(db.session, current_user)
    return None
