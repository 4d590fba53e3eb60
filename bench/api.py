"""The mini-program's API against the webhook, in one run: check-in and quiz answers at the loads of
bench/checkin.py and bench/quiz.py, half the members through each path.

Production settings: gunicorn as deployed (gunicorn.conf.py, 2 workers x 4 threads), PostgreSQL and
Redis; the webhook in safe mode (every request and reply encrypted, as WeChat sends them), the API
as JSON with the member's Bearer session and an Idempotency-Key on every write (what the reference
client sends). Each member is signed in once before the run (a session in the store, as
POST /api/v1/login leaves it): logging in is not what is measured.

1. Check-in: 1,000 bound members within 10 s (100 scans/s), one event. Each member scans once,
   either the Official Account's QR code (SCAN to /wechat) or the mini-program code (the scanned
   path to POST /api/v1/checkin), the two paths interleaved in one pace.
2. The quiz: 2,000 members answer a 5-question daily quiz at 300 answers/s, either in the chat
   (答题, then five letters) or in the mini-program (POST /api/v1/quiz/daily, then five
   POST /api/v1/quiz/answer), the two paths interleaved in one pace.

Afterwards the database is checked: one check-in per member, five answers per member, one scored
attempt each. Prints p50 / p99 of each action by each path and the ratios API p99 / webhook p99
(target: at most 1, the API no worse than the chat for the same action).

3. CPU per request, each kind alone (another 300 members): 帮助 through the webhook (the baseline),
   a check-in through the API (another event), and quiz answers through the API (the quizzes started
   first, not counted). Prints server CPU (gunicorn) and PostgreSQL + Redis CPU per request and the
   ratio to 帮助 (target: at most 2).
Usage: .venv/bin/python bench/api.py [--checkins 1000] [--seconds 10] [--members 2000] [--rate 300]
"""
from __future__ import annotations

import argparse
import http.client
import itertools
import json
import random
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from bench.checkin import SECRET, make_event, scan_request  # noqa: E402
from bench.fanout import tree_cpu_seconds  # noqa: E402
from bench.quiz import HELP_CPU_RATE, HELP_CPU_REQUESTS, QUESTIONS, Client, CpuMeter, Pacer, help_cpu, load_bank, pct  # noqa: E402
from bench.webhook import REDIS_URL, BenchDatabase, Server, free_port, prepare, settings_env  # noqa: E402
from models.checkins import scene_for, slot_of  # noqa: E402
from models.timeutil import utcnow  # noqa: E402
from wxbot import create_app  # noqa: E402
from wxbot.api.events import CHECKIN_PAGE, mini_scene  # noqa: E402
from wxbot.db import db  # noqa: E402
from wxbot.sandbox.phone import Phone  # noqa: E402

ROTATE = 15


class Results:
    """Latencies by (action, path), and the answers that were not what the step expects."""

    def __init__(self):
        self.latencies: dict[tuple[str, str], list[float]] = {}
        self.odd: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def add(self, action: str, path: str, ms: float, problem: str | None = None) -> None:
        with self.lock:
            self.latencies.setdefault((action, path), []).append(ms)
            if problem is not None:
                self.odd.append((f"{action}/{path}", problem[:120]))


class ApiClient:
    """One keep-alive connection to the API, as a member's phone running the mini-program."""

    def __init__(self, port: int):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def post(self, path: str, token: str, body: dict | None = None) -> tuple[float, int, dict]:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                   "Idempotency-Key": uuid.uuid4().hex}
        started = time.perf_counter()
        for attempt in range(2):  # a connection the server closed: once more, with the same request id
            try:
                self.conn.request("POST", path, json.dumps(body or {}), headers)
                response = self.conn.getresponse()
                data = response.read()
                break
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                if attempt:
                    return (time.perf_counter() - started) * 1000, 0, {}
        ms = (time.perf_counter() - started) * 1000
        return ms, response.status, json.loads(data) if data else {}


def post_twice(client: Client, request: tuple[str, bytes]) -> tuple[float, int, str]:
    """A webhook request, sent again on a connection the server closed (as WeChat retries)."""
    ms, status, raw = client.post(*request)
    if status == 0:
        again_ms, status, raw = client.post(*request)
        ms += again_ms
    return ms, status, raw


