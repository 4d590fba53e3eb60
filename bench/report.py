"""The report: a school of 30,000 members over a year in < 3 s with < 300 MB; a branch's month < 300 ms.

PostgreSQL (production settings). 30,000 members in 100 branches of 10 colleges, 80 % of them
following the account, and a year of records made in bulk SQL: the study pushed every day to every
follower (a delivery each, 8.8 million), reads by 40 % of members a day, the daily quiz by 30 %, each
branch's 支委会 and 党小组会 every month (7 signed up), 主题党日 every month and 支部党员大会 every
quarter for the whole branch (check-ins by 80 %, 5 % on approved leave), 留言 answered or not.

The days that have settled are added up first, as the scheduler's daily job does (reportdays.py); the
last delivery.inbox_days + 1 days are counted from the records. Measured (each after one warm-up run,
best of three): the school's year (every figure, its colleges
side by side) and its .docx; a college's year; a branch's month; the peak memory of a fresh process
building the school's year (ru_maxrss before and after). Against: the report built the way a
school would otherwise build it, one branch after another, each with its own queries, and the
school's figures added up from those (the same functions over the same records, unit by unit).
Prints each time, the ratio, and whether the targets are met.
Usage: .venv/bin/python bench/report.py [--members 30000] [--days 365]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
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
SCHOOL_TARGET_S, MEMORY_TARGET_MB, BRANCH_TARGET_MS = 3.0, 300, 300


def settings(bench: BenchDatabase) -> dict:
    return {"database_url": bench.url, "redis_url": REDIS_URL, "redis_prefix": bench.prefix, "log_level": "WARNING"}


def prepare(bench: BenchDatabase, members: int, days: int) -> None:
    from wxbot.migrate import upgrade
    app = create_app(settings(bench))
    with app.app_context():
        upgrade()
        db.engine.dispose()
    url = bench.url.replace("postgresql+psycopg://", "postgresql://")
    last = local_date() - timedelta(days=1)
    first = last - timedelta(days=days - 1)
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        insert_school(conn, members, BRANCHES, "正式党员")
        params = {"first": first, "last": last, "days": days}
        for step in BULK:
            conn.execute(step, params)
        conn.execute("ANALYZE")
    print(f"prepared {members:,} members, {days} days in {time.perf_counter() - started:.0f} s")
    # What the scheduler's daily job has done by now: each settled day added up once.
    from models.reportdays import settle
    from models.timeutil import utcnow
    started = time.perf_counter()
    with app.app_context():
        settled = settle(db.session, utcnow(), int(app.config["WXBOT"].delivery.inbox_days) + 1)
        db.engine.dispose()
    print(f"added up {settled} settled days in {time.perf_counter() - started:.0f} s "
          f"({(time.perf_counter() - started) / max(settled, 1):.2f} s a day, the daily job's share)")
    # A year-old database has been vacuumed and analysed by autovacuum many times; a freshly loaded one
    # would be, during the measurements, making them vary by a second.
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


# A year of records in bulk SQL. Members m follow when m % 5 != 0; branch of m: 101 + m % 100.
BULK = [
    "INSERT INTO followers (openid, member_id, subscribed, first_seen_at, cs_window_left, mass_month, mass_count) "
    "SELECT 'oR' || m, m, true, now(), 0, '', 0 FROM generate_series(1, (SELECT max(id) FROM members)) m "
    "WHERE m %% 5 <> 0",
    "INSERT INTO materials (id, title, summary, body, cover, source, tags, audience, status, author, reviewer, "
    "review_note, created_at, updated_at) VALUES (1, '学习材料', '', '正文', '', '', '', '{}', 'published', 'bench', "
    "'', '', now(), now())",
    # one push campaign per day, a delivery to each follower: 96 %% sent by customer service, the rest waiting
    "INSERT INTO campaigns (id, creator, kind, text, title, description, url, cover, link_kind, link_ref, "
    "preview, audience, audience_label, status, excluded_channels, scheduled_at, created_at, push_day) "
    "SELECT d + 1, '每日推送', 'article', '', '今日学习', '', '', '', '', '', false, '{}', '全校', 'done', '', "
    "now(), now(), %(first)s::date + d FROM generate_series(0, %(days)s - 1) d",
    "INSERT INTO deliveries (campaign_id, openid, member_id, status, channel, refused_channels, attempts, last_error, "
    "claimed_by, possibly_duplicated, wechat_msgid, callback_status) "
    "SELECT d + 1, 'oR' || m, m, CASE WHEN (m + d) %% 25 = 0 THEN 'waiting' ELSE 'sent' END, "
    "CASE WHEN (m + d) %% 25 = 0 THEN '' ELSE 'customer_service' END, '', 1, '', '', false, '', '' "
    "FROM generate_series(0, %(days)s - 1) d, generate_series(1, (SELECT max(id) FROM members)) m WHERE m %% 5 <> 0",
    "INSERT INTO study_readings (member_id, material_id, plan_day, opened_at, seconds, credited_at) "
    "SELECT m, 1, %(first)s::date + d, (%(first)s::date + d)::timestamp + interval '12 hours', 60 + m %% 300, "
    "CASE WHEN m %% 3 = 0 THEN NULL ELSE (%(first)s::date + d)::timestamp + interval '13 hours' END "
    "FROM generate_series(0, %(days)s - 1) d, generate_series(1, (SELECT max(id) FROM members)) m "
    "WHERE (m * 7 + d) %% 5 < 2",
    "INSERT INTO quiz_attempts (member_id, kind, day, questions, orders, position, right_count, points, started_at, "
    "finished_at) SELECT m, 'daily', %(first)s::date + d, '[1,2,3,4,5]', '[]', 5, (m + d) %% 6, 0, "
    "(%(first)s::date + d)::timestamp + interval '20 hours', (%(first)s::date + d)::timestamp + interval '20:05' "
    "FROM generate_series(0, %(days)s - 1) d, generate_series(1, (SELECT max(id) FROM members)) m "
    "WHERE (m * 3 + d) %% 10 < 3",
    # meetings: 支委会, 党小组会 (7 signed up, 6 check in), 主题党日 monthly and 支部党员大会 quarterly (the branch)
    "INSERT INTO events (title, kind, topic, org_unit_id, audience, place, starts_at, ends_at, signup_required, "
    "checkin_before_min, checkin_after_min, late_after_min, points, study_hours, material_ids, status, created_by, "
    "created_at) SELECT k || '（' || to_char(mo, 'YYYY-MM') || '）', k, '', b, "
    "CASE WHEN k IN ('主题党日', '支部党员大会') THEN '{\"units\": [' || b || ']}' ELSE '{}' END, '会议室', "
    "mo + interval '9 days 10 hours', mo + interval '9 days 12 hours', k IN ('支委会', '党小组会'), 30, 30, 10, 0, "
    "CASE WHEN k = '主题党日' THEN 2 ELSE 0 END, '[]', 'active', 'bench', now() "
    "FROM generate_series(101, 100 + " + str(BRANCHES) + ") b, "
    "generate_series(date_trunc('month', %(first)s::date), %(last)s::date - 10, interval '1 month') mo, "
    "unnest(ARRAY['支委会', '党小组会', '主题党日', '支部党员大会']) k "
    "WHERE k <> '支部党员大会' OR extract(month FROM mo)::int %% 3 = 0",
    "INSERT INTO event_registrations (event_id, member_id, status, joined_at) "
    "SELECT e.id, m.id, 'signed', e.created_at FROM events e JOIN LATERAL (SELECT id FROM members "
    "WHERE org_unit_id = e.org_unit_id ORDER BY id LIMIT 7) m ON true WHERE e.signup_required",
    "INSERT INTO event_checkins (event_id, member_id, at, late, method, flag) "
    "SELECT r.event_id, r.member_id, e.starts_at, false, 'scan', '' FROM event_registrations r "
    "JOIN events e ON e.id = r.event_id WHERE r.member_id %% 7 <> 0",
    "INSERT INTO event_leaves (event_id, member_id, reason, status, created_at, decided_by) "
    "SELECT e.id, m.id, '课程冲突', 'approved', e.created_at, 'bench' FROM events e JOIN members m "
    "ON m.org_unit_id = e.org_unit_id WHERE NOT e.signup_required AND (m.id + e.id) %% 20 = 0",
    "INSERT INTO event_checkins (event_id, member_id, at, late, method, flag) "
    "SELECT e.id, m.id, e.starts_at, (m.id + e.id) %% 10 = 1, 'scan', '' FROM events e JOIN members m "
    "ON m.org_unit_id = e.org_unit_id WHERE NOT e.signup_required AND (m.id + e.id) %% 20 <> 0 "
    "AND (m.id + e.id) %% 5 <> 1",
    "INSERT INTO posts (member_id, org_unit_id, text, shown_text, personal, status, screening, flagged, state, "
    "created_at, reviewed_by, reject_reason, answer, answered_by, answered_at) "
    "SELECT m, 101 + m %% " + str(BRANCHES) + ", '建议', '建议', '', 'visible', '[]', false, "
    "CASE WHEN m %% 3 = 0 THEN 'new' ELSE 'answered' END, %(first)s::timestamp + (m %% %(days)s) * interval '1 day', "
    "'', '', '好的', 'bench', CASE WHEN m %% 3 = 0 THEN NULL ELSE %(first)s::timestamp + (m %% %(days)s) * "
    "interval '1 day' + (m %% 72) * interval '1 hour' END FROM generate_series(1, 3000) m",
]


def timed(build, runs: int = 3) -> float:
    build()  # warm-up
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        build()
        best = min(best, time.perf_counter() - started)
    return best


def peak_memory_mb(bench: BenchDatabase, days: int) -> tuple[float, float]:
    """The peak memory (maximum resident set) of a fresh process that makes the app and then the
    school's year (figures and .docx): before the report, and over the whole run."""
    done = subprocess.run([sys.executable, __file__, "--memory-of", json.dumps(settings(bench)), "--days", str(days)],
                          capture_output=True, text=True, check=True)
    before, peak = done.stdout.strip().splitlines()[-1].split()
    return float(before), float(peak)


