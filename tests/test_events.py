"""Events through the real webhook: sign-up, capacity and the waiting list, offers that lapse, cancel,
the deadline, leave, reminders exactly once, and check-in by the rotating QR code or its 6-digit code,
with every refusal a member can meet."""
import json
from contextlib import contextmanager
from datetime import datetime, timedelta
from unittest import mock

import pytest
from sqlalchemy import func, select

from models.checkins import CheckIn, LocationReport, code_for, scene_for, slot_of
from models.delivery import Campaign, Delivery
from models.events import Event
from models.points import MemberPoints
from models.signups import LeaveRequest
from models.timeutil import utcnow
from tests.conftest import phone_for
from tests.helpers import ChatUser, make_member

ROTATE = 15


@contextmanager
def clock(at: datetime):
    """The webhook's idea of now (a check-in's slot, the window, lateness)."""
    with mock.patch("wxbot.pipeline.utcnow", return_value=at):
        yield


def make_event(session, starts=timedelta(hours=30), **kw) -> Event:
    now = utcnow().replace(microsecond=0)
    values = dict(title="主题党日：重温入党誓词", kind="主题党日", place="图书馆 301", starts_at=now + starts,
                  ends_at=now + starts + timedelta(hours=2), audience=json.dumps(kw.pop("audience", {})))
    values.update(kw)
    event = Event(**values)
    session.add(event)
    session.commit()
    return event


def chat_of(app, school, key):
    return ChatUser(phone_for(app), key)


def secret(app):
    return app.config["SECRET_KEY"]


def test_events_are_listed_with_the_members_state(app, session, school):
    event = make_event(session, capacity=10)
    chat = chat_of(app, school, "oA")
    listing = chat.say("活动")
    assert f"【{event.id}】主题党日：重温入党誓词" in listing and "图书馆 301" in listing and "未报名" in listing
    assert "报名成功" in chat.say(f"报名 {event.id}")
    assert "已报名" in chat.say("活动")
    assert "已报名" in chat.say(f"报名{event.id}")  # twice: still one registration
    assert "报名成功" not in chat.say(f"报名 {event.id}")


def test_full_width_digits_and_no_space_work(app, session, school):
    event = make_event(session)
    digits = str(event.id).translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    assert "报名成功" in chat_of(app, school, "oA").say(f"报名{digits}")


def test_an_event_for_another_college_is_not_offered(app, session, school):
    event = make_event(session, audience={"units": [school["marx"].parent_id]})
    chat = chat_of(app, school, "oA")
    assert str(event.id) not in chat.say("活动")
    assert "没有这个活动" in chat.say(f"报名 {event.id}")
    assert "报名成功" in chat_of(app, school, "oC").say(f"报名 {event.id}")


def test_a_full_event_puts_members_on_the_waiting_list_and_offers_a_freed_place(app, session, school):
    event = make_event(session, capacity=1)
    a, b = chat_of(app, school, "oA"), chat_of(app, school, "oB")
    assert "报名成功" in a.say(f"报名 {event.id}")
    assert "候补，第 1 位" in b.say(f"报名 {event.id}")
    assert "候补第 1 位" in b.say("活动")
    assert "已取消" in a.say(f"取消报名 {event.id}")
    offer = session.scalar(select(Campaign).where(Campaign.audience_label.contains("候补名额")))
    assert offer is not None
    assert session.scalar(select(Delivery.openid).where(Delivery.campaign_id == offer.id)) == "oB"
    assert "有空位了" in b.say("活动")
    assert "已确认" in b.say(f"报名 {event.id}")
    assert "候补，第 1 位" in a.say(f"报名 {event.id}")  # back of the list


def test_an_offer_that_lapses_passes_to_the_next(app, session, school):
    from models.eventnotices import lapse_offers
    from wxbot import services
    event = make_event(session, capacity=1)
    extra = make_member(session, branch=school["cs"], student_no="2024099")
    c = chat_of(app, school, "oExtra")
    c.bind(extra)
    a, b = chat_of(app, school, "oA"), chat_of(app, school, "oB")
    a.say(f"报名 {event.id}")
    b.say(f"报名 {event.id}")
    assert "第 2 位" in c.say(f"报名 {event.id}")
    a.say(f"取消报名 {event.id}")
    settings = services.settings(app)
    with app.app_context():
        from wxbot.db import db
        assert lapse_offers(db.session, utcnow() + timedelta(minutes=settings.events.offer_minutes + 1),
                            settings) == 1
    assert "有空位了" in c.say("活动")
    assert "候补" not in b.say("活动") and "有空位了" not in b.say("活动")
    assert "候补，第 1 位" in b.say(f"报名 {event.id}")  # the lapsed offer joins the back of the list


