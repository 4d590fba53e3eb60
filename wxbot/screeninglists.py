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
