"""The production set under faults, as `make prod` runs it: gunicorn with 4 workers, 2 schedulers and
2 delivery workers, on PostgreSQL and Redis, each a process of its own.

PostgreSQL is reached through a proxy the test can cut (an outage without stopping the machine's
server), and Redis is one of the test's own (restarted without touching anyone else's). The sandbox
plays WeChat, with latency on its API so that sends are in flight when a process is killed. The
tests run in order on one cluster, as a university's day would: the morning push and reminders,
WeChat's redeliveries, processes killed during a broadcast, a quiz and a check-in burst, Redis
restarted, the database away for a while.
"""
from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
import redis
import requests
from sqlalchemy import func, select

from models.checkins import CheckIn, code_for, slot_of
from models.delivery import Campaign, Delivery, create_campaign
from models.events import Event
from models.points import MemberPoints, PointEntry
from models.quiz import AnswerRecord
from models.sandbox import SandboxMessage
from models.study import Material, PlanEntry
from models.timeutil import local_date, utcnow
from tests.conftest import POSTGRES_ADMIN_URL
from tests.helpers import free_port, wait_for
from wxbot.config import ROOT
from wxbot.sandbox.phone import Phone

SECRET_KEY = "system-test-secret-key-0123456789"
ROTATE = 15
BIN = os.path.dirname(sys.executable)
IN_FLIGHT = 4  # sends in flight per delivery worker: the bound on possible duplicates per kill


class PostgresProxy:
    """A TCP relay to PostgreSQL that can be cut: open connections are closed and new ones refused
    while it is down, as when the database host or the network goes away."""

    def __init__(self, target: tuple[str, int] = ("127.0.0.1", 5432)):
        self.target, self.up = target, True
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open: set[socket.socket] = set()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.open.update((client, server))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with self.lock:
                    self.open.discard(s)
                with contextlib.suppress(OSError):
                    s.close()

    def cut(self) -> None:
        self.up = False
        with self.lock:
            for s in list(self.open):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def restore(self) -> None:
        self.up = True


class PrivateRedis:
    """A Redis of the test's own, without persistence (as the guide's default would lose it)."""

    def __init__(self):
        self.port = free_port()
        self.process = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                         "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        assert wait_for(lambda: _answers(client), 10), "redis-server did not start"

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


def _answers(client) -> bool:
    try:
        return client.ping()
    except redis.RedisError:
        return False


class Cluster:
    """The processes of the production set, each started, killed and restarted by name."""

    def __init__(self, env: dict):
        self.env = env
        self.processes: dict[str, subprocess.Popen] = {}
        self.logs = {}

    def command(self, name: str) -> list[str]:
        if name == "web":
            return [os.path.join(BIN, "gunicorn"), "-c", "gunicorn.conf.py", "-w", "4",
                    "-b", f"127.0.0.1:{self.env['WEB_PORT']}", "wxbot.wsgi:app"]
        return [os.path.join(BIN, "flask"), "--app", "wxbot", name.split("-")[0]]

    def start(self, name: str) -> None:
        with open(self.env["LOG_DIR"] + f"/{name}.log", "ab") as log:  # the child keeps its own descriptor
            self.processes[name] = subprocess.Popen(self.command(name), cwd=ROOT, env=self.env, stdout=log,
                                                    stderr=subprocess.STDOUT)

    def kill(self, name: str) -> None:
        self.processes[name].send_signal(signal.SIGKILL)
        self.processes[name].wait()

    def web_workers(self) -> list[int]:
        master = self.processes["web"].pid
        children = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        if int(f.read().rsplit(")", 1)[1].split()[1]) == master:
                            children.append(int(entry))
                except (OSError, ValueError, IndexError):
                    pass
        return children

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()


