"""The mini-program's API through HTTP, on both backends: login with wx.login's one-time code, one
person across the chat and the mini-program, the chat's rules for every feature (one scored daily
quiz, one check-in whichever way, the same points), sessions, idempotent writes, the rate limit, and
every answer checked against the served OpenAPI document.

The sandbox plays WeChat's side (jscode2session, msg_sec_check, getwxacodeunlimit) on the live
server, as it does for the Official Account."""
from __future__ import annotations

import re
import time
from datetime import timedelta
from unittest import mock

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from sqlalchemy import func, select

from models.checkins import CheckIn, code_for, scene_for, slot_of
from models.delivery import Delivery
from models.miniprogram import MiniUser
from models.points import MemberPoints, PointEntry
from models.quiz import LETTERS, QuizAttempt
from models.signups import Registration
from models.timeutil import utcnow
from tests.conftest import phone_for
from tests.helpers import ChatUser, make_branch, make_member
from tests.quizhelp import bank, letter_of
from tests.test_events import ROTATE, clock, make_event, started_event
from tests.test_inbox import campaign_to, customer_service, out_of_reach, run_worker, statuses
from tests.test_study import make_material, plan
from wxbot.api.events import CHECKIN_PAGE, mini_scene
from wxbot.api.sessions import _key

_documents: dict[int, dict] = {}


def document(app) -> dict:
    """The OpenAPI document the app serves (fetched once per app)."""
    if id(app) not in _documents:
        response = app.test_client().get("/api/v1/openapi.json")
        assert response.status_code == 200
        _documents[id(app)] = response.get_json()
    return _documents[id(app)]