def test_sign_up_closes_at_the_deadline(app, session, school):
    event = make_event(session, signup_deadline=utcnow() - timedelta(minutes=1))
    assert "报名已于" in chat_of(app, school, "oA").say(f"报名 {event.id}")


def test_an_event_without_sign_up_expects_its_audience(app, session, school):
    event = make_event(session, signup_required=False, kind="支部党员大会",
                       audience={"units": [school["cs"].id]})
    chat = chat_of(app, school, "oA")
    assert "需参加" in chat.say("活动")
    assert "不用报名" in chat.say(f"报名 {event.id}")


def test_leave_is_asked_approved_and_refused_from_the_console(app, session, school):
    from tests.helpers import csrf_token, signed_in
    event = make_event(session, signup_required=False, audience={"units": [school["cs"].id]})
    a, b = chat_of(app, school, "oA"), chat_of(app, school, "oB")
    assert "请写明理由" in a.say(f"请假 {event.id}")
    assert "已提交" in a.say(f"请假 {event.id} 与专业课考试冲突")
    assert "已提交" in b.say(f"请假{event.id} 生病")
    assert "请假待审批" in a.say("活动")
    organiser = signed_in(app, "cs")
    page = f"/admin/events/{event.id}"
    leaves = {lv.member_id: lv for lv in session.scalars(select(LeaveRequest))}
    for member, verdict in ((school["oA"], "approve"), (school["oB"], "refuse")):
        response = organiser.post(f"{page}/leaves/{leaves[member.id].id}",
                                  data={"verdict": verdict, "csrf_token": csrf_token(organiser, page)})
        assert response.status_code == 302
    assert "已请假" in a.say("活动")
    session.expire_all()
    told = session.scalars(select(Campaign.audience_label)).all()
    assert told.count(f"《{event.title}》请假审批") == 2


def test_a_leave_decision_never_spends_one_of_the_members_monthly_mass_sends(app, session, school):
    from models.followers import Follower
    from tests.helpers import csrf_token, signed_in
    from wxbot.delivery.engine import DeliveryWorker
    event = make_event(session, signup_required=False, audience={"units": [school["cs"].id]})
    a = chat_of(app, school, "oA")
    a.say(f"请假 {event.id} 与专业课考试冲突")
    session.execute(Follower.__table__.update().where(Follower.openid == "oA").values(
        cs_window_until=utcnow() - timedelta(minutes=1), cs_window_left=0))  # only a mass send could reach now
    session.commit()
    organiser, page = signed_in(app, "cs"), f"/admin/events/{event.id}"
    leave = session.scalars(select(LeaveRequest)).one()
    organiser.post(f"{page}/leaves/{leave.id}", data={"verdict": "approve",
                                                      "csrf_token": csrf_token(organiser, page)})
    DeliveryWorker(app, "leave-notice").step()
    session.expire_all()
    notice = session.scalars(select(Delivery).where(Delivery.openid == "oA")).one()
    assert notice.status == "waiting" and notice.channel == "inbox"  # not the mass send a broadcast needs
    assert session.scalar(select(Follower.mass_count).where(Follower.openid == "oA")) == 0
    assert "有 1 条通知等待送达" in a.say("通知") and event.title in a.last.text


def test_reminders_go_once_whatever_runs_them(app, session, school):
    from scheduler.jobs import events_job
    event = make_event(session, starts=timedelta(hours=20))
    chat_of(app, school, "oA").say(f"报名 {event.id}")
    assert events_job(app)["reminders"] == 1
    assert events_job(app)["reminders"] == 0  # a second scheduler, or a restart
    reminders = session.scalars(select(Campaign).where(Campaign.audience_label.contains("活动提醒"))).all()
    assert len(reminders) == 1
    assert session.scalar(select(func.count()).select_from(Delivery).where(
        Delivery.campaign_id == reminders[0].id)) == 1
    with mock.patch("scheduler.jobs.utcnow", return_value=event.starts_at - timedelta(minutes=50)):
        assert events_job(app)["reminders"] == 1  # the 1-hour reminder
        assert events_job(app)["reminders"] == 0


