"""Benchmark of the delivery engine against the loop a user would write, in one run.

20,000 followers with an open customer-service window; the sandbox (served by gunicorn, on
PostgreSQL + Redis) answers every API call after 50 ms. The engine runs as `flask --app wxbot worker`
in its own process; its peak memory is read from /proc. Baseline: a plain loop over wechatpy's
send call on a 500-recipient sample. Prints sends/s, wall time, peak memory, lost, duplicated.
Usage: .venv/bin/python bench/fanout.py [--recipients 20000] [--sample 500] [--latency-ms 50]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, select  # noqa: E402

from bench.webhook import REDIS_URL, BenchDatabase, Server, free_port, settings_env  # noqa: E402
from models.accounts import Scope  # noqa: E402
from models.delivery import (  # noqa: E402
    Campaign,
    campaign_counts,
    create_campaign,  # noqa: E402
)
from models.followers import Follower  # noqa: E402
from models.sandbox import SandboxMessage, SandboxUser  # noqa: E402
from models.timeutil import utcnow  # noqa: E402
from wxbot import create_app  # noqa: E402
from wxbot.db import db  # noqa: E402


def prepare(app, recipients: int, sample: int) -> list[str]:
    """Followers on WeChat's side (the sandbox), each with an open window; the first `recipients`
    also on ours (the campaign's audience), the rest only for the plain loop."""
    from wxbot.migrate import upgrade
    now, openids = utcnow(), [f"oFan{n:06d}" for n in range(recipients + sample)]
    window = now + timedelta(hours=47)
    with app.app_context():
        upgrade()
        db.session.execute(insert(Follower), [dict(openid=o, subscribed=True, first_seen_at=now, subscribed_at=now,
                                                   cs_window_until=window, cs_window_left=5)
                                              for o in openids[:recipients]])
        db.session.execute(insert(SandboxUser), [dict(openid=o, nickname=o[-6:], subscribed=True, subscribed_at=now,
                                                      cs_window_until=window, cs_window_left=5) for o in openids])
        db.session.commit()
    return openids


def plain_loop(app, openids: list[str]) -> float:
    """What a user would write: one wechatpy call after another. Returns sends per second."""
    from wxbot.outbound import wechat_client
    with app.app_context():
        client = wechat_client()
        _ = client.access_token  # fetched before the clock starts
        started = time.perf_counter()
        for openid in openids:
            client.message.send_text(openid, "基线：逐个发送")
        return len(openids) / (time.perf_counter() - started)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children that were waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and its live children (gunicorn's workers)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return cpu_seconds(pid) + sum(cpu_seconds(int(c)) for c in children)


def services_cpu_seconds() -> float:
    """CPU time of the PostgreSQL and Redis servers on this machine (their work for the requests)."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if (proc / "comm").read_text().strip() in ("postgres", "redis-server"):
                    total += cpu_seconds(int(proc.name))
            except OSError:  # gone meanwhile
                pass
    return total


def peak_memory_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_engine(app, env: dict, openids: list[str], server_pid: int) -> dict:
    with app.app_context():
        campaign = create_campaign(db.session, "bench", Scope(None), {"everyone": True},
                                   {"text": "今晚七点主题党日"}, utcnow())
        db.session.commit()
        campaign_id = campaign.id
    started, sandbox_cpu = time.perf_counter(), tree_cpu_seconds(server_pid)
    worker = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wxbot", "worker"], cwd=ROOT,
                              env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0.0
    with app.app_context():
        while True:
            time.sleep(0.5)
            peak = max(peak, peak_memory_mb(worker.pid))
            db.session.expire_all()
            if db.session.get(Campaign, campaign_id).status == "done":
                break
            if worker.poll() is not None:
                raise RuntimeError("worker died: " + worker.stderr.read().decode()[-2000:])
        wall = time.perf_counter() - started
        peak = max(peak, peak_memory_mb(worker.pid))
        worker_cpu, sandbox_cpu = cpu_seconds(worker.pid), tree_cpu_seconds(server_pid) - sandbox_cpu
        worker.terminate()
        worker.wait(10)
        counts = campaign_counts(db.session, campaign_id)
        got = Counter(db.session.scalars(select(SandboxMessage.touser).where(
            SandboxMessage.channel == "customer_service", SandboxMessage.content.contains("主题党日"))))
    return {"wall": wall, "rate": counts["sent"] / wall, "peak_mb": peak, "sent": counts["sent"],
            "lost": sum(1 for o in openids if got[o] == 0), "duplicated": sum(1 for n in got.values() if n > 1),
            "flagged": counts["possibly_duplicated"],
            "worker_ms": 1000 * worker_cpu / max(1, counts["sent"]),
            "sandbox_ms": 1000 * sandbox_cpu / max(1, counts["sent"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipients", type=int, default=20000)
    parser.add_argument("--sample", type=int, default=500)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--sandbox-workers", type=int, default=2, help="gunicorn processes playing WeChat")
    parser.add_argument("--sandbox-threads", type=int, default=48, help="threads per sandbox process")
    args = parser.parse_args()
    with BenchDatabase() as bench:
        port = free_port()
        env = {**settings_env(bench, "plain", port), "WXBOT_SANDBOX__LATENCY_MS": str(args.latency_ms)}
        app = create_app({"database_url": bench.url, "redis_url": REDIS_URL, "redis_prefix": bench.prefix,
                          "log_level": "WARNING", "server.public_url": f"http://127.0.0.1:{port}",
                          "sandbox.latency_ms": args.latency_ms})
        openids = prepare(app, args.recipients, args.sample)
        server = Server("wxbot", env, port, "plain", threads=args.sandbox_threads, workers=args.sandbox_workers)
        try:
            baseline = plain_loop(app, openids[args.recipients:])
            engine = run_engine(app, env, openids[:args.recipients], server.process.pid)
        finally:
            server.stop()
    report(args, baseline, engine)


def report(args, baseline: float, engine: dict) -> None:
    print(f"\nfan-out benchmark: {args.recipients} recipients, sandbox latency {args.latency_ms} ms per call, "
          f"PostgreSQL + Redis, {args.sandbox_workers} sandbox workers x {args.sandbox_threads} threads")
    print(f"plain loop (wechatpy, one call after another, {args.sample} recipients): {baseline:8.1f} sends/s")
    print(f"delivery engine (one worker process):            {engine['rate']:8.1f} sends/s  "
          f"wall {engine['wall']:.1f} s  peak memory {engine['peak_mb']:.0f} MB")
    print(f"sent {engine['sent']}, lost {engine['lost']}, duplicated {engine['duplicated']} "
          f"(flagged possibly duplicated {engine['flagged']})")
    print(f"CPU per send: worker {engine['worker_ms']:.2f} ms, sandbox playing WeChat {engine['sandbox_ms']:.2f} ms "
          f"(both on this machine's {os.cpu_count()} cores)")
    ratio = engine["rate"] / baseline
    print(f"ratio engine / plain loop: {ratio:.1f}x")
    print(f"target: >= 500 sends/s and >= 25x the plain loop: {engine['rate']:.0f}/s, {ratio:.1f}x -> "
          f"{'met' if engine['rate'] >= 500 and ratio >= 25 else 'NOT met'}")
    print(f"target: peak memory < 300 MB: {engine['peak_mb']:.0f} MB -> "
          f"{'met' if engine['peak_mb'] < 300 else 'NOT met'}")
    print(f"target: nothing lost or duplicated: lost {engine['lost']}, duplicated {engine['duplicated']} -> "
          f"{'met' if engine['lost'] == 0 and engine['duplicated'] == 0 else 'NOT met'}")


if __name__ == "__main__":
    main()
