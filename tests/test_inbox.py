"""Reach when no channel is open: messages wait in the member's inbox, go out in the window their next
interaction opens (never more than it holds), expire on time, are delivered once however the member
writes, and the forecast shown before sending is what then happens."""
import threading
from collections import Counter
from datetime import timedelta

from sqlalchemy import select, update

from models.accounts import Scope
from models.delivery import BROADCAST, Campaign, Delivery, create_campaign
from models.followers import Follower
from models.sandbox import SandboxMessage
from models.timeutil import utcnow, wechat_month
from tests.conftest import phone_for
from tests.helpers import ChatUser, make_branch, make_member, wait_for
from wxbot import services
from wxbot.delivery.engine import DeliveryWorker
from wxbot.delivery.inbox import inbox_mark
from wxbot.delivery.reach import forecast


def out_of_reach(session, *openids):
    """Window closed, the month's mass sends spent: only the inbox is left."""
    session.execute(update(Follower).where(Follower.openid.in_(openids)).values(
        cs_window_until=utcnow() - timedelta(minutes=1), cs_window_left=0, mass_month=wechat_month(utcnow()),
        mass_count=4))
    session.commit()


def campaign_to(session, openid, text, expires_at=None):
    member_id = session.scalar(select(Follower.member_id).where(Follower.openid == openid))
    campaign = create_campaign(session, "测试", Scope(None), {}, {"text": text}, utcnow(),
                               recipients=[(openid, member_id)], expires_at=expires_at)
    session.commit()
    return campaign


def customer_service(session, openid) -> list[str]:
    session.expire_all()
    import json
    rows = session.scalars(select(SandboxMessage).where(SandboxMessage.touser == openid,
                                                        SandboxMessage.channel == "customer_service")
                           .order_by(SandboxMessage.id))
    return [json.loads(r.content).get("content", "") for r in rows]


def statuses(session) -> Counter:
    session.expire_all()
    return Counter(session.scalars(select(Delivery.status)))


def bound_user(app, session, openid="oInbox"):
    user = ChatUser(phone_for(app), openid)
    user.bind(make_member(session, branch=make_branch(session)))
    return user


def run_worker(app, session, until):
    worker = DeliveryWorker(app, "inbox-test")
    return wait_for(lambda: worker.step() >= 0 and until())


def with_waiting_notices(app, session, count):
    """A member out of reach with `count` notices waiting, 通知0 the soonest to expire."""
    user = bound_user(app, session)
    out_of_reach(session, user.openid)
    for n in range(count):
        campaign_to(session, user.openid, f"通知{n}", expires_at=utcnow() + timedelta(hours=n + 1))
    DeliveryWorker(app, "w").step()
    assert statuses(session)["waiting"] == count
    return user


def test_a_click_opens_three_messages_and_the_rest_keep_waiting_with_a_note(app, session):
    user = with_waiting_notices(app, session, 6)
    before = len(customer_service(session, user.openid))
    user.click("我的")  # a menu click: 3 messages within a minute
    assert run_worker(app, session, lambda: len(customer_service(session, user.openid)) - before == 3)
    got = customer_service(session, user.openid)[before:]
    assert got[:2] == ["通知0", "通知1"]  # the soonest to expire, in that order
    assert "你还有 4 条未读通知" in got[2]  # last: sent a moment after the window's other messages
    assert statuses(session)["waiting"] == 4
    DeliveryWorker(app, "w").step()
    assert len(customer_service(session, user.openid)) - before == 3  # never a 4th in that minute
    assert "4 条通知等待送达" in user.say("通知")  # a message: 5 in 48 hours, enough for all four
    assert run_worker(app, session, lambda: statuses(session)["waiting"] == 0
                      and len(customer_service(session, user.openid)) - before == 7)