class WeChat:
    """Posts messages as WeChat does: signed, and sent again (same MsgId) when no answer came, up to
    three more times. A member who got nothing sends again, as a person would."""

    def __init__(self, url: str, settings):
        self.url = url
        self.phone = Phone(settings, transport=None, session_factory=None)
        self.ids = iter(range(10**15 + int(time.time() * 1000), 10**18))
        self.lock = threading.Lock()
        self.unanswered = 0  # deliveries of which all four got nothing: WeChat's error page

    def post(self, query: str, body: bytes, timeout: float = 6) -> tuple[int, str]:
        try:
            response = requests.post(f"{self.url}/wechat?{query}", data=body, timeout=timeout,
                                     headers={"Content-Type": "text/xml", "Connection": "close"})
            return response.status_code, response.text
        except requests.RequestException:
            return 0, ""

    def say(self, openid: str, text: str) -> str:
        """The reply the member sees (passive, or "success": the answer comes through customer service)."""
        with self.lock:
            msg_id = next(self.ids)
        query, body = self.phone.build(openid, {"MsgType": "text", "Content": text, "MsgId": msg_id})
        for _ in range(4):
            status, raw = self.post(query, body)
            if status == 200:
                return self.phone.read_reply(status, raw).text if raw != "success" else "success"
            assert status in (0, 503), f"{status} {raw[:200]}"  # a dropped connection, never a 5xx page
            time.sleep(0.3)
        with self.lock:
            self.unanswered += 1
        return ""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    name = f"wxbot_system_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    proxy, private_redis = PostgresProxy(), PrivateRedis()
    web_port = free_port()
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    push_at = max(now - timedelta(minutes=5), now.replace(hour=0, minute=0))  # passed lately: pushed at start
    logs = tmp_path_factory.mktemp("logs")
    settings = {
        "WXBOT_DATABASE_URL": f"{base.replace('5432', str(proxy.port))}/{name}",
        "WXBOT_REDIS_URL": f"redis://127.0.0.1:{private_redis.port}/0", "WXBOT_SECRET_KEY": SECRET_KEY,
        "WXBOT_SERVER__PUBLIC_URL": f"http://127.0.0.1:{web_port}", "WXBOT_LOG_LEVEL": "WARNING",
        "WXBOT_PUSH__DAILY_AT": push_at.strftime("%H:%M"), "WXBOT_DELIVERY__IN_FLIGHT": str(IN_FLIGHT),
        "WXBOT_HEALTH__HEARTBEAT_SECONDS": "1", "WXBOT_HEALTH__DEAD_AFTER_SECONDS": "4",
        "WXBOT_DATABASE_POOL_SIZE": "8",
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("WXBOT_")} | settings | {
        "WEB_PORT": str(web_port), "WEB_THREADS": "4", "LOG_DIR": str(logs),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path_factory.mktemp("metrics"))}
    direct = {"database_url": f"{base}/{name}", "redis_url": settings["WXBOT_REDIS_URL"], "secret_key": SECRET_KEY,
              "log_level": "WARNING", "server.public_url": settings["WXBOT_SERVER__PUBLIC_URL"]}
    from wxbot import create_app
    app = create_app(direct)  # the test's own view of the database, not through the proxy
    with app.app_context():
        from wxbot.db import db
        from wxbot.migrate import upgrade
        upgrade()
        _load_school(db.session)
    processes = Cluster(env)
    for process in ("web", "scheduler-1", "scheduler-2", "worker-1", "worker-2"):
        processes.start(process)
    url = settings["WXBOT_SERVER__PUBLIC_URL"]
    assert wait_for(lambda: _healthy(url), 60), _tail_logs(logs)
    yield {"app": app, "sessions": app.extensions["wxbot.db"], "processes": processes, "proxy": proxy,
           "redis": private_redis, "url": url, "wechat": WeChat(url, app.config["WXBOT"]), "logs": logs}
    processes.stop_all()
    private_redis.stop()
    app.extensions["wxbot.db"].kw["bind"].dispose()  # the engine, before its database is dropped
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _load_school(session) -> None:
    """The demo school: 43 members, 36 followers bound with open windows, today's study, a question
    bank, and a 主题党日 starting in 20 minutes (check-in open, reminders due)."""
    from wxbot import demo
    from wxbot.config import load_settings
    from wxbot.demo import load_demo, load_demo_events, load_demo_followers, load_demo_questions, load_demo_study
    now = utcnow()
    load_demo(session, "演示大学")
    shown, demo.DEMO_FOLLOWERS = demo.DEMO_FOLLOWERS, 36  # more than the simulator's dozen
    try:
        load_demo_followers(session, now)
    finally:
        demo.DEMO_FOLLOWERS = shown
    load_demo_study(session, now, load_settings({}).points)
    load_demo_questions(session, now)
    load_demo_events(session, now)


