"""Benchmark of the webhook: the full pipeline against what a user would pick instead, in one run.

- wxbot: bound members send 我的 (signature, decryption, dedup, per-user lock, conversation state,
  member lookup, routing, reply budget, message log, encryption).
- WeRoBot by hand (bench/werobot_app.py): the bot a university would write in an afternoon, with
  WeRoBot's Redis session storage and one SQLAlchemy query of follower, member and branch for 我的.
- Floors: Flask + wechatpy echo (bench/floor_app.py) and WeRoBot echo.
All under the same gunicorn (gthread, 2 workers x 4 threads), PostgreSQL and Redis, in plaintext and
in safe mode. Load: wrk replaying pre-signed requests, every one with its own MsgId.

Prints requests/s, p50 and p99 at full load and at 80% of each app's own peak, and the ratios; every
app runs in every round (3 by default, interleaved) and its median round is reported with the range.
With --wave, wxbot and WeRoBot by hand also run in safe mode while one new student binds every second
(a new openid sends 绑定 学号 姓名, as in the first weeks of a term): for wxbot each bind is a real
binding, which must leave everyone else's cached profile alone; the hand-written bot has no cache and
answers the message as any other.
Needs PostgreSQL and Redis (as for the tests) and wrk (`make bench` installs it).
Usage: .venv/bin/python bench/webhook.py [--seconds 8] [--members 1000]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from wxbot import create_app  # noqa: E402
from wxbot.db import db  # noqa: E402
from wxbot.sandbox.phone import Phone  # noqa: E402

BIN = Path(sys.executable).parent
PG_ADMIN = os.environ.get("WXBOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("WXBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
WORKERS, THREADS, CONNECTIONS, WRK_THREADS = 2, 4, 16, 2
# What each app answers 我的 with, to check it works before it is measured.
EXPECTED = {"wxbot": "学号：", "werobot": "学号：", "floor": "echo", "werobot-echo": "echo"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BenchDatabase:
    """A PostgreSQL database and a Redis prefix of our own, removed at the end."""

    def __init__(self):
        self.name = f"wxbot_bench_{uuid.uuid4().hex[:8]}"
        self.url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1) + "/" + self.name
        self.prefix = f"wxbot-bench-{uuid.uuid4().hex[:6]}"

    def __enter__(self):
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        return self

    def __exit__(self, *exc):
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(f"{self.prefix}:*"):
            client.delete(key)


def insert_school(conn, members: int, branches: int, stage: str) -> None:
    """A school in bulk SQL: 10 colleges, `branches` branches, members S000001… all of one 政治面貌
    (ids: school 1, colleges 2-11, branches 101…). The big benchmarks build their school this way."""
    conn.execute("INSERT INTO org_units (id, name, kind, parent_id) VALUES (1, '示范大学', 'school', NULL)")
    conn.execute("INSERT INTO org_units (id, name, kind, parent_id) "
                 "SELECT 1 + c, '学院' || c, 'college', 1 FROM generate_series(1, 10) c")
    conn.execute("INSERT INTO org_units (id, name, kind, parent_id) "
                 f"SELECT 100 + b, '支部' || b, 'branch', 2 + (b % 10) FROM generate_series(1, {branches}) b")
    conn.execute("INSERT INTO members (id, student_no, name, org_unit_id, stage, role, created_at, updated_at) "
                 f"SELECT m, 'S' || lpad(m::text, 6, '0'), '成员' || m, 101 + (m %% {branches}), %s, "
                 f"'member', now(), now() FROM generate_series(1, {members}) m", (stage,))
    for table in ("org_units", "members"):
        conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")


def settings_env(bench: BenchDatabase, mode: str, port: int) -> dict:
    return {"WXBOT_DATABASE_URL": bench.url, "WXBOT_REDIS_URL": REDIS_URL, "WXBOT_REDIS_PREFIX": bench.prefix,
            "WXBOT_LOG_LEVEL": "WARNING", "WXBOT_WECHAT__ENCRYPT_MODE": mode,
            "WXBOT_SERVER__PUBLIC_URL": f"http://127.0.0.1:{port}"}


def prepare(bench: BenchDatabase, members: int, spare: int = 0) -> list[str]:
    """Migrate, load a roster of `members` members and bind each to an openid; returns the openids.
    `spare` more members stay unbound, for a binding wave (bench.spare: their 学号 and 姓名)."""
    from models.followers import Follower
    from models.roster import RosterRow, apply_rows
    from models.timeutil import utcnow
    from wxbot.migrate import upgrade

    app = create_app({"database_url": bench.url, "redis_url": REDIS_URL, "redis_prefix": bench.prefix,
                      "log_level": "WARNING"})
    with app.app_context():
        upgrade()
        rows = [RosterRow(f"B{n:06d}", "测试" + "甲乙丙丁戊己庚辛壬癸"[n % 10], f"学院{n % 4}", f"支部{n % 16}",
                          "正式党员", "member") for n in range(members + spare)]
        apply_rows(db.session, rows, "示范大学")
        db.session.flush()
        from models.members import Member
        now, openids = utcnow(), []
        everyone = db.session.query(Member).order_by(Member.student_no).all()
        bench.spare = [(m.student_no, m.name) for m in everyone[members:]]
        for member in everyone[:members]:
            openid = f"oBench{member.student_no}"
            db.session.add(Follower(openid=openid, member_id=member.id, subscribed=True, first_seen_at=now,
                                    subscribed_at=now, bound_at=now))
            openids.append(openid)
        db.session.commit()
        db.engine.dispose()
    return openids


def write_requests(path: Path, mode: str, openids: list[str], count: int) -> None:
    """Pre-signed requests with fresh timestamps and unique MsgIds, one per line."""
    app = create_app({"wechat.encrypt_mode": mode, "log_level": "WARNING"})
    phone = Phone(app.config["WXBOT"], transport=None, session_factory=None)
    stamp = int(time.time())
    with open(path, "w") as f:
        for n in range(count):
            query, body = phone.build(openids[n % len(openids)], {"MsgType": "text", "Content": "我的",
                                                                   "MsgId": 10**15 + n + stamp * 1000}, stamp)
            f.write(f"{query}\t{body.decode()}\n")


class Server:
    """gunicorn with 2 workers, serving either the product or the floor app."""

    def __init__(self, kind: str, env: dict, port: int, mode: str, threads: int = THREADS, workers: int = WORKERS):
        common = ["-w", str(workers), "-k", "gthread", "--threads", str(threads), "-b", f"127.0.0.1:{port}",
                  "--access-logfile", "/dev/null", "--error-logfile", "-", "--log-level", "warning"]
        if kind == "wxbot":
            command = [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", *common, "wxbot.wsgi:app"]
        else:
            wechat = create_app({"log_level": "WARNING"}).config["WXBOT"].wechat
            if kind == "floor":
                command = [str(BIN / "gunicorn"), "-c", "/dev/null", *common, "bench.floor_app:app"]
                env = dict(env, FLOOR_TOKEN=wechat.token, FLOOR_AES_KEY=wechat.aes_key, FLOOR_APPID=wechat.appid,
                           FLOOR_MODE=mode)
            else:  # WeRoBot, answering 我的 or echoing
                command = [str(BIN / "gunicorn"), "-c", "/dev/null", *common, "bench.werobot_app:app"]
                env = dict(env, WEROBOT_TOKEN=wechat.token, WEROBOT_AES_KEY=wechat.aes_key,
                           WEROBOT_APPID=wechat.appid, WEROBOT_MODE=mode,
                           WEROBOT_KIND="echo" if kind == "werobot-echo" else "profile",
                           WEROBOT_DATABASE_URL=env["WXBOT_DATABASE_URL"], WEROBOT_REDIS_URL=env["WXBOT_REDIS_URL"],
                           WEROBOT_REDIS_PREFIX=env["WXBOT_REDIS_PREFIX"] + ":ws:")
        self.port = port
        # The server's log goes to a file (kept open for its life), not a pipe nobody reads: a full pipe
        # would stall the workers.
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-{kind}-", suffix=".log", delete=False)  # noqa: SIM115
        self.process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                                        stderr=self.log, start_new_session=True)
        self._wait()

    def _wait(self) -> None:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                time.sleep(0.5)
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("server did not start: " + self.errors())

    def errors(self) -> str:
        return Path(self.log.name).read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=20)
        errors = self.errors()
        if errors.strip():
            print(f"server log ({self.log.name}), last lines:\n{errors}", file=sys.stderr)


def wrk(port: int, lines: Path, seconds: float, connections: int, delay_ms: float = 0) -> dict:
    env = dict(os.environ, WRK_DELAY_MS=str(delay_ms), WRK_THREADS=str(WRK_THREADS))
    out = subprocess.run(["wrk", f"-t{WRK_THREADS}", f"-c{connections}", f"-d{int(seconds)}s", "--timeout", "5s",
                          "-s", str(ROOT / "bench" / "wrk_replay.lua"), f"http://127.0.0.1:{port}", "--", str(lines)],
                         env=env, capture_output=True, text=True, check=True).stdout
    result = json.loads(re.search(r"RESULT (\{.*\})", out).group(1))
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def check_reply(port: int, mode: str, openids: list[str], kind: str) -> None:
    """One request by hand first: the product must answer with the member's profile."""
    app = create_app({"wechat.encrypt_mode": mode, "log_level": "WARNING"})
    phone = Phone(app.config["WXBOT"], transport=None, session_factory=None)
    query, body = phone.build(openids[0], {"MsgType": "text", "Content": "我的", "MsgId": 42})
    response = requests.post(f"http://127.0.0.1:{port}/wechat?{query}", data=body, timeout=10)
    reply = phone.read_reply(response.status_code, response.text)
    if EXPECTED[kind] not in reply.text:
        raise RuntimeError(f"{kind}/{mode} answered {response.status_code}: {response.text[:200]}")


