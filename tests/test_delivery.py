"""The delivery engine: channel policy, sends through the sandbox, WeChat's error codes, audiences."""
import os
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import func, select, update

from models.accounts import Scope
from models.audience import AudienceError, count_audience
from models.delivery import (
    BROADCAST,
    Campaign,
    Delivery,
    MassJob,
    SubscriptionCredit,
    campaign_counts,
    create_campaign,
)
from models.followers import Follower
from models.members import Member
from models.sandbox import SandboxMessage
from models.timeutil import next_wechat_midnight, utcnow
from tests.conftest import phone_for
from tests.helpers import ChatUser, csrf_token, free_port, make_account, make_branch, make_member, signed_in, wait_for
from wxbot.config import load_settings
from wxbot.delivery.channels import Reach, choose_channel
from wxbot.delivery.engine import DeliveryWorker
from wxbot.sandbox import world

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
OPEN_WINDOW = dict(window_until=NOW + timedelta(hours=1), window_left=3)
CLOSED = dict(window_until=NOW - timedelta(minutes=1), window_left=3)


def policy(**changes):
    return load_settings({f"delivery.{k}": v for k, v in changes.items()}, environ={}).delivery


@pytest.mark.parametrize("reach, changes, account, refused, expected", [
    (dict(**OPEN_WINDOW), {}, "service", set(), "customer_service"),
    (dict(window_until=NOW + timedelta(hours=1), window_left=0), {"template_id": "T"}, "service", set(), "template"),
    (dict(**CLOSED, credits=1), {"subscribe_template_id": "S", "template_id": "T"}, "service", set(), "subscribe"),
    (dict(**CLOSED, credits=1), {"template_id": "T"}, "service", set(), "template"),
    (dict(**CLOSED), {}, "service", set(), "mass"),
    (dict(**CLOSED, mass_month="2026-11", mass_count=4), {}, "service", set(), "inbox"),
    (dict(**CLOSED, mass_month="2026-11", mass_count=4), {"channels": ["customer_service", "mass"]}, "service",
     set(), None),
    (dict(**CLOSED, mass_month="2026-10", mass_count=4), {}, "service", set(), "mass"),
    (dict(**CLOSED), {"template_id": "T"}, "subscription", set(), "mass"),
    (dict(**CLOSED, mass_month="2026-11", mass_count=31), {}, "subscription", set(), "inbox"),
    (dict(**OPEN_WINDOW), {"template_id": "T"}, "service", {"customer_service"}, "template"),
    (dict(**OPEN_WINDOW), {"channels": ["template", "customer_service"], "template_id": "T"}, "service", set(),
     "template"),
    (dict(**OPEN_WINDOW, subscribed=False), {}, "service", set(), None),
])
def test_the_channel_is_the_first_the_policy_allows(reach, changes, account, refused, expected):
    facts = dict(subscribed=True, window_until=None, window_left=0, credits=0, mass_month="", mass_count=0)
    choice = choose_channel(Reach(**{**facts, **reach}), policy(**changes), account, NOW, refused)
    assert choice.channel == expected
    if expected is None:
        assert choice.reason


@pytest.fixture
def members(app, session):
    """Five bound members who each sent a message (their customer-service window is open)."""
    branch = make_branch(session)
    phone = phone_for(app)
    users = []
    for n in range(5):
        user = ChatUser(phone, f"oMember{n}")
        user.bind(make_member(session, branch=branch))
        users.append(user)
    return users


def send_all(app, session, spec=None, content=None, worker=None, rounds=20, now=None):
    """A broadcast (it may use mass sends), sent to the end."""
    campaign = create_campaign(session, "测试", Scope(None), spec or {"everyone": True},
                               content or {"text": "今晚七点主题党日"}, utcnow(), excluded=BROADCAST)
    session.commit()
    worker = worker or DeliveryWorker(app, "test-worker")
    for _ in range(rounds):
        worker.step(now)
        session.expire_all()
        if session.get(Campaign, campaign.id).status == "done":
            break
    return campaign


def received(session, channel=None, text: str | None = None) -> Counter:
    """Messages on the phones by recipient; with `text`, only the text messages saying exactly that (a
    campaign's, not a reply to the member's own message that a loaded machine sent late through the
    customer-service API)."""
    import json
    session.expire_all()
    rows = session.scalars(select(SandboxMessage).where(SandboxMessage.channel.in_(
        [channel] if channel else ["customer_service", "template", "subscribe", "mass"])))
    return Counter(r.touser for r in rows if text is None or json.loads(r.content).get("content") == text)


def test_a_broadcast_reaches_every_member_once_through_customer_service(app, session, members):
    campaign = send_all(app, session)
    counts = campaign_counts(session, campaign.id)
    assert counts["sent"] == 5 and counts["by_channel"] == {"customer_service": 5}
    assert received(session, "customer_service") == Counter({u.openid: 1 for u in members})
    assert session.get(Campaign, campaign.id).status == "done"


