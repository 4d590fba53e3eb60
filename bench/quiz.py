"""The daily quiz under load: 2,000 bound members each answer a 5-question quiz through /wechat.

Production settings: gunicorn as deployed (gunicorn.conf.py, 2 workers x 4 threads), PostgreSQL and
Redis, safe mode (every request and reply encrypted). The demo question bank (69 questions).

Each member sends 答题 and then five answers, one at a time, each after the reply to the one before
(a member answers what they see). The members are shared among client threads that go round them,
so that a member's next answer comes seconds after the last, as a person types; the answers are
paced to the target rate (300 answers/s). Some answers are delivered twice with the same MsgId, as
WeChat retries. At the same time other members send 帮助 (10% of the answer rate), for the baseline
of the same run: a cheap command under the same load.

Afterwards the database is checked: one finished scored attempt per member with five answers,
every reply a verdict, no answer lost and none counted twice (answers, scores, ledger entries).
Prints answers/s, p50 / p99 of an answer, of 答题 and of 帮助, the ratio answer p99 / 帮助 p99, the
losses and double counts, and the verdict on the targets (p99 < 50 ms at 300 answers/s; answer p99
at most 2x 帮助's).
Usage: .venv/bin/python bench/quiz.py [--members 2000] [--rate 300] [--threads 48]
"""
from __future__ import annotations

import argparse
import http.client
import os
import random
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from bench.fanout import services_cpu_seconds, tree_cpu_seconds  # noqa: E402
from bench.webhook import REDIS_URL, BenchDatabase, Server, free_port, prepare, settings_env  # noqa: E402
from wxbot import create_app  # noqa: E402
from wxbot.db import db  # noqa: E402
from wxbot.sandbox.phone import Phone  # noqa: E402

QUESTIONS = 5
RETRY_SHARE = 0.03  # answers WeChat delivers a second time (same MsgId)
HELP_SHARE = 0.10  # 帮助 requests per answer
HELP_CPU_REQUESTS, HELP_CPU_RATE = 1000, 100  # the baseline's CPU: 帮助 alone, before the burst


def load_bank(bench: BenchDatabase) -> int:
    from models.questionbank import apply_questions, read_questions
    from wxbot.demo import DEMO_QUESTIONS
    app = create_app({"database_url": bench.url, "redis_url": REDIS_URL, "redis_prefix": bench.prefix,
                      "log_level": "WARNING"})
    with app.app_context():
        rows, _bad = read_questions(str(DEMO_QUESTIONS))
        created, _ = apply_questions(db.session, rows, lambda _q: False, "bench", None)
        db.session.commit()
        db.engine.dispose()
    return created


@dataclass
class Results:
    latencies: dict = field(default_factory=lambda: {"answer": [], "start": [], "help": [], "retry": []})
    odd_replies: list = field(default_factory=list)  # (kind, text) that were not what the step expects
    errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, ms: float, problem: str | None = None) -> None:
        with self.lock:
            self.latencies[kind].append(ms)
            if problem is not None:
                self.odd_replies.append((kind, problem[:120]))


class Pacer:
    """Hands out send times: the n-th paced request is due at start + n / rate."""

    def __init__(self, rate: float):
        self.rate, self.count, self.lock = rate, 0, threading.Lock()
        self.start = time.perf_counter() + 0.5

    def wait(self) -> None:
        with self.lock:
            due = self.start + self.count / self.rate
            self.count += 1
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)


