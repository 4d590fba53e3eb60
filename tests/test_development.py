"""发展党员: the date engine against the rules (hypothesis), and the feature through its surfaces: the
console over HTTP (steps with refusals, the board, scope, notes, undo, transfer, import and export,
local rules), 我的发展 and 发展 学号 through the webhook, and reminders that go out once."""
from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook
from sqlalchemy import func, select

from models.accounts import AuditLog
from models.delivery import Campaign, Delivery
from models.development import DevRecord, DevStep, record_step, rules_in_force, start_record
from models.devrules import Done, History, load_rules, next_steps, nth_working_day, refusals, window
from models.members import Member
from models.timeutil import local_date
from tests.conftest import phone_for
from tests.helpers import ChatUser, csrf_token, make_member, signed_in

RULES = load_rules()
MAIN = [s.key for s in RULES.main_line]


# -- the date engine ------------------------------------------------------------------------------

def valid_history(start: date, gaps: list[int], upto: int, extension: int = 0) -> History:
    """A history along the main line up to step number `upto`, each step `gaps[i]` days after the
    earliest day the rules allow it (details that satisfy the rules)."""
    history = History([])
    for n, key in enumerate(MAIN[:upto]):
        step = RULES.step(key)
        found = window(RULES, history, step)
        floor = max([history.first(r) for r in step.requires] + [found.earliest or start])
        on = floor + timedelta(days=gaps[n % len(gaps)])
        if found.latest and on > found.latest:  # on time (the approval's 3 months hold the talk before it)
            on = max(floor, found.latest)
        ends_on = nth_working_day(on, step.window_days)[0] if step.window_days else None
        assert refusals(RULES, history, key, on, ends_on) == [], (key, on)
        history.done.append(Done(key, on, ends_on))
        if key == "oath" and extension:
            history.done.append(Done("extension", on, None, {"months": extension}))
    return history


@settings(max_examples=150, deadline=None)
@given(start=st.dates(min_value=date(2018, 1, 1), max_value=date(2026, 6, 30)),
       gaps=st.lists(st.integers(min_value=0, max_value=120), min_size=1, max_size=8),
       upto=st.integers(min_value=1, max_value=len(MAIN)), extension=st.sampled_from([0, 6, 12]))
def test_random_valid_histories_never_get_a_due_date_earlier_than_its_rule(start, gaps, upto, extension):
    history = valid_history(start, gaps, upto, extension)
    for due in next_steps(RULES, history):
        step, earliest = due.step, due.window.earliest
        if step.key == "candidate":  # a year as 积极分子 (第十三条)
            assert earliest >= history.first("activist") + relativedelta(years=1)
        if step.key == "full_meeting":  # the 预备期: a year from the 支部大会, plus any extension
            assert earliest >= history.first("branch_meeting") + relativedelta(months=12 + extension)
        if step.key == "talk":
            assert due.window.latest == history.first("apply") + relativedelta(months=1)
        for required in step.requires:
            assert history.has(required)
        if earliest:  # the day before the earliest is refused, naming the rule
            day_before = earliest - timedelta(days=1)
            if all(day_before >= history.first(r) for r in step.requires):
                reasons = refusals(RULES, history, step.key, day_before)
                assert any(step.article in r for r in reasons), reasons


@settings(max_examples=100, deadline=None)
@given(start=st.dates(min_value=date(2018, 1, 1), max_value=date(2026, 6, 30)),
       gaps=st.lists(st.integers(min_value=0, max_value=60), min_size=1, max_size=5),
       upto=st.integers(min_value=2, max_value=len(MAIN) - 1), back=st.integers(min_value=1, max_value=400))
def test_every_date_before_a_required_step_is_refused_with_the_rule_named(start, gaps, upto, back):
    history = valid_history(start, gaps, upto)
    step = RULES.step(MAIN[upto])
    latest_required = max(history.first(r) for r in step.requires)
    reasons = refusals(RULES, history, step.key, latest_required - timedelta(days=back))
    assert reasons and any("日期顺序" in r or step.article in r for r in reasons)


