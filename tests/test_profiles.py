"""The sender's profile kept in the store: a known sender's 我的 needs no database and two store round
trips, and every change to who someone is (a roster edit, a rebind, a move to another branch, a
renamed branch, a roster import, an unfollow) is seen by the very next message."""
import threading

from sqlalchemy import event, select

from models.followers import Follower
from tests.conftest import flush_log, phone_for
from tests.helpers import ChatUser, csrf_token, make_member, signed_in
from wxbot.db import db
from wxbot.profiles import profile_key


class Statements:
    """The product's SQL statements run by this thread (the test's request; not the log writer's thread)."""

    def __init__(self, app):
        with app.app_context():
            self.engine = db.engine
        self.thread, self.seen = threading.get_ident(), []

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._note)
        return self.seen

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._note)

    def _note(self, _conn, _cursor, statement, *_args):
        # The sandbox playing WeChat keeps its own tables in the same database; only the product's count.
        if threading.get_ident() == self.thread and "sandbox_" not in statement:
            self.seen.append(statement[:90])


class ProfileReads(Statements):
    """Reads of a sender's follower row, on any thread (an unknown profile is read by the handler pool)."""

    def _note(self, _conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("SELECT") and "FROM followers" in statement:
            self.seen.append(statement[:90])


def test_a_known_senders_profile_is_answered_without_the_database(app, school):
    chat = ChatUser(phone_for(app), "oA")
    assert "姓名：" in chat.say("我的")  # the profile is read from the database once
    with Statements(app) as statements:
        reply = chat.say("我的")
        help_reply = chat.say("帮助")
    assert f"姓名：{school['oA'].name}" in reply and "支部：计算机学院 / 本科生第一党支部" in reply
    assert "答题" in help_reply
    assert statements == []


def test_a_known_senders_message_takes_two_store_round_trips(make_app, school):
    app = make_app()
    store = app.extensions["wxbot.store"]
    if not hasattr(store, "redis"):
        return  # the embedded store is in-process: no round trips to count
    chat = ChatUser(phone_for(app), "oA")
    chat.say("我的")
    calls = []
    original = store.redis.execute_command

    def counting(*args, **kwargs):
        if threading.get_ident() == main:
            calls.append(args[0])
        return original(*args, **kwargs)
    main = threading.get_ident()
    store.redis.execute_command = counting
    try:
        chat.say("我的")
    finally:
        store.redis.execute_command = original
    assert calls == ["EVALSHA", "EVALSHA"]  # claim + lock + read; reply + state + log + unlock


def test_a_roster_edit_in_the_console_is_seen_by_the_next_message(app, school, session):
    chat, member = ChatUser(phone_for(app), "oA"), school["oA"]
    chat.say("我的")
    admin = signed_in(app, "admin")
    admin.post(f"/admin/members/{member.id}", data={
        "name": "王新名", "stage": "预备党员", "role": "member", "unit": member.org_unit_id,
        "csrf_token": csrf_token(admin, f"/admin/members/{member.id}")})
    reply = chat.say("我的")
    assert "姓名：王新名" in reply and "政治面貌：预备党员" in reply


def test_a_move_to_another_branch_and_a_renamed_branch_are_seen_by_the_next_message(app, school, session):
    chat, member = ChatUser(phone_for(app), "oA"), school["oA"]
    chat.say("我的")
    admin = signed_in(app, "admin")
    admin.post(f"/admin/members/{member.id}", data={
        "name": member.name, "stage": member.stage, "role": "member", "unit": school["marx"].id,
        "csrf_token": csrf_token(admin, f"/admin/members/{member.id}")})
    assert "支部：马克思主义学院 / 教工党支部" in chat.say("我的")
    admin.post(f"/admin/org/{school['marx'].id}/rename", data={
        "name": "教工第一党支部", "csrf_token": csrf_token(admin, "/admin/org")})
    assert "支部：马克思主义学院 / 教工第一党支部" in chat.say("我的")


def test_a_rebind_is_seen_by_the_next_message(app, school, session):
    chat = ChatUser(phone_for(app), "oA")
    chat.say("我的")
    other = make_member(session, branch=school["marx"], name="李新", student_no="T0099")
    assert "已解除" in chat.say("解绑")
    assert "还没有绑定" in chat.say("我的")
    chat.bind(other)
    assert "姓名：李新" in chat.say("我的")


def test_an_unbinding_by_an_organiser_is_seen_by_the_next_message(app, school, session):
    chat, member = ChatUser(phone_for(app), "oA"), school["oA"]
    chat.say("我的")
    organiser = signed_in(app, "cs")
    organiser.post(f"/admin/members/{member.id}/unbind", data={"csrf_token": csrf_token(organiser, "/admin/")})
    assert "还没有绑定" in chat.say("我的")


def test_a_roster_import_is_seen_by_the_next_message(app, school, session, runner, tmp_path):
    chat, member = ChatUser(phone_for(app), "oA"), school["oA"]
    chat.say("我的")
    roster = tmp_path / "名单.csv"
    roster.write_text("学号,姓名,学院,支部,政治面貌,角色\n"
                      f"{member.student_no},{member.name},计算机学院,本科生第一党支部,发展对象,\n", encoding="utf-8")
    assert runner.invoke(args=["roster", "import", str(roster)]).exit_code == 0
    assert "政治面貌：发展对象" in chat.say("我的")


def test_a_binding_wave_leaves_everyone_elses_profile_in_the_cache(app, school, session):
    """Students binding all day (and one unbinding, and one edited in the console) make only their own
    profiles be read again; a renamed branch still makes everyone's."""
    chat = ChatUser(phone_for(app), "oA")
    chat.say("我的")
    for n in range(3):
        ChatUser(phone_for(app), f"oNew{n}").bind(make_member(session, branch=school["cs"]))
    assert "已解除" in ChatUser(phone_for(app), "oB").say("解绑")
    school["oC"].stage = "预备党员"  # another member edited (by the console or an import)
    session.commit()
    with ProfileReads(app) as reads:
        assert "姓名：" in chat.say("我的")
    assert reads == []  # still from the cache
    school["cs"].name = "本科生第二党支部"
    session.commit()
    with ProfileReads(app) as reads:
        assert "本科生第二党支部" in chat.say("我的")
    assert reads  # the org tree changed: read again


def test_an_edit_of_one_member_is_seen_by_that_members_next_message(app, school, session):
    chat = ChatUser(phone_for(app), "oC")
    chat.say("我的")
    school["oC"].stage = "预备党员"
    session.commit()
    assert "政治面貌：预备党员" in chat.say("我的")


def test_an_unfollow_erases_the_stored_profile(app, school):
    chat = ChatUser(phone_for(app), "oA")
    chat.say("我的")
    store = app.extensions["wxbot.store"]
    assert store.get(profile_key("oA"))
    chat.unfollow()
    assert store.get(profile_key("oA")) is None


def test_a_known_senders_interactions_are_recorded_off_the_reply_path(app, school, session):
    chat = ChatUser(phone_for(app), "oA")
    chat.say("我的")
    follower = session.scalars(select(Follower).where(Follower.openid == "oA")).one()
    follower.last_interaction_at = follower.cs_window_until = None
    session.commit()
    chat.say("帮助")  # a known sender: answered from the profile
    flush_log(app)
    session.expire_all()
    follower = session.scalars(select(Follower).where(Follower.openid == "oA")).one()
    assert follower.last_interaction_at is not None and follower.cs_window_until is not None


def test_an_interaction_recorded_again_later_gives_back_no_message_spent():
    """Interactions of known senders are recorded off the reply path, so one may be applied after a
    late reply already spent a message of the window it opened."""
    from datetime import datetime, timedelta

    from models.followers import widened_window
    at = datetime(2026, 11, 26, 12, 0)
    rule = (48 * 3600, 5)
    until, left = widened_window(None, 0, rule, at)
    assert left == 5
    assert widened_window(until, left - 1, rule, at) == (until, 4)  # the same message, applied again
    assert widened_window(until, 4, rule, at + timedelta(seconds=30)) == (until + timedelta(seconds=30), 5)
    assert widened_window(until, 4, (60, 3), at + timedelta(seconds=30)) == (until, 4)  # a click opens less
