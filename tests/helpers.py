"""Factories with defaults (make_member(session, branch=..., **kw)) and a conversation helper."""
from __future__ import annotations

import itertools
import json
import time
from contextlib import contextmanager

from sqlalchemy import select

from models.members import Member, OrgUnit, child_unit, school_root
from models.sandbox import SandboxMessage
from wxbot.sandbox.phone import Phone, PhoneReply

_numbers = itertools.count(1)
_SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
_GIVEN = "伟芳娜敏静磊洋艳勇军杰娟涛明超华平刚"


def _name(n: int) -> str:
    return _SURNAMES[n % len(_SURNAMES)] + _GIVEN[(n // len(_SURNAMES)) % len(_GIVEN)] + _GIVEN[n % 7]


def make_branch(session, college: str = "计算机学院", name: str = "本科生第一党支部") -> OrgUnit:
    root = school_root(session, "示范大学")
    return child_unit(session, child_unit(session, root, college, "college"), name, "branch")


def make_member(session, branch: OrgUnit | None = None, **kw) -> Member:
    """A roster member; every field has a default."""
    n = next(_numbers)
    member = Member(student_no=kw.pop("student_no", f"2024{n:04d}"), name=kw.pop("name", _name(n)),
                    org_unit=branch or make_branch(session), stage=kw.pop("stage", "共青团员"),
                    role=kw.pop("role", "member"), **kw)
    session.add(member)
    session.commit()
    return member


class ChatUser:
    """One WeChat user in a test: say something, read what the account answered."""

    def __init__(self, phone: Phone, openid: str):
        self.phone = phone
        self.openid = openid
        self.last: PhoneReply | None = None

    def say(self, text: str, late_within: float = 6.0) -> str:
        """What the phone shows for this message. A handler that overran WeChat's reply budget (a machine
        loaded by the test run itself) answers a moment later by customer-service message, and the phone
        shows that: waited for up to `late_within` seconds (0: only the immediate reply)."""
        before = self._last_message_id() if late_within else 0
        self.last = self.phone.text(self.openid, text)
        if late_within and self.last.kind == "none" and self.last.raw == "success":
            late = self._late_reply(before, late_within)
            if late is not None:
                return late
        return self.last.text

    def _last_message_id(self) -> int:
        return self.phone._update_world(lambda s, _now: s.scalar(
            select(SandboxMessage.id).where(SandboxMessage.touser == self.openid)
            .order_by(SandboxMessage.id.desc()).limit(1))) or 0

    def _late_reply(self, after: int, seconds: float) -> str | None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            row = self.phone._update_world(lambda s, _now: s.scalar(
                select(SandboxMessage).where(SandboxMessage.touser == self.openid, SandboxMessage.id > after,
                                             SandboxMessage.channel == "customer_service")
                .order_by(SandboxMessage.id).limit(1)))
            if row is not None:
                return json.loads(row.content).get("content", "")
            time.sleep(0.05)
        return None

    def click(self, key: str) -> str:
        self.last = self.phone.click(self.openid, key)
        return self.last.text

    def follow(self, scene: str | None = None) -> str:
        self.last = self.phone.follow(self.openid, scene)
        return self.last.text

    def scan(self, scene: str) -> str:
        self.last = self.phone.scan(self.openid, scene)
        return self.last.text

    def unfollow(self) -> PhoneReply:
        self.last = self.phone.unfollow(self.openid)
        return self.last

    def bind(self, member: Member) -> str:
        return self.say(f"绑定 {member.student_no} {member.name}")

    def received(self, session, channel: str | None = None) -> list[dict]:
        """What arrived on this user's phone, oldest first (optionally one channel)."""
        session.expire_all()
        rows = session.scalars(select(SandboxMessage).where(SandboxMessage.touser == self.openid)
                               .order_by(SandboxMessage.id))
        return [dict(json.loads(r.content), channel=r.channel) for r in rows
                if r.channel != "user" and channel in (None, r.channel)]


PASSWORD = "correct-horse-42"


def make_account(session, username: str = "admin", role: str = "admin", unit: OrgUnit | None = None):
    """A console account with the test password."""
    from models.accounts import create_account
    account = create_account(session, username, PASSWORD, role, unit)
    session.commit()
    return account


def csrf_token(client, path: str = "/admin/login") -> str:
    import re
    page = client.get(path).get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page[:2000]
    return found.group(1)


def console_login(client, username: str, password: str = PASSWORD):
    return client.post("/admin/login", data={"username": username, "password": password,
                                             "csrf_token": csrf_token(client)})


def signed_in(app, username: str):
    """A console client logged in as `username` (test password)."""
    client = app.test_client()
    console_login(client, username)
    return client


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    """The product as deployed: gunicorn with gunicorn.conf.py, in a process of its own."""

    def __init__(self, env: dict, workers: int = 1, threads: int = 4, capture: bool = False):
        import os
        import subprocess
        import sys

        from wxbot.config import ROOT
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        clean = {k: v for k, v in os.environ.items() if not k.startswith("WXBOT_")}
        clean.update({"WXBOT_SERVER__PUBLIC_URL": self.url, "WEB_THREADS": str(threads), **env})
        self.process = subprocess.Popen(
            [os.path.join(os.path.dirname(sys.executable), "gunicorn"), "-c", "gunicorn.conf.py", "-w", str(workers),
             "-b", f"127.0.0.1:{self.port}", "wxbot.wsgi:app"],
            cwd=ROOT, env=clean, stdout=subprocess.PIPE if capture else subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30) -> None:
        import time

        import requests
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(self.process.stderr.read().decode()[-2000:])
            try:
                requests.get(self.url + "/healthz", timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError("gunicorn did not start")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except Exception:  # noqa: BLE001 (a stuck server must not hang the suite)
            self.process.kill()

    def output(self) -> str:
        """Everything the stopped server wrote (stdout with capture=True, and stderr)."""
        out, err = self.process.communicate(timeout=10)
        return (out or b"").decode() + (err or b"").decode()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def link_values(app, url: str, purpose: str = "read") -> list:
    """What a personal link carries (its tokens are sealed and differ on every issue)."""
    from wxbot.links import read_token
    return read_token(app, purpose, url.rstrip("/").rsplit("/", 1)[1])


@contextmanager
def statements(app):
    """The SQL statements the app's engine runs inside the block (to catch N+1 queries)."""
    from sqlalchemy import event
    engine = app.extensions["wxbot.db"].kw["bind"]
    seen: list[str] = []

    def note(_conn, _cursor, statement, _parameters, _context, _executemany):
        seen.append(statement)
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def wait_for(condition, seconds=8.0):
    """Poll `condition` until it is true or the time is up; returns its last value."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    return condition()




def add_router(app, router) -> None:
    """Put a test router in front of the product's routers."""
    import handlers
    app.extensions["wxbot.dispatcher"] = handlers.dispatcher([router])