def test_publicity_across_national_day_counts_the_working_saturday_and_not_the_holiday():
    history = valid_history(date(2024, 1, 10), [0], MAIN.index("publicity"))
    on = date(2026, 9, 30)  # Wednesday; 10-01 to 10-07 off, Saturday 10-10 a working day (调休)
    history.done = [Done(d.key, min(d.on, on - timedelta(days=1)), d.ends_on) for d in history.done]
    refused = refusals(RULES, history, "publicity", on, date(2026, 10, 9))
    assert refused and "不少于 5 个工作日" in refused[0] and "只有 3 个工作日" in refused[0]
    assert "只有 4 个工作日" in refusals(RULES, history, "publicity", on, date(2026, 10, 11))[0]  # Sunday adds none
    assert refusals(RULES, history, "publicity", on, date(2026, 10, 12)) == []
    # Counted Monday to Friday, 10-06 would have looked like the fifth day.
    assert refusals(RULES, history, "publicity", on, date(2026, 10, 6))


def test_a_student_leaving_within_three_months_is_not_pre_reviewed():
    history = valid_history(date(2024, 1, 10), [3], MAIN.index("pre_review"))
    on = history.first("publicity") + timedelta(days=20)
    history.leaves_on = on + relativedelta(months=2)
    reasons = refusals(RULES, history, "pre_review", on)
    assert reasons and "离校" in reasons[0] and "第十八条" in reasons[0]
    history.leaves_on = on + relativedelta(months=4)
    assert refusals(RULES, history, "pre_review", on) == []


def test_an_extended_probation_moves_the_end_and_happens_once():
    history = valid_history(date(2023, 1, 10), [5], MAIN.index("full_application"))
    meeting = history.first("branch_meeting")
    oath = history.first("oath")
    assert refusals(RULES, history, "extension", oath, details={"months": 3})  # 6 to 12 months only
    history.done.append(Done("extension", oath, None, {"months": 6}))
    full = next(d for d in next_steps(RULES, history) if d.key == "full_application")
    assert full.window.earliest == meeting + relativedelta(months=18) - relativedelta(months=1)
    assert "已经记录过了" in refusals(RULES, history, "extension", oath, details={"months": 6})[0]


def test_a_date_beyond_the_calendar_is_marked_provisional():
    day, provisional = nth_working_day(date(2035, 9, 28), 5)
    assert provisional and day == date(2035, 10, 4)  # Monday to Friday, told as such
    assert nth_working_day(date(2026, 9, 28), 5) == (date(2026, 10, 9), False)


# -- the console ----------------------------------------------------------------------------------

def days_ago(n: int) -> str:
    return (local_date() - timedelta(days=n)).isoformat()


def post(client, path: str, **data):
    return client.post(path, data={"csrf_token": csrf_token(client, "/admin/"), **data})


