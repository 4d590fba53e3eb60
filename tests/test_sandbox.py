"""The sandbox plays WeChat by WeChat's rules: windows, follows, account types, quotas, QR, menu."""
import time

import pytest
import requests
from wechatpy.exceptions import WeChatClientException

from tests.conftest import phone_for
from tests.helpers import ChatUser
from wxbot.outbound import wechat_client


def api(app):
    """The project's own client, talking to the sandbox over HTTP."""
    with app.app_context():
        return wechat_client()


def errcode(call) -> int:
    with pytest.raises(WeChatClientException) as error:
        call()
    return error.value.errcode


def test_a_message_opens_five_customer_service_messages(make_app, session):
    app = make_app(wechat__cs_window_event_seconds=1)
    user = ChatUser(phone_for(app), "oWriter")
    user.follow()
    time.sleep(1.1)  # the follow's own grant has passed
    user.say("帮助")
    client = api(app)
    for n in range(5):
        client.message.send_text(user.openid, f"第{n + 1}条")
    assert errcode(lambda: client.message.send_text(user.openid, "第6条")) == 45047
    assert len(user.received(session, "customer_service")) == 5


def test_the_grants_of_a_follow_and_a_message_add_up_while_both_are_open(app, session, user):
    user.say("帮助")  # the user fixture followed a moment ago: 3 for a minute, and now 5 for 48 h
    client = api(app)
    for n in range(8):
        client.message.send_text(user.openid, f"第{n + 1}条")
    assert errcode(lambda: client.message.send_text(user.openid, "第9条")) == 45047


def test_a_follow_or_click_opens_three_messages_for_a_minute(make_app, session):
    app = make_app(wechat__cs_window_event_seconds=1)
    user = ChatUser(phone_for(app), "oClicker")
    user.follow()
    client = api(app)
    for _ in range(3):
        client.message.send_text(user.openid, "通知")
    assert errcode(lambda: client.message.send_text(user.openid, "多一条")) == 45047
    user.click("我的")
    time.sleep(1.1)
    assert errcode(lambda: client.message.send_text(user.openid, "窗口已过")) == 45015


def test_unfollowed_and_unknown_users_get_wechats_codes(app, user):
    client = api(app)
    user.unfollow()
    assert errcode(lambda: client.message.send_text(user.openid, "x")) == 43004
    assert errcode(lambda: client.message.send_text("oNeverSeen", "x")) == 40003


def test_template_messages_need_a_service_account(make_app, session):
    app = make_app(wechat__account_type="subscription")
    user = ChatUser(phone_for(app), "oTpl")
    user.follow()
    assert errcode(lambda: api(app).message.send_template(user.openid, "TPL_1", {"k": {"value": "v"}})) == 48001


def test_a_template_message_arrives_on_a_service_account(app, session, user):
    api(app).message.send_template(user.openid, "TPL_1", {"first": {"value": "活动提醒"}})
    assert user.received(session, "template")[0]["data"]["first"]["value"] == "活动提醒"


def test_a_subscription_notification_spends_the_credit_the_user_granted(app, session, user, phone):
    client = api(app)
    def send():
        return client.message.send_subscribe_message(user.openid, "TPL_study_daily", {"thing1": {"value": "今日学习"}})
    assert errcode(send) == 43101
    phone.accept_subscription(user.openid, "TPL_study_daily")
    send()
    assert errcode(send) == 43101
    assert len(user.received(session, "subscribe")) == 1


def mass_to_all(client, text, clientmsgid=""):
    return client.post("message/mass/sendall", data={"filter": {"is_to_all": True}, "msgtype": "text",
                                                     "text": {"content": text}, "clientmsgid": clientmsgid})


def test_a_repeated_clientmsgid_is_refused_within_a_day(app, user):
    client = api(app)
    mass_to_all(client, "通知", "campaign-1")
    assert errcode(lambda: mass_to_all(client, "通知", "campaign-1")) == 45065


def test_a_follower_receives_at_most_four_mass_messages_a_month(app, session, user):
    client = api(app)
    for n in range(5):
        mass_to_all(client, f"群发{n}")
    assert len(user.received(session, "mass")) == 4


def test_a_subscription_account_mass_sends_once_a_day(make_app, session):
    app = make_app(wechat__account_type="subscription")
    ChatUser(phone_for(app), "oSub").follow()
    client = api(app)
    mass_to_all(client, "今天第一次")
    assert errcode(lambda: mass_to_all(client, "今天第二次")) == 45028