def test_a_refused_window_moves_on_to_the_next_channel(make_app, session):
    app = make_app(delivery__template_id="TPL_notice")
    user = ChatUser(phone_for(app), "oWindowGone")
    user.bind(make_member(session))
    app.test_client().post("/sandbox/faults", json={"inject": {"message/custom/send": [45015]}})
    campaign = send_all(app, session)
    assert campaign_counts(session, campaign.id)["by_channel"] == {"template": 1}
    assert received(session, "template") == Counter({user.openid: 1})


def test_a_user_wechat_says_has_unfollowed_is_unreachable_and_erased(app, session, members):
    members[0].phone._update_world(lambda s, now: world.unfollow(s, members[0].openid))  # the event was missed
    campaign = send_all(app, session)
    unreachable = session.scalars(select(Delivery).where(Delivery.status == "unreachable")).all()
    assert len(unreachable) == 1 and "43004" in unreachable[0].last_error
    assert unreachable[0].openid.startswith("erased-")  # erased as if the unfollow event had come
    assert session.scalar(select(Follower).where(Follower.openid == members[0].openid)) is None
    assert campaign_counts(session, campaign.id)["sent"] == 4


def test_with_no_channel_left_a_message_waits_for_the_members_next_message(app, session, members):
    for _ in range(5 + 4):  # five customer-service messages, then the four mass messages of the month
        send_all(app, session)
    campaign = send_all(app, session)
    deliveries = session.scalars(select(Delivery).where(Delivery.campaign_id == campaign.id)).all()
    assert {d.status for d in deliveries} == {"waiting"} and session.get(Campaign, campaign.id).status == "done"
    user = members[0]
    reply = user.say("积分")  # the passive reply is the answer to what they sent, not the notice
    assert "积分" in reply and "今晚七点主题党日" not in reply
    worker = DeliveryWorker(app, "inbox-worker")
    assert wait_for(lambda: worker.step() or received(session, "customer_service")[user.openid] == 6)
    session.expire_all()
    statuses = Counter(d.status for d in session.scalars(select(Delivery).where(Delivery.campaign_id == campaign.id)))
    assert statuses == Counter({"waiting": 4, "sent": 1})


def test_without_the_inbox_nobody_reachable_is_reported_with_the_reason(make_app, session):
    app = make_app(delivery__channels=["customer_service", "mass"])
    user = ChatUser(phone_for(app), "oNoInbox")
    user.bind(make_member(session))
    for _ in range(5 + 4):
        send_all(app, session)
    campaign = send_all(app, session)
    delivery = session.scalars(select(Delivery).where(Delivery.campaign_id == campaign.id)).first()
    assert delivery.status == "unreachable" and "客服窗口已关闭" in delivery.last_error


def test_faults_quota_and_token_expiry_still_deliver_exactly_once(make_app, session):
    app = make_app(delivery__retry_base_seconds=0, delivery__max_attempts=50, delivery__batch_size=15)
    phone, branch = phone_for(app), make_branch(session)
    users = [ChatUser(phone, f"oFault{n}") for n in range(40)]
    for user in users:
        user.bind(make_member(session, branch=branch))
    client = app.test_client()
    client.post("/sandbox/faults", json={"fault_rate": 0.1})
    campaign = create_campaign(session, "测试", Scope(None), {"everyone": True}, {"text": "通知"}, utcnow())
    session.commit()
    worker = DeliveryWorker(app, "fault-worker")
    worker.step()
    client.post("/sandbox/faults", json={"inject": {"message/custom/send": [45009]}, "expire_tokens": True})
    worker.step()
    session.expire_all()
    assert session.get(Campaign, campaign.id).status == "paused"
    tomorrow = next_wechat_midnight(utcnow()) + timedelta(seconds=1)
    for _ in range(30):
        worker.step(tomorrow)
        session.expire_all()
        if session.get(Campaign, campaign.id).status == "done":
            break
    assert received(session, "customer_service", text="通知") == Counter({u.openid: 1 for u in users})
    assert campaign_counts(session, campaign.id)["sent"] == 40


def _claim_and_die(session, worker: str, dispatched: int) -> list[Delivery]:
    """A worker claims three deliveries and hands `dispatched` of them to WeChat, then dies."""
    from wxbot.delivery.claims import claim, start_due_campaigns
    start_due_campaigns(session, utcnow())
    taken = claim(session, worker, 3, utcnow(), 60)
    session.execute(update(Delivery).where(Delivery.id.in_([d.id for d in taken[:dispatched]]))
                    .values(dispatched_at=utcnow()))
    session.commit()
    return taken


