"""Typed accessors of what create_app builds: one place names each service, callers get a type.

`app` defaults to the current Flask app; code that holds its app (threads, the pipeline) passes it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask, current_app

if TYPE_CHECKING:  # imported for the types only: these modules import this one
    from sqlalchemy.orm import sessionmaker

    from wxbot.config import Settings
    from wxbot.logwriter import MessageLogWriter
    from wxbot.pipeline import Pipeline
    from wxbot.router import Dispatcher
    from wxbot.store import Store

STORE, SESSIONS, DISPATCHER, PIPELINE, LOGWRITER, CLIENT = (
    "wxbot.store", "wxbot.db", "wxbot.dispatcher", "wxbot.pipeline", "wxbot.logwriter", "wxbot.client")


def _app(app: Flask | None) -> Flask:
    return app if app is not None else current_app


def settings(app: Flask | None = None) -> Settings:
    return _app(app).config["WXBOT"]


def store(app: Flask | None = None) -> Store:
    return _app(app).extensions[STORE]


def sessions(app: Flask | None = None) -> sessionmaker:
    """The session factory (a session of its own, for threads and work that commits on its own)."""
    return _app(app).extensions[SESSIONS]


def dispatcher(app: Flask | None = None) -> Dispatcher:
    return _app(app).extensions[DISPATCHER]


def pipeline(app: Flask | None = None) -> Pipeline:
    return _app(app).extensions[PIPELINE]


def logwriter(app: Flask | None = None) -> MessageLogWriter:
    return _app(app).extensions[LOGWRITER]
