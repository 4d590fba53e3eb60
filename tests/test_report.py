"""The report to the Party committee: every figure equals a direct count of its records (activity made
through the real surfaces), required meetings named when missed, scope, the frozen snapshot, return
and resubmission, reminders once, the documents as Word, LibreOffice and openpyxl read them, the
command line, the monthly draft, and the replica."""
from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from unittest import mock

from openpyxl import load_workbook
from sqlalchemy import func, select

from models.accounts import AuditLog
from models.checkins import CheckIn, code_for, slot_of
from models.delivery import Campaign, Delivery
from models.events import Event
from models.feedback import Post
from models.members import Member
from models.quiz import AnswerRecord, QuizAttempt
from models.report import build_report, figure
from models.reportdocs import to_xlsx
from models.reportflow import Report, ReportPeriod, monthly_drafts, remind_reports
from models.signups import LeaveRequest
from models.study import Reading
from models.timeutil import local_date, local_midnight, utcnow
from tests.conftest import phone_for
from tests.helpers import ChatUser, csrf_token, make_account, make_member, signed_in
from tests.quizhelp import bank, letter_of, wrong_letter
from tests.test_contests import make_contest, play
from tests.test_feedback import act, number_in
from tests.test_feedback import post as post_numbered
from tests.test_meetings import branch_meeting
from tests.test_study import beacon, make_material, path_of, plan
from wxbot.delivery.engine import DeliveryWorker
from wxbot.study.push import push_day

ROOT = Path(__file__).resolve().parent.parent


def text(response) -> str:
    return response.get_data(as_text=True)


def answer_daily_quiz(chat: ChatUser, right: int) -> None:
    """The day's scored quiz: the first `right` questions right, the rest wrong."""
    reply, n = chat.say("答题"), 0
    while re.search(r"^[A-F]\. ", reply, re.M) and n < 20:
        reply = chat.say(letter_of(reply, "对的选项") if n < right else wrong_letter(reply))
        n += 1


def a_term_of_activity(app, session, school) -> dict:
    """Pushes and reads, the daily quiz, a contest, an event with check-ins and leave, 留言 answered and
    not, all through the webhook, the reading page and the console."""
    cs = school["cs"]
    chats = {key: ChatUser(phone_for(app), key) for key in ("oA", "oB", "oC")}
    material = make_material(session)
    plan(session, material)
    push_day(session, local_date(), utcnow())
    DeliveryWorker(app, "report-worker").step()
    link = next(m for m in chats["oA"].received(session, "customer_service") if "articles" in m)["articles"][0]["url"]
    opened = utcnow()
    reading = app.test_client().get(path_of(link)).location  # the push's link leads to the member's page
    with mock.patch("wxbot.study.views.utcnow", return_value=opened):
        assert app.test_client().get(path_of(reading)).status_code == 200
    beacon(app, reading, 15, opened + timedelta(seconds=15))
    beacon(app, reading, 15, opened + timedelta(seconds=30))
    bank(session, 6)
    answer_daily_quiz(chats["oA"], 2)
    answer_daily_quiz(chats["oC"], 1)
    contest = make_contest(session, bank(session, 2), title="党史知识竞赛")
    play(chats["oA"], contest, 2, 2)
    play(chats["oC"], contest, 1, 2)
    now = utcnow().replace(microsecond=0)
    event = Event(title="主题党日：重温入党誓词", kind="主题党日", place="301", starts_at=now - timedelta(minutes=5),
                  ends_at=now + timedelta(hours=1), signup_required=False, org_unit_id=cs.id, study_hours=2,
                  audience=json.dumps({"units": [cs.id]}))
    extra = make_member(session, branch=cs, stage="正式党员", student_no="2024099", name="缺席者")
    session.add(event)
    session.commit()
    session.add(LeaveRequest(event_id=event.id, member_id=school["oB"].id, reason="考试", status="approved"))
    session.commit()
    with mock.patch("wxbot.pipeline.utcnow", return_value=now):
        rotate = app.config["WXBOT"].events.code_rotate_seconds
        code = code_for(app.config["SECRET_KEY"], event.id, slot_of(now, rotate))
        assert "签到成功" in chats["oA"].say(f"签到 {code}")
    answered = number_in(chats["oA"].say("留言 希望主题党日安排在周五下午"))
    chats["oC"].say("留言 图书馆的学习资料能否更新")
    organiser = signed_in(app, "cs")
    act(organiser, post_numbered(session, answered), "answer", answer="好的，下周改到周五。")
    return {"event": event, "extra": extra, "contest": contest, "after": event.ends_at + timedelta(minutes=1)}