def test_a_dead_worker_past_its_lease_is_taken_over_and_only_what_wechat_had_is_flagged(app, session, members):
    campaign = create_campaign(session, "测试", Scope(None), {"everyone": True}, {"text": "通知"}, utcnow())
    session.commit()
    taken = _claim_and_die(session, "dead-worker", dispatched=1)  # a name with no process behind it
    survivor = DeliveryWorker(app, "survivor")
    survivor.step(utcnow(), batches=None)
    assert campaign_counts(session, campaign.id)["sent"] == 2  # within the lease: left alone
    later = utcnow() + timedelta(seconds=survivor.policy.lease_seconds + 1)
    survivor.step(later, batches=None)
    counts = campaign_counts(session, campaign.id)
    assert counts["sent"] == 5 and counts["possibly_duplicated"] == 1
    flagged = session.scalars(select(Delivery.id).where(Delivery.possibly_duplicated.is_(True))).all()
    assert flagged == [taken[0].id]


def test_a_killed_workers_claims_are_taken_over_at_once_on_its_host(app, session, members):
    import socket
    import subprocess
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid that no longer runs: the worker was killed
    campaign = create_campaign(session, "测试", Scope(None), {"everyone": True}, {"text": "通知"}, utcnow())
    session.commit()
    _claim_and_die(session, f"{socket.gethostname()}:{gone.pid}:1", dispatched=2)
    DeliveryWorker(app).step(utcnow(), batches=None)  # no waiting for the lease
    counts = campaign_counts(session, campaign.id)
    assert counts["sent"] == 5 and counts["possibly_duplicated"] == 2


def test_audiences_select_by_unit_subtree_stage_role_and_number(session, app):
    cs_branch = make_branch(session, "计算机学院", "本科生第一党支部")
    marx_branch = make_branch(session, "马克思主义学院", "教工党支部")
    phone = phone_for(app)
    people = [("a", cs_branch, "正式党员", "member"), ("b", cs_branch, "共青团员", "organiser"),
              ("c", marx_branch, "正式党员", "member")]
    for openid, branch, stage, role in people:
        member = make_member(session, branch=branch, stage=stage, role=role, student_no=f"S{openid.upper()}")
        ChatUser(phone, openid).bind(member)
    everyone = Scope(None)
    assert count_audience(session, {"everyone": True}, everyone) == 3
    assert count_audience(session, {"units": [cs_branch.parent_id]}, everyone) == 2
    assert count_audience(session, {"stages": ["正式党员"]}, everyone) == 2
    assert count_audience(session, {"units": [cs_branch.parent_id], "stages": ["正式党员"]}, everyone) == 1
    assert count_audience(session, {"roles": ["organiser"]}, everyone) == 1
    assert count_audience(session, {"student_nos": ["sc"]}, everyone) == 1
    cs_only = Scope(frozenset({cs_branch.parent_id, cs_branch.id}))
    assert count_audience(session, {"everyone": True}, cs_only) == 2
    assert count_audience(session, {"units": [marx_branch.id]}, cs_only) == 0
    with pytest.raises(AudienceError, match="没有已关注的成员"):
        create_campaign(session, "x", cs_only, {"units": [marx_branch.id]}, {"text": "x"}, utcnow())


def test_article_links_record_reads_per_recipient_and_refuse_tampering(app, session, members):
    content = {"title": "学习二十大精神", "description": "今日学习", "url": "https://example.org/study"}
    campaign = send_all(app, session, content=content)
    first = received_articles(session, members[0].openid)
    client = app.test_client()
    response = client.get(first.replace(app.config["WXBOT"].server.public_url, ""))
    assert response.status_code == 302 and response.headers["Location"] == "https://example.org/study"
    client.get(first.replace(app.config["WXBOT"].server.public_url, ""))  # a second open counts once
    assert campaign_counts(session, campaign.id)["read"] == 1
    assert client.get(first.replace(app.config["WXBOT"].server.public_url, "")[:-3] + "abc").status_code == 404


def received_articles(session, openid) -> str:
    import json
    session.expire_all()
    row = session.scalars(select(SandboxMessage).where(SandboxMessage.touser == openid,
                                                       SandboxMessage.channel == "customer_service")).first()
    return json.loads(row.content)["articles"][0]["url"]


def test_a_subscription_popup_grants_a_credit_the_engine_then_uses(make_app, session):
    app = make_app(delivery__subscribe_template_id="TPL_study_daily", delivery__channels=["subscribe"])
    phone = phone_for(app)
    user = ChatUser(phone, "oSubscriber")
    user.bind(make_member(session))
    phone.accept_subscription(user.openid, "TPL_study_daily")
    send_all(app, session)
    assert received(session, "subscribe") == Counter({user.openid: 1})
    second = send_all(app, session)  # the one-time credit is spent
    assert campaign_counts(session, second.id)["unreachable"] == 1