def test_mass_send_by_openid_list_needs_two_to_ten_thousand_openids(app, user):
    data = {"touser": [user.openid], "msgtype": "text", "text": {"content": "x"}}
    assert errcode(lambda: api(app).post("message/mass/send", data=data)) == 40130


def test_a_qr_code_can_be_listed_shown_and_scanned(app, user):
    client = api(app)
    ticket = client.qrcode.create({"expire_seconds": 600, "action_name": "QR_STR_SCENE",
                                   "action_info": {"scene": {"scene_str": "ck:1:abc"}}})["ticket"]
    listed = app.test_client().get("/sandbox/qrcodes").get_json()
    assert [q["scene"] for q in listed] == ["ck:1:abc"]
    image = requests.get(client.qrcode_image_url(ticket), timeout=5)
    assert image.headers["Content-Type"] == "image/png" and image.content[:4] == b"\x89PNG"


def test_a_scene_string_over_64_characters_is_refused(app):
    data = {"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": "x" * 65}}}
    assert errcode(lambda: api(app).qrcode.create(data)) == 40053


def test_an_expired_qr_code_is_no_longer_shown(app):
    client = api(app)
    ticket = client.qrcode.create({"expire_seconds": 1, "action_name": "QR_SCENE",
                                   "action_info": {"scene": {"scene_id": 7}}})["ticket"]
    time.sleep(1.1)
    assert requests.get(client.qrcode_image_url(ticket), timeout=5).status_code == 404
    assert app.test_client().get("/sandbox/qrcodes").get_json() == []


def test_menu_sync_sends_the_configured_menu(app, runner):
    result = runner.invoke(args=["menu", "sync"])
    assert result.exit_code == 0, result.output
    menu = app.test_client().get("/sandbox/menu").get_json()["button"]
    assert [b["name"] for b in menu] == ["学习", "答题", "我的"]
    assert api(app).menu.get()["menu"]["button"] == menu


def test_user_info_and_the_follower_list(app, user):
    client = api(app)
    assert client.user.get(user.openid)["subscribe"] == 1
    assert user.openid in client.user.get_followers()["data"]["openid"]


def test_tags_group_followers(app, user):
    client = api(app)
    tag = client.tag.create("2024级党员")
    client.tag.tag_user(tag["id"], [user.openid])
    assert client.post("user/tag/get", data={"tagid": tag["id"]})["data"]["openid"] == [user.openid]


def test_injected_latency_and_errors(app, user):
    client = api(app)
    _ = client.access_token
    app.test_client().post("/sandbox/faults", json={"latency_ms": 200})
    started = time.monotonic()
    client.user.get(user.openid)
    assert time.monotonic() - started >= 0.2
    app.test_client().post("/sandbox/faults", json={"latency_ms": 0, "fault_rate": 1.0})
    assert errcode(lambda: client.user.get(user.openid)) == -1


def test_messages_view_lists_everything_sent_to_a_user_oldest_first(app, user):
    user.say("帮助")
    rows = app.test_client().get(f"/sandbox/messages?touser={user.openid}").get_json()
    assert [r["channel"] for r in rows] == ["reply", "reply"]
    assert "欢迎关注" in rows[0]["content"]["content"] and "可以发送" in rows[1]["content"]["content"]
    history = app.test_client().get(f"/sandbox/messages?touser={user.openid}&include_user=1").get_json()
    assert [(r["channel"], r["content"]["content"][:2]) for r in history] == [
        ("user", "[关"), ("reply", "欢迎"), ("user", "帮助"), ("reply", "你好")]
    assert app.test_client().get("/sandbox/messages").status_code == 400


def test_reset_forgets_everything(app, user):
    assert app.test_client().post("/sandbox/reset").get_json() == {"ok": True}
    assert app.test_client().get(f"/sandbox/messages?touser={user.openid}").get_json() == []
    assert app.test_client().get("/sandbox/users").get_json() == []


def test_the_simulator_page_shows_the_menu(app, runner):
    runner.invoke(args=["menu", "sync"])
    page = app.test_client().get("/sandbox/").get_data(as_text=True)
    assert "公众号模拟器" in page and "今日学习" in page and "我的信息" in page