def test_waiting_messages_expire_at_their_campaigns_expiry(app, session):
    user = bound_user(app, session)
    out_of_reach(session, user.openid)
    campaign_to(session, user.openid, "今天的学习", expires_at=utcnow() + timedelta(seconds=1))
    DeliveryWorker(app, "w").step()
    assert statuses(session)["waiting"] == 1
    DeliveryWorker(app, "w").step(now=utcnow() + timedelta(seconds=2))
    assert statuses(session)["expired"] == 1
    before = len(customer_service(session, user.openid))
    user.say("积分")
    DeliveryWorker(app, "w").step()
    assert len(customer_service(session, user.openid)) == before


def test_a_waiting_message_goes_out_once_when_the_member_writes_twice_at_once(app, session):
    user = bound_user(app, session)
    out_of_reach(session, user.openid)
    campaign_to(session, user.openid, "只发一次")
    DeliveryWorker(app, "w").step()
    threads = [threading.Thread(target=user.say, args=(text,)) for text in ("我的", "积分")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert run_worker(app, session, lambda: statuses(session)["sent"] == 1)
    DeliveryWorker(app, "w").step()
    assert customer_service(session, user.openid).count("只发一次") == 1


def test_the_forecast_is_what_then_happens(make_app, session):
    from models.delivery import SubscriptionCredit
    app = make_app(delivery__template_id="", delivery__subscribe_template_id="SUB_notice")
    branch = make_branch(session)
    people = {}
    for name in ("open", "subscribed", "waiting", "gone", "mass"):
        user = ChatUser(phone_for(app), f"oMix{name}")
        user.bind(make_member(session, branch=branch))
        people[name] = user
    out_of_reach(session, people["waiting"].openid, people["subscribed"].openid)
    phone_for(app).accept_subscription(people["subscribed"].openid, "SUB_notice")
    session.execute(update(Follower).where(Follower.openid == people["mass"].openid).values(
        cs_window_until=utcnow() - timedelta(minutes=1), cs_window_left=0))
    session.commit()
    assert session.scalar(select(SubscriptionCredit.credits)) == 1
    people["gone"].unfollow()
    openids = [u.openid for u in people.values()]
    settings = services.settings(app)
    from models.channelsettings import channel_policy
    with app.app_context():
        policy = channel_policy(session, settings)
    predicted = forecast(session, openids, policy, policy.account_type, utcnow())
    expected = Counter({"customer_service": 1, "subscribe": 1, "mass": 1, "inbox": 1})
    assert predicted.channels == expected and sum(predicted.unreachable.values()) == 1
    assert "下次互动时：1 人" in predicted.text() and "每人用掉本月 1 次群发" in predicted.text()
    member_ids = dict(session.execute(select(Follower.openid, Follower.member_id)).all())
    campaign = create_campaign(session, "测试", Scope(None), {}, {"text": "预测"}, utcnow(), excluded=BROADCAST,
                               recipients=[(o, member_ids.get(o)) for o in openids if o in member_ids])
    session.commit()
    DeliveryWorker(app, "w").step()
    session.expire_all()
    outcome = Counter()
    for delivery in session.scalars(select(Delivery).where(Delivery.campaign_id == campaign.id)):
        outcome[delivery.channel if delivery.status in ("sent", "waiting") else delivery.status] += 1
    assert outcome == expected  # the one who unfollowed has no follower row: no delivery was made


def test_a_month_of_daily_pushes_reaches_members_by_mass_then_when_they_write(make_app, session):
    """push.mass_send on: four days by mass send, then the month's quota is spent and each day's study
    waits for the member, reaching them when they write that day and expiring at the day's end."""
    from models.study import Material, PlanEntry
    from models.timeutil import local_date
    from wxbot.study.push import push_day
    app = make_app(push__mass_send=True)
    user = bound_user(app, session, "oMonth")
    session.execute(update(Follower).where(Follower.openid == user.openid).values(
        cs_window_until=utcnow() - timedelta(minutes=1), cs_window_left=0, mass_month="", mass_count=0))
    material = Material(title="每日学习", body="正文", status="published")
    session.add(material)
    session.flush()
    today = local_date()
    for n in range(6):
        session.add(PlanEntry(day=today + timedelta(days=n), material_id=material.id))
    session.commit()
    worker = DeliveryWorker(app, "month")
    channels = []
    for n in range(5):
        push_day(session, today + timedelta(days=n), utcnow(), mass_send=True)
        worker.step()
        session.expire_all()
        channels.append(session.scalar(select(Delivery.channel).order_by(Delivery.id.desc())))
    assert channels == ["mass"] * 4 + ["inbox"]
    user.say("我的")  # the member writes: the waiting study arrives in the window this opens
    assert run_worker(app, session, lambda: statuses(session)["sent"] == 5)
    out_of_reach(session, user.openid)  # two days later: the window has closed, the month's mass sends are spent
    push_day(session, today + timedelta(days=5), utcnow(), mass_send=True)
    worker.step()
    assert statuses(session)["waiting"] == 1
    from models.timeutil import local_midnight
    worker.step(now=local_midnight(today + timedelta(days=6)) + timedelta(seconds=1))
    assert statuses(session)["expired"] == 1


def test_the_simulators_allow_button_grants_a_subscription_notice_that_reaches_a_closed_window(make_app, session):
    app = make_app(delivery__subscribe_template_id="SUB_notice")
    user = bound_user(app, session, "oAllow")
    out_of_reach(session, user.openid)
    import requests  # the simulator's button, on the live server (its phone posts to that server's /wechat)
    server = app.config["WXBOT"].server.public_url
    tapped = requests.post(f"{server}/sandbox/phone", json={"openid": user.openid, "action": "allow_subscription"})
    assert tapped.status_code == 200
    campaign = campaign_to(session, user.openid, "订阅通知送达")
    DeliveryWorker(app, "w").step()
    session.expire_all()
    delivery = session.scalar(select(Delivery).where(Delivery.campaign_id == campaign.id))
    assert delivery.status == "sent" and delivery.channel == "subscribe"


def test_without_a_subscription_template_the_allow_button_says_why(app):
    response = app.test_client().post("/sandbox/phone", json={"openid": "oX", "action": "allow_subscription"})
    assert response.status_code == 400 and "subscribe_template_id" in response.get_json()["error"]


def test_the_daily_push_keeps_mass_sends_unless_the_plan_allows_them(app, session):
    from models.study import DailyPush, Material, PlanEntry
    from models.timeutil import local_date
    from wxbot.study.push import push_day
    user = bound_user(app, session, "oPush")
    session.execute(update(Follower).where(Follower.openid == user.openid).values(
        cs_window_until=utcnow() - timedelta(minutes=1), cs_window_left=0))  # mass sends left this month
    material = Material(title="党章学习", body="正文", status="published")
    session.add(material)
    session.flush()
    session.add(PlanEntry(day=local_date(), material_id=material.id))
    session.commit()
    push_day(session, local_date(), utcnow())
    DeliveryWorker(app, "w").step()
    session.expire_all()
    delivery = session.scalar(select(Delivery))
    assert delivery.status == "waiting"  # the day's study waits for the member instead of a mass send
    campaign = session.get(Campaign, delivery.campaign_id)
    assert campaign.expires_at is not None and campaign.excluded() == {"mass"}
    from tests.helpers import make_account, signed_in
    make_account(session, "admin", "admin")
    dashboard = signed_in(app, "admin").get("/admin/study").get_data(as_text=True)
    assert "今天的学习推送" in dashboard and "等下次互动 1" in dashboard
    user.say("学习")
    assert run_worker(app, session, lambda: statuses(session)["sent"] == 1)
    # Another day whose entry allows mass sends goes out by mass send.
    tomorrow = local_date() + timedelta(days=1)
    session.add(PlanEntry(day=tomorrow, material_id=material.id, by_mass=True))
    session.execute(update(Follower).where(Follower.openid == user.openid).values(
        cs_window_until=utcnow() - timedelta(minutes=1), cs_window_left=0))
    session.commit()
    push_day(session, tomorrow, utcnow())
    DeliveryWorker(app, "w").step()
    session.expire_all()
    assert session.scalar(select(Delivery.channel).order_by(Delivery.id.desc())) == "mass"
    assert session.scalar(select(DailyPush.id)) is not None


def test_admins_set_the_channels_in_the_console_and_test_each_one(app, session, school):
    from tests.helpers import csrf_token, signed_in
    assert signed_in(app, "cs").get("/admin/channels").status_code == 403  # organisers do not
    admin = signed_in(app, "admin")
    page = admin.get("/admin/channels").get_data(as_text=True)
    assert "服务号" in page and "每天推送学习内容" in page
    response = admin.post("/admin/channels", data={
        "account_type": "service", "template_id": "TPL_study", "template_fields_title": "thing9",
        "template_fields_summary": "thing10", "template_fields_remark": "", "subscribe_template_id": "",
        "csrf_token": csrf_token(admin, "/admin/channels")}, follow_redirects=True)
    assert "渠道设置已保存" in response.get_data(as_text=True)
    user = ChatUser(phone_for(app), "oA")
    out_of_reach(session, user.openid)
    sent = admin.post("/admin/channels/test", data={"channel": "template", "student_no": school["oA"].student_no,
                                                    "csrf_token": csrf_token(admin, "/admin/channels")},
                      follow_redirects=True)
    assert sent.status_code == 200 and "渠道测试：模板消息" in sent.get_data(as_text=True)  # its progress page
    listed = admin.get("/admin/campaigns?show=previews").get_data(as_text=True)
    assert "渠道测试：模板消息" in listed and "渠道测试：" not in admin.get("/admin/campaigns").get_data(as_text=True)
    DeliveryWorker(app, "w").step()
    got = [m for m in user.received(session, "template")]
    assert got and got[-1]["template_id"] == "TPL_study" and "thing9" in got[-1]["data"]
    assert "渠道测试" in got[-1]["data"]["thing9"]["value"]
    bad = admin.post("/admin/channels", data={"account_type": "service", "template_id": "有 空格",
                                              "csrf_token": csrf_token(admin, "/admin/channels")})
    assert bad.status_code == 400 and "不能有空格" in bad.get_data(as_text=True)


def test_the_console_and_the_command_line_show_the_forecast_before_sending(app, session, school, runner):
    from tests.helpers import csrf_token, signed_in
    out_of_reach(session, "oB")
    admin = signed_in(app, "admin")
    page = admin.post("/admin/campaigns", data={
        "text": "周五开会", "units": str(school["cs"].id), "csrf_token": csrf_token(admin, "/admin/campaigns/new")},
        follow_redirects=True).get_data(as_text=True)
    assert "确认群发" in page and "预计送达方式" in page and "客服消息：1 人" in page and "下次互动时：1 人" in page
    result = runner.invoke(args=["broadcast", "send", "--text", "周五开会", "--unit", "计算机学院"], input="n\n")
    assert "预计送达方式" in result.output and "下次互动时：1 人" in result.output
    assert session.scalar(select(Campaign.id)) is None  # nothing was sent


def test_two_messages_at_once_share_one_window_and_what_is_left_comes_next_time_in_order(app, session):
    user = with_waiting_notices(app, session, 7)
    threads = [threading.Thread(target=user.say, args=(text,), kwargs={"late_within": 0}) for text in ("我的", "积分")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert run_worker(app, session, lambda: len(customer_service(session, user.openid)) == 5)
    for _ in range(3):
        DeliveryWorker(app, "w").step()
    got = customer_service(session, user.openid)
    assert got[:4] == ["通知0", "通知1", "通知2", "通知3"]  # soonest to expire first, in order
    assert len(got) == 5 and "你还有 3 条未读通知" in got[4]  # the window holds five: never a sixth
    session.expire_all()
    assert all("customer_service" not in d.refused() for d in session.scalars(select(Delivery)))
    assert statuses(session)["waiting"] == 3 and statuses(session)["failed"] == 0
    listing = user.say("通知")
    assert "有 3 条通知等待送达" in listing and "未读通知" not in listing
    assert run_worker(app, session, lambda: len(customer_service(session, user.openid)) == 8)
    assert customer_service(session, user.openid)[5:] == ["通知4", "通知5", "通知6"]
    assert statuses(session)["waiting"] == 0


def test_a_refusal_for_a_spent_window_leaves_the_message_waiting_for_the_next_one(app, session):
    user = bound_user(app, session)
    user.say("我的")  # the window is open, as the account believes
    app.test_client().post("/sandbox/faults", json={"inject": {"message/custom/send": [45047]}})
    campaign_to(session, user.openid, "窗口用完")
    DeliveryWorker(app, "w").step()
    DeliveryWorker(app, "w").step()
    session.expire_all()
    delivery = session.scalars(select(Delivery)).one()
    assert delivery.status == "waiting" and "customer_service" not in delivery.refused()
    user.say("积分")
    assert run_worker(app, session, lambda: customer_service(session, user.openid) == ["窗口用完"])


def test_waiting_notices_are_released_after_a_restart_that_lost_the_store(make_app, backend, session):
    app = make_app()
    user = bound_user(app, session)
    out_of_reach(session, user.openid)
    campaign_to(session, user.openid, "重启之前排队的通知")
    DeliveryWorker(app, "w").step()
    assert statuses(session)["waiting"] == 1
    app.extensions["wxbot.store"].clear()  # Redis without persistence restarted; the embedded store died
    restarted = make_app()  # a new process
    stop = threading.Event()
    worker = threading.Thread(target=DeliveryWorker(restarted, "after-restart").run, args=(stop,))
    worker.start()
    try:
        store = restarted.extensions["wxbot.store"]
        assert wait_for(lambda: store.get(inbox_mark(user.openid)))  # rebuilt from the database at start
        ChatUser(phone_for(restarted), user.openid).say("我的")
        assert wait_for(lambda: customer_service(session, user.openid) == ["重启之前排队的通知"])
    finally:
        stop.set()
        worker.join()


def test_a_store_flushed_while_running_gets_its_marks_back_from_the_worker(make_app, session):
    app = make_app(delivery__inbox_marks_every_seconds=0.2)
    user = bound_user(app, session)
    out_of_reach(session, user.openid)
    stop = threading.Event()
    worker = threading.Thread(target=DeliveryWorker(app, "running").run, args=(stop,))
    worker.start()
    try:
        campaign_to(session, user.openid, "刷新之后也送达")
        assert wait_for(lambda: statuses(session)["waiting"] == 1)
        store = app.extensions["wxbot.store"]
        store.delete(inbox_mark(user.openid))  # FLUSHALL, an eviction, a worker killed before the mark
        assert wait_for(lambda: store.get(inbox_mark(user.openid)))
        user.say("我的")
        assert wait_for(lambda: customer_service(session, user.openid) == ["刷新之后也送达"])
    finally:
        stop.set()
        worker.join()


def test_a_worker_dying_between_the_mark_and_the_commit_leaves_only_a_mark_one_message_clears(app, session):
    from unittest import mock

    import pytest

    from tests.helpers import statements
    from wxbot.delivery import engine
    user = bound_user(app, session)
    out_of_reach(session, user.openid)
    campaign_to(session, user.openid, "没来得及提交")

    def mark_then_die(store, openids):
        engine_note(store, openids)
        raise SystemExit("killed")
    engine_note = engine.note_waiting
    with mock.patch.object(engine, "note_waiting", mark_then_die), pytest.raises(SystemExit):
        DeliveryWorker(app, "dies").step()
    store = app.extensions["wxbot.store"]
    assert store.get(inbox_mark(user.openid)) and statuses(session)["waiting"] == 0  # a mark, nothing behind
    user.say("帮助")
    assert wait_for(lambda: store.get(inbox_mark(user.openid)) is None)
    with statements(app) as seen:
        user.say("帮助")
    assert not any("deliveries" in s for s in seen)  # nothing waits: the hot path asks no database again