def sign_in(bench: BenchDatabase, openids: list[str]) -> dict[str, str]:
    """A mini-program user bound to each of these followers' members, and a session for each (what
    POST /api/v1/login and /bind leave behind)."""
    from models.followers import Follower
    from models.miniprogram import MiniUser
    from wxbot import services
    from wxbot.api.sessions import open_session
    app = create_app({"database_url": bench.url, "redis_url": REDIS_URL, "redis_prefix": bench.prefix,
                      "log_level": "WARNING"})
    tokens = {}
    with app.app_context():
        now, ttl = utcnow(), services.settings().miniprogram.session_ttl
        members = dict(db.session.execute(select(Follower.openid, Follower.member_id)
                                          .where(Follower.openid.in_(openids))).all())
        users = [MiniUser(openid="m" + openid, member_id=members[openid], bound_at=now, created_at=now)
                 for openid in openids]
        db.session.add_all(users)
        db.session.commit()
        store = services.store()
        for openid, user in zip(openids, users, strict=True):
            tokens[openid] = open_session(store, user.id, user.session_epoch, ttl)
        db.engine.dispose()
    return tokens


# ---- check-in ----

def checkin_worker(port: int, phone: Phone, turns: list[tuple[str, str]], tokens: dict, event_id: int,
                   pacer: Pacer, results: Results) -> None:
    chat, api = Client(port, phone), ApiClient(port)
    for path, openid in turns:
        pacer.wait()
        if path == "webhook":
            ms, status, raw = post_twice(chat, scan_request(phone, openid, event_id, int(time.time())))
            reply = phone.read_reply(status, raw).text if status else ""
            results.add("check-in", path, ms, None if "签到成功" in reply else reply or "(none)")
        else:
            scene = mini_scene(scene_for(SECRET, event_id, slot_of(utcnow(), ROTATE)))
            ms, status, body = api.post("/api/v1/checkin", tokens[openid], {"path": f"{CHECKIN_PAGE}?scene={scene}"})
            results.add("check-in", path, ms, None if body.get("code") == "ok" else f"{status} {body}")


def run_checkins(port: int, phone: Phone, chat: list[str], mini: list[str], tokens: dict, event_id: int,
                 seconds: float, threads: int, results: Results) -> float:
    turns = [("webhook", o) for o in chat] + [("api", o) for o in mini]
    random.Random(1).shuffle(turns)
    pacer = Pacer(len(turns) / seconds)
    workers = [threading.Thread(target=checkin_worker, args=(port, phone, turns[i::threads], tokens, event_id,
                                                             pacer, results)) for i in range(threads)]
    return _run(workers)


# ---- the quiz ----

def quiz_worker(port: int, phone: Phone, turns: list[tuple[str, str]], tokens: dict, pacer: Pacer,
                results: Results, ids) -> None:
    """Go round this thread's members: everyone's start, then everyone's first answer, and so on."""
    chat, api = Client(port, phone), ApiClient(port)
    attempts: dict[str, int] = {}
    for step in range(QUESTIONS + 1):
        for path, openid in turns:
            pacer.wait()
            letter = "AB"[step % 2]  # a valid answer to every kind of question
            if path == "webhook":
                request = phone.build(openid, {"MsgType": "text", "Content": "答题" if step == 0 else letter,
                                               "MsgId": next(ids)}, int(time.time()))
                ms, status, raw = post_twice(chat, request)
                reply = phone.read_reply(status, raw).text if status else ""
                expected = "第 1/" if step == 0 else "回答"
                results.add("start" if step == 0 else "answer", path, ms, None if expected in reply else reply)
            elif step == 0:
                ms, status, body = api.post("/api/v1/quiz/daily", tokens[openid])
                attempts[openid] = body.get("id", 0)
                results.add("start", path, ms, None if body.get("kind") == "daily" else f"{status} {body}")
            else:
                ms, status, body = api.post("/api/v1/quiz/answer", tokens[openid], {
                    "attempt_id": attempts[openid], "position": step - 1, "answer": letter})
                results.add("answer", path, ms, None if "verdict" in body else f"{status} {body}")


def run_quiz(port: int, phone: Phone, chat: list[str], mini: list[str], tokens: dict, rate: float, threads: int,
             results: Results) -> float:
    turns = [("webhook", o) for o in chat] + [("api", o) for o in mini]
    random.Random(2).shuffle(turns)
    pacer = Pacer(rate * (QUESTIONS + 1) / QUESTIONS)  # answers arrive at `rate` per second
    counter, lock = itertools.count(10**15 + int(time.time()) * 1000), threading.Lock()

    class Ids:  # MsgIds unique across threads
        def __next__(self):
            with lock:
                return next(counter)

    workers = [threading.Thread(target=quiz_worker, args=(port, phone, turns[i::threads], tokens, pacer, results,
                                                          Ids())) for i in range(threads)]
    return _run(workers)


# ---- CPU per request, each kind alone ----

CPU_MEMBERS, CPU_RATE = 300, 50  # members of the CPU phases, and their pace (requests per second)