def test_mass_sends_carry_a_clientmsgid_and_record_the_job_callback(make_app, session):
    app = make_app(delivery__channels=["mass"])
    phone, branch = phone_for(app), make_branch(session)
    users = [ChatUser(phone, f"oMass{n}") for n in range(3)]
    for user in users:
        user.bind(make_member(session, branch=branch))
    send_all(app, session)
    assert received(session, "mass") == Counter({u.openid: 1 for u in users})
    job = session.scalars(select(MassJob)).one()
    assert job.clientmsgid.startswith("wxbot-") and job.msg_id
    phone.send("oSystem0000000000000000000000", {"MsgType": "event", "Event": "MASSSENDJOBFINISH",
                                                 "MsgID": job.msg_id, "Status": "send success", "TotalCount": "3",
                                                 "FilterCount": "3", "SentCount": "3", "ErrorCount": "0"}, None)
    def recorded():
        session.expire_all()
        return session.get(MassJob, job.id).sent == 3
    assert wait_for(recorded)  # the callback is answered at once and recorded in the background


def job_finished(phone, job, sent: int) -> None:
    phone.send("oSystem0000000000000000000000", {"MsgType": "event", "Event": "MASSSENDJOBFINISH",
                                                 "MsgID": job.msg_id, "Status": "send success",
                                                 "TotalCount": str(sent), "FilterCount": str(sent),
                                                 "SentCount": str(sent), "ErrorCount": "0"}, None)


def sandbox_tags(app) -> list[dict]:
    token = app.test_client().get("/sandbox/cgi-bin/token", query_string={
        "grant_type": "client_credential", "appid": app.config["WXBOT"].wechat.appid,
        "secret": app.config["WXBOT"].sandbox.secret}).get_json()["access_token"]
    return app.test_client().get(f"/sandbox/cgi-bin/tags/get?access_token={token}").get_json()["tags"]


def test_a_subscription_account_mass_sends_by_tag_once_a_day(make_app, session):
    app = make_app(wechat__account_type="subscription", delivery__channels=["mass"])
    phone, branch = phone_for(app), make_branch(session)
    users = [ChatUser(phone, f"oTag{n}") for n in range(3)]
    for user in users:
        user.bind(make_member(session, branch=branch))
    first = send_all(app, session)
    assert received(session, "mass") == Counter({u.openid: 1 for u in users})
    job = session.scalars(select(MassJob)).one()
    assert job.tag_id is not None and [t["id"] for t in sandbox_tags(app)] == [job.tag_id]
    job_finished(phone, job, 3)  # answered at once, recorded after: wait for the record
    deadline = time.monotonic() + 5
    while session.get(MassJob, job.id).tag_id is not None and time.monotonic() < deadline:
        time.sleep(0.05)
        session.expire_all()
    assert session.get(MassJob, job.id).tag_id is None and sandbox_tags(app) == []  # the tag is gone
    # WeChat allows one mass send a day: the second campaign waits for tomorrow instead of failing.
    second = send_all(app, session, content={"text": "第二条"})
    assert session.get(Campaign, second.id).status == "paused"
    assert campaign_counts(session, second.id)["failed"] == 0
    assert session.get(Campaign, first.id).status == "done"


def test_a_single_mass_recipient_is_reached_through_a_tag(make_app, session):
    app = make_app(delivery__channels=["mass"])
    phone, branch = phone_for(app), make_branch(session)
    user = ChatUser(phone, "oAlone0")
    user.bind(make_member(session, branch=branch))
    send_all(app, session)  # WeChat's mass send by openid list wants two openids or more
    assert received(session, "mass") == Counter({user.openid: 1})


def test_broadcast_from_the_command_line_and_its_status(app, session, members, runner):
    result = runner.invoke(args=["broadcast", "send", "--text", "明早八点集合", "--all", "--yes"])
    assert result.exit_code == 0 and "5 人" in result.output
    campaign_id, request_id = session.execute(select(Campaign.id, Campaign.request_id)).one()
    assert request_id.startswith("cli-")  # the delivery workers' log lines about it carry the same id
    for _ in range(3):
        DeliveryWorker(app, "cli-worker").step()
    status = runner.invoke(args=["broadcast", "status", str(campaign_id)])
    assert "已送达 5" in status.output and "客服消息 5" in status.output
    assert "请指定发送对象" in runner.invoke(args=["broadcast", "send", "--text", "x", "--yes"]).output


def worker_process(backend, stdout=None, **settings):
    """`flask --app wxbot worker` in a process of its own, on this backend, with extra WXBOT_ settings."""
    import os
    import subprocess
    import sys

    from wxbot.config import ROOT
    backend_settings = backend["settings"]
    env = {**os.environ, "WXBOT_DATABASE_URL": backend_settings["database_url"], "WXBOT_LOG_LEVEL": "WARNING",
           "WXBOT_SERVER__PUBLIC_URL": backend_settings["server.public_url"],
           "WXBOT_REDIS_URL": backend_settings.get("redis_url", ""),
           "WXBOT_REDIS_PREFIX": backend_settings.get("redis_prefix", "wxbot"),
           **{f"WXBOT_{name.upper()}": value for name, value in settings.items()}}
    return subprocess.Popen([sys.executable, "-m", "flask", "--app", "wxbot", "worker"], cwd=ROOT, env=env,
                            stdout=stdout or subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)


