"""Signing in and out: hashed passwords, throttling, revocable sessions, an idle timeout, the scope.

A console session carries a random id, the account's session generation and its start time. It is
refused when the account's generation moved on (sign-out everywhere, password, role, disabling),
when its id was signed out, after `console.session_max_hours`, or after `console.idle_minutes` idle.
"""
from __future__ import annotations

import secrets
import time
from datetime import timedelta

from flask import flash, g, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select

from models.accounts import AdminUser, audit, check_password, end_sessions, revoke_session, scope_for, session_revoked
from models.timeutil import utcnow
from wxbot import services
from wxbot.console import bp, login_manager
from wxbot.db import db


@login_manager.user_loader
def load_account(account_id: str):
    """The signed-in account, unless this session was ended in any of the ways above."""
    account = db.session.get(AdminUser, int(account_id)) if account_id.isdigit() and len(account_id) < 12 else None
    if account is None or not account.active or session.get("gen") != account.session_gen:
        return None
    max_age = services.settings().console.session_max_hours * 3600
    if time.time() - session.get("since", 0) > max_age or session_revoked(db.session, session.get("sid", "")):
        return None
    return account


def _store():
    return services.store()


def _address_key(username: str) -> str:
    return f"login-fail:{username.lower()}:{request.remote_addr}"


def _name_keys(username: str) -> tuple[str, str]:
    return f"login-fail-name:{username.lower()}", f"login-wait:{username.lower()}"


def _refusal(username: str) -> str | None:
    """Why this attempt is not even checked: this address failed too often for the name, or the
    name is in its growing delay after failures from anywhere."""
    console, store = services.settings().console, _store()
    key = _address_key(username)
    if int(store.get(key) or 0) >= console.login_max_failures:
        return f"登录失败次数过多，请 {max(1, int((store.ttl(key) or 60) // 60))} 分钟后再试。"
    wait = store.ttl(_name_keys(username)[1])
    if wait:
        return f"这个用户名最近多次登录失败，请 {max(1, round(wait))} 秒后再试。"
    return None


def _count_failure(username: str) -> None:
    console, store = services.settings().console, _store()
    store.incr(_address_key(username), console.login_failure_window)
    count_key, wait_key = _name_keys(username)
    failures = store.incr(count_key, console.login_failure_window)
    if failures >= console.login_max_failures:
        delay = min(2 ** (failures - console.login_max_failures), console.login_max_delay)
        store.set(wait_key, "1", delay)


@bp.route("/login", methods=["GET", "POST"])
def login():
    """The sign-in form. Too many failures from one address lock that address out for the name; the
    name itself only slows down, so strangers cannot lock a colleague out."""
    if request.method == "GET":
        return render_template("console/login.html")
    username, password = request.form.get("username", "").strip()[:64], request.form.get("password", "")
    refusal = _refusal(username)
    if refusal:
        flash(refusal, "danger")
        return render_template("console/login.html", username=username), 429
    account = db.session.scalar(select(AdminUser).where(AdminUser.username == username))
    if not check_password(account, password):
        _count_failure(username)
        flash("用户名或密码错误。", "danger")
        return render_template("console/login.html", username=username), 401
    _store().delete(_address_key(username))
    login_user(account)
    session.update(seen=time.time(), since=time.time(), sid=secrets.token_hex(16), gen=account.session_gen)
    account.last_login_at = utcnow()
    audit(db.session, account, "login", "account", account.id, "登录", org_unit_id=account.org_unit_id)
    db.session.commit()
    return redirect(_safe_next(request.args.get("next")))


def _safe_next(target: str | None) -> str:
    """Only plain paths inside the console: never redirect a signed-in organiser elsewhere."""
    if target and target.startswith("/admin/") and "//" not in target and target.isprintable() \
            and "\\" not in target:
        return target
    return url_for("console.dashboard")


@bp.post("/logout")
@login_required
def logout():
    """Sign out here; this session's cookie stops working even if someone copied it."""
    hours = services.settings().console.session_max_hours
    revoke_session(db.session, session.get("sid", ""), utcnow() + timedelta(hours=hours))
    db.session.commit()
    logout_user()
    session.clear()
    flash("已退出登录。", "success")
    return redirect(url_for("console.login"))


@bp.post("/logout-everywhere")
@login_required
def logout_everywhere():
    """Sign this account out on every device (a lost phone, a shared computer)."""
    account = db.session.get(AdminUser, current_user.id)
    end_sessions(account)
    audit(db.session, account, "logout", "account", account.id, "在所有设备上退出登录", org_unit_id=account.org_unit_id)
    db.session.commit()
    logout_user()
    session.clear()
    flash("已在所有设备上退出登录。", "success")
    return redirect(url_for("console.login"))


@bp.before_request
def idle_timeout():
    """Sign out after `console.idle_minutes` without a request."""
    if not current_user.is_authenticated:
        return None
    limit = services.settings().console.idle_minutes * 60
    if time.time() - session.get("seen", 0) > limit:
        logout_user()
        session.clear()
        flash("长时间未操作，已自动退出，请重新登录。", "warning")
        return redirect(url_for("console.login", next=request.path))
    session["seen"] = time.time()
    g.scope = scope_for(db.session, current_user)
    return None
