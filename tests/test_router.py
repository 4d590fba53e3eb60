"""The router: keywords, regex groups, clicks, QR scans, conversation states, 退出 and 帮助."""
import time

import pytest

import handlers
from tests.conftest import phone_for
from tests.helpers import ChatUser, add_router, make_member
from wxbot.conversation import State, States
from wxbot.router import Router, normalise


@pytest.mark.parametrize("typed", ["帮助", " 帮助 ", "　帮助　", "ＨＥＬＰ", "Help"])
def test_keywords_match_after_normalising_width_case_and_spaces(user, typed):
    assert "可以发送" in user.say(typed)


def test_normalise_folds_full_width_and_collapses_spaces():
    assert normalise("  绑定　２０２４００１　　张三 ") == "绑定 2024001 张三"


def test_regex_groups_arrive_as_arguments(app, phone):
    router = Router("test")

    @router.regex(r"报名\s*(\d+)")
    def sign_up(ctx, number):
        return f"报名活动 {number}"
    add_router(app, router)
    assert ChatUser(phone, "oR").say("报名 ４２") == "报名活动 42"


def test_a_qr_scan_reaches_the_same_handler_for_followers_and_newcomers(app, phone):
    router, scenes = Router("test"), []

    @router.scan(prefix="ck:")
    def check_in(ctx, payload):
        scenes.append((ctx.inbound.event, payload))
        return f"扫码 {payload}"
    add_router(app, router)
    newcomer = ChatUser(phone, "oNewcomerScan")
    assert newcomer.scan("ck:42:abc") == "扫码 42:abc"  # subscribe with qrscene_
    assert newcomer.scan("ck:42:abc") == "扫码 42:abc"  # now a follower: SCAN
    assert scenes == [("subscribe_scan", "42:abc"), ("scan", "42:abc")]


def test_a_scan_no_handler_claims_is_treated_as_a_follow(phone):
    assert "欢迎关注" in ChatUser(phone, "oOtherScene").follow(scene="poster:2026")


def test_a_voice_message_is_understood_by_its_recognised_text(user, phone):
    assert "可以发送" in phone.voice(user.openid, "帮助").text


class Survey(States):
    asking = State("waits for a score")


def survey_router():
    router = Router("survey")

    @router.text("调查")
    def start(ctx):
        ctx.conversation.enter(Survey.asking, started=True)
        return "请打分 1-5"

    @router.state(Survey.asking)
    def score(ctx):
        ctx.conversation.finish()
        return f"收到 {ctx.text}"
    return router


class Vote(States):
    choosing = State("waits for 1, 2 or 3", takes=lambda text, _data: text in ("1", "2", "3"),
                     resume=lambda data: f"投票还在等你选择（第 {data['round']} 轮）。")


def vote_router():
    router = Router("vote")

    @router.text("投票")
    def start(ctx):
        ctx.conversation.enter(Vote.choosing, round=1)
        return "请选择 1、2 或 3"

    @router.state(Vote.choosing)
    def choose(ctx):
        if ctx.text not in ("1", "2", "3"):
            return "请回复 1、2 或 3"
        ctx.conversation.finish()
        return f"已投 {ctx.text}"

    @router.leave(Vote.choosing)
    def leave(ctx):
        ctx.conversation.finish()
        return "投票已放弃，没有记录"
    return router


def test_a_flow_takes_only_its_answers_and_other_commands_run_with_where_it_stands(app, phone):
    add_router(app, vote_router())
    user = ChatUser(phone, "oVote")
    user.say("投票")
    reply = user.say("帮助")
    assert "可以发送" in reply and reply.endswith("投票还在等你选择（第 1 轮）。")
    assert user.click("帮助").endswith("投票还在等你选择（第 1 轮）。")  # a menu click too
    assert user.say("随便说说") == "请回复 1、2 或 3"  # no feature knows it: the flow says what it expects
    assert user.say("2") == "已投 2"


def test_exit_runs_the_flows_own_leave_handler(app, phone):
    add_router(app, vote_router())
    user = ChatUser(phone, "oVoteExit")
    user.say("投票")
    assert user.say("退出") == "投票已放弃，没有记录"
    assert "没有进行中的操作" in user.say("退出")


def test_in_a_free_text_state_its_handlers_come_before_keywords(app, phone):
    add_router(app, survey_router())
    user = ChatUser(phone, "oSurvey")
    assert user.say("调查") == "请打分 1-5"
    assert user.say("帮助") == "收到 帮助"  # the flow takes the answer, even a keyword
    assert "可以发送" in user.say("帮助")  # flow over: keywords again


def test_a_menu_click_in_a_flow_works_as_usual_and_keeps_the_flow(app, phone):
    add_router(app, survey_router())
    user = ChatUser(phone, "oSurveyClick")
    user.say("调查")
    assert "可以发送" in user.click("帮助")
    assert user.say("4") == "收到 4"