def direct_counts(session, unit_ids: set[int], first: date, last: date) -> dict:
    """The same figures counted the plain way, record by record."""
    start, end = local_midnight(first), local_midnight(last + timedelta(days=1))
    members = {m.id: m for m in session.scalars(select(Member).where(Member.org_unit_id.in_(unit_ids)))}
    deliveries = [d for d, c in session.execute(select(Delivery, Campaign).join(Campaign)) if c.push_day
                  and first <= c.push_day <= last and d.member_id in members]
    readings = [r for r in session.scalars(select(Reading)) if r.member_id in members and start <= r.opened_at < end]
    daily = [a for a in session.scalars(select(QuizAttempt)) if a.member_id in members and a.kind == "daily"
             and first <= a.day <= last]
    answers = [r for r in session.scalars(select(AnswerRecord)) if r.attempt_id in {a.id for a in daily}]
    checkins = [c for c in session.scalars(select(CheckIn)) if c.member_id in members and start <= c.at < end]
    posts = [p for p in session.scalars(select(Post)) if p.org_unit_id in unit_ids and p.topic_id is None
             and p.status in ("visible", "held") and start <= p.created_at < end]
    return {"members": len(members), "pushed": len(deliveries), "sent": sum(d.status == "sent" for d in deliveries),
            "push_days": len({c for c in session.scalars(select(Campaign.push_day)) if c and first <= c <= last
                              and any(d.campaign_id for d in deliveries)}),
            "reads": len(readings), "readers": len({r.member_id for r in readings}),
            "reading_seconds": sum(r.seconds for r in readings),
            "credited_reads": sum(r.credited_at is not None for r in readings),
            "quiz_scored": len(daily), "quiz_members": len({a.member_id for a in daily}),
            "quiz_right": sum(a.right_count for a in daily), "quiz_answered": len(answers),
            "checkins": len(checkins),
            "feedback_received": len(posts), "feedback_answered": sum(p.answered_at is not None for p in posts)}


def test_every_figure_equals_a_direct_count_of_its_records(app, session, school):
    made = a_term_of_activity(app, session, school)
    session.expire_all()
    from models.attendance import attendance
    from models.eventnotices import expected_members
    from models.members import OrgUnit
    first, last = local_date().replace(day=1), local_date()
    school_unit = session.get(OrgUnit, school["cs"].parent.parent_id)
    report = build_report(session, school_unit, first, last, made["after"])
    everyone = {u.id for u in session.scalars(select(OrgUnit))}
    for unit_ids, column in ((everyone, "total"), ({school["cs"].id, school["cs"].parent_id}, school["cs"].parent_id),
                             ({school["marx"].id, school["marx"].parent_id}, school["marx"].parent_id)):
        for key, value in direct_counts(session, unit_ids, first, last).items():
            assert figure(report, key, column) == value, (key, column)
    # The event's attendance equals its own attendance page.
    event = session.get(Event, made["event"].id)
    people = attendance(session, event, expected_members(session, event), made["after"])
    states = [p.state for p in people]
    cs_college = school["cs"].parent_id
    assert figure(report, "expected", cs_college) == len(people) == 3  # oA came, oB on leave, 缺席者 absent
    assert figure(report, "present", cs_college) == states.count("present") + states.count("late") == 1
    assert figure(report, "leave", cs_college) == states.count("leave") == 1
    assert figure(report, "absent", cs_college) == states.count("absent") == 1
    assert figure(report, "present_rate", cs_college) == 33.3
    assert figure(report, "events", school["marx"].parent_id) == 0
    assert figure(report, "event_hours", cs_college) == 2
    assert figure(report, "feedback_answered_rate") == 50.0
    # The contest: each college's players and their branch's place among the branches.
    contest = next(c for c in report["contests"] if c["id"] == made["contest"].id)
    assert contest["members"] == 2 and {b["place"] for b in contest["branches"]} == {1, 2}
    # Added up day by day (as the scheduler does once a day has settled), the figures stay the same.
    from models.reportdays import DailyFigure, settle
    assert settle(session, made["after"], -1) >= 1 and settle(session, made["after"], -1) == 0
    assert session.scalar(select(func.count()).select_from(DailyFigure)) > 0
    assert build_report(session, school_unit, first, last, made["after"])["figures"] == report["figures"]
    # The documents carry the same figures.
    book = load_workbook(io.BytesIO(to_xlsx(report, "本月")))
    total_row = next(row for row in book["活动出勤"].iter_rows(values_only=True) if str(row[0]).endswith("（合计）"))
    assert list(total_row[1:4]) == [1, 3, 1]


