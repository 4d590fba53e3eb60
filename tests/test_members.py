"""Following, binding to the roster, 我的, unbinding and unfollowing, as a user sees them."""
from sqlalchemy import func, select

from models.followers import Follower
from models.members import Member
from models.messagelog import MessageLog
from tests.conftest import flush_log
from tests.helpers import ChatUser, make_member


def test_a_new_follower_is_welcomed_and_told_how_to_bind(phone):
    welcome = ChatUser(phone, "oNewcomer").follow()
    assert "欢迎关注" in welcome and "绑定 学号 姓名" in welcome


def test_binding_with_the_right_student_number_and_name_shows_the_branch(user, session):
    member = make_member(session, name="王芳", stage="入党积极分子")
    reply = user.bind(member)
    assert "绑定成功" in reply and "王芳" in reply and "本科生第一党支部" in reply
    assert "入党积极分子" in user.say("我的")


def test_full_width_characters_and_extra_spaces_are_tolerated(user, session):
    make_member(session, student_no="2024001", name="李娜")
    assert "绑定成功" in user.say("  绑定　２０２４００１　 李娜 ")


def test_binding_without_a_space_between_number_and_name_works(user, session):
    make_member(session, student_no="2024002", name="赵磊")
    assert "绑定成功" in user.say("绑定2024002赵磊")


def test_every_failed_binding_gets_the_same_answer_so_nobody_learns_which_numbers_exist(user, phone, session):
    member, taken = make_member(session, name="王芳"), make_member(session, name="李娜")
    ChatUser(phone, "oHolder").bind(taken)
    answers = {user.say(f"绑定 {member.student_no} 王芬"), user.say("绑定 1999999 王芳"),
               user.say(f"绑定 {taken.student_no} {taken.name}")}
    assert len(answers) == 1 and "绑定没有成功" in answers.pop() and "组织员" in user.last.text
    assert "格式" in user.say("绑定 2024")


def test_a_bound_user_is_told_to_unbind_before_binding_again(user, session):
    first, second = make_member(session), make_member(session)
    user.bind(first)
    assert "解绑" in user.bind(second)


def test_five_failed_attempts_lock_binding_for_the_rest_of_the_hour(user, session):
    member = make_member(session, name="王芳")
    for _ in range(5):
        assert "绑定没有成功" in user.say(f"绑定 {member.student_no} 错名")
    refused = user.bind(member)
    assert "次数过多" in refused and "分钟后再试" in refused
    assert "还没有绑定" in user.say("我的")


def test_a_successful_binding_forgets_earlier_failures(user, phone, session):
    member = make_member(session, name="王芳")
    for _ in range(4):
        user.say(f"绑定 {member.student_no} 错名")
    assert "绑定成功" in user.bind(member)


def test_unbinding_frees_the_number_for_another_wechat_user(user, phone, session):
    member = make_member(session)
    user.bind(member)
    assert "已解除" in user.say("解绑")
    assert "还没有绑定" in user.say("我的")
    other = ChatUser(phone, "oNewPhone")
    other.follow()
    assert "绑定成功" in other.bind(member)


def test_unbinding_needs_a_binding(user):
    assert "先绑定" in user.say("解绑")


def test_my_profile_tells_an_unbound_user_how_to_bind(user):
    assert "绑定 学号 姓名" in user.say("我的")


def test_the_menu_button_sends_the_same_as_the_chat_word(user, session):
    user.bind(make_member(session, name="陈杰"))
    assert user.click("我的") == user.say("我的")


def test_unfollowing_erases_binding_state_and_message_log_but_keeps_the_roster(app, user, session):
    member = make_member(session)
    user.bind(member)
    flush_log(app)
    user.say("我的")  # still queued in the log writer when the unfollow comes
    user.unfollow()
    flush_log(app)
    session.expire_all()
    assert session.scalar(select(Follower).where(Follower.openid == user.openid)) is None
    assert session.scalar(select(func.count()).select_from(MessageLog).where(MessageLog.openid == user.openid)) == 0
    assert session.get(Member, member.id) is not None
    assert user.follow().startswith("欢迎关注")  # back as a newcomer, who must bind again
    assert "还没有绑定" in user.say("我的")