def test_a_worker_killed_mid_campaign_loses_nobody_and_reports_possible_duplicates(make_app, backend, session):
    import signal

    app = make_app()
    phone, branch = phone_for(app), make_branch(session)
    users = [ChatUser(phone, f"oKill{n}") for n in range(60)]
    for user in users:
        user.bind(make_member(session, branch=branch))
    app.test_client().post("/sandbox/faults", json={"latency_ms": 40})
    campaign = create_campaign(session, "测试", Scope(None), {"everyone": True}, {"text": "通知"}, utcnow())
    session.commit()
    worker = worker_process(backend, delivery__in_flight="4", delivery__batch_size="8")
    deadline = time.monotonic() + 30
    while sum(received(session, "customer_service").values()) < 12 and time.monotonic() < deadline:
        time.sleep(0.05)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    app.test_client().post("/sandbox/faults", json={"latency_ms": 0})
    survivor, later = DeliveryWorker(app, "survivor"), utcnow() + timedelta(seconds=61)
    for _ in range(20):
        survivor.step(later)
        session.expire_all()
        if session.get(Campaign, campaign.id).status == "done":
            break
    got = received(session, "customer_service")
    assert set(got) == {u.openid for u in users}  # nobody lost
    flagged = set(session.scalars(select(Delivery.openid).where(Delivery.possibly_duplicated.is_(True))))
    duplicated = {openid for openid, n in got.items() if n > 1}
    # claimed and unmarked at any moment: at most one batch (8) plus the sends in flight (4)
    assert duplicated <= flagged and len(flagged) <= 8 + 4
    assert campaign_counts(session, campaign.id)["possibly_duplicated"] == len(flagged)


@pytest.fixture
def organiser_chat(app, session):
    """A bound organiser of 本科生第一党支部, with two bound members there and one elsewhere."""
    branch = make_branch(session, "计算机学院", "本科生第一党支部")
    other = make_branch(session, "马克思主义学院", "教工党支部")
    phone = phone_for(app)
    for n, (unit, stage) in enumerate([(branch, "正式党员"), (branch, "入党积极分子"), (other, "正式党员")]):
        ChatUser(phone, f"oTarget{n}").bind(make_member(session, branch=unit, stage=stage))
    organiser = ChatUser(phone, "oOrganiserChat")
    organiser.bind(make_member(session, branch=branch, role="organiser", name="张明"))
    return organiser


def test_an_organiser_broadcasts_from_the_chat_with_preview_and_confirmation(app, session, organiser_chat):
    chat = organiser_chat
    assert "请选择发送对象" in chat.say("群发")
    assert "共 3 人" in chat.say("本支部")  # the organiser is in the branch too
    preview = chat.say("周五下午三点在 302 开支部大会，请准时参加。")
    assert "预览" in preview and "302" in preview and "共 3 人" in preview
    assert "预计送达方式" in preview and "客服消息：3 人" in preview  # all three wrote just now
    assert "请回复“确认”" in chat.say("好的")
    assert "已提交群发" in chat.say("确认")
    for _ in range(3):
        DeliveryWorker(app, "chat-worker").step()
    assert sum(received(session, "customer_service").values()) == 3
    assert "已送达 3" in chat.say("群发进度")


def test_the_count_says_who_on_the_roster_cannot_receive_it_on_every_path(app, session, organiser_chat, runner):
    branch = session.scalar(select(Member).where(Member.name == "张明")).org_unit
    for _ in range(2):
        make_member(session, branch=branch)  # on the roster, never bound
    organiser_chat.say("群发")
    reply = organiser_chat.say("本支部")
    assert "共 3 人；另有 2 人未绑定微信或未关注公众号，收不到" in reply
    assert "另有 2 人未绑定" in organiser_chat.say("周五开会")
    result = runner.invoke(args=["broadcast", "send", "--text", "周五开会", "--unit", branch.name], input="n\n")
    assert "将发送给 3 人（另有 2 人未绑定微信或未关注公众号，收不到）" in result.output
    make_account(session, "admin", "admin")
    admin = signed_in(app, "admin")
    token = csrf_token(admin, "/admin/campaigns/new")
    counted = admin.post("/admin/campaigns/count", data={"units": str(branch.id), "csrf_token": token}).get_json()
    assert counted == {"count": 3, "unreached": 2}
    page = admin.post("/admin/campaigns", data={"text": "周五开会", "units": str(branch.id), "csrf_token": token})
    assert "另有 2 人未绑定微信或未关注公众号，收不到" in page.get_data(as_text=True)


def test_an_organiser_cannot_address_units_outside_their_own(app, organiser_chat):
    organiser_chat.say("群发")
    assert "没有找到这个对象" in organiser_chat.say("马克思主义学院")
    assert "共 1 人" in organiser_chat.say("入党积极分子")


