"""What an outside probe of the running product found, each closed: through the webhook, the console
with a browser-like client, the CLI, and gunicorn as deployed."""
import io
import socket
import time
import uuid

import pytest
import requests
from openpyxl import load_workbook
from sqlalchemy import select

from models.accounts import AuditLog
from models.members import Member
from tests.conftest import phone_for
from tests.helpers import ChatUser, Gunicorn, add_router, console_login, csrf_token, make_member, signed_in
from wxbot.migrate import upgrade


def post(client, path, **data):
    return client.post(path, data={**data, "csrf_token": csrf_token(client, "/admin/")})


def text(response) -> str:
    return response.get_data(as_text=True)


# --- 1. an organiser cannot make anyone an admin ---------------------------------------------------

def test_an_organiser_cannot_make_a_member_an_admin_in_the_console(app, school, session):
    organiser, member = signed_in(app, "cs"), school["oA"]
    role_choices = text(organiser.get(f"/admin/members/{member.id}")).split('id="role"')[1].split("</select>")[0]
    assert "管理员" not in role_choices
    post(organiser, f"/admin/members/{member.id}", name=member.name, stage=member.stage, role="admin",
         unit=str(member.org_unit_id))
    session.expire_all()
    assert session.get(Member, member.id).role == "member"
    broadcast = ChatUser(phone_for(app), "oA").say("群发")
    assert "仅限组织员和管理员" in broadcast


def test_an_admin_may_grant_the_admin_role(app, school, session):
    admin, member = signed_in(app, "admin"), school["oA"]
    post(admin, f"/admin/members/{member.id}", name=member.name, stage=member.stage, role="admin",
         unit=str(member.org_unit_id))
    session.expire_all()
    assert session.get(Member, member.id).role == "admin"


def roster_upload(client, content: str, name="r.csv"):
    return client.post("/admin/members/import", content_type="multipart/form-data",
                       data={"file": (io.BytesIO(content.encode("utf-8")), name),
                             "csrf_token": csrf_token(client, "/admin/")})


def test_a_roster_row_granting_the_admin_role_is_refused_to_an_organiser(app, school, session):
    rows = "学号,姓名,学院,支部,政治面貌,角色\n2024002,{},计算机学院,本科生第一党支部,共青团员,管理员\n".format(
        school["oB"].name)
    response = roster_upload(signed_in(app, "cs"), rows)
    assert response.status_code == 400 and "第 2 行" in text(response) and "只有管理员" in text(response)
    session.expire_all()
    assert session.get(Member, school["oB"].id).role == "member"


def test_a_role_change_made_by_import_is_logged_per_member(app, school, session):
    rows = "学号,姓名,学院,支部,政治面貌,角色\n2024002,{},计算机学院,本科生第一党支部,共青团员,组织员\n".format(
        school["oB"].name)
    assert roster_upload(signed_in(app, "admin"), rows).status_code == 302
    entry = session.scalar(select(AuditLog).where(AuditLog.object_id == "2024002"))
    assert entry is not None and ("角色", "成员", "组织员") in entry.changes()


def test_a_chat_broadcast_is_audited_and_shown_to_the_organisers_of_every_unit_it_reaches(app, school, session):
    marx_admin = school["oC"]
    marx_admin.role = "admin"
    session.merge(marx_admin)
    session.commit()
    chat = ChatUser(phone_for(app), "oC")
    for line in ("群发", "计算机学院", "周五下午开会", "确认"):
        reply = chat.say(line)
    assert "已提交群发" in reply
    page = text(signed_in(app, "cs").get("/admin/audit")).split('id="audit"')[1]
    assert "微信群发" in page and marx_admin.name in page


# --- 2. slow bodies do not hold the server ------------------------------------------------------

@pytest.fixture
def served(tmp_path):
    """gunicorn as deployed (1 worker x 4 threads) on a fresh embedded database."""
    url = f"sqlite:///{tmp_path}/served.db"
    from wxbot import create_app
    with create_app({"database_url": url, "log_level": "WARNING"}).app_context():
        upgrade()
    env = {"WXBOT_DATABASE_URL": url, "WXBOT_SERVER__READ_TIMEOUT": "1.5", "WXBOT_LOG_LEVEL": "WARNING"}
    with Gunicorn(env) as server:
        yield server


