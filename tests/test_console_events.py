"""Events in the console: create within scope, the check-in screen's state, cancel with the count and
one notice, attendance and its export, 送学 once, a term imported all or nothing (console and CLI),
and attendance over a term."""
import io
import json
from datetime import timedelta

from openpyxl import load_workbook
from sqlalchemy import func, select

from models.checkins import CheckIn, code_for, slot_of
from models.delivery import Campaign, Delivery
from models.events import Event
from models.study import Material
from models.timeutil import show, utcnow
from tests.conftest import phone_for
from tests.helpers import ChatUser, csrf_token, signed_in
from tests.test_events import make_event

FORM_TIME = "%Y-%m-%dT%H:%M"


def post(client, path, files=None, **fields):
    data = {**fields, "csrf_token": csrf_token(client, "/admin/events/new")}
    if files:
        data.update(files)
    return client.post(path, data=data, follow_redirects=True, content_type="multipart/form-data")


def event_form(**fields):
    start = utcnow() + timedelta(days=2)
    base = {"title": "十二月主题党日", "kind": "主题党日", "place": "图书馆 301", "signup_required": "1",
            "capacity": "40", "starts_at": show(start, FORM_TIME),
            "ends_at": show(start + timedelta(hours=2), FORM_TIME),
            "points": "3", "checkin_before_min": "30", "checkin_after_min": "30", "late_after_min": "10"}
    base.update(fields)
    return base


def test_an_organiser_creates_an_event_for_their_college_only(app, session, school):
    organiser = signed_in(app, "cs")
    page = post(organiser, "/admin/events/new", **event_form(units=str(school["marx"].id))).get_data(as_text=True)
    assert "活动已保存" in page
    event = session.scalar(select(Event))
    assert json.loads(event.audience)["units"] == [school["cs"].parent_id]  # the other college was dropped
    assert event.capacity == 40 and event.points == 3
    assert "十二月主题党日" in ChatUser(phone_for(app), "oA").say("活动")
    assert "十二月主题党日" not in ChatUser(phone_for(app), "oC").say("活动")


def test_a_bad_form_says_what_is_wrong_and_saves_nothing(app, session, school):
    admin = signed_in(app, "admin")
    start = utcnow() + timedelta(days=1)
    response = post(admin, "/admin/events/new", **event_form(ends_at=show(start - timedelta(hours=1), FORM_TIME),
                                                            starts_at=show(start, FORM_TIME)))
    assert response.status_code == 400 and "结束时间要晚于开始时间" in response.get_data(as_text=True)
    response = post(admin, "/admin/events/new", **event_form(capacity="many"))
    assert response.status_code == 400 and "人数上限不是数字" in response.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(Event)) == 0


def test_another_colleges_event_cannot_be_edited_or_projected(app, session, school):
    event = make_event(session, org_unit_id=school["marx"].parent_id)
    organiser = signed_in(app, "cs")
    assert organiser.get(f"/admin/events/{event.id}/edit").status_code == 404
    assert organiser.get(f"/admin/events/{event.id}/screen.json").status_code == 404


def test_the_check_in_screen_shows_the_current_code_a_qr_code_and_the_count(app, session, school):
    event = make_event(session, starts=timedelta(minutes=-5), org_unit_id=school["cs"].parent_id)
    organiser = signed_in(app, "cs")
    assert "签到 <span id=\"code\">" in organiser.get(f"/admin/events/{event.id}/screen").get_data(as_text=True)
    state = organiser.get(f"/admin/events/{event.id}/screen.json").get_json()
    now = utcnow()
    assert state["open"] and state["count"] == 0 and state["qr"]
    assert state["code"] in {code_for(app.config["SECRET_KEY"], event.id, slot_of(now, 15) - d) for d in (0, 1)}
    # The QR code is WeChat's (the sandbox's record of qrcode/create), with the slot's signed scene.
    codes = organiser.get("/sandbox/qrcodes").get_json()
    assert any(q["scene"].startswith(f"ck:{event.id}.") for q in codes)
    scene = next(q["scene"] for q in codes if q["scene"].startswith(f"ck:{event.id}."))
    assert "签到成功" in ChatUser(phone_for(app), "oA").scan(scene)
    state = organiser.get(f"/admin/events/{event.id}/screen.json").get_json()
    assert state["count"] == 1 and state["recent"][0]["name"] == school["oA"].name