class Client:
    """One keep-alive connection, signing each message as WeChat does, reading each reply as WeChat does."""

    def __init__(self, port: int, phone: Phone):
        self.port, self.phone = port, phone
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def post(self, query: str, body: bytes) -> tuple[float, int, str]:
        started = time.perf_counter()
        for fresh in (False, True):
            try:
                self.conn.request("POST", f"/wechat?{query}", body, {"Content-Type": "text/xml"})
                response = self.conn.getresponse()
                data = response.read()
                return (time.perf_counter() - started) * 1000, response.status, data.decode()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closed an idle keep-alive connection (gunicorn's keepalive): send again on a
                # new one, as any HTTP client does (and as WeChat retries, with the same MsgId).
                self._reconnect()
                if fresh:
                    break
            except (OSError, http.client.HTTPException):
                self._reconnect()
                break
        return (time.perf_counter() - started) * 1000, 0, ""

    def _reconnect(self) -> None:
        self.conn.close()
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def say(self, openid: str, text: str, msg_id: int) -> tuple[float, str, tuple[str, bytes]]:
        request = self.phone.build(openid, {"MsgType": "text", "Content": text, "MsgId": msg_id}, int(time.time()))
        ms, status, raw = self.post(*request)
        return ms, self.phone.read_reply(status, raw).text if status else "", request


class CpuMeter:
    """CPU time of the server (gunicorn and its workers) and of PostgreSQL + Redis, read at marks."""

    def __init__(self, pid: int):
        self.pid = pid
        self.marks: list[tuple[float, float]] = []

    def mark(self) -> None:
        self.marks.append((tree_cpu_seconds(self.pid), services_cpu_seconds()))

    def since(self, n: int) -> tuple[float, float]:
        """(server, services) CPU seconds from mark n to the last mark."""
        return self.marks[-1][0] - self.marks[n][0], self.marks[-1][1] - self.marks[n][1]


def help_cpu(port: int, phone: Phone, askers: list[str], meter: CpuMeter, count: int,
             rate: float) -> tuple[float, float]:
    """CPU per 帮助 (ms of server, ms of PostgreSQL + Redis) with nothing else running: the baseline."""
    results, done = Results(), threading.Event()
    ids = iter(range(10**14 + int(time.time()) * 1000, 10**15))
    for openid in askers:  # every asker's profile is cached first, as for the members answering
        Client(port, phone).say(openid, "帮助", next(ids))
    meter.mark()
    threads = [threading.Thread(target=help_asker, args=(port, phone, askers[i::2], rate / 2, done, results, ids,
                                                         count // 2)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    meter.mark()
    server, services = meter.since(-2)
    return 1000 * server / count, 1000 * services / count


def quiz_player(port: int, phone: Phone, members: list[str], pacer: Pacer, results: Results, seed: int,
                ids: iter, steps: threading.Barrier | None = None) -> None:
    """Go round this thread's members: everyone's 答题, then everyone's first answer, and so on (with
    `steps`, every thread finishes a step before any starts the next)."""
    client, rng = Client(port, phone), random.Random(seed)
    for step in range(QUESTIONS + 1):
        if steps is not None:
            steps.wait()
        for openid in members:
            text = "答题" if step == 0 else "AB"[step % 2]  # a valid answer to every kind of question
            pacer.wait()
            ms, reply, request = client.say(openid, text, next(ids))
            expected = "第 1/" if step == 0 else "回答"
            results.add("start" if step == 0 else "answer", ms, None if expected in reply else reply or "(none)")
            if step and rng.random() < RETRY_SHARE:  # WeChat delivers the same message again
                again_ms, status, raw = client.post(*request)
                again = phone.read_reply(status, raw).text if status else ""
                results.add("retry", again_ms, None if again == reply else f"retry answered differently: {again}")
    if steps is not None:
        steps.wait()


def help_asker(port: int, phone: Phone, openids: list[str], rate: float, until: threading.Event, results: Results,
               ids: iter, count: int | None = None) -> None:
    client, pacer, n = Client(port, phone), Pacer(rate), 0
    while not until.is_set() and (count is None or n < count):
        pacer.wait()
        ms, reply, _request = client.say(openids[n % len(openids)], "帮助", next(ids))
        results.add("help", ms, None if "答题" in reply else reply or "(none)")
        n += 1


def run_load(port: int, players: list[str], askers: list[str], rate: float, threads: int,
             meter: CpuMeter | None = None) -> tuple[Results, float]:
    """The burst; with a `meter`, the threads go step by step and the CPU is marked between steps
    (marks: before 答题, after 答题 = before the answers, after the answers)."""
    app = create_app({"wechat.encrypt_mode": "safe", "log_level": "WARNING"})
    phone = Phone(app.config["WXBOT"], transport=None, session_factory=None)
    results, done = Results(), threading.Event()
    counts: list[dict] = []

    def between_steps() -> None:
        if meter is not None:
            meter.mark()
            counts.append({kind: len(v) for kind, v in results.latencies.items()})
    steps = threading.Barrier(threads, action=between_steps) if meter is not None else None
    results.counts = counts
    counter = iter(range(10**15 + int(time.time()) * 1000, 10**18))
    id_lock = threading.Lock()

    class Ids:  # MsgIds unique across threads
        def __iter__(self):
            return self

        def __next__(self):
            with id_lock:
                return next(counter)

    # 答题 and the answers share one pace: answers arrive at `rate` per second.
    pacer = Pacer(rate * (QUESTIONS + 1) / QUESTIONS)
    chunks = [players[i::threads] for i in range(threads)]
    workers = [threading.Thread(target=quiz_player, args=(port, phone, chunk, pacer, results, n, Ids(), steps))
               for n, chunk in enumerate(chunks)]
    helpers = [threading.Thread(target=help_asker, args=(port, phone, askers[i::2], rate * HELP_SHARE / 2, done,
                                                         results, Ids())) for i in range(2)]
    started = time.perf_counter()
    for t in workers + helpers:
        t.start()
    for t in workers:
        t.join()
    elapsed = time.perf_counter() - started
    done.set()
    for t in helpers:
        t.join()
    return results, elapsed


def check_database(bench: BenchDatabase, players: int) -> dict:
    """What the database says happened: answers recorded, attempts, scores and ledger entries."""
    from models.followers import Follower
    from models.points import PointEntry
    from models.quiz import AnswerRecord, QuizAttempt
    app = create_app({"database_url": bench.url, "redis_url": REDIS_URL, "redis_prefix": bench.prefix,
                      "log_level": "WARNING"})
    with app.app_context():
        s = db.session
        recorded = s.scalar(select(func.count()).select_from(AnswerRecord)) or 0
        attempts = s.execute(select(QuizAttempt.member_id, func.count()).where(QuizAttempt.kind == "daily")
                             .group_by(QuizAttempt.member_id)).all()
        unfinished = s.scalar(select(func.count()).select_from(QuizAttempt).where(
            QuizAttempt.kind == "daily", QuizAttempt.finished_at.is_(None))) or 0
        # A score that disagrees with its answers would be an answer counted twice (or lost).
        right = dict(s.execute(select(AnswerRecord.attempt_id, func.count()).where(AnswerRecord.correct.is_(True))
                               .group_by(AnswerRecord.attempt_id)).all())
        per_attempt = dict(s.execute(select(AnswerRecord.attempt_id, func.count())
                                     .group_by(AnswerRecord.attempt_id)).all())
        wrong_scores = sum(1 for a in s.scalars(select(QuizAttempt))
                           if a.right_count != right.get(a.id, 0) or a.position != per_attempt.get(a.id, 0))
        ledger = s.execute(select(PointEntry.member_id, func.count()).where(PointEntry.rule == "quiz")
                           .group_by(PointEntry.member_id)).all()
        bound = s.scalar(select(func.count()).select_from(Follower).where(Follower.member_id.is_not(None)))
        db.engine.dispose()
    return {"expected": players * QUESTIONS, "recorded": recorded,
            "members_with_two_attempts": sum(1 for _m, n in attempts if n > 1),
            "members_without_attempt": players - len(attempts), "unfinished": unfinished,
            "scores_not_matching_answers": wrong_scores,
            "members_credited_twice": sum(1 for _m, n in ledger if n > 1),
            "members_not_credited": players - len(ledger), "bound": bound}


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=300, help="answers per second")
    parser.add_argument("--threads", type=int, default=48, help="client threads playing the members")
    args = parser.parse_args()
    askers = 200
    with BenchDatabase() as bench:
        openids = prepare(bench, args.members + askers)
        questions = load_bank(bench)
        players, helpers = openids[:args.members], openids[args.members:]
        port = free_port()
        server = Server("wxbot", settings_env(bench, "safe", port), port, "safe")
        try:
            meter = CpuMeter(server.process.pid)
            phone = Phone(create_app({"wechat.encrypt_mode": "safe", "log_level": "WARNING"}).config["WXBOT"],
                          transport=None, session_factory=None)
            help_ms = help_cpu(port, phone, helpers, meter, HELP_CPU_REQUESTS, HELP_CPU_RATE)
            server_cpu, client_cpu = tree_cpu_seconds(server.process.pid), time.process_time()
            results, elapsed = run_load(port, players, helpers, args.rate, args.threads, meter)
            cpu = {"server": tree_cpu_seconds(server.process.pid) - server_cpu,
                   "client": time.process_time() - client_cpu,
                   "per_kind": cpu_per_kind(meter, results.counts, help_ms)}
        finally:
            server.stop()
        checked = check_database(bench, args.members)
    report(args, questions, results, elapsed, checked, cpu)


def cpu_per_kind(meter: CpuMeter, counts: list[dict], help_ms: tuple[float, float]) -> dict:
    """ms of CPU (server, PostgreSQL + Redis) per 帮助 alone, per 答题 (the first step) and per answer
    (the other steps); the 帮助 sent alongside each step are taken out at their own cost."""
    # marks: before and after the 帮助 baseline, then one before each step and one at the end (as counts)
    steps = meter.marks[2:]

    def per_request(first: int, last: int, kinds: tuple[str, ...]) -> tuple[float, float]:
        server, services = steps[last][0] - steps[first][0], steps[last][1] - steps[first][1]
        helps = counts[last]["help"] - counts[first]["help"]
        n = sum(counts[last][k] - counts[first][k] for k in kinds)
        return (1000 * server - helps * help_ms[0]) / n, (1000 * services - helps * help_ms[1]) / n
    return {"help": help_ms, "start": per_request(0, 1, ("start",)),
            "answer": per_request(1, len(steps) - 1, ("answer", "retry"))}


def report(args, questions: int, results: Results, elapsed: float, checked: dict, cpu: dict) -> None:
    times = results.latencies
    answers = len(times["answer"])
    rate = answers / elapsed
    print(f"\nquiz benchmark: {args.members} members x {QUESTIONS} questions ({questions} in the bank), "
          f"gunicorn as deployed (2 workers x 4 threads), PostgreSQL + Redis, safe mode, "
          f"{args.threads} client threads")
    print(f"answers: {answers} in {elapsed:.1f} s = {rate:.0f} answers/s (target pace {args.rate:.0f}/s); "
          f"{len(times['retry'])} redelivered, {len(times['help'])} 帮助 alongside")
    requests = sum(len(v) for v in times.values())
    print(f"CPU over the run: server (gunicorn, all workers) {cpu['server']:.0f} s = "
          f"{1000 * cpu['server'] / requests:.1f} ms per request; client {cpu['client']:.0f} s; "
          f"wall {elapsed:.0f} s on {os.cpu_count()} cores")
    per_kind = cpu["per_kind"]
    print("CPU per request (server = gunicorn; services = PostgreSQL + Redis), 帮助 measured alone first:")
    print(f"{'request':10} {'server ms':>10} {'services ms':>12} {'x 帮助':>7}")
    for kind, label in (("help", "帮助"), ("start", "答题"), ("answer", "answer")):
        server_ms, services_ms = per_kind[kind]
        print(f"{label:10} {server_ms:10.2f} {services_ms:12.2f} {server_ms / per_kind['help'][0]:7.2f}")
    print(f"{'request':10} {'count':>6} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for kind, label in (("answer", "answer"), ("start", "答题"), ("retry", "retry"), ("help", "帮助")):
        values = times[kind]
        if values:
            print(f"{label:10} {len(values):6d} {pct(values, 50):8.1f} {pct(values, 99):8.1f} "
                  f"{statistics.mean(values):8.1f}")
    lost = checked["expected"] - checked["recorded"]
    twice = (checked["members_with_two_attempts"] + checked["scores_not_matching_answers"]
             + checked["members_credited_twice"] + max(0, -lost))
    print(f"\ndatabase: {checked['recorded']} answers recorded of {checked['expected']} sent; "
          f"members without a finished quiz {checked['members_without_attempt'] + checked['unfinished']}, "
          f"not credited {checked['members_not_credited']}")
    print(f"answers lost: {max(lost, 0)}; counted twice: {twice}; replies that were not the expected step: "
          f"{len(results.odd_replies)}")
    for kind, text in results.odd_replies[:5]:
        print(f"  {kind}: {text!r}")
    answer_p99, help_p99 = pct(times["answer"], 99), pct(times["help"], 99)
    print(f"\nanswer p99 / 帮助 p99 = {answer_p99:.1f} / {help_p99:.1f} = {answer_p99 / help_p99:.2f}")
    paced = rate >= 0.95 * args.rate
    print(f"target: answer p99 < 50 ms at {args.rate:.0f} answers/s: {answer_p99:.1f} ms at {rate:.0f}/s -> "
          f"{'met' if answer_p99 < 50 and paced else 'NOT met'}")
    print(f"target: answer p99 <= 2 x 帮助 p99 ({2 * help_p99:.1f} ms) -> "
          f"{'met' if answer_p99 <= 2 * help_p99 else 'NOT met'}")
    answer_cpu, help_cpu_ms = per_kind["answer"][0], per_kind["help"][0]
    print(f"target: server CPU per answer <= 2 x 帮助's ({2 * help_cpu_ms:.2f} ms): {answer_cpu:.2f} ms = "
          f"{answer_cpu / help_cpu_ms:.2f}x -> {'met' if answer_cpu <= 2 * help_cpu_ms else 'NOT met'}")
    print(f"target: none lost, none counted twice -> {'met' if lost == 0 and twice == 0 else 'NOT met'}")


if __name__ == "__main__":
    main()