def operation(doc: dict, method: str, path: str) -> tuple[str, dict]:
    """The document's template and operation for a request's method and path."""
    for template, item in doc["paths"].items():
        pattern = "^" + re.sub(r"\\{[^}]+\\}", r"[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path) and method.lower() in item:
            return template, item[method.lower()]
    raise AssertionError(f"{method} {path} is not an operation of the document")


def check_against_document(app, method: str, path: str, response) -> None:
    """The answer's status is one the operation declares, and its body validates against that schema."""
    doc = document(app)
    _template, op = operation(doc, method, path)
    status = str(response.status_code)
    assert status in op["responses"], f"{method} {path} answered {status}, not in the document"
    content = op["responses"][status].get("content")
    if content is None:
        assert response.get_data() == b""
        return
    schema = content["application/json"]["schema"]
    registry = Registry().with_resource("urn:api", Resource.from_contents(doc, default_specification=DRAFT202012))
    validator = Draft202012Validator({"$ref": "urn:api" + schema["$ref"]}, registry=registry,
                                     format_checker=FormatChecker())
    errors = [e.message for e in validator.iter_errors(response.get_json())]
    assert not errors, f"{method} {path} {status}: {errors}"


class Mini:
    """One member's phone running the mini-program: wx.login from the sandbox, then the API with our
    own session. Every answer is checked against the served document."""

    def __init__(self, app, openid: str, unionid: str = ""):
        self.app, self.client = app, app.test_client()
        self.openid, self.unionid = openid, unionid
        self.token = ""
        self.calls: list[tuple[str, str]] = []

    def wx_login(self) -> str:
        got = self.client.post("/sandbox/miniprogram/login", json={"openid": self.openid, "unionid": self.unionid})
        assert got.status_code == 200
        return got.get_json()["code"]

    def login(self, code: str | None = None):
        response = self.post("/api/v1/login", {"code": code or self.wx_login()})
        if response.status_code == 200:
            self.token = response.get_json()["token"]
        return response

    def request(self, method: str, path: str, body=None, headers=None, token: str | None = None):
        headers = dict(headers or {})
        token = self.token if token is None else token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        response = self.client.open(path, method=method, json=body, headers=headers)
        check_against_document(self.app, method, path.split("?")[0], response)
        self.calls.append((method, operation(document(self.app), method, path.split("?")[0])[0]))
        return response

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def bind(self, member):
        return self.post("/api/v1/bind", {"student_no": member.student_no, "name": member.name})


def signed_in_as(app, member, openid: str = "mA") -> Mini:
    mini = Mini(app, openid)
    assert mini.login().status_code == 200
    assert mini.bind(member).status_code == 200
    return mini


def code_of(response) -> str:
    return response.get_json()["code"]


# ---- login and sessions ----

def test_a_login_code_works_once_and_the_session_key_never_leaves_the_server(app, session):
    mini = Mini(app, "mOnce")
    code = mini.wx_login()
    first = mini.login(code)
    assert first.status_code == 200 and first.get_json()["bound"] is False
    assert "session_key" not in first.get_data(as_text=True)
    again = mini.login(code)  # 40163 at WeChat
    assert again.status_code == 401 and code_of(again) == "code_used" and "已被使用" in again.get_json()["message"]
    made_up = mini.login("not-a-code-wechat-gave")
    assert made_up.status_code == 401 and code_of(made_up) == "invalid_code"
    user = session.scalar(select(MiniUser).where(MiniUser.openid == "mOnce"))
    assert user.session_key and user.session_key not in first.get_data(as_text=True)


def test_wechat_refusals_of_a_login_are_clear_answers(app):
    mini = Mini(app, "mBlocked")
    faults = app.test_client()
    for errcode, status, code in ((40226, 403, "user_blocked"), (45011, 429, "too_frequent"),
                                  (-1, 502, "wechat_error")):
        assert faults.post("/sandbox/faults", json={"inject": {"jscode2session": [errcode]}}).status_code == 200
        refused = mini.login()
        assert (refused.status_code, code_of(refused)) == (status, code)
        assert re.search(r"[\u4e00-\u9fff]", refused.get_json()["message"])
    assert mini.login().status_code == 200  # the injected errors are spent


def test_a_bad_body_is_a_400_in_the_same_shape(app):
    mini = Mini(app, "mBad")
    for body in ({}, {"code": ""}, {"code": 5}, {"code": "x", "extra": 1}):
        refused = mini.post("/api/v1/login", body)
        assert refused.status_code == 400 and code_of(refused) == "invalid_request"
    raw = mini.client.post("/api/v1/login", data="not json", content_type="application/json")
    assert raw.status_code == 400 and raw.get_json()["code"] == "invalid_request"


def test_odd_input_is_a_clear_4xx_never_a_500(app, session, school):
    mini = signed_in_as(app, school["oA"])
    huge = int("9" * 40)
    for path, body in (("/api/v1/quiz/answer", {"attempt_id": huge, "position": 0, "answer": "A"}),
                       ("/api/v1/quiz/answer", {"attempt_id": 1, "position": huge, "answer": "A"}),
                       ("/api/v1/quiz/exit", {"attempt_id": -1}),
                       ("/api/v1/notices/seen", {"ids": [huge]}),
                       ("/api/v1/feedback", {"text": "含有\x00空字符"}),
                       ("/api/v1/events/1/leave", {"reason": "x" * 201}),
                       ("/api/v1/checkin", {"path": "%" * 512})):
        refused = mini.post(path, body)
        assert refused.status_code in (400, 404), (path, refused.get_json())
    for raw in (b'{"code": "123456", "latitude": NaN, "longitude": 1}', b"[1, 2]", b'{"code": "1', b"\xff\xfe"):
        refused = mini.client.post("/api/v1/checkin", data=raw, content_type="application/json",
                                   headers={"Authorization": f"Bearer {mini.token}"})
        assert refused.status_code == 400 and refused.get_json()["code"] == "invalid_request", raw
    too_big = mini.client.post(f"/api/v1/events/{huge}/signup", headers={"Authorization": f"Bearer {mini.token}"})
    assert too_big.status_code == 404 and too_big.get_json()["code"].startswith("http_404")
    assert mini.get(f"/api/v1/events?page={huge}").status_code == 400


def test_without_a_good_session_every_operation_is_401(app, session, school):
    mini = Mini(app, "mAuth")
    for token in ("", "forged-token-0123456789"):
        for method, path in (("GET", "/api/v1/me"), ("GET", "/api/v1/events"), ("POST", "/api/v1/quiz/daily")):
            refused = mini.request(method, path, token=token)
            assert refused.status_code == 401, (method, path, token)
            assert code_of(refused) == ("no_session" if not token else "session_expired")


def test_logout_renew_expiry_and_unbinding_end_sessions(app, session, school):
    mini = signed_in_as(app, school["oA"])
    old = mini.token
    renewed = mini.post("/api/v1/session/renew")
    assert renewed.status_code == 200
    mini.token = renewed.get_json()["token"]
    assert mini.get("/api/v1/me", token=old).status_code == 401  # rotated: the old token is gone
    assert mini.get("/api/v1/me").status_code == 200
    assert mini.post("/api/v1/logout").status_code == 204
    assert code_of(mini.get("/api/v1/me")) == "session_expired"
    # Expiry: the store forgets the session at its TTL.
    mini.login()
    store = app.extensions["wxbot.store"]
    store.set(_key(mini.token), store.get(_key(mini.token)), 1)
    time.sleep(1.3)
    assert mini.get("/api/v1/me").status_code == 401
    # Unbinding ends every session of the user, also one on another phone.
    mini.login()
    other = Mini(app, "mA")
    other.login()
    assert mini.post("/api/v1/unbind").status_code == 204
    assert other.get("/api/v1/me").status_code == 401
    again = mini.login()
    assert again.get_json()["bound"] is False and code_of(mini.get("/api/v1/me")) == "not_bound"
    assert school["oA"].name in ChatUser(phone_for(app), "oA").say("我的")  # the chat's binding stays


# ---- one person across the chat and the mini-program ----

def test_binding_follows_the_chats_rules_and_one_member_has_one_mini_user(make_app, session):
    app = make_app(members__bind_max_failures=3)
    from tests.conftest import _empty
    _empty(app)
    member = make_member(session, branch=make_branch(session))
    mini = Mini(app, "mBind")
    mini.login()
    assert code_of(mini.get("/api/v1/me")) == "not_bound"
    for _ in range(3):
        wrong = mini.post("/api/v1/bind", {"student_no": member.student_no, "name": "不对的名字"})
        assert wrong.status_code == 403 and code_of(wrong) == "bind_refused"
    held = mini.bind(member)  # the right one, after three wrong: refused for a while, as in the chat
    assert held.status_code == 429 and code_of(held) == "too_many_failures"
    app.extensions["wxbot.store"].delete("mini:bindfail:" + str(
        session.scalar(select(MiniUser.id).where(MiniUser.openid == "mBind"))))
    bound = mini.bind(member)
    assert bound.status_code == 200 and bound.get_json()["name"] == member.name
    assert code_of(mini.bind(member)) == "already_bound"
    other = Mini(app, "mSomeoneElse")
    other.login()
    taken = other.bind(member)
    assert taken.status_code == 403 and code_of(taken) == "bind_refused"


def test_the_chat_and_the_mini_program_share_one_members_points(app, session, school):
    event = started_event(session, points=3)
    now = utcnow()
    with clock(now):
        assert "签到成功" in ChatUser(phone_for(app), "oA").scan(scene_for(app.config["SECRET_KEY"], event.id,
                                                                         slot_of(now, ROTATE)))
    mini = signed_in_as(app, school["oA"])
    me = mini.get("/api/v1/me").get_json()
    assert me["points_total"] == 3 and me["student_no"] == school["oA"].student_no
    assert me["branch"].endswith("本科生第一党支部")
    assert "3" in ChatUser(phone_for(app), "oA").say("积分")


def test_a_unionid_links_the_mini_program_user_to_the_followers_member(app, session, school):
    # WeChat gives the follower's unionid (the account and the mini-program under one Open Platform).
    client = app.test_client()
    assert client.post("/sandbox/unionid", json={"openid": "oA", "unionid": "uPersonA"}).status_code == 200
    early = Mini(app, "mLate", unionid="")
    assert early.login().get_json()["bound"] is False  # no unionid yet: a stranger until bound or linked
    from wxbot.unionids import fill_unionids
    with app.app_context():
        assert fill_unionids(app) == {"learnt": 1, "linked": 0}
        assert fill_unionids(app) == {"learnt": 0, "linked": 0}  # each follower is asked once
    late = Mini(app, "mLate", unionid="uPersonA")  # the next wx.login carries the unionid
    assert late.login().get_json()["bound"] is True
    assert late.get("/api/v1/me").get_json()["name"] == school["oA"].name
    # Without a unionid, binding to the roster makes the same person too.
    mini_b = signed_in_as(app, school["oB"], "mB")
    assert mini_b.get("/api/v1/me").get_json()["name"] == school["oB"].name


def test_a_unionid_learnt_after_login_links_a_waiting_user(app, session, school):
    client = app.test_client()
    mini = Mini(app, "mWaiting", unionid="uPersonB")
    assert mini.login().get_json()["bound"] is False  # the follower's unionid is not known yet
    client.post("/sandbox/unionid", json={"openid": "oB", "unionid": "uPersonB"})
    from wxbot.unionids import fill_unionids
    with app.app_context():
        assert fill_unionids(app) == {"learnt": 1, "linked": 1}
    assert mini.get("/api/v1/me").get_json()["name"] == school["oB"].name  # the same session, now bound


def test_a_member_bound_in_the_mini_program_who_follows_later_binds_no_second_time(app, session):
    from wxbot.unionids import fill_unionids
    member = make_member(session, branch=make_branch(session))
    mini = Mini(app, "mFirst", unionid="uFirst")
    mini.login()
    mini.bind(member)
    chat = ChatUser(phone_for(app), "oLater")
    chat.follow()
    app.test_client().post("/sandbox/unionid", json={"openid": "oLater", "unionid": "uFirst"})
    assert member.name not in chat.say("我的")
    with app.app_context():
        assert fill_unionids(app) == {"learnt": 1, "linked": 1}
    assert member.name in chat.say("我的")  # the chat knows them now, without 绑定


def test_unfollowing_keeps_the_mini_program_and_erasure_removes_the_user(app, session, school):
    from models.checkins import LocationReport
    from models.delivery import SubscriptionCredit, grant_subscription
    mini = signed_in_as(app, school["oA"])
    event = started_event(session)
    now = utcnow()
    with mock.patch("wxbot.api.events.utcnow", return_value=now):
        mini.post("/api/v1/checkin", {"code": code_for(app.config["SECRET_KEY"], event.id, slot_of(now, ROTATE)),
                                      "latitude": 26.5, "longitude": 106.7})
    grant_subscription(session, "mA", "MINI_notice")
    session.commit()
    ChatUser(phone_for(app), "oA").unfollow()
    assert mini.get("/api/v1/me").status_code == 200  # the member still uses the mini-program
    assert mini.post("/api/v1/erase").status_code == 204
    assert mini.get("/api/v1/me").status_code == 401
    session.expire_all()
    for table in (MiniUser, LocationReport, SubscriptionCredit):  # openid, unionid, session_key, location, consent
        assert session.scalar(select(func.count()).select_from(table)) == 0, table
    assert session.scalar(select(func.count()).select_from(CheckIn)) == 1  # the member's record stays
    again = Mini(app, "mA")
    assert again.login().get_json()["bound"] is False  # a new user, who may bind again
    assert again.bind(school["oA"]).status_code == 200


def test_an_organiser_unbinds_the_chat_and_the_mini_program_together(app, session, school):
    from tests.helpers import csrf_token, signed_in
    mini = signed_in_as(app, school["oA"])
    console = signed_in(app, "cs")
    page = console.get(f"/admin/members/{school['oA'].id}").get_data(as_text=True)
    assert "小程序已绑定" in page and "公众号已绑定" in page
    done = console.post(f"/admin/members/{school['oA'].id}/unbind",
                        data={"csrf_token": csrf_token(console, f"/admin/members/{school['oA'].id}")},
                        follow_redirects=True)
    assert "公众号和小程序" in done.get_data(as_text=True)
    assert code_of(mini.get("/api/v1/me")) == "session_expired"
    mini.login()
    assert code_of(mini.get("/api/v1/me")) == "not_bound"
    assert "绑定" in ChatUser(phone_for(app), "oA").say("我的")


# ---- events and check-in ----

def test_events_are_listed_paged_with_the_members_state(app, session, school):
    events = [make_event(session, starts=timedelta(hours=30 + n), title=f"活动{n}") for n in range(3)]
    hidden = make_event(session, audience={"units": [school["marx"].parent_id]}, title="马院的活动")
    mini = signed_in_as(app, school["oA"])
    assert code_of(mini.post(f"/api/v1/events/{events[0].id}/signup")) == "ok"
    first = mini.get("/api/v1/events?per_page=2").get_json()
    assert first["paging"] == {"page": 1, "per_page": 2, "total": 3}
    assert [e["title"] for e in first["items"]] == ["活动0", "活动1"]
    assert first["items"][0]["registration"] == "signed" and first["items"][0]["state"] == "已报名"
    second = mini.get("/api/v1/events?page=2&per_page=2").get_json()
    assert [e["id"] for e in second["items"]] == [events[2].id]
    assert hidden.id not in [e["id"] for e in first["items"] + second["items"]]
    assert "已报名" in ChatUser(phone_for(app), "oA").say("活动")  # the chat sees the same registration
    assert mini.get("/api/v1/events?per_page=500").status_code == 400


def test_sign_up_cancel_leave_follow_the_chats_rules(app, session, school):
    event = make_event(session, capacity=1)
    a, b = signed_in_as(app, school["oA"]), signed_in_as(app, school["oB"], "mB")
    assert code_of(a.post(f"/api/v1/events/{event.id}/signup")) == "ok"
    waiting = b.post(f"/api/v1/events/{event.id}/signup")
    assert waiting.status_code == 200 and "候补" in waiting.get_json()["message"]
    assert "候补" in ChatUser(phone_for(app), "oB").say(f"报名 {event.id}")  # same place in the chat
    assert a.post(f"/api/v1/events/{event.id}/cancel").status_code == 200
    session.expire_all()
    assert session.scalar(select(Registration.status).where(Registration.member_id == school["oB"].id)) in (
        "offered", "signed")
    empty = a.post(f"/api/v1/events/{event.id}/leave", {"reason": ""})
    assert empty.status_code == 400
    assert a.post(f"/api/v1/events/{event.id}/leave", {"reason": "课程冲突"}).status_code == 200


def test_another_organisations_event_and_another_members_attempt_are_not_found(app, session, school):
    event = make_event(session, audience={"units": [school["marx"].parent_id]})
    mini = signed_in_as(app, school["oA"])
    for action in ("signup", "cancel"):
        refused = mini.post(f"/api/v1/events/{event.id}/{action}")
        assert refused.status_code == 404 and code_of(refused) == "not_found"
    assert mini.post("/api/v1/events/999999/signup").status_code == 404
    bank(session, 6)
    other = signed_in_as(app, school["oC"], "mC")
    theirs = other.post("/api/v1/quiz/daily").get_json()
    refused = mini.post("/api/v1/quiz/answer", {"attempt_id": theirs["id"], "position": 0, "answer": "A"})
    assert refused.status_code == 404
    assert mini.post("/api/v1/quiz/exit", {"attempt_id": theirs["id"]}).status_code == 404
    session.expire_all()
    assert session.get(QuizAttempt, theirs["id"]).position == 0


def test_one_check_in_whichever_way_the_member_came(app, session, school):
    event = started_event(session, points=2)
    secret, now = app.config["SECRET_KEY"], utcnow()
    scene = scene_for(secret, event.id, slot_of(now, ROTATE))
    android = f"{CHECKIN_PAGE}?scene={mini_scene(scene)}"
    ios = android.replace("/", "%2F").replace("?", "%3F").replace("=", "%3D")
    mini_a, mini_b = signed_in_as(app, school["oA"]), signed_in_as(app, school["oB"], "mB")
    code = code_for(secret, event.id, slot_of(now, ROTATE))
    with clock(now), mock.patch("wxbot.api.events.utcnow", return_value=now):
        # A: the chat's code first, then every other way: already checked in.
        assert "签到成功" in ChatUser(phone_for(app), "oA").say(f"签到 {code}")
        for body in ({"path": android}, {"path": ios}, {"code": code}):
            again = mini_a.post("/api/v1/checkin", body)
            assert again.status_code == 200 and code_of(again) == "already", again.get_json()
        assert "不用重复签到" in ChatUser(phone_for(app), "oA").scan(scene)
        # B: the mini-program's scan (iOS form), then the Official Account's scan.
        done = mini_b.post("/api/v1/checkin", {"path": ios, "latitude": 26.5, "longitude": 106.7})
        assert done.status_code == 200 and code_of(done) == "ok" and "签到成功" in done.get_json()["message"]
        assert done.get_json()["event_id"] == event.id
        assert "不用重复签到" in ChatUser(phone_for(app), "oB").scan(scene)
    session.expire_all()
    rows = session.execute(select(CheckIn.member_id, CheckIn.method)).all()
    assert sorted(rows) == sorted([(school["oA"].id, "code"), (school["oB"].id, "mini_scan")])
    assert session.get(MemberPoints, school["oB"].id).total == 2


def test_the_check_in_screen_shows_a_mini_program_code_made_once_per_slot(app, session, school):
    from tests.helpers import signed_in
    event = started_event(session, org_unit_id=school["cs"].parent_id)
    screens = [signed_in(app, "cs"), signed_in(app, "cs2")]
    states = [screen.get(f"/admin/events/{event.id}/screen.json").get_json() for screen in screens]
    assert states[0]["mini"].startswith("data:image/png;base64,") and states[0]["qr"]
    if states[0]["slot"] == states[1]["slot"]:  # the same slot: the same image, made once for both screens
        assert states[0]["mini"] == states[1]["mini"]
    page = screens[0].get(f"/admin/events/{event.id}/screen").get_data(as_text=True)
    assert "小程序扫码签到" in page
    # The scene fits WeChat's 32 characters for any event id below ten million.
    assert len(mini_scene(scene_for(app.config["SECRET_KEY"], 9_999_999, slot_of(utcnow(), 5)))) <= 32


def test_a_forged_or_stale_scan_and_wrong_codes_are_refused(app, session, school):
    event = started_event(session)
    secret, now = app.config["SECRET_KEY"], utcnow()
    slot = slot_of(now, ROTATE)
    mini = signed_in_as(app, school["oA"])
    with mock.patch("wxbot.api.events.utcnow", return_value=now):
        forged = mini_scene(scene_for(secret, event.id, slot))[:-2] + "zz"
        refused = mini.post("/api/v1/checkin", {"path": f"{CHECKIN_PAGE}?scene={forged}"})
        assert refused.status_code == 400 and "无效" in refused.get_json()["message"]
        old_scene = mini_scene(scene_for(secret, event.id, slot - 2))
        stale = mini.post("/api/v1/checkin", {"path": f"{CHECKIN_PAGE}?scene={old_scene}"})
        assert stale.status_code in (400, 409) and "过期" in stale.get_json()["message"]
        right = code_for(secret, event.id, slot)
        wrong = [f"{n:06d}" for n in range(20) if f"{n:06d}" != right][:5]
        for code in wrong:
            assert code_of(mini.post("/api/v1/checkin", {"code": code})) == "wrong_code"
        limited = mini.post("/api/v1/checkin", {"code": right})
        assert limited.status_code == 429 and code_of(limited) == "too_many_tries"
        assert code_of(mini.post("/api/v1/checkin", {})) == "invalid_request"
    assert session.scalar(select(func.count()).select_from(CheckIn)) == 0


# ---- the quiz ----

def right_letter(question: dict) -> str:
    return LETTERS[question["options"].index("对的选项")]


def test_one_scored_daily_quiz_across_the_chat_and_the_mini_program(app, session, school):
    bank(session, 6)
    chat = ChatUser(phone_for(app), "oA")
    reply = chat.say("答题")
    assert "第 1/" in reply
    assert "第 2/" in chat.say(letter_of(reply, "对的选项"))  # one answered in the chat
    mini = signed_in_as(app, school["oA"])
    started = mini.post("/api/v1/quiz/daily").get_json()
    assert started["kind"] == "daily" and started["position"] == 1 and started["message"].startswith("继续")
    question, attempt_id = started["question"], started["id"]
    while question is not None:
        answered = mini.post("/api/v1/quiz/answer", {"attempt_id": attempt_id, "position": question["number"] - 1,
                                                     "answer": right_letter(question)}).get_json()
        assert answered["correct"] is True and answered["explanation"] == "党章总纲。"
        question, result = answered["next"], answered["result"]
    total = result["total"]
    assert result["right"] == total and result["points"] > total  # all right: the full-score bonus
    again = mini.post("/api/v1/quiz/daily").get_json()
    assert again["kind"] == "practice"  # the day's scored quiz was started already (in the chat)
    assert mini.post("/api/v1/quiz/exit", {"attempt_id": again["id"]}).status_code == 200
    assert "今天的计分答题已经开始过" in chat.say("答题")  # and in the chat: practice too
    session.expire_all()
    scored = session.scalar(select(func.count()).select_from(QuizAttempt).where(QuizAttempt.kind == "daily"))
    assert scored == 1
    points = session.scalar(select(func.sum(PointEntry.delta)).where(PointEntry.member_id == school["oA"].id))
    assert points == result["points"]


def test_an_answer_sent_twice_counts_once_and_a_request_id_replays_the_first_answer(app, session, school):
    bank(session, 6)
    mini = signed_in_as(app, school["oA"])
    started = mini.post("/api/v1/quiz/daily").get_json()
    body = {"attempt_id": started["id"], "position": 0, "answer": right_letter(started["question"])}
    first = mini.post("/api/v1/quiz/answer", body, headers={"Idempotency-Key": "tap-0001-abcdef"})
    replay = mini.post("/api/v1/quiz/answer", body, headers={"Idempotency-Key": "tap-0001-abcdef"})
    assert first.status_code == replay.status_code == 200 and first.get_json() == replay.get_json()
    repeat = mini.post("/api/v1/quiz/answer", body)  # a new request for an answered position
    assert repeat.status_code == 409 and code_of(repeat) == "answered"
    session.expire_all()
    assert session.get(QuizAttempt, started["id"]).position == 1
    unclear = mini.post("/api/v1/quiz/answer", {**body, "position": 1, "answer": "Z"})
    assert unclear.status_code == 400 and code_of(unclear) == "unclear_answer"
    skipped = mini.post("/api/v1/quiz/answer", {"attempt_id": started["id"], "position": 1, "skip": True})
    assert skipped.get_json()["skipped"] is True
    ended = mini.post("/api/v1/quiz/exit", {"attempt_id": started["id"]})
    assert ended.status_code == 200 and ended.get_json()["right"] == 1
    assert code_of(mini.post("/api/v1/quiz/exit", {"attempt_id": started["id"]})) == "finished"
    book = mini.get("/api/v1/quiz/book").get_json()
    assert book["count"] == 1  # the skipped question waits in the wrong-answer book
    assert mini.post("/api/v1/quiz/review").status_code == 404  # due tomorrow, not today


def test_a_contest_counts_attempts_and_hides_answers_while_it_runs(app, session, school):
    from models.contest import Contest
    bank(session, 4)
    now = utcnow()
    contest = Contest(title="党史知识竞赛", starts_at=now - timedelta(hours=1), ends_at=now + timedelta(days=1),
                      attempts_allowed=1, count=3, audience="{}")
    session.add(contest)
    session.commit()
    mini = signed_in_as(app, school["oA"])
    listed = mini.get("/api/v1/contests").get_json()["items"]
    assert [c["title"] for c in listed] == ["党史知识竞赛"] and listed[0]["attempts_used"] == 0
    started = mini.post(f"/api/v1/contests/{contest.id}/start").get_json()
    assert started["kind"] == "contest" and started["total"] == 3
    assert started["ends_at"] is None  # no time limit on this one
    first = mini.post("/api/v1/quiz/answer", {"attempt_id": started["id"], "position": 0,
                                              "answer": right_letter(started["question"])}).get_json()
    assert first["right_answer"] is None and first["explanation"] is None  # not revealed while it runs
    mini.post("/api/v1/quiz/exit", {"attempt_id": started["id"]})
    refused = mini.post(f"/api/v1/contests/{contest.id}/start")  # leaving counted as the one attempt
    assert refused.status_code == 409 and code_of(refused) == "refused"
    assert mini.post("/api/v1/contests/999999/start").status_code == 404


# ---- study ----

def test_reading_in_the_mini_program_earns_the_credit_once(app, session, school):
    material = make_material(session)
    plan(session, material)
    mini = signed_in_as(app, school["oA"])
    today = mini.get("/api/v1/study/today").get_json()["items"]
    assert [m["title"] for m in today] == [material.title] and today[0]["read"] is False
    opened = utcnow()
    with mock.patch("wxbot.api.study.utcnow", return_value=opened):
        page = mini.get(f"/api/v1/study/materials/{material.id}").get_json()
    assert page["need"] == 60 and "学习**重点**内容" in page["body"]
    assert "<strong>重点</strong>" in page["body_html"] and "<script>" not in page["body_html"]  # the page's rules
    state = None
    with mock.patch("wxbot.api.study.utcnow", return_value=opened + timedelta(seconds=20)):
        state = mini.post(f"/api/v1/study/materials/{material.id}/beacon", {"seconds": 600}).get_json()
    assert state["seconds"] <= 22 and state["credited"] is False  # never more than the time that passed
    for n in range(2, 6):
        with mock.patch("wxbot.api.study.utcnow", return_value=opened + timedelta(seconds=15 * n)):
            state = mini.post(f"/api/v1/study/materials/{material.id}/beacon", {"seconds": 15}).get_json()
    assert state["credited"] is True
    assert mini.get("/api/v1/study/today").get_json()["items"][0]["read"] is True
    # The same reading on the web reading page earns nothing more.
    from tests.test_study import path_of
    app.test_client().post(path_of(page["read_url"]) + "/beacon", json={"seconds": 15})
    session.expire_all()
    assert session.scalar(select(func.sum(PointEntry.delta)).where(PointEntry.member_id == school["oA"].id)) == 1
    assert mini.get("/api/v1/ranking").get_json()["my_points"] == 1
    assert len(mini.get("/api/v1/study/history").get_json()["items"]) == 1
    hidden = make_material(session, title="给预备党员", audience={"stages": ["预备党员"]})
    assert mini.get(f"/api/v1/study/materials/{hidden.id}").status_code == 404


def test_my_development_is_the_chats(app, session, school):
    from datetime import date

    from models.development import start_record
    mini = signed_in_as(app, school["oB"], "mB")
    empty = mini.get("/api/v1/development").get_json()
    assert empty["has_record"] is False and empty["stage"] == "共青团员"
    start_record(session, school["oB"], date(2026, 3, 1), "cs")
    session.commit()
    mine = mini.get("/api/v1/development").get_json()
    assert mine["has_record"] is True and [d["name"] for d in mine["done"]]
    assert mine["upcoming"] and mine["upcoming"][0] in ChatUser(phone_for(app), "oB").say("我的发展")


# ---- feedback ----

def test_posts_pass_the_screening_and_wechats_content_check(app, session, school):
    client = app.test_client()
    client.post("/sandbox/msgsec", json={"risky": ["危险词语"], "review": ["待定词语"]})
    mini = signed_in_as(app, school["oA"])
    ok = mini.post("/api/v1/feedback", {"text": "建议图书馆延长开放时间"}).get_json()
    assert ok["code"] == "ok" and ok["post"]["number"] >= 1
    blocked = mini.post("/api/v1/feedback", {"text": "这里有危险词语"}).get_json()
    assert blocked["code"] == "blocked" and blocked["post"] is None
    held = mini.post("/api/v1/feedback", {"text": "这里有待定词语"}).get_json()
    assert held["code"] == "held" and "审核" in held["message"]
    # WeChat not answering holds the post too: nothing unchecked is shown.
    client.post("/sandbox/faults", json={"inject": {"msg_sec_check": [-1, -1, -1]}})
    unchecked = mini.post("/api/v1/feedback", {"text": "食堂的饭菜很好"}).get_json()
    assert unchecked["code"] == "held"
    client.post("/sandbox/faults", json={"inject": {}})
    mine = mini.get("/api/v1/feedback/mine").get_json()["items"]
    assert "建议图书馆延长开放时间" in [p["text"] for p in mine]
    assert "这里有危险词语" not in [p["text"] for p in mine]
    assert mini.post("/api/v1/feedback", {"text": "   "}).status_code == 400


def test_a_topic_reply_and_the_organisers_answer_are_seen_in_the_mini_program(app, session, school):
    from models.feedback import Post, Topic
    topic = Topic(title="如何更好地开展主题党日", status="open", audience="{}")
    session.add(topic)
    session.commit()
    mini = signed_in_as(app, school["oA"])
    listed = mini.get("/api/v1/topics").get_json()["items"]
    assert [t["title"] for t in listed] == ["如何更好地开展主题党日"]
    replied = mini.post(f"/api/v1/topics/{topic.id}/replies", {"text": "多走进社区开展志愿服务"}).get_json()
    assert replied["code"] == "ok" and replied["post"]["topic_id"] == topic.id
    assert mini.post("/api/v1/topics/999999/replies", {"text": "看法"}).status_code == 404
    post = mini.post("/api/v1/feedback", {"text": "希望多组织实践活动"}).get_json()["post"]
    row = session.scalar(select(Post).where(Post.number == post["number"]))
    row.answer = "好的，下月安排"
    session.commit()
    answers = {p["text"]: p["answer"] for p in mini.get("/api/v1/feedback/mine").get_json()["items"]}
    assert answers["希望多组织实践活动"] == "好的，下月安排"


# ---- notices ----

def test_notices_read_in_the_mini_program_are_not_repeated_in_the_chat(app, session, school):
    out_of_reach(session, "oA")
    campaign_to(session, "oA", "支部大会改到周五")
    from wxbot.delivery.engine import DeliveryWorker
    DeliveryWorker(app, "w").step()
    assert statuses(session)["waiting"] == 1
    mini = signed_in_as(app, school["oA"])
    listed = mini.get("/api/v1/notices").get_json()["items"]
    assert [n["text"] for n in listed] == ["支部大会改到周五"]
    assert mini.post("/api/v1/notices/seen", {"ids": [listed[0]["id"], 999999]}).get_json()["marked"] == 1
    assert mini.get("/api/v1/notices").get_json()["items"] == []
    session.expire_all()
    assert session.scalar(select(Delivery.channel)) == "miniprogram"
    before = len(customer_service(session, "oA"))
    ChatUser(phone_for(app), "oA").say("我的")  # opens the window: nothing is waiting any more
    assert run_worker(app, session, lambda: True)
    assert "支部大会改到周五" not in customer_service(session, "oA")[before:]
    # Another member cannot mark someone else's notice.
    out_of_reach(session, "oB")
    campaign_to(session, "oB", "给 B 的通知")
    DeliveryWorker(app, "w").step()
    theirs = session.scalar(select(Delivery.id).where(Delivery.openid == "oB"))
    assert mini.post("/api/v1/notices/seen", {"ids": [theirs]}).get_json()["marked"] == 0


def test_an_allowed_subscription_message_reaches_a_member_the_chat_cannot(make_app, session):
    """wx.requestSubscribeMessage's 允许, reported to the API, is one credit the delivery engine spends
    when the Official Account has no way left (window closed, no mass send); the forecast counts it."""
    from models.channelsettings import channel_policy
    from models.sandbox import SandboxMessage
    from tests.conftest import _empty
    from wxbot.config import load_settings
    from wxbot.delivery.engine import DeliveryWorker
    from wxbot.delivery.reach import forecast
    app = make_app(miniprogram__subscribe_template_id="MINI_notice")
    _empty(app)
    member = make_member(session, branch=make_branch(session))
    ChatUser(phone_for(app), "oSub").bind(member)
    mini = signed_in_as(app, member, "mSub")
    out_of_reach(session, "oSub")
    app.test_client().post("/sandbox/miniprogram/subscribe", json={"openid": "mSub", "template_id": "MINI_notice"})
    reported = mini.post("/api/v1/subscriptions", {"results": {"MINI_notice": "accept", "OTHER": "accept"}})
    assert reported.get_json()["granted"] == 1
    assert mini.post("/api/v1/subscriptions", {"results": {"MINI_notice": "reject"}}).get_json()["granted"] == 0
    policy = channel_policy(session, load_settings({"miniprogram.subscribe_template_id": "MINI_notice"}, environ={}))
    assert forecast(session, ["oSub"], policy, "service", utcnow()).channels == {"mini_subscribe": 1}
    campaign_to(session, "oSub", "支部大会改到周五")
    DeliveryWorker(app, "w").step()
    session.expire_all()
    assert [(d.status, d.channel) for d in session.scalars(select(Delivery))] == [("sent", "mini_subscribe")]
    arrived = session.scalars(select(SandboxMessage).where(SandboxMessage.touser == "mSub")).all()
    assert [m.channel for m in arrived] == ["mini_subscribe"] and "支部大会改到周五" in arrived[0].content
    campaign_to(session, "oSub", "第二条通知")  # the one credit is spent: this one waits for the member
    DeliveryWorker(app, "w").step()
    assert statuses(session)["waiting"] == 1


def test_with_the_message_push_wechats_events_count_consent_once(make_app, session):
    from models.delivery import SubscriptionCredit
    from tests.conftest import _empty
    app = make_app(miniprogram__subscribe_template_id="MINI_notice", miniprogram__push_token="push-token-1")
    _empty(app)
    member = make_member(session, branch=make_branch(session))
    mini = signed_in_as(app, member, "mPush")
    phone = app.test_client()

    def credits():
        session.expire_all()
        return session.scalar(select(SubscriptionCredit.credits).where(SubscriptionCredit.openid == "mPush"))
    tapped = phone.post("/sandbox/miniprogram/subscribe", json={"openid": "mPush", "template_id": "MINI_notice"})
    assert tapped.get_json()["pushed"] == 200 and credits() == 1  # WeChat's popup event, signed, to /wechat/mini
    assert mini.post("/api/v1/subscriptions", {"results": {"MINI_notice": "accept"}}).get_json()["granted"] == 1
    assert credits() == 1  # the client's report of the same tap does not count it again
    time.sleep(1.1)  # a push with the same user, second and event is WeChat's retry of one push
    phone.post("/sandbox/miniprogram/subscribe", json={"openid": "mPush", "template_id": "MINI_notice"})
    assert credits() == 2
    off = phone.post("/sandbox/miniprogram/subscribe", json={"openid": "mPush", "template_id": "MINI_notice",
                                                              "status": "reject", "settings": True})
    assert off.get_json()["pushed"] == 200 and credits() == 0  # turned off in the settings
    forged = phone.post("/wechat/mini?signature=bad&timestamp=1&nonce=x", json={"MsgType": "event"})
    assert forged.status_code == 403


def test_without_the_message_push_configured_the_push_url_is_not_there(app):
    assert app.test_client().post("/wechat/mini", json={}).status_code == 404


# ---- writes: rate and request ids ----

def test_writes_are_limited_per_user_and_minute(make_app, session):
    app = make_app(miniprogram__writes_per_minute=3)
    from tests.conftest import _empty
    _empty(app)
    member = make_member(session, branch=make_branch(session))
    event = make_event(session)
    mini = Mini(app, "mRate")
    mini.login()
    mini.bind(member)  # write 1
    assert mini.post(f"/api/v1/events/{event.id}/signup").status_code == 200
    assert mini.post(f"/api/v1/events/{event.id}/cancel").status_code == 200
    limited = mini.post(f"/api/v1/events/{event.id}/signup")
    assert limited.status_code == 429 and code_of(limited) == "too_many_requests"
    assert mini.get("/api/v1/events").status_code == 200  # reading is not limited
    other = Mini(app, "mRate2")
    other.login()
    assert other.post("/api/v1/bind", {"student_no": "x", "name": "y"}).status_code == 403  # others are not held


def test_a_double_tap_with_one_request_id_signs_up_once(app, session, school):
    event = make_event(session, capacity=5)
    mini = signed_in_as(app, school["oA"])
    tap = {"Idempotency-Key": "signup-7f3a9c2e"}
    first = mini.post(f"/api/v1/events/{event.id}/signup", headers=tap)
    second = mini.post(f"/api/v1/events/{event.id}/signup", headers=tap)
    assert first.get_json() == second.get_json() and code_of(first) == "ok"
    assert mini.post(f"/api/v1/events/{event.id}/signup", headers={"Idempotency-Key": "bad id!"}).status_code == 400
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Registration)) == 1