def test_the_simulator_talks_to_wechat_through_the_real_server(app, backend):
    base = app.config["WXBOT"].server.public_url
    created = requests.post(f"{base}/sandbox/users", json={"nickname": "小红"}, timeout=10).json()
    assert "欢迎关注" in created["reply"]["text"]
    reply = requests.post(f"{base}/sandbox/phone", json={"openid": created["openid"], "action": "click",
                                                         "key": "帮助"}, timeout=10).json()
    assert reply["kind"] == "text" and "可以发送" in reply["text"]
    bad = requests.post(f"{base}/sandbox/phone", json={"action": "dance"}, timeout=10)
    assert bad.status_code == 400 and "openid" in bad.json()["error"]


def test_an_unfollowed_user_cannot_write_until_following_again_and_the_list_says_so(app, session, user):
    user.unfollow()
    assert user.say("帮助") == "你已取消关注这个公众号，需要先关注才能发消息。" and user.last.kind == "blocked"
    users = app.test_client().get("/sandbox/users").get_json()
    assert [u["subscribed"] for u in users if u["openid"] == user.openid] == [False]
    assert user.follow().startswith("欢迎关注") and "可以发送" in user.say("帮助")


def test_a_picture_shows_as_a_picture_in_the_users_own_history(app, session, phone, user):
    phone.image(user.openid)
    mine = app.test_client().get(f"/sandbox/messages?include_user=1&touser={user.openid}").get_json()
    assert [m["content"]["content"] for m in mine if m["channel"] == "user"][-1] == "[图片]"


def test_the_terminal_chat_finds_the_server_make_run_started(make_app, backend, tmp_path):
    from wxbot.sandbox.address import running_url_file
    from wxbot.sandbox.terminal import DEFAULT_PUBLIC_URL
    running_at = backend["settings"]["server.public_url"]  # the live test server, as make run PORT=... started it
    database = f"sqlite:///{tmp_path}/chat.db"
    app = make_app(server__public_url=DEFAULT_PUBLIC_URL, database_url=database)  # config.yaml alone
    with open(running_url_file(database, app.instance_path), "w") as note:
        note.write(running_at)  # as gunicorn.conf.py writes it at start
    from wxbot.migrate import upgrade
    with app.app_context():
        upgrade()
    result = app.test_cli_runner().invoke(args=["chat", "--openid", "oFindsServer"], input="/follow\n/quit\n")
    assert running_at in result.output and "欢迎关注" in result.output
    refused = app.test_cli_runner().invoke(args=["chat", "--url", "http://127.0.0.1:1/wechat"], input="帮助\n")
    assert "http://127.0.0.1:1/wechat" in refused.output and "--url" in refused.output


def test_message_ids_made_by_processes_forked_from_one_parent_never_collide():
    import os

    from wxbot.sandbox.phone import new_msg_id
    new_msg_id()  # the parent made ids before forking, as gunicorn's master imports the phone
    reader, writer = os.pipe()
    children = []
    for _ in range(3):
        pid = os.fork()
        if pid == 0:
            os.close(reader)
            os.write(writer, (",".join(str(new_msg_id()) for _ in range(200)) + ";").encode())
            os._exit(0)
        children.append(pid)
    os.close(writer)
    for pid in children:
        os.waitpid(pid, 0)
    data = b""
    while chunk := os.read(reader, 65536):
        data += chunk
    os.close(reader)
    ids = [int(i) for part in data.decode().strip(";").split(";") for i in part.split(",")]
    assert len(ids) == 600 and len(set(ids)) == 600 and all(0 < i < 2 ** 63 for i in ids)


def test_two_users_may_send_the_same_msgid_and_each_gets_their_own_reply(app, session):
    from tests.helpers import ChatUser, make_branch, make_member
    from wxbot.sandbox.phone import wsgi_transport
    phone = phone_for(app)
    branch = make_branch(session)
    for openid, name in (("oSameIdA", "王一"), ("oSameIdB", "王三")):
        ChatUser(phone, openid).bind(make_member(session, branch=branch, name=name))
    transport = wsgi_transport(app.test_client())
    shown = {}
    for openid in ("oSameIdA", "oSameIdB"):  # WeChat promises a MsgId unique per user, not across users
        query, body = phone.build(openid, {"MsgType": "text", "Content": "我的", "MsgId": 777000111})
        shown[openid] = phone.read_reply(*transport(query, body)).text
    assert "王一" in shown["oSameIdA"] and "王三" in shown["oSameIdB"]
