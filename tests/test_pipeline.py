"""WeChat's retries, the reply budget, the error hook and the message log."""
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import select

from models.messagelog import MessageLog
from models.timeutil import utcnow
from scheduler.jobs import purge_message_log
from tests.conftest import flush_log, phone_for
from tests.helpers import ChatUser, add_router, make_member, wait_for
from wxbot.pipeline import APOLOGY
from wxbot.router import Router


def counting_router(delay: float = 0.0):
    router, calls = Router("test"), []

    @router.text("慢")
    def slow(ctx):
        calls.append(ctx.openid)
        time.sleep(delay)
        return f"第 {len(calls)} 次处理"
    return router, calls


def deliver(phone, query, body):
    return phone.read_reply(*phone.transport(query, body))


def test_four_deliveries_in_sequence_run_the_handler_once_and_all_get_the_first_reply(app, phone):
    router, calls = counting_router()
    add_router(app, router)
    query, body = phone.build("oRetry", {"MsgType": "text", "Content": "慢", "MsgId": 777001})
    replies = [deliver(phone, query, body).text for _ in range(4)]
    assert calls == ["oRetry"] and replies == ["第 1 次处理"] * 4


def test_four_concurrent_deliveries_run_the_handler_once(app, phone):
    router, calls = counting_router(delay=0.3)
    add_router(app, router)
    query, body = phone.build("oRetry", {"MsgType": "text", "Content": "慢", "MsgId": 777002})
    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda _: deliver(phone, query, body).text, range(4)))
    assert len(calls) == 1 and replies == ["第 1 次处理"] * 4


def test_a_retry_takes_over_a_message_whose_first_delivery_died_with_its_process(app, phone):
    """The first delivery's worker was killed after claiming the message and taking the sender's
    lock: WeChat's retry 5 s later handles the message itself instead of answering nothing."""
    from wxbot import services
    from wxbot.protocol import parse
    from wxbot.redelivery import PENDING, user_lock
    from wxbot.replies import dedup_key
    router, calls = counting_router()
    add_router(app, router)
    query, body = phone.build("oOrphan", {"MsgType": "text", "Content": "慢", "MsgId": 777003})
    key = dedup_key(parse(body.decode()))
    store = services.store(app)
    dead = f"{PENDING}:{time.time() - 6:.3f}:otherhost:1:deadtoken"  # 6 s ago, by a process on another host
    store.set(key, dead, 300)
    store.take_lock(user_lock("oOrphan"), "deadtoken", 10)
    assert deliver(phone, query, body).text == "第 1 次处理" and calls == ["oOrphan"]
    fresh = f"{PENDING}:{time.time():.3f}:otherhost:1:livetoken"  # a first delivery still working: wait
    query, body = phone.build("oOrphan", {"MsgType": "text", "Content": "慢", "MsgId": 777004})
    store.set(dedup_key(parse(body.decode())), fresh, 300)
    started = time.monotonic()
    assert deliver(phone, query, body).raw == "success" and calls == ["oOrphan"]
    assert time.monotonic() - started >= app.config["WXBOT"].wechat.reply_budget - 0.5
    import socket
    import subprocess
    gone = subprocess.Popen(["true"])
    gone.wait()
    killed = f"{PENDING}:{time.time():.3f}:{socket.gethostname()}:{gone.pid}:killedtoken"  # just now, here
    query, body = phone.build("oOrphan", {"MsgType": "text", "Content": "慢", "MsgId": 777005})
    store.set(dedup_key(parse(body.decode())), killed, 300)
    store.take_lock(user_lock("oOrphan"), "killedtoken", 10)
    started = time.monotonic()
    assert deliver(phone, query, body).text == "第 2 次处理" and time.monotonic() - started < 2


def test_retried_failed_binding_counts_as_one_attempt(app, phone, session):
    member = make_member(session, name="王芳")
    user = ChatUser(phone, "oRetryBind")
    user.follow()
    for attempt in range(4):
        query, body = phone.build(user.openid, {"MsgType": "text", "Content": f"绑定 {member.student_no} 错名",
                                                "MsgId": 778000 + attempt})
        for _ in range(4):  # each attempt delivered four times by WeChat
            deliver(phone, query, body)
    assert "绑定成功" in user.bind(member)  # 4 real attempts, not 16: not locked out