def warm_up(port: int, mode: str, openids: list[str]) -> None:
    """Every member writes once before the measurement (a first message reads the database, and warms
    pools and caches), then wrk warms the server for two seconds."""
    import http.client
    from concurrent.futures import ThreadPoolExecutor
    app = create_app({"wechat.encrypt_mode": mode, "log_level": "WARNING"})
    phone = Phone(app.config["WXBOT"], transport=None, session_factory=None)
    stamp = int(time.time())

    def send(chunk: list[tuple[int, str]]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for n, openid in chunk:
            query, body = phone.build(openid, {"MsgType": "text", "Content": "我的", "MsgId": 9 * 10**14 + n}, stamp)
            conn.request("POST", f"/wechat?{query}", body, {"Content-Type": "text/xml"})
            conn.getresponse().read()
        conn.close()
    pairs = list(enumerate(openids))
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, [pairs[i::8] for i in range(8)]))
    with tempfile.TemporaryDirectory() as tmp:
        lines = Path(tmp) / "warm.txt"
        write_requests(lines, mode, openids, 4000)
        wrk(port, lines, 2, CONNECTIONS)


def run_case(kind: str, mode: str, bench: BenchDatabase, openids: list[str], seconds: float, tmp: Path,
             wave: bool = False) -> dict:
    port = free_port()
    server = Server(kind, settings_env(bench, mode, port), port, mode)
    binder = BindingWave(port, mode, bench) if wave else None
    try:
        check_reply(port, mode, openids, kind)
        capacity = int(seconds * 6000)
        warm_up(port, mode, openids)
        lines = tmp / "load.txt"
        write_requests(lines, mode, openids, capacity)
        if binder:
            binder.start()
        full = wrk(port, lines, seconds, CONNECTIONS)
        if full["requests"] > capacity:
            print(f"  warning: {kind}/{mode} replayed requests (dedup hits); raise the capacity", file=sys.stderr)
        paced_connections = 16
        delay = paced_connections * 1000.0 / (0.8 * full["rps"])
        write_requests(lines, mode, openids, capacity)
        paced = wrk(port, lines, seconds, paced_connections, delay)
    finally:
        if binder:
            binder.stop()
        server.stop()
    return {"full": full, "paced": paced, "binds": binder.done if binder else 0}