def page_text(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def applicant(app, school, session):
    """A 共青团员 of 计算机学院 with a record opened 500 days ago through the console."""
    member = make_member(session, branch=school["cs"], stage="共青团员", student_no="2025300", name="李响")
    cs = signed_in(app, "cs")
    response = post(cs, "/admin/development/new", student_no="2025300", applied_on=days_ago(500))
    assert response.status_code == 302
    session.expire_all()
    return session.scalar(select(DevRecord).where(DevRecord.member_id == member.id))


def record_in_console(client, record_id: int, key: str, on: str, **fields):
    response = post(client, f"/admin/development/{record_id}/step", key=key, on=on, **fields)
    assert response.status_code == 302
    return page_text(client.get(response.headers["Location"]))


def test_an_organiser_records_steps_the_rules_refuse_with_reasons_and_the_stage_follows(app, applicant, session,
                                                                                        school):
    cs = signed_in(app, "cs")
    rid = applicant.id
    refused = record_in_console(cs, rid, "talk", days_ago(501))
    assert "日期顺序" in refused and "不能早于“递交入党申请书”" in refused
    assert "已记录：党组织派人谈话" in record_in_console(cs, rid, "talk", days_ago(480))
    record_in_console(cs, rid, "recommend", days_ago(470))
    assert "已记录：支委会确定为入党积极分子" in record_in_console(cs, rid, "activist", days_ago(400))
    session.expire_all()
    assert session.get(Member, applicant.member_id).stage == "入党积极分子"
    record_in_console(cs, rid, "activist_filing", days_ago(390), document="计党发〔2025〕3号")
    refused = record_in_console(cs, rid, "contacts", days_ago(390), contacts="2024002")  # a 共青团员
    assert "培养联系人须为正式党员" in refused
    record_in_console(cs, rid, "contacts", days_ago(390), contacts="2024001")
    refused = record_in_console(cs, rid, "candidate", days_ago(100))
    assert "第十三条" in refused and "满 1 年后" in refused
    record_in_console(cs, rid, "candidate", days_ago(30))
    session.expire_all()
    assert session.get(Member, applicant.member_id).stage == "发展对象"
    page = page_text(cs.get(f"/admin/development/{rid}"))
    assert "计党发〔2025〕3号" in page and "集中培训" in page and "政治审查" in page
    entries = session.scalars(select(AuditLog.summary).where(AuditLog.object_type == "development")).all()
    assert any("确定为发展对象" in e for e in entries) and any("新建" in e for e in entries)


def test_undo_takes_back_the_last_step_and_its_stage_on_the_record(app, applicant, session):
    cs = signed_in(app, "cs")
    for key, ago in (("talk", 480), ("recommend", 470), ("activist", 400)):
        record_in_console(cs, applicant.id, key, days_ago(ago))
    response = post(cs, f"/admin/development/{applicant.id}/undo")
    assert "已撤销“支委会确定为入党积极分子”" in page_text(cs.get(response.headers["Location"]))
    session.expire_all()
    assert session.get(Member, applicant.member_id).stage == "入党申请人"
    assert session.scalar(select(AuditLog).where(AuditLog.action == "undo")).before


def test_a_branch_meeting_needs_two_full_member_introducers_and_a_majority(app, school, session):
    member = make_member(session, branch=school["cs"], stage="发展对象", student_no="2025301")
    with app.app_context():
        from wxbot.db import db
        record = through_step(db.session, db.session.get(Member, member.id), "application_form",
                              local_date() - timedelta(days=900))
        db.session.commit()
        rid = record.id
    cs = signed_in(app, "cs")
    refused = record_in_console(cs, rid, "branch_meeting", days_ago(5), introducers="2024001",
                                entitled="20", present="15", favour="12")
    assert "入党介绍人应为 2 名正式党员" in refused
    refused = record_in_console(cs, rid, "branch_meeting", days_ago(5), introducers="2024001,2024002",
                                entitled="20", present="10", favour="10")
    assert "入党介绍人须为正式党员" in refused and "超过应到会人数的半数" in refused
    make_member(session, branch=school["cs"], stage="正式党员", student_no="2024009")
    done = record_in_console(cs, rid, "branch_meeting", days_ago(5), introducers="2024001、2024009",
                             entitled="20", present="15", favour="14")
    assert "已记录：支部大会讨论接收预备党员" in done
    session.expire_all()
    assert session.get(Member, member.id).stage == "预备党员"


def through_step(session, member: Member, last: str, start: date, at: dict | None = None) -> DevRecord:
    """A record of `member` along the main line up to and including `last`, at the earliest dates
    (or the dates `at` gives some steps)."""
    from models.development import history_of
    record = start_record(session, member, start, "测试")
    for key in MAIN[1:MAIN.index(last) + 1]:
        history = history_of(record)
        step = RULES.step(key)
        on = (at or {}).get(key) or max([history.first(r) for r in step.requires] +
                                        [window(RULES, history, step).earliest or start])
        ends_on = nth_working_day(on, step.window_days)[0] if step.window_days else None
        record_step(session, record, key, on, "测试", ends_on, check_people=False)
    return record


def test_the_board_counts_lists_and_keeps_other_colleges_out(app, school, session, applicant):
    with app.app_context():
        from wxbot.db import db
        marx = make_member(db.session, branch=db.session.get(type(school["marx"]), school["marx"].id),
                           stage="共青团员", student_no="M2025")
        start_record(db.session, db.session.get(Member, marx.id), local_date() - timedelta(days=40), "测试")
        overdue = make_member(db.session, branch=db.session.get(type(school["cs"]), school["cs"].id),
                              stage="共青团员", student_no="2025302")
        start_record(db.session, db.session.get(Member, overdue.id), local_date() - timedelta(days=45), "测试")
        ready = make_member(db.session, branch=db.session.get(type(school["cs"]), school["cs"].id),
                            stage="共青团员", student_no="2025303")
        through_step(db.session, db.session.get(Member, ready.id), "contacts", local_date() - timedelta(days=600))
        db.session.commit()
        marx_record = db.session.scalar(select(DevRecord.id).join(Member).where(Member.student_no == "M2025"))
    cs = signed_in(app, "cs")
    board = page_text(cs.get("/admin/development"))
    assert 'data-stage="入党申请人">2<' in board and 'data-stage="入党积极分子">1<' in board
    assert 'data-list="overdue">2<' in board  # the talk is due within a month of the application
    assert 'data-list="candidates">1<' in board
    assert "M2025" not in board
    assert cs.get(f"/admin/development/{marx_record}").status_code == 404
    assert "M2025" in page_text(signed_in(app, "admin").get("/admin/development"))
    listed = page_text(cs.get("/admin/development?show=candidates"))
    assert "2025303" in listed and "2025300" not in listed


def test_political_review_notes_are_read_only_by_admins_and_the_branch(app, school, session):
    member = make_member(session, branch=school["cs"], stage="发展对象", student_no="2025304")
    with app.app_context():
        from wxbot.db import db
        record = through_step(db.session, db.session.get(Member, member.id), "candidate_filing",
                              local_date() - timedelta(days=800))
        db.session.commit()
        rid = record.id
    cs = signed_in(app, "cs")  # an organiser of the college, not of the branch
    record_in_console(cs, rid, "political_review", days_ago(3), note="父亲工作单位情况已核实")
    assert "父亲工作单位" not in page_text(cs.get(f"/admin/development/{rid}"))
    assert "父亲工作单位" in page_text(signed_in(app, "admin").get(f"/admin/development/{rid}"))
    assert "父亲工作单位" not in "".join(session.scalars(select(AuditLog.after)).all())


def test_a_transfer_keeps_every_date_and_tells_both_branches(app, school, session, applicant):
    from models.members import OrgUnit
    from tests.helpers import make_branch
    second = make_branch(session, "计算机学院", "研究生党支部")
    old_secretary = make_member(session, branch=school["cs"], stage="正式党员", role="organiser", student_no="S1")
    new_secretary = make_member(session, branch=second, stage="正式党员", role="organiser", student_no="S2")
    ChatUser(phone_for(app), "oS1").bind(old_secretary)
    ChatUser(phone_for(app), "oS2").bind(new_secretary)
    cs = signed_in(app, "cs")
    record_in_console(cs, applicant.id, "talk", days_ago(480))
    response = post(cs, f"/admin/development/{applicant.id}/transfer", unit=str(second.id))
    assert "通知了 2 位组织员" in page_text(cs.get(response.headers["Location"]))
    session.expire_all()
    assert session.get(Member, applicant.member_id).org_unit_id == second.id
    assert len(session.get(DevRecord, applicant.id).steps) == 2
    label = session.scalar(select(Campaign.id).where(Campaign.audience_label == "发展党员：组织关系转接"))
    assert session.scalar(select(func.count()).select_from(Delivery).where(Delivery.campaign_id == label)) == 2
    assert session.get(OrgUnit, second.id).name == "研究生党支部"


LEDGER = ("学号,姓名,预计离校,递交入党申请书,党组织派人谈话,推荐（党员推荐、群团组织推优）,支委会确定为入党积极分子,"
          "报上级党委备案（积极分子）,指定培养联系人,培养联系人\n")


def upload(client, name: str, content: bytes):
    return client.post("/admin/development/import", content_type="multipart/form-data",
                       data={"file": (io.BytesIO(content), name), "csrf_token": csrf_token(client, "/admin/")})


def test_a_ledger_imports_all_or_nothing_in_utf8_and_gbk_and_exports_back(app, school, session):
    for number, name in (("2025310", "周一"), ("2025311", "吴二")):
        make_member(session, branch=school["cs"], stage="共青团员", student_no=number, name=name)
    bad = LEDGER + ("2025310,周一,2029-06-30,2025-03-01,2025年3月20日,2025/4/1,2025-05-01,2025-05-10,2025-05-10,"
                    "王老师\n2025311,吴二,,2025-03-01,2025-02-01,,,,,\n")
    cs = signed_in(app, "cs")
    refused = upload(cs, "台账.csv", bad.encode("gbk"))
    assert refused.status_code == 400 and "第 3 行" in page_text(refused) and "日期顺序" in page_text(refused)
    assert session.scalar(select(func.count()).select_from(DevRecord)) == 0
    good = bad.replace("2025-02-01", "2025-03-15")
    assert upload(cs, "台账.csv", good.encode("gbk")).status_code == 302
    session.expire_all()
    assert session.scalar(select(Member.stage).where(Member.student_no == "2025310")) == "入党积极分子"
    assert session.scalar(select(func.count()).select_from(DevStep)) == 8
    exported = cs.get("/admin/development/ledger.xlsx")
    rows = list(load_workbook(io.BytesIO(exported.data)).active.iter_rows(values_only=True))
    assert "2025-03-20" in rows[1] or "2025-03-20" in rows[2]
    # The export imports back: unchanged rows are recognised, and into an empty ledger it rebuilds the same.
    assert upload(cs, "台账.xlsx", exported.data).status_code == 302
    for record in session.scalars(select(DevRecord)).all():
        session.delete(record)
    session.commit()
    assert upload(cs, "台账.xlsx", exported.data).status_code == 302
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(DevStep)) == 8
    utf8 = upload(cs, "台账.csv", "\ufeff".encode() + good.replace("周一", "周一一").encode())
    assert utf8.status_code == 400 and "姓名与名单不符" in page_text(utf8)