def test_cancel_and_exit_leave_the_broadcast_flow_without_sending(app, session, organiser_chat):
    chat = organiser_chat
    chat.say("群发")
    chat.say("本支部")
    chat.say("测试内容")
    assert "已取消" in chat.say("取消")
    chat.say("群发")
    assert chat.say("退出") == "已退出当前操作。"
    assert session.scalars(select(Campaign)).all() == []


def test_commands_run_in_the_broadcast_flow_except_where_it_takes_free_text(app, session, organiser_chat):
    chat = organiser_chat
    chat.say("群发")
    reply = chat.say("积分")  # not an audience any feature knows: the command runs, the flow waits
    assert "积分" in reply
    assert reply.endswith("群发还在等你选择发送对象：回复本支部、组织名称或政治面貌（回复“退出”取消）。")
    assert "“活动”这样的命令也是" in chat.say("本支部")
    preview = chat.say("活动")  # the content step takes any text, as its prompt said
    assert "预览：\n————\n活动\n————" in preview
    reply = chat.say("我的")
    assert "张明" in reply and reply.endswith("群发（共 3 人）还在等你确认：回复“确认”发送，回复“取消”放弃。")
    assert "已提交群发" in chat.say("确认")
    assert session.scalars(select(Campaign.text)).all() == ["活动"]


def test_members_are_refused_the_broadcast_flow(app, session, members):
    assert "仅限组织员" in members[0].say("群发")


def test_a_new_user_can_broadcast_to_the_demo_school_at_once(app, session, runner):
    runner.invoke(args=["demo", "load"])
    result = runner.invoke(args=["broadcast", "send", "--text", "欢迎试用", "--all", "--yes"])
    assert "12 人" in result.output
    for _ in range(3):
        DeliveryWorker(app, "demo-worker").step()
    session.expire_all()
    got = session.scalars(select(SandboxMessage.touser).where(SandboxMessage.content.contains("欢迎试用"))).all()
    assert len(got) == len(set(got)) == 12


def test_a_worker_stopped_with_sigterm_finishes_its_sends_and_flags_nothing(make_app, backend, session):
    import signal
    import subprocess

    app = make_app()
    phone, branch = phone_for(app), make_branch(session)
    users = [ChatUser(phone, f"oTerm{n}") for n in range(40)]
    for user in users:
        user.bind(make_member(session, branch=branch))
    app.test_client().post("/sandbox/faults", json={"latency_ms": 150})
    campaign = create_campaign(session, "测试", Scope(None), {"everyone": True}, {"text": "通知"}, utcnow())
    session.commit()
    worker = worker_process(backend, stdout=subprocess.PIPE, delivery__in_flight="4", delivery__batch_size="8")
    deadline = time.monotonic() + 30
    while sum(received(session, "customer_service").values()) < 8 and time.monotonic() < deadline:
        time.sleep(0.05)
    worker.send_signal(signal.SIGTERM)
    output, _ = worker.communicate(timeout=30)
    assert worker.returncode == 0 and "已退出" in output
    session.expire_all()
    claimed = session.scalars(select(Delivery).where(Delivery.status == "sending")).all()
    assert claimed == []  # every claim released or marked: nothing left to expire
    app.test_client().post("/sandbox/faults", json={"latency_ms": 0})
    DeliveryWorker(app, "next").step(batches=None)
    got = received(session, "customer_service")
    assert set(got) == {u.openid for u in users} and max(got.values()) == 1
    assert campaign_counts(session, campaign.id)["possibly_duplicated"] == 0


def test_a_worker_killed_mid_broadcast_is_taken_over_at_once_and_only_its_sends_in_flight_are_flagged(
        make_app, backend, session):
    """The deployment report: kill -9 of the worker during a broadcast with 1.5 s API latency. Its
    successor takes over at once (not after the lease), and only the sends WeChat had (at most
    delivery.in_flight) are flagged: everyone else gets the notice exactly once."""
    import signal

    app = make_app()
    phone, branch = phone_for(app), make_branch(session)
    users = [ChatUser(phone, f"oKill{n}") for n in range(30)]
    for user in users:
        user.bind(make_member(session, branch=branch))
    app.test_client().post("/sandbox/faults", json={"latency_ms": 1500})
    campaign = create_campaign(session, "测试", Scope(None), {"everyone": True}, {"text": "通知"}, utcnow())
    session.commit()
    worker = worker_process(backend, delivery__in_flight="4")
    assert wait_for(lambda: sum(received(session, "customer_service").values()) >= 4, 30)
    time.sleep(0.7)  # the next sends are with "WeChat" now
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    session.expire_all()
    claimed = session.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == "sending"))
    assert claimed > 4  # a whole batch was claimed, more than was in flight
    app.test_client().post("/sandbox/faults", json={"latency_ms": 0})
    successor, restarted = worker_process(backend, delivery__in_flight="4"), time.monotonic()
    try:
        done = wait_for(lambda: campaign_counts(session, campaign.id)["sent"] == len(users), 30)
        resumed_within = time.monotonic() - restarted
    finally:
        successor.send_signal(signal.SIGTERM)
        successor.wait(30)
    assert done and resumed_within < 15  # the old lease was 60 s: nothing moved for a minute
    got = received(session, "customer_service")
    counts = campaign_counts(session, campaign.id)
    flagged = set(session.scalars(select(Delivery.openid).where(Delivery.campaign_id == campaign.id,
                                                                Delivery.possibly_duplicated.is_(True))))
    twice = {openid for openid, n in got.items() if n > 1}
    assert set(got) == {u.openid for u in users}  # nobody missed
    assert twice <= flagged and 0 < counts["possibly_duplicated"] <= 4  # only what was in flight


