"""Where a worker's time goes under load: py-spy samples wxbot's gunicorn workers while wrk replays
我的 (safe mode, PostgreSQL + Redis, as bench/webhook.py), or while bench/quiz.py's members answer
(`--load quiz`) or bench/checkin.py's scan (`--load checkin`), and prints the functions by their
share of the samples, inclusive and self (the sorted tables of docs/性能.md).

Usage: .venv/bin/python bench/profile_webhook.py [--seconds 10] [--mode safe] [--load mine|quiz|checkin]
"""
from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.webhook import (  # noqa: E402
    BIN,
    CONNECTIONS,
    BenchDatabase,
    Server,
    check_reply,
    free_port,
    prepare,
    settings_env,
    warm_up,
    write_requests,
)


def record(pid: int, seconds: int, raw: Path) -> None:
    """Sample the threads holding the GIL in the server and its workers (where the CPU goes, not where
    threads wait); collapsed stacks, one per line with its count."""
    subprocess.run([str(BIN / "py-spy"), "record", "--pid", str(pid), "--subprocesses", "--duration", str(seconds),
                    "--rate", "200", "--format", "raw", "--output", str(raw), "--nonblocking", "--gil"],
                   check=True, capture_output=True)


def summarise(raw: Path, top: int) -> None:
    """Inclusive and self shares per function from py-spy's collapsed stacks (idle threads left out)."""
    inclusive, own, total = collections.Counter(), collections.Counter(), 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [_name(f) for f in stack.split(";")]
        if not count.isdigit() or not frames or _idle(frames[-1]):  # (a thread name py-spy could not split)
            continue
        n = int(count)
        total += n
        for name in set(frames):
            inclusive[name] += n
        own[frames[-1]] += n
    print(f"{total} busy samples")
    for title, counter in (("inclusive", inclusive), ("self", own)):
        print(f"\n{title}:")
        for name, n in counter.most_common(top):
            print(f"  {100 * n / total:5.1f}%  {name}")


def _name(frame: str) -> str:
    """'function (path/to/module.py:123)' -> 'module.function'."""
    function, _, where = frame.partition(" (")
    path = where.split(":")[0]
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{path.removesuffix('.py').replace('/', '.')}.{function}"


def _idle(frame: str) -> bool:
    return any(word in frame for word in ("wait", "select", "poll", "accept", "_worker", "sleep", "recv_into"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--mode", default="safe", choices=("plain", "safe"))
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--raw", help="also keep py-spy's collapsed stacks in this file")
    parser.add_argument("--skip", type=float, default=0,
                        help="seconds of the quiz or check-in load to let pass before sampling (the quiz's 答题 first)")
    parser.add_argument("--load", default="mine", choices=("mine", "quiz", "checkin"),
                        help="我的 replayed by wrk, the quiz's answers or the check-in's scans")
    args = parser.parse_args()
    if args.load != "mine":
        return profile_burst(args)
    with BenchDatabase() as bench, tempfile.TemporaryDirectory() as tmp:
        openids = prepare(bench, 1000)
        port = free_port()
        server = Server("wxbot", settings_env(bench, args.mode, port), port, args.mode)
        try:
            check_reply(port, args.mode, openids, "wxbot")
            warm_up(port, args.mode, openids)
            lines = Path(tmp) / "load.txt"
            write_requests(lines, args.mode, openids, (args.seconds + 4) * 3000)
            load = subprocess.Popen([sys.executable, "-c", "from bench.webhook import wrk; from pathlib import Path; "
                                     f"print(wrk({port}, Path('{lines}'), {args.seconds + 2}, {CONNECTIONS}))"],
                                    cwd=ROOT, stdout=subprocess.PIPE, text=True)
            raw = Path(tmp) / "profile.txt"
            record(server.process.pid, args.seconds, raw)
            print(load.communicate()[0].strip())
        finally:
            server.stop()
        summarise(raw, args.top)
        if args.raw:
            Path(args.raw).write_text(raw.read_text())


def profile_burst(args) -> None:
    """The quiz or check-in benchmark's own load (safe mode), sampled once it has warmed up."""
    import threading

    from bench import checkin, quiz
    with BenchDatabase() as bench, tempfile.TemporaryDirectory() as tmp:
        if args.load == "quiz":
            openids = prepare(bench, 2200)
            quiz.load_bank(bench)
            env = settings_env(bench, "safe", port := free_port())
            load = threading.Thread(target=quiz.run_load, args=(port, openids[:2000], openids[2000:], 300, 48))
        else:
            openids = prepare(bench, 3100)
            event_id = checkin.make_event(bench)
            env = settings_env(bench, "safe", port := free_port()) | {"WXBOT_SECRET_KEY": checkin.SECRET}
            load = threading.Thread(target=checkin.run_load, args=(port, openids[:3000], openids[3000:], event_id,
                                                                   30, 32))
        server = Server("wxbot", env, port, "safe")
        try:
            load.start()
            time.sleep(args.skip)
            raw = Path(tmp) / "profile.txt"
            record(server.process.pid, args.seconds, raw)
            load.join()
        finally:
            server.stop()
        summarise(raw, args.top)
        if args.raw:
            Path(args.raw).write_text(raw.read_text())


if __name__ == "__main__":
    main()