def test_local_rules_are_changed_by_admins_audited_and_recompute_the_dates(app, applicant, session):
    cs = signed_in(app, "cs")
    for key, ago in (("talk", 480), ("recommend", 470)):
        record_in_console(cs, applicant.id, key, days_ago(ago))
    assert post(cs, "/admin/development/rules", activist_after_apply_months="18").status_code == 403
    admin = signed_in(app, "admin")
    assert post(admin, "/admin/development/rules", activist_after_apply_months="18",
                intake_months="3,9").status_code == 302
    refused = record_in_console(cs, applicant.id, "activist", days_ago(400))
    assert "本校规则" in refused and "18 个月" in refused
    session.expire_all()
    assert session.get(DevRecord, applicant.id).next_earliest == local_date() - timedelta(days=500) + relativedelta(
        months=18)
    assert session.scalar(select(AuditLog).where(AuditLog.object_type == "development_rules"))
    assert "12,9" not in page_text(admin.get("/admin/development/rules"))
    assert post(admin, "/admin/development/rules", intake_months="13").status_code == 302
    assert rules_in_force_of(app).local["intake_months"] == [3, 9]  # refused, unchanged


def rules_in_force_of(app):
    with app.app_context():
        from wxbot.db import db
        return rules_in_force(db.session)