def _healthy(url: str) -> bool:
    try:
        return requests.get(url + "/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _tail_logs(logs) -> str:
    return "\n".join(f"== {p.name}\n{p.read_text(errors='replace')[-1500:]}" for p in sorted(logs.iterdir()))


def _followers(session) -> list[str]:
    from models.followers import Follower
    return list(session.scalars(select(Follower.openid).where(Follower.subscribed.is_(True),
                                                                Follower.member_id.is_not(None))
                                .order_by(Follower.openid)))


def _phones_showing(session, marker: str) -> Counter:
    """How many times each phone shows a message containing `marker` (sent, not replied)."""
    rows = session.scalars(select(SandboxMessage.touser).where(
        SandboxMessage.channel.not_in(("reply", "user")), SandboxMessage.content.contains(marker)))
    return Counter(rows)


def _open_deliveries(session) -> list:
    """What keeps a campaign open (for a failure's message)."""
    return session.execute(select(Delivery.campaign_id, Delivery.status, Delivery.claimed_by, Delivery.attempts,
                                  Delivery.next_attempt_at, Delivery.last_error)
                           .where(Delivery.status.in_(("pending", "sending")))).all()


def _campaigns_done(session) -> bool:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(Campaign).where(
        Campaign.status.in_(("scheduled", "sending")))) == 0


def test_1_the_daily_push_and_event_reminders_reach_each_person_exactly_once(cluster):
    """Two schedulers both run the day's push (its time passed minutes ago) and the event reminders
    at start; four web workers and two delivery workers share the work."""
    session = cluster["sessions"]()
    today = session.scalar(select(Material.title).join(PlanEntry, PlanEntry.material_id == Material.id)
                           .where(PlanEntry.day == local_date()))
    event = session.scalar(select(Event).where(Event.kind == "主题党日"))
    followers = _followers(session)
    reminder = f"活动提醒：《{event.title}》"

    def everyone_has_both() -> bool:
        session.expire_all()
        return (set(_phones_showing(session, today)) >= set(followers)
                and set(_phones_showing(session, reminder)) >= set(followers) and _campaigns_done(session))
    assert wait_for(everyone_has_both, 90), _tail_logs(cluster["logs"])
    time.sleep(2)  # a second push or reminder, had one been made, would be on its way by now
    pushes, reminders = _phones_showing(session, today), _phones_showing(session, reminder)
    assert len(followers) >= 30
    assert set(pushes.values()) == {1} and set(reminders.values()) == {1}
    session.close()


def test_2_a_message_delivered_four_times_across_workers_has_one_effect_and_one_reply(cluster):
    session = cluster["sessions"]()
    event = session.scalar(select(Event).where(Event.kind == "主题党日"))
    members = _followers(session)[:8]
    wechat = cluster["wechat"]

    def four_times(openid: str) -> list[str]:
        code = code_for(SECRET_KEY, event.id, slot_of(utcnow(), ROTATE))
        query, body = wechat.phone.build(openid, {"MsgType": "text", "Content": f"签到 {code}",
                                                  "MsgId": next(wechat.ids)})
        results = []
        threads = [threading.Thread(target=lambda: results.append(wechat.post(query, body))) for _ in range(4)]
        for t in threads:  # each on a connection of its own: gunicorn hands them to different workers
            t.start()
        for t in threads:
            t.join()
        return [raw for _status, raw in results]

    for openid in members:
        replies = four_times(openid)
        assert len(set(replies)) == 1 and "签到成功" in wechat.phone.read_reply(200, replies[0]).text
    session.expire_all()
    checkins = Counter(session.scalars(select(CheckIn.member_id).where(CheckIn.event_id == event.id)))
    assert len(checkins) == len(members) and set(checkins.values()) == {1}
    ledger = Counter(session.scalars(select(PointEntry.member_id).where(PointEntry.rule == "event")))
    assert set(ledger.values()) == {1} and len(ledger) == len(members)
    session.close()