def paced_api_calls(port: int, calls: list[tuple[str, str, dict]], tokens: dict, rate: float,
                    threads: int = 8) -> list[dict]:
    """POST each (path, openid, body) at `rate` per second; the answers' bodies, in order."""
    pacer, answers = Pacer(rate), [None] * len(calls)

    def work(indexes: range) -> None:
        client = ApiClient(port)
        for i in indexes:
            pacer.wait()
            path, openid, body = calls[i]
            answers[i] = client.post(path, tokens[openid], body)[2]
    _run([threading.Thread(target=work, args=(range(n, len(calls), threads),)) for n in range(threads)])
    return answers


def api_cpu(port: int, phone: Phone, members: list[str], tokens: dict, event_id: int, meter: CpuMeter) -> dict:
    """ms of CPU (server, PostgreSQL + Redis) per 帮助 by the webhook, per check-in and per answer by
    the API, each measured with nothing else running."""
    per_kind = {"help": help_cpu(port, phone, members, meter, HELP_CPU_REQUESTS, HELP_CPU_RATE)}

    def measured(calls: list[tuple[str, str, dict]], check) -> tuple[float, float]:
        meter.mark()
        answers = paced_api_calls(port, calls, tokens, CPU_RATE)
        meter.mark()
        bad = [a for a in answers if not check(a)]
        if bad:
            raise RuntimeError(f"{len(bad)} unexpected answers, e.g. {bad[0]}")
        server, services = meter.since(-2)
        return 1000 * server / len(calls), 1000 * services / len(calls)
    scene = mini_scene(scene_for(SECRET, event_id, slot_of(utcnow(), ROTATE)))
    per_kind["check-in"] = measured([("/api/v1/checkin", o, {"path": f"{CHECKIN_PAGE}?scene={scene}"})
                                     for o in members], lambda a: a.get("code") == "ok")
    started = paced_api_calls(port, [("/api/v1/quiz/daily", o, {}) for o in members], tokens, CPU_RATE)
    attempts = {o: a.get("id", 0) for o, a in zip(members, started, strict=True)}
    per_kind["answer"] = measured([("/api/v1/quiz/answer", o, {"attempt_id": attempts[o], "position": step,
                                                               "answer": "AB"[step % 2]})
                                   for step in range(QUESTIONS) for o in members], lambda a: "verdict" in a)
    return per_kind


def _run(workers: list[threading.Thread]) -> float:
    started = time.perf_counter()
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return time.perf_counter() - started