def test_required_meetings_are_counted_per_period_and_the_missing_ones_named(app, session, school):
    cs = school["cs"]
    today = local_date()
    last_month_end = today.replace(day=1) - timedelta(days=1)
    last_month_first = last_month_end.replace(day=1)
    start = local_midnight(last_month_first) + timedelta(days=3, hours=10)
    held = branch_meeting(session, cs, kind="支委会", start=start)
    report = build_report(session, cs, last_month_first, last_month_end, utcnow())
    assert figure(report, "held:支委会") == 1 and figure(report, "required:支委会") == 1
    named = {(m["kind"], m["unit"]) for m in report["meetings"]["missing"]}
    assert ("党小组会", cs.name) in named and ("主题党日", cs.name) in named and ("支委会", cs.name) not in named
    assert [e["id"] for e in report["events"]] == [held.id] and report["events"][0]["minutes"] == ""
    assert figure(report, "meetings_without_minutes") == 1
    # A month every branch was excused (a vacation) owes nothing.
    from models.meetings import MeetingExemption
    session.add(MeetingExemption(org_unit_id=None, month=last_month_first.strftime("%Y-%m"), reason="寒假"))
    session.commit()
    excused = build_report(session, cs, last_month_first, last_month_end, utcnow())
    assert figure(excused, "meetings_required") == 0 and not excused["meetings"]["missing"]


def test_the_page_and_documents_stay_inside_the_viewers_units(app, session, school):
    cs = signed_in(app, "cs")
    own = cs.get(f"/admin/reports?unit={school['cs'].parent_id}&kind=month&value={local_date():%Y-%m}")
    assert own.status_code == 200 and "计算机学院" in text(own) and "活动出勤" in text(own)
    for path in (f"/admin/reports?unit={school['marx'].id}", f"/admin/reports?unit={school['marx'].parent_id}",
                 f"/admin/reports/download.docx?unit={school['marx'].id}&kind=month&value=2026-11",
                 f"/admin/reports?unit={school['cs'].parent.parent_id}", "/admin/reports?unit=99999999999"):
        assert cs.get(path).status_code == 404, path
    admin = signed_in(app, "admin")
    whole = admin.get(f"/admin/reports?unit={school['cs'].parent.parent_id}&kind=year&value={local_date().year}")
    assert whole.status_code == 200 and "马克思主义学院" in text(whole) and "<svg" in text(whole)
    bad = admin.get("/admin/reports?kind=month&value=2026-13", follow_redirects=True)
    assert bad.status_code == 200 and "时间段写法不对" in text(bad)


def submit_form(client, unit_id: int, period_id: int):
    return client.post("/admin/reports/submit", data={"unit": unit_id, "period": period_id, "confirmed": "1",
                                                      "csrf_token": csrf_token(client, "/admin/")})


def review_form(client, report_id: int, action: str, comment: str = ""):
    return client.post(f"/admin/reports/{report_id}/review", data={
        "action": action, "comment": comment, "csrf_token": csrf_token(client, f"/admin/reports/{report_id}")})