def test_2b_the_simulators_messages_across_four_web_workers_each_get_their_own_reply(cluster):
    """The simulator page posts to /sandbox/phone, which any of gunicorn's workers serves; each worker
    makes MsgIds for the messages it plays, and none may be taken for another user's."""
    from models.followers import Follower
    from models.members import Member
    session = cluster["sessions"]()
    names = dict(session.execute(select(Follower.openid, Member.name).join(Member, Member.id == Follower.member_id)
                                 .where(Follower.subscribed.is_(True))).all())
    replies: dict[str, list[str]] = {openid: [] for openid in names}

    def chat(openid: str) -> None:
        for _ in range(3):
            answer = requests.post(cluster["url"] + "/sandbox/phone", json={"openid": openid, "action": "text",
                                                                            "text": "我的"}, timeout=20)
            replies[openid].append(answer.json()["text"])

    # Six phones at a time: each simulator request holds a web thread while its message is handled by another.
    openids = list(names)
    threads = [threading.Thread(target=lambda group=openids[n::6]: [chat(o) for o in group]) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    wrong = {openid: said for openid, said in replies.items()
             if len(said) != 3 or not all(names[openid] in text for text in said)}
    assert not wrong, wrong
    session.close()


def test_3_processes_killed_during_a_campaign_a_quiz_and_a_check_in_burst_lose_nothing_and_count_nothing_twice(
        cluster):
    session = cluster["sessions"]()
    processes, wechat, url = cluster["processes"], cluster["wechat"], cluster["url"]
    event = session.scalar(select(Event).where(Event.kind == "主题党日"))
    followers = _followers(session)
    players = followers[8:]  # those who did not check in yet
    requests.post(url + "/sandbox/faults", json={"latency_ms": 1200}, timeout=5)  # sends stay in flight
    from models.accounts import Scope
    campaign = create_campaign(session, "系统测试", Scope(None), {"everyone": True},
                               {"text": "系统测试通知：今晚支部学习改到 302。"}, utcnow())
    session.commit()
    verdicts: dict[str, str] = {}
    checked: dict[str, str] = {}

    def member_day(openid: str, seed: int) -> None:
        rng = random.Random(seed)
        time.sleep(rng.random() * 3)
        for _ in range(6):  # until the check-in is confirmed, as a person at the door would
            reply = wechat.say(openid, f"签到 {code_for(SECRET_KEY, event.id, slot_of(utcnow(), ROTATE))}")
            if "签到成功" in reply or "不用重复签到" in reply:
                checked[openid] = reply
                break
            time.sleep(0.5)
        for _ in range(6):
            question = wechat.say(openid, "答题")
            if "A. " in question:
                verdict = wechat.say(openid, "A")
                if "回答正确" in verdict or "正确答案" in verdict or "✘" in verdict:
                    verdicts[openid] = verdict
                break
            time.sleep(0.5)

    def chaos(stop: threading.Event) -> None:
        rng = random.Random(17)
        for victim in ("worker-1", "web", "scheduler-1", "worker-2", "web", "worker-1"):
            if stop.wait(rng.uniform(1.0, 2.5)):
                return
            if victim == "web":  # one of gunicorn's workers; the master starts another
                workers = processes.web_workers()
                if workers:
                    os.kill(rng.choice(workers), signal.SIGKILL)
                continue
            processes.kill(victim)
            time.sleep(rng.uniform(0.2, 1.0))
            processes.start(victim)

    stop = threading.Event()
    chaos_thread = threading.Thread(target=chaos, args=(stop,))
    chaos_thread.start()
    members = [threading.Thread(target=member_day, args=(openid, n)) for n, openid in enumerate(players)]
    for t in members:
        t.start()
    for t in members:
        t.join(120)
    chaos_thread.join()
    requests.post(url + "/sandbox/faults", json={"latency_ms": 0}, timeout=5)
    assert wait_for(lambda: _campaigns_done(session), 90), (_open_deliveries(session), _tail_logs(cluster["logs"]))
    session.expire_all()

    # Nothing lost: every member is checked in, every verdict they saw is recorded, every phone shows the notice.
    assert wechat.unanswered == 0 and set(checked) == set(players)
    checkins = Counter(session.scalars(select(CheckIn.member_id).where(CheckIn.event_id == event.id)))
    from models.followers import Follower
    member_of = dict(session.execute(select(Follower.openid, Follower.member_id)).all())
    missing = {o: checked.get(o) for o in followers if member_of.get(o) not in checkins}
    assert len(checkins) == len(followers) and set(checkins.values()) == {1}, (missing, _tail_logs(cluster["logs"]))
    answered = set(session.scalars(select(AnswerRecord.member_id)))
    assert {member_of[o] for o in verdicts} <= answered
    # A web worker killed while serving the sandbox's API drops sends it had taken: their outcome is
    # unknown, so they are not sent again on their own; the organiser resends them, flagged.
    from models.delivery import resend_unknown, unknown_count
    unknown = unknown_count(session, campaign.id)
    if unknown:
        resend_unknown(session, session.get(Campaign, campaign.id), "系统测试")
        session.commit()
        assert wait_for(lambda: _campaigns_done(session), 60), _open_deliveries(session)
    shown = _phones_showing(session, "系统测试通知")
    assert set(shown) == set(followers)
    # Nothing counted twice: one answer per question, totals equal to the ledger, only flagged
    # recipients (at most what was in flight when a worker died) got the notice twice.
    per_question = Counter(session.execute(select(AnswerRecord.attempt_id, AnswerRecord.question_id)).all())
    assert set(per_question.values()) == {1}
    ledger = dict(session.execute(select(PointEntry.member_id, func.sum(PointEntry.delta))
                                  .group_by(PointEntry.member_id)).all())
    totals = dict(session.execute(select(MemberPoints.member_id, MemberPoints.total)).all())
    assert {m: t for m, t in totals.items() if t} == {m: s for m, s in ledger.items() if s}
    flagged = set(session.scalars(select(Delivery.openid).where(Delivery.campaign_id == campaign.id,
                                                                Delivery.possibly_duplicated.is_(True))))
    twice = {openid for openid, n in shown.items() if n > 1}
    assert twice <= flagged and len(flagged) <= 3 * 2 * IN_FLIGHT + unknown  # three worker kills, two batches each
    session.close()


def test_4_with_redis_restarted_the_webhook_keeps_answering(cluster):
    """While Redis is away every message gets the short apology (nothing is handled, so nothing
    twice); once it is back, service resumes by itself. What Redis held is gone (no persistence):
    conversations in progress restart, dedup of messages from before the restart is lost, and the
    database's unique keys still keep every check-in, answer and point once."""
    wechat, session = cluster["wechat"], cluster["sessions"]()
    openid = _followers(session)[0]
    assert "可以发送" in wechat.say(openid, "帮助")
    cluster["redis"].stop()
    during = wechat.say(openid, "帮助")
    assert "暂时出了点问题" in during
    cluster["redis"].start()
    assert wait_for(lambda: "可以发送" in wechat.say(openid, "帮助"), 20)
    assert wait_for(lambda: _healthy(cluster["url"]), 20)
    session.close()


def test_5_with_the_database_away_users_get_the_apology_and_service_resumes_by_itself(cluster):
    """What needs the database gets the short apology; what a member's cached profile answers
    (我的, 帮助) still works; nothing half-written stays; no restart is needed."""
    wechat, session, proxy = cluster["wechat"], cluster["sessions"](), cluster["proxy"]
    openids = _followers(session)
    before = session.scalar(select(func.count()).select_from(CheckIn))
    proxy.cut()
    try:
        health = requests.get(cluster["url"] + "/healthz", timeout=10)
        assert health.status_code == 503 and health.json()["database"].startswith("down")
        assert "学号" in wechat.say(openids[0], "我的")  # answered from the profile Redis holds
        replies = [wechat.say(openid, "活动") for openid in openids[:4]]  # these need the database
        assert all("暂时出了点问题" in r for r in replies), replies
    finally:
        proxy.restore()
    assert wait_for(lambda: _healthy(cluster["url"]), 30)
    assert wait_for(lambda: "近期活动" in wechat.say(openids[0], "活动"), 20)
    session.expire_all()
    # Nothing half-written: the ledger still matches the totals, no check-in appeared or vanished.
    assert session.scalar(select(func.count()).select_from(CheckIn)) == before
    ledger = dict(session.execute(select(PointEntry.member_id, func.sum(PointEntry.delta))
                                  .group_by(PointEntry.member_id)).all())
    totals = dict(session.execute(select(MemberPoints.member_id, MemberPoints.total)).all())
    assert {m: t for m, t in totals.items() if t} == {m: s for m, s in ledger.items() if s}
    session.close()