def test_a_late_event_gets_only_the_nearest_reminder(app, session, school):
    from scheduler.jobs import events_job
    event = make_event(session, starts=timedelta(minutes=40))
    chat_of(app, school, "oA").say(f"报名 {event.id}")
    assert events_job(app)["reminders"] == 1
    assert events_job(app)["reminders"] == 0
    assert session.scalar(select(func.count()).select_from(Campaign).where(
        Campaign.audience_label.contains("活动提醒"))) == 1


# ---- check-in ----

def started_event(session, **kw) -> Event:
    """An event that started 5 minutes ago (check-in open, not late yet)."""
    return make_event(session, starts=timedelta(minutes=-5), **kw)


def test_a_scan_of_the_current_code_checks_in_once(app, session, school):
    event = started_event(session, points=3)
    now = utcnow()
    chat = chat_of(app, school, "oA")
    with clock(now):
        reply = chat.scan(scene_for(secret(app), event.id, slot_of(now, ROTATE)))
        assert "签到成功" in reply and school["oA"].name in reply and "获得 3 积分" in reply
        again = chat.scan(scene_for(secret(app), event.id, slot_of(now, ROTATE)))
    assert "不用重复签到" in again
    assert session.scalar(select(func.count()).select_from(CheckIn)) == 1
    assert session.get(MemberPoints, school["oA"].id).total == 3
    assert "已签到" in chat.say("活动")


def test_the_previous_code_is_accepted_and_an_older_one_refused(app, session, school):
    event = started_event(session)
    now = utcnow()
    slot = slot_of(now, ROTATE)
    with clock(now):
        assert "已过期" in chat_of(app, school, "oB").scan(scene_for(secret(app), event.id, slot - 2))
        assert "签到成功" in chat_of(app, school, "oA").scan(scene_for(secret(app), event.id, slot - 1))
    with clock(now + timedelta(seconds=2 * ROTATE)):
        assert "已过期" in chat_of(app, school, "oB").scan(scene_for(secret(app), event.id, slot))


def test_a_forged_scene_is_refused(app, session, school):
    event = started_event(session)
    slot = slot_of(utcnow(), ROTATE)
    forged = scene_for("not-the-servers-key", event.id, slot)
    assert "无效" in chat_of(app, school, "oA").scan(forged)
    assert session.scalar(select(func.count()).select_from(CheckIn)) == 0


def test_the_six_digit_code_checks_in(app, session, school):
    event = started_event(session)
    now = utcnow()
    with clock(now):
        chat = chat_of(app, school, "oA")
        assert "签到码不对" in chat.say("签到 000000" if code_for(secret(app), event.id, slot_of(now, ROTATE))
                                       != "000000" else "签到 000001")
        assert "签到成功" in chat.say(f"签到 {code_for(secret(app), event.id, slot_of(now, ROTATE))}")
        assert "加屏幕上的六位数字" in chat.say("签到")
    with clock(now + timedelta(seconds=3 * ROTATE)):
        code = code_for(secret(app), event.id, slot_of(now, ROTATE))
        assert "签到码不对" in chat_of(app, school, "oB").say(f"签到 {code}")


def test_a_member_in_the_middle_of_a_quiz_checks_in_by_code_and_the_quiz_keeps_its_place(app, session, school):
    from tests.quizhelp import bank, letter_of
    event = started_event(session)
    bank(session, 3)
    chat = chat_of(app, school, "oA")
    chat.say(letter_of(chat.say("答题"), "对的选项"))
    now = utcnow()
    with clock(now):
        reply = chat.say(f"签到 {code_for(secret(app), event.id, slot_of(now, ROTATE))}")
    assert "签到成功" in reply and reply.endswith("答题进行到第 2/3 题，发送“答题”继续。")
    assert session.scalar(select(func.count()).select_from(CheckIn)) == 1
    assert "今日答题进行到第 2/3 题" in chat.say("答题")