def test_exit_leaves_any_flow(app, phone):
    add_router(app, survey_router())
    user = ChatUser(phone, "oSurveyExit")
    user.say("调查")
    assert user.say("退出") == "已退出当前操作。"
    assert "可以发送" in user.say("帮助")
    assert "没有进行中的操作" in user.say("退出")


def test_a_flow_times_out_after_its_ttl(make_app):
    app = make_app(conversation__state_ttl=1)
    add_router(app, survey_router())
    user = ChatUser(phone_for(app), "oSurveyTTL")
    user.say("调查")
    time.sleep(1.2)
    assert "可以发送" in user.say("帮助")


def test_help_lists_what_this_user_can_use_now(user, session):
    unbound_help = user.say("帮助")
    assert "绑定 学号 姓名" in unbound_help and "解绑" not in unbound_help
    user.bind(make_member(session))
    bound_help = user.say("帮助")
    assert "解绑" in bound_help and "绑定 学号 姓名" not in bound_help


def test_help_is_built_from_the_handlers(app, phone):
    router = Router("test")

    @router.text("新功能", help=("新功能", "刚刚上线的功能"))
    def new_feature(ctx):
        return "ok"
    add_router(app, router)
    user = ChatUser(phone, "oHelp")
    assert "· 帮助 其他：新功能" in user.say("帮助")
    assert "新功能：刚刚上线的功能" in user.say("帮助 其他")


def test_organiser_only_commands_are_refused_to_members_and_hidden_from_them(app, phone, session):
    router = Router("test")

    @router.text("群发测试", who="organiser", help=("群发测试", "组织员功能"))
    def organiser_only(ctx):
        return "已开始"
    add_router(app, router)
    member_user, organiser_user = ChatUser(phone, "oMember"), ChatUser(phone, "oOrganiser")
    member_user.bind(make_member(session))
    organiser_user.bind(make_member(session, role="organiser"))
    assert "仅限组织员" in member_user.say("群发测试")
    assert "群发测试" not in member_user.say("帮助")
    assert organiser_user.say("群发测试") == "已开始"
    assert "群发测试：组织员功能" in organiser_user.say("帮助 其他")


def test_member_only_commands_ask_an_unbound_user_to_bind_first(app, phone):
    router = Router("test")

    @router.text("积分测试", who="member")
    def points(ctx):
        return "0 分"
    add_router(app, router)
    assert "先绑定" in ChatUser(phone, "oUnbound").say("积分测试")


def test_the_help_router_is_last():
    assert handlers.ROUTERS[-1].name == "help"


def test_every_command_of_the_vocabulary_is_built_and_asks_unbound_users_to_bind(user):
    for command in ("话题", "留言 食堂太挤", "活动"):
        assert "先绑定" in user.say(command)
    assert "先绑定" in user.click("答题")  # a member's command
    assert "先绑定" in user.say("报名 3")
    assert "没有找到" in user.say("学习强国")


def test_a_binding_and_a_flow_in_progress_survive_a_restart(make_app, backend, session):
    first = make_app()
    add_router(first, survey_router())
    user = ChatUser(phone_for(first), "oRestart")
    member = make_member(session, name="吴静")
    user.bind(member)
    user.say("调查")
    restarted = make_app()  # a new process: new store client, new pool, same database and Redis
    add_router(restarted, survey_router())
    user = ChatUser(phone_for(restarted), "oRestart")
    assert "吴静" in user.click("我的")
    if backend["name"] == "production":  # the embedded store lives in the process and goes with it
        assert user.say("5") == "收到 5"


def test_a_quick_handler_that_reaches_for_the_database_gets_the_apology_not_a_hang(app, phone, caplog):
    router = Router("test")

    @router.text("快", quick=True)
    def quick(ctx):
        return f"{ctx.profile.openid[:2]} {ctx.member}"  # a quick handler may not read the database
    add_router(app, router)
    user = ChatUser(phone, "oQuick")
    user.say("你好")  # the first message reads the profile from the database
    assert "抱歉，系统暂时出了点问题" in user.say("快")
    assert "a quick handler may not use the database" in caplog.text


def test_quick_handlers_answer_from_the_profile_and_the_rest_from_the_database(app, phone):
    router = Router("test")

    @router.text("快", quick=True)
    def quick(ctx):
        return f"快：{ctx.profile.openid}"

    @router.text("慢")
    def slow(ctx):
        return f"慢：{ctx.follower.openid}"
    add_router(app, router)
    user = ChatUser(phone, "oBoth")
    assert user.say("快") == "快：oBoth" and user.say("快") == "快：oBoth"
    assert user.say("慢") == "慢：oBoth"