def test_a_class_is_recorded_for_training_all_or_nothing(app, school, session):
    numbers = []
    with app.app_context():
        from wxbot.db import db
        for n in range(3):
            member = make_member(db.session, branch=db.session.get(type(school["cs"]), school["cs"].id),
                                 stage="发展对象", student_no=f"202532{n}")
            through_step(db.session, db.session.get(Member, member.id), "candidate",
                         local_date() - timedelta(days=700))
            numbers.append(member.student_no)
        db.session.commit()
    cs = signed_in(app, "cs")
    short = post(cs, "/admin/development/batch", key="training", on=days_ago(10), ends_on=days_ago(9),
                 training_days="2", student_nos="\n".join(numbers))
    assert short.status_code == 400 and "不少于 3 天" in page_text(short)
    absurd = post(cs, "/admin/development/batch", key="training", on=days_ago(10), ends_on=days_ago(7),
                  training_days="9" * 400, student_nos="\n".join(numbers))
    assert absurd.status_code == 400 and "不少于 3 天" in page_text(absurd)
    assert session.scalar(select(func.count()).select_from(DevStep).where(DevStep.key == "training")) == 0
    done = post(cs, "/admin/development/batch", key="training", on=days_ago(10), ends_on=days_ago(7),
                training_days="3", student_nos=", ".join(numbers))
    assert done.status_code == 302
    assert session.scalar(select(func.count()).select_from(DevStep).where(DevStep.key == "training")) == 3