def test_a_submitted_report_is_frozen_returned_with_comments_resubmitted_and_approved_up_the_tree(app, session, school):
    branch = school["cs"]
    make_account(session, "branch", "organiser", branch)
    admin = signed_in(app, "admin")
    month = local_date().strftime("%Y-%m")
    assert admin.post("/admin/reports/periods", data={"kind": "month", "value": month, "deadline": "2099-01-10",
                                                     "csrf_token": csrf_token(admin, "/admin/reports/periods")}
                      ).status_code == 302
    period = session.scalar(select(ReportPeriod))
    secretary = signed_in(app, "branch")
    asked = secretary.post("/admin/reports/submit", data={"unit": branch.id, "period": period.id,
                                                           "csrf_token": csrf_token(secretary, "/admin/")})
    assert "确认报送" in text(asked) and session.scalar(select(func.count()).select_from(Report)) == 0
    assert submit_form(secretary, branch.id, period.id).status_code == 302
    first = session.scalar(select(Report))
    frozen_members = figure(first.figures, "members")
    # New data does not change what was submitted, on the page or in its documents.
    make_member(session, branch=branch, student_no="2024100", name="新成员")
    page = text(secretary.get(f"/admin/reports/{first.id}"))
    assert first.digest in page and "待学院党委审核" in page
    sheet = load_workbook(io.BytesIO(secretary.get(f"/admin/reports/{first.id}/download.xlsx").data))["基本情况"]
    assert sheet["B2"].value == frozen_members
    live = build_report(session, branch, period.first, period.last, utcnow())
    assert figure(live, "members") == frozen_members + 1 and live["digest"] != first.digest
    # Submitting again while under review is refused; the branch cannot review itself.
    assert submit_form(secretary, branch.id, period.id).status_code == 302
    assert session.scalar(select(func.count()).select_from(Report)) == 1
    assert review_form(secretary, first.id, "approve").status_code == 302
    session.expire_all()
    assert session.get(Report, first.id).status == "college_review"
    # The college returns it with comments (a comment is required); the branch submits a new version.
    college = signed_in(app, "cs")
    review_form(college, first.id, "return")
    session.expire_all()
    assert session.get(Report, first.id).status == "college_review"
    review_form(college, first.id, "return", "请补充主题党日的内容")
    session.expire_all()
    assert session.get(Report, first.id).status == "returned"
    assert "请补充主题党日的内容" in text(secretary.get(f"/admin/reports/{first.id}"))
    assert submit_form(secretary, branch.id, period.id).status_code == 302
    second = session.scalar(select(Report).where(Report.version == 2))
    assert figure(second.figures, "members") == frozen_members + 1
    review_form(college, second.id, "approve", "同意")
    session.expire_all()
    assert session.get(Report, second.id).status == "school_review"
    assert review_form(college, second.id, "approve").status_code == 302  # not the college's to pass now
    session.expire_all()
    assert session.get(Report, second.id).status == "school_review"
    review_form(admin, second.id, "approve", "")
    session.expire_all()
    assert session.get(Report, second.id).status == "approved"
    assert session.get(Report, first.id).status == "returned" and session.get(Report, first.id).digest == first.digest
    board = text(admin.get(f"/admin/reports/periods?period={period.id}"))
    assert "已通过" in board
    actions = session.scalars(select(AuditLog.action).where(AuditLog.object_type == "report")).all()
    assert actions.count("submit") == 2 and actions.count("return") == 1 and actions.count("approve") == 2
    # Another college's organiser cannot open them.
    make_account(session, "marx", "organiser", school["marx"].parent)
    assert signed_in(app, "marx").get(f"/admin/reports/{second.id}").status_code == 404


def test_branches_and_committees_are_reminded_once_and_last_months_drafts_are_made_once(app, session, school):
    from models.followers import Follower  # noqa: F401 - the organiser below follows the account
    organiser = make_member(session, branch=school["cs"], role="organiser", student_no="2024200", name="组织员")
    ChatUser(phone_for(app), "oOrg").bind(organiser)
    today = local_date()
    period = ReportPeriod(kind="month", value="2000-01", label="2000年1月", first=date(2000, 1, 1),
                          last=date(2000, 1, 31), deadline=today + timedelta(days=2))
    session.add(period)
    session.commit()
    now = utcnow()
    assert remind_reports(session, now, 3) >= 1
    assert remind_reports(session, now, 3) == 0  # twice, or from a second scheduler: once
    labels = session.scalars(select(Campaign.audience_label).where(Campaign.audience_label == "报告提醒")).all()
    assert len(labels) == 1
    made = monthly_drafts(session, now, 10)
    assert made == session.scalar(select(func.count()).select_from(Report).where(Report.status == "draft")) >= 2
    assert monthly_drafts(session, now, 10) == 0
    draft = session.scalar(select(Report).where(Report.org_unit_id == school["cs"].id))
    month = session.get(ReportPeriod, draft.period_id)
    assert month.last == today.replace(day=1) - timedelta(days=1) and month.deadline == today.replace(day=10)


def soffice_to(tmp_path: Path, source: Path, target: str) -> Path:
    subprocess.run(["soffice", "--headless", f"-env:UserInstallation=file://{tmp_path}/lo-profile",
                    "--convert-to", target, "--outdir", str(tmp_path), str(source)],
                   check=True, capture_output=True, timeout=180)
    return source.with_suffix("." + target.split(":")[0])


