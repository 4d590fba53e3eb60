"""The database extension: one engine per app, one session per app context."""
from __future__ import annotations

import os

from flask import Flask, current_app, g
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from wxbot import services

REPLICA = "wxbot.db_replica"


def database_url(app: Flask) -> str:
    """The configured URL, or the SQLite file under instance/ (the embedded default)."""
    url = services.settings(app).database_url
    if url:
        return url
    os.makedirs(app.instance_path, exist_ok=True)
    return f"sqlite:///{os.path.join(app.instance_path, 'wxbot.db')}"


def make_engine(url: str, pool_size: int = 20) -> Engine:
    """An engine tuned per backend: SQLite shared across threads, in WAL mode."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # No pre-ping (a round trip per message): a connection found dead is invalidated with the
    # whole pool by SQLAlchemy, and that one message gets the apology.
    return create_engine(url, pool_size=pool_size, max_overflow=20, pool_recycle=1800)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class Database:
    """Flask extension: `db.session` is the current app context's session."""

    def init_app(self, app: Flask) -> None:
        engine = make_engine(database_url(app), services.settings(app).database_pool_size)
        app.extensions[services.SESSIONS] = sessionmaker(engine, expire_on_commit=False)
        replica = services.settings(app).database_replica_url
        app.extensions[REPLICA] = sessionmaker(make_engine(replica, 5), expire_on_commit=False) if replica else None
        app.teardown_appcontext(self._close)

    @property
    def engine(self) -> Engine:
        return services.sessions().kw["bind"]

    @property
    def session(self) -> Session:
        if "db_session" not in g:
            g.db_session = services.sessions()()
        return g.db_session

    @property
    def reading_session(self) -> Session:
        """The session for heavy reads (the report): on the replica when database_replica_url is set,
        else the app context's own session. Read only: nothing written through it is kept."""
        replica = current_app.extensions.get(REPLICA)
        if replica is None:
            return self.session
        if "db_replica_session" not in g:
            g.db_replica_session = replica()
        return g.db_replica_session

    def new_session(self) -> Session:
        """A session outside the app context's, for work that commits on its own."""
        return services.sessions()()

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:  # any driver error means "not usable"; /healthz reports it
            return False

    @staticmethod
    def _close(_exc) -> None:
        for name in ("db_session", "db_replica_session"):
            session = g.pop(name, None)
            if session is not None:
                session.close()


db = Database()