class BindingWave:
    """One new student binds every second while the load runs: a new openid sends 绑定 学号 姓名."""

    def __init__(self, port: int, mode: str, bench: BenchDatabase):
        import threading
        app = create_app({"wechat.encrypt_mode": mode, "log_level": "WARNING"})
        self.phone = Phone(app.config["WXBOT"], transport=None, session_factory=None)
        self.port, self.spare, self.done = port, bench.spare, 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()

    def _run(self) -> None:
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while not self.stopping.wait(1.0) and self.spare:
            student_no, name = self.spare.pop()
            query, body = self.phone.build(f"oWave{student_no}{uuid.uuid4().hex[:6]}", {
                "MsgType": "text", "Content": f"绑定 {student_no} {name}", "MsgId": 8 * 10**14 + len(self.spare)})
            conn.request("POST", f"/wechat?{query}", body, {"Content-Type": "text/xml"})
            conn.getresponse().read()
            self.done += 1


CASES = ("floor", "werobot-echo", "werobot", "wxbot")
NAMES = {"floor": "floor: Flask + wechatpy echo", "werobot-echo": "WeRoBot echo",
         "werobot": "WeRoBot by hand (我的)", "wxbot": "wxbot full pipeline"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--only", choices=CASES, action="append", help="run only these apps (repeatable)")
    parser.add_argument("--mode", choices=("plain", "safe"), action="append", help="only these modes")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds over every app, interleaved; each app's median round is reported")
    parser.add_argument("--wave", action="store_true",
                        help="also wxbot and WeRoBot by hand in safe mode with one bind per second during the load")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: `make bench` installs it (apt-get install wrk)")
    rounds: dict = {}
    with BenchDatabase() as bench, tempfile.TemporaryDirectory() as tmp:
        spare = args.rounds * 2 * 2 * (args.seconds + 4) if args.wave else 0  # a bind a second, both loads
        openids = prepare(bench, args.members, spare)
        # A shared virtual machine's speed drifts by tens of percent within minutes: every app runs in
        # every round, one after another, so that a slow minute does not fall on one app only.
        for n in range(args.rounds):
            for mode in args.mode or ("plain", "safe"):
                for kind in args.only or CASES:
                    print(f"round {n + 1}/{args.rounds}: {kind} {mode} ...", file=sys.stderr)
                    rounds.setdefault((kind, mode), []).append(
                        run_case(kind, mode, bench, openids, args.seconds, Path(tmp)))
            for kind in ("werobot", "wxbot") if args.wave else ():
                print(f"round {n + 1}/{args.rounds}: {kind} safe, one bind a second ...", file=sys.stderr)
                rounds.setdefault((kind, "safe+wave"), []).append(
                    run_case(kind, "safe", bench, openids, args.seconds, Path(tmp), wave=True))
    results = {case: median_round(runs) for case, runs in rounds.items()}
    report(results, args.rounds)


def median_round(runs: list[dict]) -> dict:
    """The round with the median full-load throughput, and the median 80%-load round."""
    by_full = sorted(runs, key=lambda r: r["full"]["rps"])
    by_paced = sorted(runs, key=lambda r: r["paced"]["p99_us"])
    return {"full": by_full[len(runs) // 2]["full"], "paced": by_paced[len(runs) // 2]["paced"],
            "spread": (by_full[0]["full"]["rps"], by_full[-1]["full"]["rps"]),
            "binds": by_full[len(runs) // 2].get("binds", 0)}


def report(results: dict, rounds: int) -> None:
    print(f"\nwebhook benchmark: gunicorn {WORKERS} workers x {THREADS} threads (gthread), wrk {WRK_THREADS} threads, "
          f"{CONNECTIONS} connections, PostgreSQL + Redis; median of {rounds} interleaved rounds")
    print(f"{'app':<32}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}   {'at 80%: req/s':>14}{'p50 ms':>9}{'p99 ms':>9}"
          f"   {'req/s range':>12}")
    for (kind, mode), r in results.items():
        f, p = r["full"], r["paced"]
        errors = f["status_errors"] + f["socket_errors"] + p["status_errors"] + p["socket_errors"]
        low, high = r["spread"]
        print(f"{NAMES[kind] + ' ' + mode:<32}{f['rps']:>8.0f}{f['p50_us'] / 1000:>9.2f}{f['p99_us'] / 1000:>9.2f}   "
              f"{p['rps']:>14.0f}{p['p50_us'] / 1000:>9.2f}{p['p99_us'] / 1000:>9.2f}   {low:>5.0f}-{high:<6.0f}"
              + (f"   errors {errors}" if errors else ""))
    print()
    for mode in ("plain", "safe", "safe+wave"):
        ours, theirs, floor = (results.get((k, mode)) for k in ("wxbot", "werobot", "floor"))
        if ours and theirs:
            ratio = ours["full"]["rps"] / theirs["full"]["rps"]
            print(f"{mode}: wxbot / WeRoBot by hand = {ratio:.2f}" + (
                f"; wxbot / floor = {ours['full']['rps'] / floor['full']['rps']:.2f}" if floor else ""))
    safe = {k: results.get((k, "safe")) for k in CASES}
    if safe["wxbot"] and safe["werobot"]:
        ratio = safe["wxbot"]["full"]["rps"] / safe["werobot"]["full"]["rps"]
        print(f"target: safe mode >= 1.5 x WeRoBot by hand: {ratio:.2f} -> {'met' if ratio >= 1.5 else 'NOT met'}")
    if safe["wxbot"]:
        p99 = safe["wxbot"]["paced"]["p99_us"] / 1000
        print(f"target: p99 < 25 ms at 80% of wxbot's peak (safe): {p99:.2f} ms -> {'met' if p99 < 25 else 'NOT met'}")
    ours, theirs = results.get(("wxbot", "safe+wave")), results.get(("werobot", "safe+wave"))
    if ours and theirs:
        ratio = ours["full"]["rps"] / theirs["full"]["rps"]
        print(f"target: with one bind a second, safe mode >= 1.5 x WeRoBot by hand: {ratio:.2f} -> "
              f"{'met' if ratio >= 1.5 else 'NOT met'} ({ours['binds']} binds during wxbot's median round)")
    if safe["wxbot"] and safe["floor"]:
        ratio = safe["wxbot"]["full"]["rps"] / safe["floor"]["full"]["rps"]
        print(f"stretch: safe mode >= 0.5 x the floor (safe): {ratio:.2f} -> {'met' if ratio >= 0.5 else 'not yet'}")


if __name__ == "__main__":
    main()