def test_the_docx_opens_in_libreoffice_with_its_figures_and_blanks_and_the_xlsx_reads_back(app, session, school,
                                                                                          tmp_path):
    assert shutil.which("soffice"), "make test installs libreoffice-writer-nogui"
    branch_meeting(session, school["cs"], kind="支委会")
    admin = signed_in(app, "admin")
    unit = school["cs"].parent_id
    docx = admin.get(f"/admin/reports/download.docx?unit={unit}&kind=month&value={local_date():%Y-%m}")
    assert docx.status_code == 200 and docx.mimetype.endswith("wordprocessingml.document")
    source = tmp_path / "report.docx"
    source.write_bytes(docx.data)
    from docx import Document
    document = Document(str(source))
    section = document.sections[0]
    assert round(section.top_margin.mm) == 37 and round(section.left_margin.mm) == 28
    heading_fonts = {r._element.rPr.rFonts.get(
        "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}eastAsia") for p in document.paragraphs
        for r in p.runs if p.text.startswith("一、")}
    assert heading_fonts == {"黑体"}
    first_table = document.tables[0]
    assert [c.text for c in first_table.rows[1].cells][:2] == ["本科生第一党支部", str(2)]
    assert {r._element.rPr.rFonts.get("{http://schemas.openxmlformats.org/wordprocessingml/2006/main}eastAsia")
            for row in first_table.rows[1:] for c in row.cells for p in c.paragraphs for r in p.runs} == {"仿宋_GB2312"}
    body = soffice_to(tmp_path, source, "txt:Text (encoded):UTF8").read_text(encoding="utf-8-sig")
    assert "计算机学院" in body and "一、基本情况" in body and "（待填写）" in body and "校验码" in body
    members = figure(build_report(session, school["cs"].parent, local_date().replace(day=1), local_date(), utcnow()),
                     "members")
    assert f"现有成员 {members} 人" in body
    pdf = soffice_to(tmp_path, source, "pdf").read_bytes()
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
    assert 2 <= pages <= 12
    xlsx = admin.get(f"/admin/reports/download.xlsx?unit={unit}&kind=month&value={local_date():%Y-%m}")
    book = load_workbook(io.BytesIO(xlsx.data))
    sheets = {"说明", "基本情况", "三会一课（按期已开／应开）", "活动出勤", "理论学习", "留言办理"}
    assert sheets <= set(book.sheetnames)
    assert book["基本情况"]["A2"].value == "本科生第一党支部" and book["基本情况"]["B2"].value == 2


def test_the_command_line_builds_the_report_for_scripts(app, session, school, tmp_path):
    out = tmp_path / "r.xlsx"
    env = {"WXBOT_DATABASE_URL": app.config["WXBOT"].database_url, "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "wxbot", "report", "build", "--unit",
                           str(school["cs"].id), "--from", "2026-09-01", "--to", "2027-01-31", "--format", "xlsx",
                           "-o", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "校验码" in done.stdout and load_workbook(out)["基本情况"]["A2"].value.startswith("本科生第一党支部")
    refused = subprocess.run([sys.executable, "-m", "flask", "--app", "wxbot", "report", "build", "--unit",
                              str(school["cs"].id), "--from", "2027-01-31", "--to", "2026-09-01"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0 and "结束日期早于开始日期" in refused.stderr


def test_heavy_reads_go_to_the_replica_when_one_is_set(make_app, app, session, school, backend, tmp_path):
    """On SQLite the replica is a copy of the file taken before a new member was added: the report shows
    the copy's count. On PostgreSQL it is the same database under its own connection name: the report's
    statements run on the replica's engine, none of them on the primary's."""
    from sqlalchemy import event

    from wxbot.db import REPLICA
    session.commit()
    if backend["name"] == "embedded":
        import sqlite3
        copy = tmp_path / "replica.db"
        with sqlite3.connect(app.config["WXBOT"].database_url.removeprefix("sqlite:///")) as source, \
                sqlite3.connect(copy) as target:
            source.backup(target)
        replica_url = f"sqlite:///{copy}"
    else:
        replica_url = app.config["WXBOT"].database_url + "?application_name=wxbot_replica"
    with_replica = make_app(database_replica_url=replica_url)
    make_member(session, branch=school["cs"], student_no="2024300", name="复制之后")
    statements = {"replica": 0, "primary": 0}
    event.listen(with_replica.extensions[REPLICA].kw["bind"], "before_cursor_execute",
                 lambda *a, **k: statements.__setitem__("replica", statements["replica"] + 1))
    client = signed_in(with_replica, "admin")
    event.listen(with_replica.extensions["wxbot.db"].kw["bind"], "before_cursor_execute",
                 lambda _c, _cur, sql, *a, **k: statements.__setitem__(
                     "primary", statements["primary"] + ("study_readings" in sql or "quiz_attempts" in sql)))
    page = text(client.get(f"/admin/reports?unit={school['cs'].id}&kind=month&value={local_date():%Y-%m}"))
    members = re.search(r'data-section="overview".*?<td class="text-nowrap">本科生第一党支部</td>\s*'
                        r'<td class="text-nowrap" data-label="成员">(\d+)</td>', page, re.S)
    live = session.scalar(select(func.count()).select_from(Member).where(Member.org_unit_id == school["cs"].id))
    assert members, page[:500]
    assert int(members.group(1)) == (live - 1 if backend["name"] == "embedded" else live)
    assert statements["replica"] >= 8 and statements["primary"] == 0