def test_check_in_outside_its_window_is_refused(app, session, school):
    early = make_event(session, starts=timedelta(hours=2))
    over = make_event(session, starts=timedelta(hours=-3))
    now = utcnow()
    chat = chat_of(app, school, "oA")
    with clock(now):
        assert "开始，请到时再签" in chat.scan(scene_for(secret(app), early.id, slot_of(now, ROTATE)))
        assert "签到已于" in chat.scan(scene_for(secret(app), over.id, slot_of(now, ROTATE)))


def test_check_in_outside_the_audience_is_refused(app, session, school):
    event = started_event(session, audience={"units": [school["marx"].id]})
    now = utcnow()
    with clock(now):
        assert "不面向你所在的组织" in chat_of(app, school, "oA").scan(
            scene_for(secret(app), event.id, slot_of(now, ROTATE)))


def test_a_late_arrival_is_marked_late(app, session, school):
    event = make_event(session, starts=timedelta(minutes=-20), late_after_min=10)
    now = utcnow()
    with clock(now):
        assert "迟到" in chat_of(app, school, "oA").scan(scene_for(secret(app), event.id, slot_of(now, ROTATE)))
    assert session.scalar(select(CheckIn.late)) is True


def test_a_newcomer_who_follows_by_scanning_and_binds_is_checked_in(app, session, school):
    event = started_event(session)
    member = make_member(session, branch=school["cs"], student_no="2024777")
    now = utcnow()
    newcomer = ChatUser(phone_for(app), "oNewcomer")
    with clock(now):
        reply = newcomer.scan(scene_for(secret(app), event.id, slot_of(now, ROTATE)))
        assert "欢迎关注" in reply and "需要先绑定" in reply and "自动为你签到" in reply
        bound = newcomer.bind(member)
    assert "绑定成功" in bound and "签到成功" in bound
    assert session.scalar(select(CheckIn.method)) == "bind"


def send_location(app, openid, latitude, longitude):
    phone = phone_for(app)
    return phone.send(openid, {"MsgType": "event", "Event": "LOCATION", "Latitude": str(latitude),
                               "Longitude": str(longitude), "Precision": "30.0"}, "event")


def test_the_geofence_with_and_without_consent(app, session, school):
    event = started_event(session, latitude=26.5783, longitude=106.7135, radius_m=200,
                          audience={"units": [school["cs"].id, school["marx"].id]})
    extra = make_member(session, branch=school["cs"], name="位置过时")
    ChatUser(phone_for(app), "oStale").bind(extra)
    now = utcnow()
    scene = scene_for(secret(app), event.id, slot_of(now, ROTATE))
    assert send_location(app, "oA", 26.6783, 106.7135).raw == "success"  # about 11 km away
    send_location(app, "oB", 26.5785, 106.7136)  # in the room
    send_location(app, "oStale", 26.5785, 106.7136)  # in the room, but 20 minutes ago by the time it scans
    with clock(now):
        far = chat_of(app, school, "oA").scan(scene)
        assert "超出签到范围" in far
        assert "签到成功" in chat_of(app, school, "oB").scan(scene)
        assert "签到成功" in chat_of(app, school, "oC").scan(scene)  # never shared a location
    later = now + timedelta(minutes=20)  # past events.location_max_age_minutes, within the check-in
    with clock(later):
        assert "签到成功" in ChatUser(phone_for(app), "oStale").scan(scene_for(secret(app), event.id,
                                                                             slot_of(later, ROTATE)))
    flags = dict(session.execute(select(CheckIn.member_id, CheckIn.flag)).all())
    # One rule for no recent location, whether never shared or shared too long ago: in, flagged.
    assert flags == {school["oB"].id: "", school["oC"].id: "位置未核实", extra.id: "位置未核实"}


def test_a_members_location_is_erased_when_they_unfollow(app, session, school):
    send_location(app, "oA", 26.5, 106.7)
    assert session.scalar(select(func.count()).select_from(LocationReport)) == 1
    chat_of(app, school, "oA").unfollow()
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(LocationReport)) == 0


