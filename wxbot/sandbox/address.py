"""Where the running server listens on this machine, as its gunicorn noted at start: the terminal chat
talks to it, and in sandbox mode every process calls the sandbox's WeChat API there, directly, not
through the public address (which may be the school's domain behind nginx, with a certificate the
server itself does not trust, or not reachable from inside at all)."""
from __future__ import annotations

import hashlib
import os

from flask import Flask

from models.heartbeats import process_alive
from wxbot import services
from wxbot.db import database_url

RUNNING_URL_FILE = "server_url"


def running_url_file(database_url: str, instance_path: str) -> str:
    """Where a started server notes its address: next to its SQLite database, so that each deployment
    (and each test run) has its own; in the instance folder, named after another database."""
    if database_url.startswith("sqlite:///"):
        return database_url[len("sqlite:///"):] + ".server_url"
    return os.path.join(instance_path, f"{RUNNING_URL_FILE}-{hashlib.sha256(database_url.encode()).hexdigest()[:12]}")


def note_running_url(path: str, url: str) -> None:
    """Written by gunicorn's master at start, with its pid: a note left by a server that has stopped
    is not believed."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"{url}\n{os.getpid()}\n")


def running_url(app: Flask) -> str:
    """The address the server of this deployment listens on, or "" when none is running here."""
    try:
        with open(running_url_file(database_url(app), app.instance_path), encoding="utf-8") as f:
            url, _, pid = f.read().strip().partition("\n")
    except OSError:
        return ""
    if pid.strip().isdigit() and not process_alive(int(pid)):
        return ""
    return url.strip()


def sandbox_api_url(app: Flask) -> str:
    """The sandbox's WeChat API: at the running server on this machine, else at server.public_url."""
    return (running_url(app) or services.settings(app).server.public_url).rstrip("/") + "/sandbox/cgi-bin/"