def slow_post(server, query: str) -> socket.socket:
    """A POST that sends its headers and then one byte of its body, and nothing more."""
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall((f"POST /wechat?{query} HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
                  "Content-Length: 1000\r\n\r\n<").encode())
    return sock


def signed_query() -> str:
    from wxbot.protocol import sign
    stamp, nonce = str(int(time.time())), uuid.uuid4().hex[:8]
    return f"signature={sign('wxbotsandboxtoken', stamp, nonce)}&timestamp={stamp}&nonce={nonce}"


def test_slow_unsigned_bodies_are_refused_before_they_are_read(served):
    sockets = [slow_post(served, "signature=x&timestamp=1&nonce=n") for _ in range(8)]
    started = time.monotonic()
    assert requests.get(served.url + "/healthz", timeout=5).status_code == 200
    assert time.monotonic() - started < 1.0
    for sock in sockets:
        sock.settimeout(2)
        assert sock.recv(100).startswith(b"HTTP/1.1 403")
        sock.close()


def test_a_signed_body_that_takes_too_long_is_cut_off(served):
    sockets = [slow_post(served, signed_query()) for _ in range(4)]
    for sock in sockets:
        sock.settimeout(5)
        assert sock.recv(100).startswith(b"HTTP/1.1 408")
        sock.close()
    assert requests.get(served.url + "/healthz", timeout=2).status_code == 200