def test_a_granted_subscription_is_counted_relatively_and_keeps_a_credit_spent_meanwhile(app, session):
    from models.delivery import grant_subscription
    session.add(SubscriptionCredit(openid="oGrant", template_id="T", credits=1))
    session.commit()
    assert session.scalar(select(SubscriptionCredit.credits).where(SubscriptionCredit.openid == "oGrant")) == 1
    stale = session.scalar(select(SubscriptionCredit).where(SubscriptionCredit.openid == "oGrant"))
    with app.extensions["wxbot.db"]() as engine_side:  # the delivery engine spends the credit meanwhile
        engine_side.execute(update(SubscriptionCredit).where(SubscriptionCredit.openid == "oGrant")
                            .values(credits=SubscriptionCredit.credits - 1))
        engine_side.commit()
    assert stale.credits == 1  # what this session still believes
    grant_subscription(session, "oGrant", "T")
    session.commit()
    session.expire_all()
    assert session.scalar(select(SubscriptionCredit.credits).where(SubscriptionCredit.openid == "oGrant")) == 1


def test_an_organiser_renamed_on_the_roster_still_sees_their_broadcasts(app, session, organiser_chat):
    for line in ("群发", "本支部", "周五开会", "确认"):
        organiser_chat.say(line)
    member = session.scalar(select(Follower).where(Follower.openid == organiser_chat.openid)).member
    member.name = "张明明"
    session.commit()
    assert "周五开会" in organiser_chat.say("群发进度")


def test_a_send_whose_answer_never_came_is_flagged_and_not_repeated(make_app, session, members, runner):
    from wxbot.outbound import wechat_client
    app = make_app(wechat__api_timeout=0.3, delivery__retry_base_seconds=0)
    with app.app_context():
        assert wechat_client().access_token  # fetched before WeChat slows down
    client = app.test_client()
    client.post("/sandbox/faults", json={"latency_ms": 900})  # WeChat answers after our timeout
    campaign = send_all(app, session, rounds=6)
    time.sleep(1.2)  # the last calls finish on WeChat's side
    assert received(session, "customer_service") == Counter({m.openid: 1 for m in members})  # each once
    counts = campaign_counts(session, campaign.id)
    assert counts["unknown"] == 5 and counts["sent"] == 0 and session.get(Campaign, campaign.id).status == "done"
    status = runner.invoke(args=["broadcast", "status", str(campaign.id)]).output
    assert "结果未知 5" in status and "没有自动重发" in status
    client.post("/sandbox/faults", json={"latency_ms": 0})
    make_account(session, "admin", "admin")
    admin = signed_in(app, "admin")
    page = admin.get(f"/admin/campaigns/{campaign.id}").get_data(as_text=True)
    assert "有 5 人的发送结果未知" in page
    path = f"/admin/campaigns/{campaign.id}/resend-unknown"
    asked = admin.post(path, data={"csrf_token": csrf_token(admin, f"/admin/campaigns/{campaign.id}")})
    assert "确认再发给结果未知的 5 人" in asked.get_data(as_text=True)  # asks once, sends nothing yet
    assert campaign_counts(session, campaign.id)["unknown"] == 5
    admin.post(path, data={"csrf_token": csrf_token(admin, f"/admin/campaigns/{campaign.id}"), "confirmed": "1"})
    for _ in range(3):
        DeliveryWorker(app, "after").step()
    counts = campaign_counts(session, campaign.id)
    assert counts["sent"] == 5 and counts["possibly_duplicated"] == 5


def test_a_send_that_never_left_is_retried(make_app, session, members):
    from wxbot.client import TokenUnavailable
    from wxbot.delivery.send import nothing_sent
    assert nothing_sent(TokenUnavailable("no token: the send itself was never made"))
    closed = free_port()  # nobody listens: the connection is refused before anything is sent
    try:
        requests.post(f"http://127.0.0.1:{closed}/cgi-bin/message/custom/send", timeout=1)
    except requests.RequestException as exc:
        assert nothing_sent(exc)
    import socket
    with socket.create_server(("127.0.0.1", 0)) as silent:  # takes the request, never answers
        try:
            requests.post(f"http://127.0.0.1:{silent.getsockname()[1]}/x", data=b"{}", timeout=0.3)
        except requests.RequestException as exc:
            assert not nothing_sent(exc)