# ---- the document ----

def test_the_document_is_openapi_3_and_covers_every_route_of_the_api(app):
    doc = document(app)
    assert doc["openapi"].startswith("3.")
    routes = {(method, re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)) for rule in app.url_map.iter_rules()
              if rule.rule.startswith("/api/v1/") and rule.rule != "/api/v1/openapi.json"
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(method.upper(), path) for path, item in doc["paths"].items() for method in item}
    assert routes == documented
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert op.get("summary"), (method, path)  # every operation says what it does, in Chinese
            if op.get("security"):
                assert "401" in op["responses"], (method, path)
            if op.get("security") and method == "post":  # a write: retried with the same key, made once
                assert "Idempotency-Key" in [p["name"] for p in op["parameters"]], path


@pytest.fixture
def everything(app, session, school):
    """Something behind every operation: an event started, a material, questions, a contest, a topic."""
    from models.contest import Contest
    from models.feedback import Topic
    now = utcnow()
    bank(session, 6)
    session.add(Contest(title="竞赛", starts_at=now - timedelta(hours=1), ends_at=now + timedelta(days=1),
                        attempts_allowed=2, count=2, audience="{}"))
    session.add(Topic(title="话题", status="open", audience="{}"))
    session.commit()
    material = make_material(session)
    plan(session, material)
    return {"event": started_event(session), "material": material}