def test_events_in_one_second_are_told_apart_by_their_key(app, phone):
    router, calls = Router("test"), []

    @router.click("A")
    @router.click("B")
    def clicked(ctx):
        calls.append(ctx.inbound.click_key)
        return "ok"
    add_router(app, router)
    stamp = int(time.time())
    for key in ("A", "A", "B"):
        deliver(phone, *phone.build("oEvents", {"MsgType": "event", "Event": "CLICK", "EventKey": key}, stamp))
    assert sorted(calls) == ["A", "B"]


def test_a_slow_handler_answers_later_through_customer_service(make_app, session):
    ChatUser(phone_for(make_app()), "oSlowUser").follow()  # at the usual budget: the welcome is never late
    app = make_app(wechat__reply_budget=0.3)
    router, calls = counting_router(delay=3.0)
    add_router(app, router)
    phone = phone_for(app)
    user = ChatUser(phone, "oSlowUser")
    user.say("慢", late_within=0)
    handled = list(calls)
    assert user.last.kind == "none" and user.last.raw == "success"  # not "暂时无法提供服务"
    late = user.received(session, "customer_service")
    assert handled == ["oSlowUser"] and not late  # WeChat was answered while the handler was still at work
    late = wait_for(lambda: user.received(session, "customer_service"))
    assert late[0]["content"] == "第 1 次处理"
    # The late reply used one of the five messages the user's message opened: the engine knows.
    from models.followers import Follower

    def window_left():
        session.expire_all()
        return session.scalar(select(Follower.cs_window_left).where(Follower.openid == user.openid))
    assert wait_for(lambda: window_left() == 4)

    def logged():
        flush_log(app)
        return session.scalars(select(MessageLog.kind).where(MessageLog.direction == "out",
                                                             MessageLog.openid == user.openid)).all()
    assert "customer_service" in wait_for(logged)


def test_retries_of_a_late_message_get_success_and_one_late_reply(make_app, session):
    ChatUser(phone_for(make_app()), "oSlowRetry").follow()  # at the usual budget: the welcome is never late
    app = make_app(wechat__reply_budget=0.2)
    router, calls = counting_router(delay=0.6)
    add_router(app, router)
    phone = phone_for(app)
    query, body = phone.build("oSlowRetry", {"MsgType": "text", "Content": "慢", "MsgId": 777003})
    replies = [deliver(phone, query, body).raw for _ in range(3)]
    assert replies == ["success"] * 3
    assert len(wait_for(lambda: ChatUser(phone, "oSlowRetry").received(session, "customer_service"))) == 1
    assert calls == ["oSlowRetry"]  # the retries were answered from the first claim: no later call can come


def test_a_failing_handler_gives_a_short_apology_and_the_log_the_detail(app, phone, caplog):
    router = Router("test")

    @router.text("坏")
    def broken(ctx):
        raise RuntimeError("database exploded")
    add_router(app, router)
    user = ChatUser(phone, "oUnluckyUser0000000000001")
    user.follow()
    with caplog.at_level(logging.ERROR):
        assert user.say("坏") == APOLOGY
    assert "database exploded" in caplog.text and "oUnluckyUser" not in caplog.text
    assert "绑定 学号 姓名" in user.say("帮助")  # the account keeps working


def test_a_long_reply_is_cut_to_what_wechat_accepts(app, phone):
    router = Router("test")

    @router.text("长")
    def long_reply(ctx):
        return "党" * 3000
    add_router(app, router)
    user = ChatUser(phone, "oLong")
    reply = user.say("长")
    assert len(reply.encode()) <= 2000 and reply.endswith("…")


def test_every_message_and_reply_is_logged_for_the_organisers(app, user, session):
    user.say("帮助")
    flush_log(app)
    rows = session.scalars(select(MessageLog).where(MessageLog.openid == user.openid).order_by(MessageLog.id)).all()
    assert [(r.direction, r.kind) for r in rows] == [("in", "event:subscribe"), ("out", "reply"),
                                                     ("in", "text"), ("out", "reply")]
    assert rows[2].content == "帮助" and "可以发送" in rows[3].content


def test_location_reports_are_logged_without_coordinates(app, user, phone, session):
    phone.send(user.openid, {"MsgType": "event", "Event": "LOCATION", "Latitude": "26.578300",
                             "Longitude": "106.713500", "Precision": "30.0"}, None)
    flush_log(app)
    rows = session.scalars(select(MessageLog.content).where(MessageLog.kind == "event:location")).all()
    assert rows and all("26.57" not in r for r in rows)


