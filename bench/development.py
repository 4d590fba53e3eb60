"""The 发展党员 board: a school of 30,000 members with 3,000 people on the path, p99 < 200 ms.

PostgreSQL + Redis (production settings). 30,000 members in 100 branches of 10 colleges; 3,000 of
them with records at every stage (dated paths from the rules, 9 steps each on average), the next
step of each kept on the record as the console keeps it. The board is requested over HTTP in-process
(login session, scope, counts, lists, one page of the table), by the admin (the whole school) and by
a college's organiser, with each of its filters, one request after another.

Against: what a school would otherwise build, a board that works the next step out of every history
when the page is asked for (the same rules engine over the same records, read in two queries).
Prints p50 / p99 of both and the ratio.
Usage: .venv/bin/python bench/development.py [--members 30000] [--records 3000] [--requests 300]
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

BRANCHES = 100
TARGET_P99_MS = 200
FILTERS = ("all", "overdue", "soon", "candidates", "probation", "入党积极分子", "预备党员")
PASSWORD = "bench-password-42"


def settings(bench: BenchDatabase) -> dict:
    return {"database_url": bench.url, "redis_url": REDIS_URL, "redis_prefix": bench.prefix, "log_level": "WARNING"}


def prepare(bench: BenchDatabase, members: int, records: int) -> None:
    from models.accounts import create_account
    from models.development import DevRecord, DevStep, refresh
    from models.devrules import earliest_path, load_rules
    from models.members import Member, OrgUnit
    from wxbot.migrate import upgrade
    app = create_app(settings(bench))
    with app.app_context():
        upgrade()
        db.engine.dispose()
    url = bench.url.replace("postgresql+psycopg://", "postgresql://")
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        insert_school(conn, members, BRANCHES, "共青团员")
    rules, rng, today = load_rules(), random.Random(11), local_date()
    main = [step.key for step in rules.main_line]
    with app.app_context():
        session = db.session
        for n, member_id in enumerate(rng.sample(range(1, members + 1), records)):
            last = main[rng.randrange(len(main) - 1)]
            path = earliest_path(rules, last, today - timedelta(days=rng.randrange(60, 1500)), rng.randrange(0, 40))
            record = DevRecord(member=session.get(Member, member_id), member_id=member_id, stage_before="共青团员")
            session.add(record)
            for done in path.done:
                if done.on <= today:
                    record.steps.append(DevStep(key=done.key, done_on=done.on, ends_on=done.ends_on,
                                                recorded_by="bench"))
            refresh(record, rules)
            if n % 500 == 499:
                session.commit()
        create_account(session, "admin", PASSWORD, "admin", None)
        create_account(session, "college", PASSWORD, "organiser", session.get(OrgUnit, 2))
        session.commit()
        steps = session.query(DevStep).count()
        db.engine.dispose()
    with psycopg.connect(url) as conn:
        conn.execute("ANALYZE")
    print(f"prepared {members} members, {records} records with {steps} steps in {time.perf_counter() - started:.0f} s")


def signed_in(app, username: str):
    import re
    client = app.test_client()
    page = client.get("/admin/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post("/admin/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302, "login failed"
    return client


def measure_board(app, requests: int) -> list[float]:
    clients = [signed_in(app, "admin"), signed_in(app, "college")]
    timings = []
    for n in range(requests):
        client, show = clients[n % 2], FILTERS[n % len(FILTERS)]
        started = time.perf_counter()
        response = client.get(f"/admin/development?show={show}")
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200 and "发展党员" in response.get_data(as_text=True)
    return timings


def naive_board(session, unit_ids) -> tuple[dict, int, list]:
    """The board worked out from every history in scope at request time: counts per stage, the
    overdue count, and the first page of people sorted by their next due date."""
    from sqlalchemy import select

    from models.development import DevRecord, DevStep, rules_in_force
    from models.devrules import Done, History, main_next
    from models.members import Member
    rules, today = rules_in_force(session), local_date()
    query = select(DevRecord.id, Member.stage, Member.name).join(Member, Member.id == DevRecord.member_id)
    steps_query = select(DevStep.record_id, DevStep.key, DevStep.done_on, DevStep.ends_on)
    if unit_ids is not None:
        query = query.where(Member.org_unit_id.in_(unit_ids))
        steps_query = steps_query.join(DevRecord, DevRecord.id == DevStep.record_id).join(
            Member, Member.id == DevRecord.member_id).where(Member.org_unit_id.in_(unit_ids))
    people = session.execute(query).all()
    histories: dict[int, list] = {}
    for record_id, key, on, ends_on in session.execute(steps_query):
        histories.setdefault(record_id, []).append(Done(key, on, ends_on))
    counts, overdue, rows = {}, 0, []
    for record_id, stage, name in people:
        counts[stage] = counts.get(stage, 0) + 1
        following = main_next(rules, History(histories.get(record_id, [])))
        latest = following.window.latest if following else None
        overdue += bool(latest and latest < today)
        rows.append((latest or today + timedelta(days=9999), name, following.key if following else ""))
    return counts, overdue, sorted(rows)[:50]


def measure_naive(app, requests: int) -> list[float]:
    from models.accounts import subtree_ids
    timings = []
    with app.app_context():
        college = subtree_ids(db.session, 2)
        for n in range(requests):
            started = time.perf_counter()
            naive_board(db.session, None if n % 2 == 0 else college)
            timings.append((time.perf_counter() - started) * 1000)
            db.session.rollback()
    return timings


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 100 else max(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=30_000)
    parser.add_argument("--records", type=int, default=3_000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    with BenchDatabase() as bench:
        prepare(bench, args.members, args.records)
        app = create_app(settings(bench))
        measure_board(app, 20)  # warm up: templates compiled, pool filled
        board = measure_board(app, args.requests)
        naive = measure_naive(app, max(20, args.requests // 10))
        with app.app_context():
            db.engine.dispose()
    board_p99, naive_p99 = p99(board), p99(naive)
    print(f"board (next steps kept on the records): p50 {statistics.median(board):.1f} ms, p99 {board_p99:.1f} ms "
          f"over {len(board)} requests")
    print(f"computed from every history per request: p50 {statistics.median(naive):.1f} ms, "
          f"p99 {naive_p99:.1f} ms over {len(naive)} requests (the engine alone, no page)")
    print(f"ratio p99: {naive_p99 / board_p99:.1f}x faster; target p99 < {TARGET_P99_MS} ms: "
          f"{'met' if board_p99 < TARGET_P99_MS else 'NOT met'}")


if __name__ == "__main__":
    main()