def test_a_training_class_run_as_an_event_is_recorded_from_its_check_ins(app, school, session):
    from models.checkins import CheckIn
    from models.events import Event
    from models.timeutil import utcnow
    start = utcnow() - timedelta(days=12)
    event = Event(title="发展对象培训班", kind="党课", place="党校", starts_at=start, ends_at=start + timedelta(days=2),
                  study_hours=24, org_unit_id=school["cs"].parent_id, created_by="cs")
    session.add(event)
    session.commit()
    with app.app_context():
        from wxbot.db import db
        for n in range(2):
            member = make_member(db.session, branch=db.session.get(type(school["cs"]), school["cs"].id),
                                 stage="发展对象", student_no=f"202534{n}")
            through_step(db.session, db.session.get(Member, member.id), "candidate",
                         local_date() - timedelta(days=700))
            db.session.add(CheckIn(event_id=event.id, member_id=member.id, method="scan"))
        db.session.add(CheckIn(event_id=event.id, member_id=school["oA"].id, method="scan"))  # no record: left out
        db.session.commit()
    done = post(signed_in(app, "cs"), "/admin/development/batch", key="training", event_id=str(event.id))
    assert done.status_code == 302
    steps = session.scalars(select(DevStep).where(DevStep.key == "training")).all()
    assert len(steps) == 2 and all(s.detail["training_hours"] == 24 and s.ends_on for s in steps)
    outside = post(signed_in(app, "cs"), "/admin/development/batch", key="training", event_id="999999")
    assert outside.status_code == 400 and "没有编号为 999999 的活动" in page_text(outside)


# -- chat -----------------------------------------------------------------------------------------

def test_my_development_tells_the_member_their_steps_and_the_next_window(app, school, session, applicant):
    cs = signed_in(app, "cs")
    for key, ago in (("talk", 480), ("recommend", 470), ("activist", 400), ("activist_filing", 390),
                     ("contacts", 390)):
        record_in_console(cs, applicant.id, key, days_ago(ago), contacts="2024001")
    member = session.get(Member, applicant.member_id)
    chat = ChatUser(phone_for(app), "oApplicant")
    chat.bind(member)
    reply = chat.say("我的发展")
    earliest = (local_date() - timedelta(days=400) + relativedelta(years=1)).isoformat()
    assert "入党积极分子" in reply and f"确定为发展对象最早在 {earliest} 以后，由支部讨论" in reply
    assert days_ago(480) in reply and "2024001" not in reply
    assert "培养教育考察应在" in reply and "已逾期" in reply  # every 6 months since becoming 积极分子 400 days ago
    assert chat.click("我的发展") == reply
    outsider = ChatUser(phone_for(app), "oB")
    assert "还没有发展记录" in outsider.say("我的发展")
    assert "发展进度" not in outsider.say("发展 2025300")  # not an organiser


def test_an_organiser_asks_about_someone_in_their_scope_only(app, school, session, applicant):
    member = session.get(Member, school["oA"].id)
    member.role = "organiser"
    session.commit()
    chat = ChatUser(phone_for(app), "oA")
    assert "李响的发展进度" in chat.say("发展 2025300")
    assert "范围内没有" in chat.say("发展 T0001")


# -- reminders ------------------------------------------------------------------------------------