def memory_child(settings_json: str, days: int) -> None:
    from models.members import OrgUnit
    from models.report import build_report
    from models.reportdocs import to_docx
    from models.timeutil import utcnow
    app = create_app(json.loads(settings_json))
    with app.app_context():
        school = db.session.get(OrgUnit, 1)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        last = local_date() - timedelta(days=1)
        to_docx(build_report(db.session, school, last - timedelta(days=days - 1), last, utcnow()), "年度")
        print(before / 1024, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def measure(bench: BenchDatabase, days: int) -> dict:
    from models.members import OrgUnit
    from models.report import build_report
    from models.reportdocs import to_docx, to_xlsx
    from models.timeutil import utcnow
    app = create_app(settings(bench))
    last = local_date() - timedelta(days=1)
    first = last - timedelta(days=days - 1)
    month_first = last.replace(day=1)
    with app.app_context():
        session = db.session
        school, college = session.get(OrgUnit, 1), session.get(OrgUnit, 2)
        branch = session.get(OrgUnit, 101)
        branches = session.query(OrgUnit).filter(OrgUnit.kind == "branch").all()
        report = build_report(session, school, first, last, utcnow())
        results = {
            "school": timed(lambda: build_report(session, school, first, last, utcnow())),
            "school_docx": timed(lambda: to_docx(build_report(session, school, first, last, utcnow()), "年度")),
            "school_xlsx": timed(lambda: to_xlsx(report, "年度"), 1),
            "college": timed(lambda: build_report(session, college, first, last, utcnow())),
            "branch_month": timed(lambda: build_report(session, branch, month_first, last, utcnow())),
            "branch_year": timed(lambda: build_report(session, branch, first, last, utcnow())),
            "one_by_one": timed(lambda: [build_report(session, b, first, last, utcnow()) for b in branches], 1),
            "figures": report["figures"]["total"],
        }
    results["memory_mb"] = peak_memory_mb(bench, days)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=30_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--memory-of", help=argparse.SUPPRESS)  # the child that measures the peak memory
    args = parser.parse_args()
    if args.memory_of:
        memory_child(args.memory_of, args.days)
        return
    with BenchDatabase() as bench:
        prepare(bench, args.members, args.days)
        r = measure(bench, args.days)
    f = r["figures"]
    print(f"records: {f.get('pushed', 0):,.0f} deliveries, {f.get('reads', 0):,.0f} reads, "
          f"{f.get('quiz_scored', 0):,.0f} quizzes, {f.get('events', 0):,.0f} events, "
          f"{f.get('expected', 0):,.0f} expected at them, {f.get('feedback_received', 0):,.0f} posts")
    print(f"school, a year, every figure:      {r['school']:6.2f} s   (target < {SCHOOL_TARGET_S:.0f} s: "
          f"{'met' if r['school'] < SCHOOL_TARGET_S else 'NOT met'})")
    print(f"school, a year, as .docx:          {r['school_docx']:6.2f} s   (target < {SCHOOL_TARGET_S:.0f} s: "
          f"{'met' if r['school_docx'] < SCHOOL_TARGET_S else 'NOT met'})")
    print(f"school, a year, as .xlsx (layout): {r['school_xlsx']:6.2f} s")
    before, peak = r["memory_mb"]
    print(f"peak memory of the process:        {peak:6.0f} MB  (target < {MEMORY_TARGET_MB} MB: "
          f"{'met' if peak < MEMORY_TARGET_MB else 'NOT met'}; {before:.0f} MB before the report)")
    print(f"a college, a year:                 {r['college']:6.2f} s")
    print(f"a branch, a month:                 {1000 * r['branch_month']:6.0f} ms  (target < {BRANCH_TARGET_MS} ms: "
          f"{'met' if 1000 * r['branch_month'] < BRANCH_TARGET_MS else 'NOT met'})")
    print(f"a branch, a year:                  {1000 * r['branch_year']:6.0f} ms")
    print(f"against: the school one branch at a time ({BRANCHES} reports): {r['one_by_one']:6.2f} s, "
          f"{r['one_by_one'] / r['school']:.1f}x the school's report")


if __name__ == "__main__":
    main()