def test_broadcast_status_on_the_command_line_counts_what_waits_and_what_expired(app, session, members, runner):
    from models.timeutil import wechat_month
    session.execute(update(Follower).where(Follower.openid == members[0].openid).values(  # only the inbox left
        cs_window_until=utcnow() - timedelta(minutes=1), cs_window_left=0, mass_month=wechat_month(utcnow()),
        mass_count=4))
    session.commit()
    result = runner.invoke(args=["broadcast", "send", "--text", "周末志愿服务", "--all", "--yes"])
    assert result.exit_code == 0
    campaign_id = session.scalars(select(Campaign.id)).one()
    for _ in range(3):
        DeliveryWorker(app, "cli-worker").step()
    status = runner.invoke(args=["broadcast", "status", str(campaign_id)]).output
    assert "已送达 4" in status and "等下次互动 1" in status and "过期未送达 0" in status
    later = utcnow() + timedelta(days=8)  # past delivery.inbox_days
    DeliveryWorker(app, "cli-worker").step(later)
    status = runner.invoke(args=["broadcast", "status", str(campaign_id)]).output
    assert "等下次互动 0" in status and "过期未送达 1" in status


def test_a_broadcast_can_address_those_absent_from_or_signed_up_for_an_event(app, session, runner):
    from datetime import timedelta as later

    from models.checkins import CheckIn
    from models.events import Event
    from models.signups import LeaveRequest
    branch = make_branch(session, "计算机学院", "本科生第一党支部")
    people = []
    for n in range(4):
        user = ChatUser(phone_for(app), f"oEventAudience{n}")
        member = make_member(session, branch=branch)
        user.bind(member)
        people.append(member)
    now = utcnow()
    event = Event(title="支部党员大会", kind="支部党员大会", place="204", signup_required=False,
                  org_unit_id=branch.parent_id, audience=f'{{"units": [{branch.id}]}}',
                  starts_at=now - later(hours=3), ends_at=now - later(hours=1))
    session.add(event)
    session.flush()
    session.add(CheckIn(event_id=event.id, member_id=people[0].id, at=now - later(hours=3), late=False, method="scan"))
    session.add(LeaveRequest(event_id=event.id, member_id=people[1].id, reason="考试", status="approved"))
    session.commit()
    organiser = ChatUser(phone_for(app), "oEventOrganiser")
    organiser.bind(make_member(session, branch=branch, role="organiser", name="张明"))
    organiser.say("群发")
    reply = organiser.say(f"活动 {event.id} 缺席")
    assert "《支部党员大会》缺席（未签到、未请假）的成员，共 3 人" in reply  # the two absent, and the organiser
    organiser.say("请补学会议精神")
    assert "已提交群发" in organiser.say("确认")
    got = session.scalars(select(Delivery.member_id)).all()
    assert people[0].id not in got and people[1].id not in got and {people[2].id, people[3].id} <= set(got)
    result = runner.invoke(args=["broadcast", "send", "--text", "谢谢参加", "--event", str(event.id),
                                 "--event-who", "checked_in", "--yes"])
    assert result.exit_code == 0 and "1 人" in result.output
    make_account(session, "admin", "admin")
    admin = signed_in(app, "admin")
    token = csrf_token(admin, "/admin/campaigns/new")
    assert "支部党员大会" in admin.get("/admin/campaigns/new").get_data(as_text=True)
    counted = admin.post("/admin/campaigns/count", data={"event": str(event.id), "event_who": "on_leave",
                                                          "csrf_token": token}).get_json()
    assert counted["count"] == 1


def test_in_sandbox_mode_sends_go_to_the_running_server_not_through_the_public_address(make_app, backend, caplog):
    from tests.conftest import _empty as empty
    from wxbot.db import database_url
    from wxbot.sandbox.address import note_running_url, running_url_file
    running_at = backend["settings"]["server.public_url"]
    school_domain = running_at.replace("http://", "https://")  # a certificate this server cannot check
    app = make_app(server__public_url=school_domain)
    empty(app)
    session = app.extensions["wxbot.db"]()
    user = ChatUser(phone_for(app), "oBehindNginx")
    user.bind(make_member(session, branch=make_branch(session)))
    send_all(app, session, rounds=3)
    assert received(session) == Counter()
    assert "WeChat API call failed: " + school_domain.split("//")[1] in caplog.text and "SSL" in caplog.text
    note = running_url_file(database_url(app), app.instance_path)
    note_running_url(note, running_at)  # what gunicorn notes when it starts
    try:
        restarted = make_app(server__public_url=school_domain)
        send_all(restarted, session, worker=DeliveryWorker(restarted, "after-start"))
        assert received(session) == Counter({user.openid: 1})
    finally:
        os.remove(note)
    session.close()
