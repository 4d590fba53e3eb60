"""The word lists of this process (feedback.lists_dir), read again when their files change."""
from __future__ import annotations

import time
from pathlib import Path

from flask import Flask, current_app

from models.screening import ListFolder, Screener
from wxbot import services
from wxbot.config import ROOT

KEY = "wxbot.screening"


def list_folder(app: Flask | None = None) -> ListFolder:
    app = app or current_app
    folder = app.extensions.get(KEY)
    if folder is None:
        path = Path(services.settings(app).feedback.lists_dir)
        folder = app.extensions[KEY] = ListFolder(path if path.is_absolute() else ROOT / path)
    return folder


def current_screener(app: Flask | None = None) -> Screener:
    return list_folder(app).current(time.monotonic())


def override_by(form):
    """The admin who ticked 仍然发布 on the form, or None (an organiser's tick counts for nothing)."""
    from flask_login import current_user
    return current_user if form.get("override") == "1" and current_user.role == "admin" else None


def refusal(words: list[str]) -> str:
    """Why an organiser's text was refused, and what the viewer can do about it."""
    from flask_login import current_user
    admin = current_user.role == "admin"
    hint = "管理员可勾选“仍然发布”后再提交（记入操作日志）" if admin else "如确需发布，请管理员处理"
    return f"内容中有词表里的词：【{'】【'.join(words)}】。请修改；{hint}。"


def refused_publication(text: str, form) -> str | None:
    """Organisers' own texts published on pages (a material, a topic, an event) are screened before
    they go out: a hit is refused with the matched words named, unless an admin ticked 仍然发布 (on
    the record). What is sent is screened where campaigns are made (models.delivery.screen_content)."""
    words = current_screener().screen(text).words
    if not words:
        return None
    admin = override_by(form)
    if admin is None:
        return refusal(words)
    from models.accounts import audit
    from wxbot.db import db
    audit(db.session, admin, "override", "screening", None, f"放行命中词表的内容：{'、'.join(words)}",
          after={"内容": text[:200]})
    return None