def check_database(bench: BenchDatabase, event_id: int, players: list[str]) -> dict:
    """What the measured run left (the CPU phases' members and event are not counted)."""
    from models.checkins import CheckIn
    from models.followers import Follower
    from models.quiz import AnswerRecord, QuizAttempt
    app = create_app({"database_url": bench.url, "redis_url": REDIS_URL, "redis_prefix": bench.prefix,
                      "log_level": "WARNING"})
    with app.app_context():
        s = db.session
        members = select(Follower.member_id).where(Follower.openid.in_(players)).scalar_subquery()
        checkins = dict(s.execute(select(CheckIn.method, func.count()).where(CheckIn.event_id == event_id)
                                  .group_by(CheckIn.method)).all())
        checked_members = s.scalar(select(func.count(func.distinct(CheckIn.member_id)))
                                   .where(CheckIn.event_id == event_id)) or 0
        answers = s.scalar(select(func.count()).select_from(AnswerRecord)
                           .where(AnswerRecord.member_id.in_(members))) or 0
        daily = s.execute(select(QuizAttempt.member_id, func.count()).where(
            QuizAttempt.kind == "daily", QuizAttempt.member_id.in_(members)).group_by(QuizAttempt.member_id)).all()
        db.engine.dispose()
    return {"checkins": checkins, "checked_members": checked_members, "answers": answers,
            "quizzers": len(daily), "two_scored": sum(1 for _m, n in daily if n > 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkins", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--members", type=int, default=2000, help="members answering the quiz")
    parser.add_argument("--rate", type=float, default=300, help="quiz answers per second")
    parser.add_argument("--threads", type=int, default=48)
    args = parser.parse_args()
    with BenchDatabase() as bench:
        openids = prepare(bench, args.checkins + args.members + CPU_MEMBERS)
        questions = load_bank(bench)
        event_id, cpu_event = make_event(bench), make_event(bench)
        scanners, players = openids[:args.checkins], openids[args.checkins:args.checkins + args.members]
        measured = openids[args.checkins + args.members:]
        # every other member uses the mini-program; the CPU phases' members all do
        tokens = sign_in(bench, scanners[1::2] + players[1::2] + measured)
        port = free_port()
        env = settings_env(bench, "safe", port) | {"WXBOT_SECRET_KEY": SECRET}
        server = Server("wxbot", env, port, "safe")
        phone = Phone(create_app({"wechat.encrypt_mode": "safe", "log_level": "WARNING"}).config["WXBOT"],
                      transport=None, session_factory=None)
        results, cpu = Results(), {}
        try:
            cpu_before = tree_cpu_seconds(server.process.pid)
            elapsed = {"check-in": run_checkins(port, phone, scanners[0::2], scanners[1::2], tokens, event_id,
                                                args.seconds, args.threads, results)}
            cpu["check-in"] = tree_cpu_seconds(server.process.pid) - cpu_before
            cpu_before = tree_cpu_seconds(server.process.pid)
            elapsed["quiz"] = run_quiz(port, phone, players[0::2], players[1::2], tokens, args.rate, args.threads,
                                       results)
            cpu["quiz"] = tree_cpu_seconds(server.process.pid) - cpu_before
            cpu["per_kind"] = api_cpu(port, phone, measured, tokens, cpu_event, CpuMeter(server.process.pid))
        finally:
            server.stop()
        checked = check_database(bench, event_id, players)
    report(args, questions, results, elapsed, cpu, checked)


def report(args, questions: int, results: Results, elapsed: dict, cpu: dict, checked: dict) -> None:
    times = results.latencies
    print(f"\nAPI against webhook, one run: gunicorn as deployed (2 workers x 4 threads), PostgreSQL + Redis; "
          f"webhook in safe mode, API JSON with a session; {args.threads} client threads")
    print(f"check-in: {args.checkins} members in {elapsed['check-in']:.1f} s (target {args.seconds:.0f} s), "
          f"half by each path; server CPU {cpu['check-in']:.1f} s")
    print(f"quiz: {args.members} members x {QUESTIONS} answers ({questions} questions in the bank) in "
          f"{elapsed['quiz']:.1f} s = {args.members * QUESTIONS / elapsed['quiz']:.0f} answers/s "
          f"(target {args.rate:.0f}/s), half by each path; server CPU {cpu['quiz']:.1f} s")
    print(f"\n{'action':10} {'path':8} {'count':>6} {'p50 ms':>8} {'p99 ms':>8}")
    for action in ("check-in", "start", "answer"):
        for path in ("webhook", "api"):
            values = times.get((action, path), [])
            if values:
                print(f"{action:10} {path:8} {len(values):6d} {pct(values, 50):8.1f} {pct(values, 99):8.1f}")
    print(f"\ndatabase: check-ins by method {checked['checkins']} for {checked['checked_members']} members "
          f"(expected {args.checkins}); answers {checked['answers']} (expected {args.members * QUESTIONS}); "
          f"members with a scored quiz {checked['quizzers']}, with two {checked['two_scored']}; "
          f"unexpected replies {len(results.odd)}")
    for kind, text in sorted(results.odd, key=lambda odd: odd[0])[:5]:
        print(f"  {kind}: {text!r}")
    print()
    for action in ("check-in", "answer"):
        api, hook = pct(times.get((action, "api"), []), 99), pct(times.get((action, "webhook"), []), 99)
        ratio = api / hook if hook else float("inf")
        print(f"{action}: API p99 / webhook p99 = {api:.1f} / {hook:.1f} = {ratio:.2f} -> "
              f"{'met' if ratio <= 1 else 'NOT met'} (target: at most 1)")
    per_kind = cpu["per_kind"]
    print(f"\nCPU per request, each kind alone ({CPU_MEMBERS} members, {CPU_RATE}/s; server = gunicorn, "
          f"services = PostgreSQL + Redis):")
    print(f"{'request':22} {'server ms':>10} {'services ms':>12} {'x 帮助':>7}")
    for kind, label in (("help", "帮助 (webhook)"), ("check-in", "check-in (API)"), ("answer", "answer (API)")):
        server_ms, services_ms = per_kind[kind]
        print(f"{label:22} {server_ms:10.2f} {services_ms:12.2f} {server_ms / per_kind['help'][0]:7.2f}")
    for kind in ("check-in", "answer"):
        ratio = per_kind[kind][0] / per_kind["help"][0]
        print(f"target: server CPU per API {kind} <= 2 x 帮助's: {ratio:.2f}x -> {'met' if ratio <= 2 else 'NOT met'}")
    exact = (checked["checked_members"] == args.checkins and checked["answers"] == args.members * QUESTIONS
             and checked["two_scored"] == 0)
    print(f"nothing lost, nothing counted twice -> {'met' if exact else 'NOT met'}")


if __name__ == "__main__":
    main()
