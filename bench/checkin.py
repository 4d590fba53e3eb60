"""Check-in under load: 1,000 bound members scan the current code within 10 s through /wechat.

Production settings: gunicorn as deployed (gunicorn.conf.py, 2 workers x 4 threads), PostgreSQL and
Redis, safe mode (every request and reply encrypted). One event whose check-in is open; each member
scans the QR code of the current slot (the scene a projector would show at that moment, signed with
the server's key) once, paced over 10 seconds. Some scans are delivered twice by "WeChat" (the same
request again), and some members scan a second time (a new event). At the same time other members
send 帮助 (10% of the scan rate), for the baseline of the same run: a cheap command under the same load.

Afterwards the database is checked: check-ins recorded (must be exactly the number of members) and
duplicates (must be 0). Prints p50 / p99 of a scan and of 帮助, the ratio, and the verdict on the
targets (scan p99 < 100 ms; scan p99 at most 2x 帮助's). Before the scans, the 帮助 askers scan another
event once (warming the server up, not measured), then 帮助 alone measures its CPU
per request; the scans' CPU per request is printed against it (target: at most 2x).
Usage: .venv/bin/python bench/checkin.py [--members 1000] [--seconds 10] [--threads 32]
"""
from __future__ import annotations

import argparse
import itertools
import random
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from bench.fanout import tree_cpu_seconds  # noqa: E402
from bench.quiz import HELP_CPU_RATE, HELP_CPU_REQUESTS, Client, CpuMeter, Pacer, Results, help_asker, help_cpu, pct  # noqa: E402
from bench.webhook import REDIS_URL, BenchDatabase, Server, free_port, prepare, settings_env  # noqa: E402
from models.checkins import CheckIn, scene_for, slot_of  # noqa: E402
from models.events import Event  # noqa: E402
from models.timeutil import utcnow  # noqa: E402
from wxbot import create_app  # noqa: E402
from wxbot.db import db  # noqa: E402
from wxbot.sandbox.phone import Phone  # noqa: E402

SECRET = "bench-checkin-secret-key"
ROTATE = 15  # events.code_rotate_seconds, as configured
REDELIVERED = 0.05  # scans WeChat delivers a second time (same request)
SCANNED_AGAIN = 0.03  # members who scan a second time (a new SCAN event)
HELP_SHARE = 0.10


def warm_up(port: int, phone: Phone, openids: list[str], event_id: int) -> None:
    """Some scans of another event first, not measured: a server that has run for a while has its
    connections open and its statements compiled (the first scans in each process pay for both)."""
    client = Client(port, phone)
    for openid in openids:
        ms, status, raw = client.post(*scan_request(phone, openid, event_id, int(time.time())))
        if "签到成功" not in (phone.read_reply(status, raw).text if status else ""):
            raise RuntimeError(f"the warm-up scan was not checked in: {status} {raw[:200]}")


def make_event(bench: BenchDatabase) -> int:
    app = create_app({"database_url": bench.url, "redis_url": REDIS_URL, "redis_prefix": bench.prefix,
                      "log_level": "WARNING"})
    now = utcnow()
    with app.app_context():
        event = Event(title="主题党日：重温入党誓词", kind="主题党日", place="大礼堂", points=2,
                      starts_at=now + timedelta(minutes=5), ends_at=now + timedelta(hours=2))
        db.session.add(event)
        db.session.commit()
        event_id = event.id
        db.engine.dispose()
    return event_id


def scan_request(phone: Phone, openid: str, event_id: int, when: int) -> tuple[str, bytes]:
    scene = scene_for(SECRET, event_id, slot_of(utcnow(), ROTATE))
    return phone.build(openid, {"MsgType": "event", "Event": "SCAN", "EventKey": scene, "Ticket": "bench"}, when)


def scanner(port: int, phone: Phone, members: list[str], event_id: int, pacer: Pacer, results: Results,
            seed: int) -> None:
    client, rng = Client(port, phone), random.Random(seed)
    for openid in members:
        pacer.wait()
        request = scan_request(phone, openid, event_id, int(time.time()))
        ms, status, raw = client.post(*request)
        reply = phone.read_reply(status, raw).text if status else ""
        results.add("answer", ms, None if "签到成功" in reply else reply or "(none)")
        if rng.random() < REDELIVERED:
            again_ms, status, raw = client.post(*request)
            again = phone.read_reply(status, raw).text if status else ""
            results.add("retry", again_ms, None if again == reply else f"redelivery answered differently: {again}")
        if rng.random() < SCANNED_AGAIN:
            again_ms, status, raw = client.post(*scan_request(phone, openid, event_id, int(time.time()) + 1))
            again = phone.read_reply(status, raw).text if status else ""
            results.add("start", again_ms, None if "不用重复签到" in again else f"second scan: {again}")


def run_load(port: int, members: list[str], askers: list[str], event_id: int, seconds: float,
             threads: int) -> tuple[Results, float]:
    app = create_app({"wechat.encrypt_mode": "safe", "log_level": "WARNING"})
    phone = Phone(app.config["WXBOT"], transport=None, session_factory=None)
    results, done = Results(), threading.Event()
    rate = len(members) / seconds
    pacer = Pacer(rate)
    workers = [threading.Thread(target=scanner, args=(port, phone, members[i::threads], event_id, pacer, results, i))
               for i in range(threads)]
    ids = itertools.count(10**15 + int(time.time()) * 1000)  # MsgIds unique across threads (count is atomic)
    helpers = [threading.Thread(target=help_asker, args=(port, phone, askers[i::2], rate * HELP_SHARE / 2, done,
                                                         results, ids)) for i in range(2)]
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