def test_cancelling_asks_with_the_count_and_tells_everyone_once(app, session, school):
    event = make_event(session, org_unit_id=school["cs"].parent_id)
    for openid in ("oA", "oB"):
        ChatUser(phone_for(app), openid).say(f"报名 {event.id}")
    organiser = signed_in(app, "cs")
    page = post(organiser, f"/admin/events/{event.id}/cancel").get_data(as_text=True)
    assert "确认取消活动" in page and "2" in page
    assert session.scalar(select(func.count()).select_from(Campaign)) == 0
    post(organiser, f"/admin/events/{event.id}/cancel", confirmed="1")
    post(organiser, f"/admin/events/{event.id}/cancel", confirmed="1")
    session.expire_all()
    campaign = session.scalar(select(Campaign).where(Campaign.audience_label.contains("取消通知")))
    assert session.scalar(select(func.count()).select_from(Campaign)) == 1
    assert session.scalar(select(func.count()).select_from(Delivery).where(Delivery.campaign_id == campaign.id)) == 2
    assert "没有这个活动" in ChatUser(phone_for(app), "oA").say(f"报名 {event.id}")


def test_attendance_export_and_study_sent_once_to_the_absent(app, session, school):
    material = Material(title="党章学习", body="正文", status="published", author="admin")
    session.add(material)
    session.commit()
    event = make_event(session, starts=timedelta(minutes=-5), signup_required=False,
                       audience={"units": [school["cs"].id]}, org_unit_id=school["cs"].parent_id,
                       material_ids=json.dumps([material.id]))
    now = utcnow()
    code = code_for(app.config["SECRET_KEY"], event.id, slot_of(now, 15))
    assert "签到成功" in ChatUser(phone_for(app), "oA").say(f"签到 {code}")
    event.ends_at = utcnow() - timedelta(minutes=1)  # the event is over
    session.commit()
    organiser = signed_in(app, "cs")
    page = organiser.get(f"/admin/events/{event.id}").get_data(as_text=True)
    assert "送学给 1 名缺席/请假成员" in page
    book = load_workbook(io.BytesIO(organiser.get(f"/admin/events/{event.id}/attendance.xlsx").data))
    rows = {r[0]: r[3] for r in book.active.iter_rows(min_row=2, values_only=True)}
    assert rows == {school["oA"].name: "出席", school["oB"].name: "缺席"}
    assert "确认送学" in post(organiser, f"/admin/events/{event.id}/study").get_data(as_text=True)
    post(organiser, f"/admin/events/{event.id}/study", confirmed="1")
    post(organiser, f"/admin/events/{event.id}/study", confirmed="1")
    session.expire_all()
    sent = session.scalars(select(Campaign).where(Campaign.audience_label.contains("送学"))).all()
    assert len(sent) == 1 and sent[0].link_kind == "study"
    assert session.scalars(select(Delivery.openid).where(Delivery.campaign_id == sent[0].id)).all() == ["oB"]
    stats = organiser.get("/admin/events/stats").get_data(as_text=True)
    assert "50%（1/2）" in stats and "主题党日" in stats


IMPORT_HEADER = "标题,类型,开始时间,结束时间,地点,组织,需报名,人数上限,报名截止,积分,学时,主题"


def term_file(rows):
    day = (utcnow() + timedelta(days=10)).strftime("%Y-%m-%d")
    return "\n".join([IMPORT_HEADER] + [r.format(day=day) for r in rows]) + "\n"


GOOD_ROW = "支部党员大会,支部党员大会,{day} 19:00,{day} 20:30,学院 204,本科生第一党支部,否,,,2,1.5,讨论发展对象"
BAD_ROWS = ["没有类型,,{day} 19:00,{day} 20:30,学院 204,,否,,,,,",
            "倒过来,党课,{day} 19:00,{day} 18:00,学院 204,,是,,,,,",
            "别的学院,党课,{day} 19:00,{day} 20:00,学院 204,教工党支部,是,,,,,",
            "不存在,党课,{day} 19:00,{day} 20:00,学院 204,火星支部,是,,,,,"]


