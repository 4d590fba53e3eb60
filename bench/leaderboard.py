"""Latency of 排行 and 积分 against 帮助, through /wechat, on 30,000 members with a year of points.

PostgreSQL + Redis (production settings). 30,000 members in 100 branches, each bound to a follower;
a year of reading credits (a member studies on about half the days) written with COPY, totals and
streaks derived from it. Requests go through the whole webhook (signature, dedup, per-user lock,
handler, reply, message log) in-process, one after another, for random members, the three commands
interleaved so that they see the same machine. Prints p50 / p99 of each and the ratio to 帮助.
Usage: .venv/bin/python bench/leaderboard.py [--members 30000] [--requests 600]
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench.webhook import REDIS_URL, BenchDatabase, insert_school  # noqa: E402
from models.timeutil import local_date  # noqa: E402
from wxbot import create_app  # noqa: E402
from wxbot.db import db  # noqa: E402
from wxbot.sandbox.phone import Phone  # noqa: E402

BRANCHES = 100
COMMANDS = ("积分", "排行", "帮助")


def prepare(bench: BenchDatabase, members: int) -> list[str]:
    """Roster, followers and a year of ledger; returns the openids."""
    from wxbot.migrate import upgrade
    app = create_app({"database_url": bench.url, "redis_url": REDIS_URL, "redis_prefix": bench.prefix,
                      "log_level": "WARNING"})
    with app.app_context():
        upgrade()
        db.engine.dispose()
    url = bench.url.replace("postgresql+psycopg://", "postgresql://")
    today, rng = local_date(), random.Random(7)
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        insert_school(conn, members, BRANCHES, "正式党员")
        conn.execute("INSERT INTO followers (openid, member_id, subscribed, first_seen_at, subscribed_at, bound_at, "
                     "cs_window_left, mass_count, mass_month) SELECT 'oLB' || lpad(m::text, 6, '0'), m, true, now(), "
                     f"now(), now(), 0, 0, '' FROM generate_series(1, {members}) m")
        with conn.cursor().copy("COPY points_ledger (member_id, rule, delta, reference, day, note, actor, created_at) "
                                "FROM STDIN") as copy:
            for member in range(1, members + 1):
                diligence = rng.random()
                for back in range(365):
                    if rng.random() < diligence:
                        day = today - timedelta(days=back)
                        copy.write_row((member, "read", 1, f"material:{back}", day, "", "", day))
        conn.execute("INSERT INTO member_points (member_id, total, streak, last_study_day) "
                     "SELECT p.member_id, sum(p.delta), 1, max(p.day) FROM points_ledger p GROUP BY p.member_id")
        conn.execute("ANALYZE")
        rows = conn.execute("SELECT count(*) FROM points_ledger").fetchone()[0]
    print(f"prepared {members} members, {rows} ledger entries in {time.perf_counter() - started:.0f} s")
    return [f"oLB{m:06d}" for m in range(1, members + 1)]


def measure(bench: BenchDatabase, openids: list[str], requests: int) -> dict[str, list[float]]:
    app = create_app({"database_url": bench.url, "redis_url": REDIS_URL, "redis_prefix": bench.prefix,
                      "log_level": "WARNING", "wechat.encrypt_mode": "safe"})
    client = app.test_client()
    phone = Phone(app.config["WXBOT"], transport=None, session_factory=None)
    rng, times = random.Random(11), {c: [] for c in COMMANDS}
    msg_id = 10**15 + int(time.time()) * 1000
    for n in range(requests * len(COMMANDS) + 60):
        command = COMMANDS[n % len(COMMANDS)]
        msg_id += 1
        query, body = phone.build(rng.choice(openids), {"MsgType": "text", "Content": command, "MsgId": msg_id},
                                  int(time.time()))
        started = time.perf_counter()
        response = client.post(f"/wechat?{query}", data=body, content_type="text/xml")
        elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code == 200 and b"Encrypt" in response.data, response.data[:200]
        if n >= 60:  # the first requests warm caches and connection pools
            times[command].append(elapsed)
    app.extensions["wxbot.logwriter"].flush()
    return times


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=30000)
    parser.add_argument("--requests", type=int, default=600, help="requests per command")
    args = parser.parse_args()
    with BenchDatabase() as bench:
        openids = prepare(bench, args.members)
        times = measure(bench, openids, args.requests)
    help_p50, help_p99 = pct(times["帮助"], 50), pct(times["帮助"], 99)
    print(f"\nleaderboard benchmark: {args.members} members, a year of ledger, PostgreSQL + Redis, safe mode, "
          f"{args.requests} requests per command through /wechat")
    print(f"{'command':6} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}  p99 / 帮助 p99")
    for command in COMMANDS:
        values = times[command]
        print(f"{command:6} {pct(values, 50):8.1f} {pct(values, 99):8.1f} {statistics.mean(values):8.1f}  "
              f"{pct(values, 99) / help_p99:.2f}")
    for command in ("积分", "排行"):
        p99 = pct(times[command], 99)
        verdict = "met" if p99 < 50 and p99 <= 2 * help_p99 else "NOT met"
        print(f"target {command}: p99 < 50 ms and <= 2 x 帮助 ({2 * help_p99:.1f} ms): {p99:.1f} ms -> {verdict}")
    print(f"(帮助 p50 {help_p50:.1f} ms)")


if __name__ == "__main__":
    main()