def test_wrong_codes_are_limited_per_member_and_the_scan_still_works(app, session, school):
    event = started_event(session)
    now = utcnow()
    right = code_for(secret(app), event.id, slot_of(now, ROTATE))
    wrong = [f"{n:06d}" for n in range(20) if f"{n:06d}" != right][:6]
    chat = chat_of(app, school, "oA")
    with clock(now):
        for code in wrong[:5]:
            assert "签到码不对" in chat.say(f"签到 {code}")
        refused = chat.say(f"签到 {right}")  # the right one, after five wrong: refused until the minute ends
        assert "签到码错误次数太多，请" in refused and "秒后再试" in refused and "扫描屏幕上的二维码" in refused
        assert session.scalar(select(func.count()).select_from(CheckIn)) == 0
        assert "签到成功" in chat.scan(scene_for(secret(app), event.id, slot_of(now, ROTATE)))
        assert "签到成功" in chat_of(app, school, "oB").say(f"签到 {right}")  # others are not held back


def test_a_valid_code_of_another_organisations_event_says_so_and_spaces_are_accepted(app, session, school):
    event = started_event(session, audience={"units": [school["marx"].id]})
    now = utcnow()
    code = code_for(secret(app), event.id, slot_of(now, ROTATE))
    with clock(now):
        by_code = chat_of(app, school, "oA").say(f"签到 {code}")
        by_scan = chat_of(app, school, "oA").scan(scene_for(secret(app), event.id, slot_of(now, ROTATE)))
        assert by_code == by_scan and "不面向你所在的组织" in by_code
        assert "签到成功" in chat_of(app, school, "oC").say("签到 " + " ".join(code))


def test_location_reports_are_deleted_after_retention(app, session, school):
    from scheduler.jobs import events_job
    send_location(app, "oA", 26.5, 106.7)
    assert session.scalar(select(func.count()).select_from(LocationReport)) == 1
    assert events_job(app)["locations_deleted"] == 0
    later = utcnow() + timedelta(hours=25)
    with mock.patch("scheduler.jobs.utcnow", return_value=later):
        assert events_job(app)["locations_deleted"] == 1
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(LocationReport)) == 0


def test_a_scan_delivered_twice_counts_once(app, session, school):
    """WeChat's retry of the same scan event (same CreateTime and key) gets the first reply."""
    event = started_event(session)
    now = utcnow()
    phone = phone_for(app)
    fields = {"MsgType": "event", "Event": "SCAN", "EventKey": scene_for(secret(app), event.id,
                                                                          slot_of(now, ROTATE)), "Ticket": "t"}
    with clock(now):
        built = phone.build("oA", fields, int(now.timestamp()))
        first, second = (phone.read_reply(*phone.transport(*built)) for _ in range(2))
    assert first.text == second.text and "签到成功" in first.text
    assert session.scalar(select(func.count()).select_from(CheckIn)) == 1


@pytest.mark.parametrize("text", ["报名 abc", "报名", "取消报名", "请假"])
def test_a_command_without_an_event_number_shows_how_to_write_it(app, school, text):
    reply = chat_of(app, school, "oA").say(text)
    assert "后写活动编号" in reply and "发送“活动”查看编号" in reply


def test_sign_ups_and_a_newcomers_pending_check_in_survive_a_restart(make_app, backend, session, school):
    first = make_app()
    event = make_event(session, starts=timedelta(minutes=20))  # sign-up still open, check-in already open
    ChatUser(phone_for(first), "oA").say(f"报名 {event.id}")
    now = utcnow()
    newcomer = ChatUser(phone_for(first), "oLater")
    with clock(now):
        assert "需要先绑定" in newcomer.scan(scene_for(secret(first), event.id, slot_of(now, ROTATE)))
    member = make_member(session, branch=school["cs"], student_no="2024888")
    restarted = make_app()  # a new process on the same database and store
    assert "已报名" in ChatUser(phone_for(restarted), "oA").say("活动")
    assert "签到成功" in ChatUser(phone_for(restarted), "oLater").bind(member)


def test_an_empty_or_garbled_location_report_is_ignored(app, session, school):
    for latitude in ("", "abc", "999"):
        reply = send_location(app, "oA", latitude, 106.7)
        assert reply.raw == "success"  # no apology to an event nobody typed
    latitudes = session.scalars(select(LocationReport.latitude)).all()
    assert all(-90 <= lat <= 90 for lat in latitudes)