def test_reminders_go_out_once_whatever_runs_them(app, school, session, applicant):
    from scheduler.jobs import development_reminder_job
    from wxbot.delivery.engine import DeliveryWorker
    secretary = make_member(session, branch=school["cs"], stage="正式党员", role="organiser", student_no="S9")
    chat = ChatUser(phone_for(app), "oSecretary")
    chat.bind(secretary)
    probationer = make_member(session, branch=school["cs"], stage="发展对象", student_no="2025330")
    with app.app_context():
        from wxbot.db import db
        meeting = local_date() + timedelta(days=20) - relativedelta(months=12)  # the 预备期 ends in 20 days
        through_step(db.session, db.session.get(Member, probationer.id), "oath", meeting - relativedelta(years=3),
                     at={"branch_meeting": meeting})
        db.session.commit()
    follower = ChatUser(phone_for(app), "oProbationer")
    follower.bind(probationer)
    first, second = development_reminder_job(app), development_reminder_job(app)  # two schedulers
    assert first == {"organisers": 1, "probation": 1, "reports": 0}
    assert second == {"organisers": 0, "probation": 0, "reports": 0}
    DeliveryWorker(app, "w").step()
    told = [text for text in texts(chat, session) if "发展党员提醒" in text]
    assert len(told) == 1 and "李响：党组织派人谈话（已逾期" in told[0]
    notice = [text for text in texts(follower, session) if "预备期" in text]
    assert len(notice) == 1 and (local_date() + timedelta(days=20)).isoformat() in notice[0]


def texts(chat: ChatUser, session) -> list[str]:
    """The text of every message that reached this user's phone."""
    return [m.get("content", "") for m in chat.received(session)]


def test_the_demo_school_shows_every_stage_on_the_board(app, session):
    from tests.helpers import make_account
    from wxbot.demo import DEMO_DEVELOPMENT, load_demo, load_demo_development
    load_demo(session, "演示大学")
    on_the_path = session.scalar(select(func.count()).select_from(Member).where(
        Member.stage.in_(tuple(DEMO_DEVELOPMENT))))
    assert load_demo_development(session, local_date()) == on_the_path > 0
    assert load_demo_development(session, local_date()) == 0  # a second make run adds nothing
    make_account(session, "admin", "admin")
    board = page_text(signed_in(app, "admin").get("/admin/development"))
    for stage in DEMO_DEVELOPMENT:
        assert f'data-stage="{stage}">0<' not in board
    for shown in ("overdue", "candidates", "probation"):
        assert f'data-list="{shown}">0<' not in board


def test_the_stage_of_someone_on_the_path_follows_the_record_not_a_form_or_an_import(app, applicant, session, school):
    cs = signed_in(app, "cs")
    member = session.get(Member, applicant.member_id)
    page = page_text(cs.get(f"/admin/members/{member.id}"))
    assert "由<a" in page and "发展党员记录" in page
    refused = post(cs, f"/admin/members/{member.id}", name=member.name, stage="预备党员", role="member",
                   unit=str(member.org_unit_id))
    assert "政治面貌由发展党员记录决定" in page_text(cs.get(refused.headers["Location"]))
    rows = "学号,姓名,学院,支部,政治面貌,角色\n2025300,李响,计算机学院,本科生第一党支部,正式党员,\n"
    imported = cs.post("/admin/members/import", content_type="multipart/form-data",
                       data={"file": (io.BytesIO(rows.encode()), "名单.csv"), "csrf_token": csrf_token(cs, "/admin/")})
    assert imported.status_code == 400 and "政治面貌由发展党员记录决定" in page_text(imported)
    session.expire_all()
    assert session.get(Member, member.id).stage == "入党申请人"


def test_a_quarterly_thought_report_reminder_when_the_school_asks_for_it(app, school, session, applicant):
    from scheduler.jobs import development_reminder_job
    cs = signed_in(app, "cs")
    for key, ago in (("talk", 480), ("recommend", 470), ("activist", 400)):
        record_in_console(cs, applicant.id, key, days_ago(ago))
    ChatUser(phone_for(app), "oActivist").bind(session.get(Member, applicant.member_id))
    assert development_reminder_job(app)["reports"] == 0  # off by default
    post(signed_in(app, "admin"), "/admin/development/rules", activist_after_apply_months="0",
         thought_report_quarterly="1")
    assert development_reminder_job(app)["reports"] == 1
    assert development_reminder_job(app)["reports"] == 0  # once a quarter