def test_every_operation_answers_as_the_document_says(app, session, school, everything):
    """A walk through the whole API as one member; each answer is validated as it comes (Mini)."""
    from models.contest import Contest
    from models.feedback import Topic
    mini = Mini(app, "mWalk")
    mini.login()
    mini.bind(school["oA"])
    event, material = everything["event"], everything["material"]
    mini.get("/api/v1/me")
    mini.get("/api/v1/events")
    mini.post(f"/api/v1/events/{event.id}/signup")
    mini.post(f"/api/v1/events/{event.id}/cancel")
    mini.post(f"/api/v1/events/{event.id}/leave", {"reason": "生病"})
    now = utcnow()
    code = code_for(app.config["SECRET_KEY"], event.id, slot_of(now, ROTATE))
    with mock.patch("wxbot.api.events.utcnow", return_value=now):
        mini.post("/api/v1/checkin", {"code": code})
    attempt = mini.post("/api/v1/quiz/daily").get_json()
    mini.post("/api/v1/quiz/answer", {"attempt_id": attempt["id"], "position": 0, "skip": True})
    mini.post("/api/v1/quiz/exit", {"attempt_id": attempt["id"]})
    mini.post("/api/v1/quiz/review")
    mini.get("/api/v1/quiz/book")
    mini.get("/api/v1/contests")
    contest = session.scalar(select(Contest.id))
    mini.post(f"/api/v1/contests/{contest}/start")
    mini.get("/api/v1/study/today")
    mini.get("/api/v1/study/history")
    mini.get(f"/api/v1/study/materials/{material.id}")
    mini.post(f"/api/v1/study/materials/{material.id}/beacon", {"seconds": 15})
    mini.get("/api/v1/ranking")
    mini.get("/api/v1/development")
    mini.post("/api/v1/feedback", {"text": "一条建议"})
    mini.get("/api/v1/feedback/mine")
    mini.get("/api/v1/topics")
    mini.post(f"/api/v1/topics/{session.scalar(select(Topic.id))}/replies", {"text": "一个看法"})
    mini.get("/api/v1/notices")
    mini.post("/api/v1/notices/seen", {"ids": [1]})
    mini.post("/api/v1/subscriptions", {"results": {"TPL": "accept"}})
    renewed = mini.post("/api/v1/session/renew").get_json()
    mini.token = renewed["token"]
    mini.post("/api/v1/unbind")
    mini.login()
    mini.post("/api/v1/logout")
    mini.login()
    mini.post("/api/v1/erase")
    doc = document(app)
    operations = {(method.upper(), path) for path, item in doc["paths"].items() for method in item
                  if path != "/api/v1/openapi.json"}
    assert operations - set(mini.calls) == set()