def test_a_term_imports_all_or_nothing_in_utf8_and_gbk(app, session, school):
    organiser = signed_in(app, "cs")
    for encoding in ("utf-8-sig", "gbk"):
        content = term_file([GOOD_ROW] + BAD_ROWS).encode(encoding)
        page = post(organiser, "/admin/events/import", files={"file": (io.BytesIO(content), "安排.csv")})
        text = page.get_data(as_text=True)
        assert page.status_code == 400 and "未导入任何活动" in text
        for line, reason in ((3, "类型"), (4, "结束时间要晚于开始时间"), (5, "不在你的管理范围内"), (6, "不存在")):
            assert f"第 {line} 行" in text and reason in text
    assert session.scalar(select(func.count()).select_from(Event)) == 0
    content = term_file([GOOD_ROW]).encode("gbk")
    assert "已导入 1 个活动" in post(organiser, "/admin/events/import",
                                  files={"file": (io.BytesIO(content), "安排.csv")}).get_data(as_text=True)
    event = session.scalar(select(Event))
    assert event.signup_required is False and json.loads(event.audience) == {"units": [school["cs"].id]}
    assert "需参加" in ChatUser(phone_for(app), "oA").say("活动")


def test_the_command_line_imports_a_term_and_prints_the_code(app, session, school, runner, tmp_path):
    path = tmp_path / "安排.csv"
    path.write_text(term_file([GOOD_ROW] + BAD_ROWS[:1]), encoding="gbk")
    result = runner.invoke(args=["events", "import", str(path)])
    assert result.exit_code != 0 and "第 3 行" in result.output and "未导入任何活动" in result.output
    path.write_text(term_file([GOOD_ROW]), encoding="gbk")
    result = runner.invoke(args=["events", "import", str(path)])
    assert result.exit_code == 0 and "1 个活动" in result.output
    event = session.scalar(select(Event))
    output = runner.invoke(args=["events", "code", str(event.id)]).output
    now = utcnow()
    assert any(code_for(app.config["SECRET_KEY"], event.id, slot_of(now, 15) - d) in output for d in (0, 1))
    assert f"ck:{event.id}." in output
    assert session.scalar(select(func.count()).select_from(CheckIn)) == 0


def test_the_demo_has_an_event_to_check_in_to_right_away(app, session, runner):
    output = runner.invoke(args=["demo", "load"]).output
    assert "已载入演示活动" in output
    events = session.scalars(select(Event).order_by(Event.starts_at)).all()
    assert len(events) == 3
    now = utcnow()
    assert events[0].checkin_opens <= now <= events[0].checkin_closes
    assert events[1].capacity == 3
    assert "已载入演示活动" not in runner.invoke(args=["demo", "load"]).output  # once


def test_an_organiser_runs_the_check_in_of_a_school_wide_event_and_is_told_who_changes_it(app, session, school):
    event = make_event(session, starts=timedelta(minutes=10), checkin_before_min=60)  # the school's, as in the demo
    organiser = signed_in(app, "cs")
    page = organiser.get(f"/admin/events/{event.id}").get_data(as_text=True)
    assert "打开签到屏幕" in page and "对象：全校成员" in page and "本组织全部成员" not in page
    assert "由“学校（管理员）”主办" in page and "修改</a>" not in page and "取消活动" not in page
    assert organiser.get(f"/admin/events/{event.id}/screen").status_code == 200
    state = organiser.get(f"/admin/events/{event.id}/screen.json").get_json()
    assert state["open"] and len(state["code"]) == 6
    assert "打开签到屏幕" in signed_in(app, "admin").get(f"/admin/events/{event.id}").get_data(as_text=True)


def test_nobody_is_absent_before_the_check_in_closes(app, session, school):
    event = make_event(session, starts=timedelta(hours=3), signup_required=False,
                       audience={"units": [school["cs"].id]})
    admin = signed_in(app, "admin")
    page = admin.get(f"/admin/events/{event.id}").get_data(as_text=True)
    assert "缺席</td>" not in page and "未签到</td>" in page
    book = load_workbook(io.BytesIO(admin.get(f"/admin/events/{event.id}/attendance.xlsx").data))
    states = {row[3] for row in list(book.active.values)[1:]}
    assert states == {"未签到"}
    event.starts_at, event.ends_at = utcnow() - timedelta(hours=3), utcnow() - timedelta(hours=1)
    session.commit()
    page = admin.get(f"/admin/events/{event.id}").get_data(as_text=True)
    assert "缺席</td>" in page and "未签到</td>" not in page