def check_database(bench: BenchDatabase, event_id: int) -> dict:
    app = create_app({"database_url": bench.url, "redis_url": REDIS_URL, "redis_prefix": bench.prefix,
                      "log_level": "WARNING"})
    with app.app_context():
        recorded = db.session.scalar(select(func.count()).select_from(CheckIn).where(CheckIn.event_id == event_id))
        members = db.session.scalar(select(func.count(func.distinct(CheckIn.member_id)))
                                    .where(CheckIn.event_id == event_id))
        db.engine.dispose()
    return {"recorded": recorded or 0, "duplicates": (recorded or 0) - (members or 0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--threads", type=int, default=32, help="client threads (phones scanning at once)")
    args = parser.parse_args()
    askers = 100
    with BenchDatabase() as bench:
        openids = prepare(bench, args.members + askers)
        event_id, warm_up_event = make_event(bench), make_event(bench)
        members, helpers = openids[:args.members], openids[args.members:]
        port = free_port()
        env = settings_env(bench, "safe", port) | {"WXBOT_SECRET_KEY": SECRET}
        server = Server("wxbot", env, port, "safe")
        try:
            meter = CpuMeter(server.process.pid)
            phone = Phone(create_app({"wechat.encrypt_mode": "safe", "log_level": "WARNING"}).config["WXBOT"],
                          transport=None, session_factory=None)
            warm_up(port, phone, helpers, warm_up_event)
            help_ms = help_cpu(port, phone, helpers, meter, HELP_CPU_REQUESTS, HELP_CPU_RATE)
            server_cpu, client_cpu = tree_cpu_seconds(server.process.pid), time.process_time()
            meter.mark()
            results, elapsed = run_load(port, members, helpers, event_id, args.seconds, args.threads)
            meter.mark()
            cpu = {"server": tree_cpu_seconds(server.process.pid) - server_cpu,
                   "client": time.process_time() - client_cpu, "help": help_ms}
            server_s, services_s = meter.since(-2)
            helps, scans = len(results.latencies["help"]), sum(len(results.latencies[k]) for k in
                                                               ("answer", "retry", "start"))
            cpu["scan"] = ((1000 * server_s - helps * help_ms[0]) / scans,
                           (1000 * services_s - helps * help_ms[1]) / scans)
        finally:
            server.stop()
        checked = check_database(bench, event_id)
    report(args, results, elapsed, checked, cpu)


def report(args, results: Results, elapsed: float, checked: dict, cpu: dict) -> None:
    times = results.latencies
    print(f"\ncheck-in benchmark: {args.members} bound members scan within {args.seconds:.0f} s "
          f"({len(times['answer'])} scans in {elapsed:.1f} s = {len(times['answer']) / elapsed:.0f}/s), gunicorn as "
          f"deployed (2 workers x 4 threads), PostgreSQL + Redis, safe mode, {args.threads} client threads")
    requests = sum(len(v) for v in times.values())
    print(f"CPU over the run: server (gunicorn, all workers) {cpu['server']:.1f} s = "
          f"{1000 * cpu['server'] / requests:.1f} ms per request; client {cpu['client']:.1f} s; wall {elapsed:.1f} s")
    print("CPU per request (server = gunicorn; services = PostgreSQL + Redis), 帮助 measured alone first:")
    print(f"{'request':10} {'server ms':>10} {'services ms':>12} {'x 帮助':>7}")
    for kind, label in (("help", "帮助"), ("scan", "scan")):
        print(f"{label:10} {cpu[kind][0]:10.2f} {cpu[kind][1]:12.2f} {cpu[kind][0] / cpu['help'][0]:7.2f}")
    print(f"{'request':22} {'count':>6} {'p50 ms':>8} {'p99 ms':>8}")
    for kind, label in (("answer", "scan"), ("retry", "scan delivered twice"), ("start", "second scan"),
                        ("help", "帮助")):
        values = times[kind]
        if values:
            print(f"{label:22} {len(values):6d} {pct(values, 50):8.1f} {pct(values, 99):8.1f}")
    print(f"\ndatabase: {checked['recorded']} check-ins recorded for {args.members} members; "
          f"duplicates {checked['duplicates']}; replies that were not the expected answer {len(results.odd_replies)}")
    for kind, text in results.odd_replies[:5]:
        print(f"  {kind}: {text!r}")
    scan_p99, help_p99 = pct(times["answer"], 99), pct(times["help"], 99)
    print(f"\nscan p99 / 帮助 p99 = {scan_p99:.1f} / {help_p99:.1f} = {scan_p99 / help_p99:.2f}")
    print(f"target: scan p99 < 100 ms -> {'met' if scan_p99 < 100 else 'NOT met'}")
    print(f"target: scan p99 <= 2 x 帮助 p99 ({2 * help_p99:.1f} ms) -> "
          f"{'met' if scan_p99 <= 2 * help_p99 else 'NOT met'}")
    print(f"target: server CPU per scan <= 2 x 帮助's ({2 * cpu['help'][0]:.2f} ms): {cpu['scan'][0]:.2f} ms = "
          f"{cpu['scan'][0] / cpu['help'][0]:.2f}x -> {'met' if cpu['scan'][0] <= 2 * cpu['help'][0] else 'NOT met'}")
    exact = checked["recorded"] == args.members and checked["duplicates"] == 0
    print(f"target: exactly {args.members} check-ins, 0 duplicates -> {'met' if exact else 'NOT met'}")


if __name__ == "__main__":
    main()