def test_the_retention_job_deletes_old_log_entries_only(app, user, session):
    flush_log(app)
    old = MessageLog(openid=user.openid, direction="in", kind="text", content="旧消息",
                     created_at=utcnow() - timedelta(days=181))
    session.add(old)
    session.commit()
    assert purge_message_log(app) == 1
    remaining = session.scalars(select(MessageLog.content)).all()
    assert "旧消息" not in remaining and remaining


def test_job_callbacks_are_answered_at_once_without_creating_a_follower(app, phone, session):
    from models.delivery import Campaign, MassJob
    from models.followers import Follower
    campaign = Campaign(creator="测试", kind="text", text="通知")
    session.add(campaign)
    session.flush()
    job = MassJob(campaign_id=campaign.id, clientmsgid="wxbot-test", msg_id="1000001625")
    session.add(job)
    session.commit()
    reply = phone.send("oSystem000000000000000000000", {"MsgType": "event", "Event": "MASSSENDJOBFINISH",
                                                         "MsgID": "1000001625", "Status": "send success",
                                                         "TotalCount": "100"}, None)
    assert reply.raw == "success"

    def recorded():
        session.expire_all()
        return session.get(MassJob, job.id).total == 100
    assert wait_for(recorded)  # the callback has been handled, in the background
    assert session.scalar(select(Follower).where(Follower.openid == "oSystem000000000000000000000")) is None


def test_one_users_messages_are_handled_one_at_a_time(app, phone):
    router, active, overlaps = Router("test"), [], []
    lock = threading.Lock()

    @router.text("并发")
    def concurrent(ctx):
        with lock:
            active.append(1)
            overlaps.append(len(active))
        time.sleep(0.1)
        with lock:
            active.pop()
        return "ok"
    add_router(app, router)
    user = ChatUser(phone, "oParallel")
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda _: phone.text(user.openid, "并发"), range(3)))
    assert max(overlaps) == 1


def test_the_log_is_written_in_the_background_without_a_flush(app, user, session):
    user.say("帮助")
    assert wait_for(lambda: session.scalars(select(MessageLog).where(MessageLog.content == "帮助")).all(), 3)


def test_a_log_entry_the_database_refuses_is_dropped_alone_and_does_not_block_the_others(app, user, session, caplog):
    from wxbot.logwriter import QUEUE, encode
    writer = app.extensions["wxbot.logwriter"]
    writer.flush()
    entry = {"openid": user.openid, "direction": "in", "kind": "text", "created_at": utcnow()}
    writer.store.push(QUEUE, encode(dict(entry, member_id=999999, content="孤儿")),
                      encode(dict(entry, member_id=None, content="正常")))
    writer.flush()  # (or the writer's own thread, whichever comes first)
    assert wait_for(lambda: writer.store.peek(QUEUE, 10) == [], 3)
    contents = session.scalars(select(MessageLog.content).where(MessageLog.openid == user.openid)).all()
    assert "正常" in contents and "孤儿" not in contents and "refused by the database" in caplog.text


def test_a_failure_after_the_reply_budget_is_reported_not_lost(make_app, session, caplog):
    app = make_app(wechat__reply_budget=0.2)
    router = Router("test")

    @router.text("迟到")
    def late_and_broken(ctx):
        time.sleep(0.5)
        raise RuntimeError("boom after the budget")
    add_router(app, router)
    user = ChatUser(phone_for(app), "oLateFailure")
    user.follow()
    user.say("迟到")
    assert wait_for(lambda: "boom after the budget" in caplog.text, 5)
    assert "handler for u" in caplog.text and "oLateFailure" not in caplog.text  # a masked openid only


def test_a_scheduled_job_that_raises_is_reported(app, caplog):
    from scheduler import JOBS, JobSpec, build_scheduler
    boom = JobSpec("test.boom", lambda _app: 1 / 0, "push.daily_at")
    scheduler = build_scheduler(app)
    scheduler.add_job(boom.func, args=[app], id=boom.id)
    scheduler.start()
    try:
        assert wait_for(lambda: "scheduled job test.boom failed" in caplog.text, 5)
    finally:
        scheduler.shutdown(wait=False)
    assert boom not in JOBS