def test_slow_console_bodies_and_slow_headers_are_cut_off_and_the_server_keeps_answering(served):
    bodies, headers = [], []
    for _ in range(4):
        body = socket.create_connection(("127.0.0.1", served.port))
        body.sendall(b"POST /admin/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                     b"Content-Length: 1000\r\n\r\nu")
        head = socket.create_connection(("127.0.0.1", served.port))
        head.sendall(b"GET /healthz HTTP/1.1\r\nHo")
        bodies.append(body)
        headers.append(head)
    started = time.monotonic()
    assert requests.get(served.url + "/healthz", timeout=10).status_code == 200
    assert time.monotonic() - started < 1.5 + 1.5  # read_timeout, then a free thread
    for sock in bodies + headers:
        sock.settimeout(5)
    assert all(sock.recv(100).startswith(b"HTTP/1.1 408") for sock in bodies)
    assert all(sock.recv(100) == b"" for sock in headers)  # cut off: the connection is closed


# --- 3. console sessions can be revoked ----------------------------------------------------------

def copied_session(app, original):
    thief = app.test_client()
    thief.set_cookie("session", original.get_cookie("session").value)
    return thief


def test_a_session_cookie_copied_before_logout_stops_working_at_logout(app, school):
    organiser = signed_in(app, "cs")
    thief = copied_session(app, organiser)
    assert thief.get("/admin/members").status_code == 200
    post(organiser, "/admin/logout")
    assert thief.get("/admin/members").status_code == 302


def test_a_password_change_ends_every_session_of_the_account(app, school, runner):
    organiser = signed_in(app, "cs")
    other_device = signed_in(app, "cs")
    assert runner.invoke(args=["admin", "passwd", "cs", "--password", "a-new-long-password"]).exit_code == 0
    assert organiser.get("/admin/").status_code == 302 and other_device.get("/admin/").status_code == 302


def test_signing_out_everywhere_and_disabling_end_sessions(app, school, runner):
    phone_session, desk = signed_in(app, "cs"), signed_in(app, "cs")
    post(desk, "/admin/logout-everywhere")
    assert phone_session.get("/admin/").status_code == 302
    admin = signed_in(app, "admin")
    assert runner.invoke(args=["admin", "disable", "admin"]).exit_code == 0
    assert admin.get("/admin/").status_code == 302
    assert console_login(app.test_client(), "admin").status_code == 401


def test_a_role_change_ends_the_accounts_sessions(app, school, runner):
    organiser = signed_in(app, "cs")
    assert runner.invoke(args=["admin", "role", "cs", "--role", "organiser", "--org", "马克思主义学院"]).exit_code == 0
    assert organiser.get("/admin/").status_code == 302
    assert "马克思主义学院" in text(signed_in(app, "cs").get("/admin/"))


# --- 4. sign-in throttling behind a proxy --------------------------------------------------------

def login_from(app, address: str, username: str, password: str):
    client = app.test_client()
    token = csrf_token(client)
    return client.post("/admin/login", data={"username": username, "password": password, "csrf_token": token},
                       headers={"X-Forwarded-For": address})


def test_behind_a_proxy_failures_from_one_address_do_not_lock_out_another(make_app, session):
    from tests.helpers import PASSWORD, make_account
    app = make_app(server__trusted_proxies=1)
    make_account(session, "admin", "admin")
    for _ in range(5):
        assert login_from(app, "203.0.113.9", "admin", "wrong").status_code == 401
    assert login_from(app, "203.0.113.9", "admin", PASSWORD).status_code == 429
    time.sleep(1.1)  # the name's own delay after five failures is one second
    assert login_from(app, "198.51.100.7", "admin", PASSWORD).status_code == 302


def test_strangers_only_slow_a_name_down_never_lock_it_out(make_app, session):
    from tests.helpers import PASSWORD, make_account
    app = make_app(server__trusted_proxies=1, console__login_max_delay=2)
    make_account(session, "admin", "admin")
    for n in range(8):
        time.sleep(0.01)
        login_from(app, f"203.0.113.{n}", "admin", "wrong")
    waiting = login_from(app, "198.51.100.7", "admin", PASSWORD)
    assert waiting.status_code == 429 and "秒后再试" in text(waiting)
    time.sleep(2.1)
    assert login_from(app, "198.51.100.7", "admin", PASSWORD).status_code == 302


def test_without_trusted_proxies_a_forwarded_address_is_not_believed(app, school):
    for n in range(5):
        login_from(app, f"203.0.113.{n}", "cs", "wrong")
    assert login_from(app, "198.51.100.7", "cs", "whatever").status_code == 429


def test_an_unknown_name_takes_as_long_as_a_wrong_password(app, school):
    def timed(username):
        started = time.perf_counter()
        console_login(app.test_client(), username, "wrong-password")
        return time.perf_counter() - started
    timed("nobody-at-all")  # warm up
    known = min(timed("admin") for _ in range(2))
    unknown = min(timed(f"nobody-{n}") for n in range(2))
    assert unknown > known * 0.5


# --- 5. binding ------------------------------------------------------------------------------------

def test_in_code_mode_binding_needs_the_one_time_code_from_the_organiser(make_app, session, tmp_path):
    app = make_app(members__bind_mode="code")
    member = make_member(session, name="王芳")
    result = app.test_cli_runner().invoke(args=["roster", "codes", str(tmp_path / "codes.xlsx")])
    assert result.exit_code == 0, result.output
    rows = list(load_workbook(tmp_path / "codes.xlsx").active.iter_rows(values_only=True))
    code = next(r[3] for r in rows if r[0] == member.student_no)
    phone = phone_for(app)
    guesser = ChatUser(phone, "oGuesser")
    guesser.follow()
    assert "绑定码" in guesser.bind(member) and "绑定没有成功" in guesser.last.text
    owner = ChatUser(phone, "oOwner")
    owner.follow()
    assert "绑定成功" in owner.say(f"绑定 {member.student_no} {member.name} {code}")
    owner.say("解绑")
    assert "绑定没有成功" in guesser.say(f"绑定 {member.student_no} {member.name} {code}")  # used once


# --- 6. malformed input is a 4xx or a sensible page -------------------------------------------------

def signed_post(app, body: bytes, timestamp: str | None = None):
    from wxbot.protocol import sign
    stamp, nonce = timestamp or str(int(time.time())), uuid.uuid4().hex[:8]
    query = f"signature={sign('wxbotsandboxtoken', stamp, nonce)}&timestamp={stamp}&nonce={nonce}"
    return app.test_client().post(f"/wechat?{query}", data=body, content_type="text/xml")


def message(rest: str, created: str | None = None) -> bytes:
    created = created or str(int(time.time()))
    return (f"<xml><ToUserName>gh</ToUserName><FromUserName>oProbe</FromUserName><CreateTime>{created}"
            f"</CreateTime>{rest}</xml>").encode()


@pytest.mark.parametrize("body", [
    message("<MsgType></MsgType><Content>hi</Content><MsgId>1</MsgId>"),
    message("<MsgType>text</MsgType><MsgType>event</MsgType><Content>hi</Content><MsgId>2</MsgId>"),
    message("<MsgType>event</MsgType><Event></Event>"),
    message("<MsgType>event</MsgType><Event>CLICK</Event><Event>SCAN</Event><EventKey>x</EventKey>"),
    message("<MsgType>text</MsgType><Content>a</Content><Content>b</Content><MsgId>3</MsgId>"),
    message("<MsgType>text</MsgType><Content>hi</Content><MsgId>4</MsgId>", created="9" * 400),
    message("<MsgType>text</MsgType><Content>hi</Content><MsgId>5</MsgId>").decode().encode("utf-16"),
], ids=["empty MsgType", "two MsgTypes", "empty Event", "two Events", "two Contents", "400-digit CreateTime",
        "UTF-16 body"])
def test_malformed_signed_messages_are_refused_with_400(app, body):
    assert signed_post(app, body).status_code == 400


def test_a_400_digit_timestamp_is_refused_not_a_server_error(app):
    assert signed_post(app, message("<MsgType>text</MsgType><Content>hi</Content><MsgId>6</MsgId>"),
                       timestamp="9" * 400).status_code == 403


def test_a_reply_quoting_cdata_end_stays_well_formed_xml(app, school):
    import xml.etree.ElementTree as ET
    chat = ChatUser(phone_for(app), "oA")
    reply = chat.say("]]><b>x</b>")
    assert "]]><b>x</b>" in reply  # the phone parsed the XML and read the text back whole
    ET.fromstring(chat.last.raw)


def test_the_beacon_refuses_bodies_that_are_not_a_seconds_object(app, school, session):
    from models.study import Material
    from wxbot.study import study_link
    material = Material(title="材料", body="正文", status="published")
    session.add(material)
    session.commit()
    url = study_link(app, school["oA"].id, material.id).split("127.0.0.1", 1)[1].split("/", 1)[1]
    client = app.test_client()
    for body in ("[1, 2]", '"15"', '{"seconds": 1e400}', '{"seconds": -5}', '{"seconds": true}', "not json"):
        response = client.post(f"/{url}/beacon", data=body, content_type="application/json")
        assert response.status_code == 400, body
    assert client.post(f"/{url}/beacon", json={"seconds": 15}).status_code == 200


def test_console_numbers_and_dates_out_of_range_get_a_page_not_an_error(app, school):
    admin = signed_in(app, "admin")
    huge = "9" * 25
    for path in (f"/admin/members/{huge}", f"/admin/campaigns/{huge}", f"/admin/materials/{huge}"):
        assert admin.get(path).status_code == 404, path
    for path in (f"/admin/messages?page={huge}", f"/admin/audit?page={huge}", f"/admin/members?unit={huge}",
                 "/admin/messages?start=0001-01-01&end=9999-12-31", "/admin/audit?end=9999-12-31"):
        assert admin.get(path).status_code == 200, path
    assert admin.get("/admin/plan?month=9999-12").status_code == 400
    assert admin.get("/admin/plan?month=2026-13").status_code == 400
    moved = post(admin, f"/admin/org/{school['cs'].id}/move", parent_id=huge)
    assert moved.status_code == 400


def test_a_next_address_with_a_line_break_is_not_followed(app, school):
    client = app.test_client()
    response = client.post("/admin/login?next=/admin/members%0d%0aSet-Cookie:x=1",
                           data={"username": "admin", "password": "correct-horse-42", "csrf_token": csrf_token(client)})
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/")


# --- 7. unfollowing leaves nothing personal behind ------------------------------------------------

def test_unfollowing_erases_deliveries_credits_and_the_follower_row(app, school, session):
    from models.delivery import Delivery, SubscriptionCredit
    from models.followers import Follower
    from wxbot.delivery.engine import DeliveryWorker
    phone = phone_for(app)
    phone.accept_subscription("oA", "tmpl-1")
    admin = signed_in(app, "admin")
    post(admin, "/admin/campaigns", text="周五开会", everyone="1", action="send", confirmed="1")
    DeliveryWorker(app, "w").step()
    ChatUser(phone, "oA").unfollow()
    session.expire_all()
    assert session.scalar(select(Follower).where(Follower.openid == "oA")) is None
    assert session.scalar(select(SubscriptionCredit).where(SubscriptionCredit.openid == "oA")) is None
    assert session.scalar(select(Delivery).where(Delivery.openid == "oA")) is None
    left = session.scalars(select(Delivery).where(Delivery.openid.like("erased-%"))).all()
    assert len(left) == 1 and left[0].member_id is None and left[0].status == "sent"


# --- 8. exports never carry a live formula --------------------------------------------------------

def test_a_member_named_like_a_formula_is_exported_as_text(app, school, session, runner, tmp_path):
    make_member(session, branch=school["cs"], name="=HYPERLINK(\"http://evil\",\"点我\")", student_no="2024999")
    workbook = load_workbook(io.BytesIO(signed_in(app, "admin").get("/admin/members/export.xlsx").data))
    cell = next(row[1] for row in workbook.active.iter_rows() if row[0].value == "2024999")
    assert cell.data_type == "s" and cell.value.startswith("=HYPERLINK")
    runner.invoke(args=["roster", "export", str(tmp_path / "r.csv")])
    import csv
    rows = list(csv.reader(io.StringIO((tmp_path / "r.csv").read_text("utf-8-sig"))))
    assert next(r[1] for r in rows if r[0] == "2024999").startswith("'=HYPERLINK")


# --- 9. pages cannot be framed or scripted by others ---------------------------------------------

def test_console_and_member_pages_carry_anti_framing_and_a_content_security_policy(app, school):
    for response in (app.test_client().get("/admin/login"), app.test_client().get("/s/not-a-link")):
        headers = response.headers
        assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert "script-src 'self' 'nonce-" in headers["Content-Security-Policy"]
    assert app.test_client().get("/s/not-a-link").headers["Referrer-Policy"] == "no-referrer"


# --- 10. one college's plan never blocks another's -----------------------------------------------

def test_two_colleges_may_plan_the_same_school_material_on_the_same_day(app, school, session):
    from datetime import timedelta

    from models.accounts import create_account
    from models.study import Material, PlanEntry
    from models.timeutil import local_date
    create_account(session, "marx", "correct-horse-42", "organiser", school["marx"].parent)
    material = Material(title="全校材料", body="正文", status="published")
    session.add(material)
    session.commit()
    day = (local_date() + timedelta(days=3)).isoformat()
    post(signed_in(app, "cs"), "/admin/plan", day=day, material_id=str(material.id))
    page = post(signed_in(app, "marx"), "/admin/plan", day=day, material_id=str(material.id))
    assert page.status_code == 302
    assert session.query(PlanEntry).filter_by(material_id=material.id).count() == 2


# --- 11. personal links expire and carry no readable ids -----------------------------------------

def test_an_old_reading_link_shows_how_to_get_a_new_one(app, school, session):
    from unittest import mock

    from models.study import Material
    from wxbot.study import study_link
    material = Material(title="材料", body="正文", status="published")
    session.add(material)
    session.commit()
    with mock.patch("time.time", return_value=time.time() - 31 * 86400):
        old = study_link(app, school["oA"].id, material.id)
    page = app.test_client().get(old.split(app.config["WXBOT"].server.public_url)[1])
    assert page.status_code == 410 and "已经过期" in text(page) and "学习" in text(page)


def test_five_beacons_at_once_count_as_the_time_that_passed(app, school, session):
    from concurrent.futures import ThreadPoolExecutor

    from models.study import Material, Reading
    from wxbot.study import study_link
    material = Material(title="材料", body="正文", status="published")
    session.add(material)
    session.commit()
    path = study_link(app, school["oA"].id, material.id).split(app.config["WXBOT"].server.public_url)[1]
    app.test_client().get(path)
    time.sleep(2)
    with ThreadPoolExecutor(5) as pool:
        list(pool.map(lambda _: app.test_client().post(path + "/beacon", json={"seconds": 15}), range(5)))
    reading = session.scalar(select(Reading).where(Reading.material_id == material.id))
    assert reading.seconds <= 3 and reading.credited_at is None


# --- 12. the sandbox asks for a sign-in when it can be reached from the network ------------------

def test_sandbox_pages_need_a_console_sign_in_from_another_computer(app, school):
    stranger = app.test_client()
    remote = {"REMOTE_ADDR": "192.0.2.10"}
    assert stranger.get("/sandbox/", environ_base=remote).status_code == 302
    acting = stranger.post("/sandbox/phone", json={"openid": "oA", "action": "text", "text": "我的"},
                           environ_base=remote)
    assert acting.status_code == 401
    assert stranger.get("/sandbox/messages?touser=oA", environ_base=remote).status_code == 401
    admin = signed_in(app, "admin")
    assert admin.get("/sandbox/messages?touser=oA", environ_base=remote).status_code == 200
    assert app.test_client().get("/sandbox/messages?touser=oA").status_code == 200  # this computer


def test_sandbox_pages_need_a_sign_in_when_the_server_listens_beyond_loopback(app, school):
    app.config["WXBOT_LISTENS_BEYOND_LOOPBACK"] = True
    assert app.test_client().get("/sandbox/users").status_code == 401


def test_the_sandbox_api_gives_no_token_for_the_public_secret_where_its_pages_need_a_sign_in(app, school):
    from wxbot.outbound import wechat_client
    cfg = app.config["WXBOT"]
    query = {"grant_type": "client_credential", "appid": cfg.wechat.appid, "secret": cfg.sandbox.secret}
    remote = {"REMOTE_ADDR": "192.0.2.10"}
    refused = app.test_client().get("/sandbox/cgi-bin/token", query_string=query, environ_base=remote).get_json()
    assert refused["errcode"] == 40125  # someone on the network who read config.yaml
    assert "access_token" in app.test_client().get("/sandbox/cgi-bin/token", query_string=query).get_json()
    app.config["WXBOT_LISTENS_BEYOND_LOOPBACK"] = True  # make run HOST=0.0.0.0: same rule as the pages
    assert app.test_client().get("/sandbox/cgi-bin/token", query_string=query).get_json()["errcode"] == 40125
    with app.app_context():
        assert wechat_client().access_token  # the project itself presents a secret derived from its key
    assert "可以发送" in ChatUser(phone_for(app), "oA").say("帮助")


# --- 13. a crash loses no log entry, and a retry after a restart is not handled twice ------------

def test_a_retry_after_a_restart_gets_the_first_reply_and_is_handled_once(make_app, backend, session):
    from wxbot.router import Router
    calls = []
    router = Router("test")

    @router.text("计数")
    def count(ctx):
        calls.append(1)
        return f"第 {len(calls)} 次"

    first = make_app()
    add_router(first, router)
    phone = phone_for(first)
    query, body = phone.build("oRestart", {"MsgType": "text", "Content": "计数", "MsgId": 880001})
    assert phone.read_reply(*phone.transport(query, body)).text == "第 1 次"
    restarted = make_app()  # a new process on the same database and store
    add_router(restarted, router)
    again = phone_for(restarted)
    assert again.read_reply(*again.transport(query, body)).text == "第 1 次" and calls == [1]


def test_log_entries_queued_by_a_killed_process_are_written_after_the_restart(make_app, session):
    from models.messagelog import MessageLog
    killed = make_app()
    ChatUser(phone_for(killed), "oKilled").say("帮助")  # queued, not yet written: then the process dies
    restarted = make_app()
    restarted.extensions["wxbot.logwriter"].flush()
    logged = session.scalars(select(MessageLog.content).where(MessageLog.openid == "oKilled")).all()
    assert "帮助" in logged and len(logged) >= 2


def test_the_access_log_shows_the_path_without_the_query_string():
    import logging
    from datetime import timedelta
    from types import SimpleNamespace

    from gunicorn.config import Config

    from wxbot.gunicorn_worker import AccessLogger
    cfg = Config()
    cfg.set("accesslog", "-")
    logger = AccessLogger(cfg)
    lines = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    logger.access_log.addHandler(handler)
    request = SimpleNamespace(method="POST", path="/wechat", query="openid=oSecret&signature=x")
    logger.access(SimpleNamespace(status_code=200, sent=123), request,
                  {"REMOTE_ADDR": "10.0.0.1", "QUERY_STRING": request.query}, timedelta(milliseconds=7))
    assert lines == ['10.0.0.1 "POST /wechat" 200 123 7ms']
