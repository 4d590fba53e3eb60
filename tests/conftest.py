"""Fixtures: the app on both backends, a live server for the sandbox API, phones and users.

Two backends, each a whole configuration a university would run:
  embedded     SQLite file + the in-process store (what `make run` runs)
  production   PostgreSQL + real Redis
Each gets a fresh database migrated by Alembic once; every test starts from empty tables.
"""
from __future__ import annotations

import os
import threading
import uuid

import psycopg
import pytest
from sqlalchemy import delete
from werkzeug.serving import make_server

from models import Base
from tests.helpers import ChatUser
from wxbot import create_app
from wxbot.db import db
from wxbot.migrate import upgrade
from wxbot.sandbox.phone import Phone, wsgi_transport

POSTGRES_ADMIN_URL = os.environ.get("WXBOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("WXBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
BACKENDS = ("embedded", "production")


class SwappableApp:
    """WSGI app the live server serves; each test points it at its own app."""

    def __init__(self):
        self.app = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


@pytest.fixture(scope="session")
def postgres_database():
    """A fresh PostgreSQL database for this test run, dropped at the end."""
    name = f"wxbot_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request, tmp_path_factory):
    """Settings of one backend, its database migrated, and a live server for the sandbox API."""
    target = SwappableApp()
    server = make_server("127.0.0.1", 0, target, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings = {"server.public_url": f"http://127.0.0.1:{server.server_port}", "log_level": "WARNING"}
    if request.param == "embedded":
        settings["database_url"] = f"sqlite:///{tmp_path_factory.mktemp('db')}/wxbot.db"
    else:
        settings["database_url"] = request.getfixturevalue("postgres_database")
        settings.update(redis_url=REDIS_URL, redis_prefix=f"wxbot-test-{uuid.uuid4().hex[:8]}")
    app = create_app(settings)
    with app.app_context():
        upgrade()
        db.engine.dispose()
    yield {"name": request.param, "settings": settings, "server": target}
    server.shutdown()


@pytest.fixture
def make_app(backend):
    """Build an app on this backend with extra settings; it serves the live server too."""
    made = []

    def build(**overrides):
        app = create_app({**backend["settings"], **{k.replace("__", "."): v for k, v in overrides.items()}})
        backend["server"].app = app
        made.append(app)
        return app

    yield build
    for app in made:
        pipeline = app.extensions["wxbot.pipeline"]
        if pipeline._pool is not None:
            pipeline._pool.shutdown(wait=True)
        app.extensions["wxbot.logwriter"].stop()  # one last flush; some tests took Redis or the database away
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def app(make_app):
    """The app with default settings, on empty tables and an empty store."""
    app = make_app()
    _empty(app)
    return app


def flush_log(app) -> None:
    """Write the batched message log now (it is written off the reply path)."""
    app.extensions["wxbot.logwriter"].flush()


def _empty(app):
    with app.app_context():
        session = db.session
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(delete(table))
        session.commit()
    app.extensions["wxbot.store"].clear()


@pytest.fixture
def session(app):
    """A database session of the test's own (requests keep theirs: no app context held open)."""
    own = app.extensions["wxbot.db"]()
    yield own
    own.close()


def phone_for(app) -> Phone:
    return Phone(app.config["WXBOT"], wsgi_transport(app.test_client()), app.extensions["wxbot.db"])


@pytest.fixture
def phone(app):
    return phone_for(app)


@pytest.fixture
def user(phone):
    """A follower chatting with the account (not bound)."""
    chat = ChatUser(phone, "oUserA0000000000000000000001")
    chat.follow()
    return chat


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Let fixtures see whether the test failed (for screenshots of failing pages)."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def school(app, session):
    """Two colleges, three bound members, an admin and two organisers of 计算机学院."""
    from tests.helpers import ChatUser, make_account, make_branch, make_member
    cs = make_branch(session, "计算机学院", "本科生第一党支部")
    marx = make_branch(session, "马克思主义学院", "教工党支部")
    phone = phone_for(app)
    people = {}
    for openid, branch, stage, number in (("oA", cs, "正式党员", "2024001"), ("oB", cs, "共青团员", "2024002"),
                                          ("oC", marx, "正式党员", "T0001")):
        member = make_member(session, branch=branch, stage=stage, student_no=number)
        ChatUser(phone, openid).bind(member)
        people[openid] = member
    make_account(session, "admin", "admin")
    make_account(session, "cs", "organiser", cs.parent)
    make_account(session, "cs2", "organiser", cs.parent)
    return {"cs": cs, "marx": marx, **people}
