"""留言 through the real webhook: screened (blocked, held then approved or rejected, passed with a
flag), personal data masked for organisers and shown to the author, answers that arrive at once or when
the member next writes, and the rate limit."""
import pytest
from sqlalchemy import select

from models.accounts import AuditLog
from models.feedback import Post
from tests.conftest import phone_for
from tests.helpers import ChatUser, csrf_token, signed_in
from tests.test_inbox import customer_service, out_of_reach, run_worker


@pytest.fixture
def lists(tmp_path, make_app, app):
    (tmp_path / "拦截.txt").write_text("@action block\n违禁示例词\n", encoding="utf-8")
    (tmp_path / "审核.txt").write_text("@action hold\n待审示例词\n", encoding="utf-8")
    (tmp_path / "标记.txt").write_text("@action flag\n广告示例\n", encoding="utf-8")
    return make_app(feedback__lists_dir=str(tmp_path))


def number_in(reply: str) -> int:
    """The number a receipt gives the member (编号 #12)."""
    return int(reply.split("#")[1].split("）")[0])


def post(session, number):
    """The post the member and the organisers know by `number`."""
    session.expire_all()
    return session.scalar(select(Post).where(Post.number == number))


def act(client, post, action, **fields):
    return client.post(f"/admin/feedback/{post.id}/{action}",
                       data={**fields, "csrf_token": csrf_token(client, "/admin/feedback")}, follow_redirects=True)


def test_feedback_is_answered_through_the_engine(lists, session, school):
    chat = ChatUser(phone_for(lists), "oA")
    receipt = chat.say("留言 希望主题党日安排在周五下午")
    assert "已收到你的留言（编号 #" in receipt
    post_id = number_in(receipt)
    organiser = signed_in(lists, "cs")
    assert "希望主题党日安排在周五下午" in organiser.get("/admin/feedback").get_data(as_text=True)
    assert signed_in(lists, "cs").get("/admin/feedback").status_code == 200
    act(organiser, post(session, post_id), "answer", answer="好的，下周改到周五。")
    assert run_worker(lists, session, lambda: any("下周改到周五" in t for t in customer_service(session, "oA")))
    assert "回复：好的，下周改到周五。" in chat.say("我的留言")
    assert session.scalar(select(AuditLog).where(AuditLog.object_type == "post"))
    # Another college's organiser does not see it.
    assert post(session, post_id).state == "answered"


def test_an_answer_waits_when_no_channel_is_open_and_arrives_when_the_member_writes(lists, session, school):
    chat = ChatUser(phone_for(lists), "oB")
    receipt = chat.say("留言 学习材料能否提供电子版")
    post_id = number_in(receipt)
    out_of_reach(session, "oB")
    act(signed_in(lists, "admin"), post(session, post_id), "answer", answer="已上传到学习材料里。")
    from wxbot.delivery.engine import DeliveryWorker
    DeliveryWorker(lists, "w").step()
    assert not any("已上传" in t for t in customer_service(session, "oB"))
    chat.say("我的")
    assert run_worker(lists, session, lambda: any("已上传" in t for t in customer_service(session, "oB")))


def test_blocked_held_and_flagged_posts(lists, session, school):
    chat = ChatUser(phone_for(lists), "oA")
    assert "不适合发布" in chat.say("留言 这里有违 禁 示例词")
    held = chat.say("留言 想讨论一下待审示例词")
    assert "审核后会转给组织员" in held
    held_id = number_in(held)
    flagged = chat.say("留言 这是广告示例")
    flagged_id = number_in(flagged)
    assert post(session, flagged_id).flagged and post(session, flagged_id).status == "visible"
    organiser = signed_in(lists, "cs")
    page = organiser.get("/admin/feedback?show=held").get_data(as_text=True)
    assert "想讨论一下待审示例词" in page and "违 禁" not in page  # blocked posts are never shown
    assert "不通过时请写明原因" in act(organiser, post(session, held_id), "reject").get_data(as_text=True)
    act(organiser, post(session, held_id), "reject", reason="与支部工作无关")
    assert post(session, held_id).status == "rejected"
    assert run_worker(lists, session, lambda: any("没有通过审核：与支部工作无关" in t
                                                  for t in customer_service(session, "oA")))
    assert "原因：与支部工作无关" in chat.say("我的留言")
    second = chat.say("留言 再说一次待审示例词")
    second_id = number_in(second)
    act(organiser, post(session, second_id), "approve")
    assert post(session, second_id).status == "visible"


def test_personal_data_is_masked_for_organisers_and_revealed_to_admins_on_the_record(lists, session, school):
    chat = ChatUser(phone_for(lists), "oA")
    receipt = chat.say("留言 我的电话 13812345678，请联系我")
    post_id = number_in(receipt)
    assert "13812345678" in chat.say("我的留言")  # the author sees what they wrote
    page = signed_in(lists, "cs").get("/admin/feedback").get_data(as_text=True)
    assert "138****5678" in page and "13812345678" not in page
    assert "查看原文" not in page  # organisers cannot reveal
    organiser = signed_in(lists, "cs")
    assert organiser.post(f"/admin/feedback/{post(session, post_id).id}/reveal", data={
        "csrf_token": csrf_token(organiser, "/admin/feedback")}).status_code == 403
    admin = signed_in(lists, "admin")
    assert "13812345678" in act(admin, post(session, post_id), "reveal").get_data(as_text=True)
    assert session.scalar(select(AuditLog).where(AuditLog.action == "reveal"))


def test_the_rate_limit_says_when_to_post_again(make_app, app, school):
    limited = make_app(feedback__rate_per_hour=3)
    chat = ChatUser(phone_for(limited), "oA")
    for n in range(3):
        assert "已收到" in chat.say(f"留言 第{n}条")
    assert "这一小时已经留言 3 条" in chat.say("留言 第四条") and "以后再发" in chat.say("留言 第五条")
    assert "请在“留言”后写上内容" in chat.say("留言")


def test_a_bad_list_file_is_shown_in_the_console(tmp_path, make_app, app, school):
    (tmp_path / "坏.txt").write_text("违禁示例词\n", encoding="utf-8")
    bad = make_app(feedback__lists_dir=str(tmp_path))
    ChatUser(phone_for(bad), "oA").say("留言 违禁示例词")  # the service keeps working
    page = signed_in(bad, "admin").get("/admin/feedback").get_data(as_text=True)
    assert "坏.txt 第 1 行" in page


def topic_url(reply: str) -> str:
    import re
    return re.search(r'href="([^"]+)"', reply).group(1)


def open_topic(client, title="如何发挥党员先锋模范作用", question="结合专业学习谈谈你的想法"):
    return client.post("/admin/topics", data={"title": title, "question": question,
                                              "csrf_token": csrf_token(client, "/admin/topics")},
                       follow_redirects=True)


def test_topics_replies_and_the_moderation_of_held_ones(lists, session, school):
    from models.feedback import Topic
    admin = signed_in(lists, "admin")
    assert "话题已发起" in open_topic(admin).get_data(as_text=True)
    topic = session.scalar(select(Topic))
    chat = ChatUser(phone_for(lists), "oA")
    listing = chat.say("话题")
    assert f"【{topic.id}】" in listing and "如何发挥党员先锋模范作用" in listing
    assert "已发布到话题" in chat.say(f"回复 {topic.id} 把专业学好就是先锋作用，电话 13812345678")
    held = chat.say(f"回复 {topic.id} 我想谈谈待审示例词")
    assert "审核通过后会显示" in held
    assert "没有发布" in chat.say(f"回复{topic.id} 违禁示例词")
    page_url = topic_url(listing)
    other = ChatUser(phone_for(lists), "oB")
    other_page = lists.test_client().get(topic_url(other.say("话题"))).get_data(as_text=True)
    assert "把专业学好就是先锋作用" in other_page and "138****5678" in other_page  # masked for others
    assert "待审示例词" not in other_page and "违禁示例词" not in other_page
    own_page = lists.test_client().get(page_url).get_data(as_text=True)
    assert "13812345678" in own_page  # the author sees what they wrote
    held_id = number_in(held)
    act(admin, post(session, held_id), "approve")
    assert "我想谈谈待审示例词" in lists.test_client().get(page_url).get_data(as_text=True)
    assert "没有这个进行中的话题" in ChatUser(phone_for(lists), "oC").say(f"回复 {topic.id + 99} 你好")


def test_an_organisers_topic_is_screened_and_only_an_admin_may_override(lists, session, school):
    from models.feedback import Topic
    organiser = signed_in(lists, "cs")
    page = open_topic(organiser, title="关于违禁示例词的讨论").get_data(as_text=True)
    assert "话题中有词表里的词：违禁示例词" in page and session.scalar(select(Topic)) is None
    forced = organiser.post("/admin/topics", data={"title": "关于违禁示例词", "question": "问题", "override": "1",
                                                   "csrf_token": csrf_token(organiser, "/admin/topics")})
    assert forced.status_code == 403
    admin = signed_in(lists, "admin")
    admin.post("/admin/topics", data={"title": "关于违禁示例词", "question": "问题", "override": "1",
                                      "csrf_token": csrf_token(admin, "/admin/topics")})
    assert session.scalar(select(Topic.title)) == "关于违禁示例词"
    assert session.scalar(select(AuditLog).where(AuditLog.object_type == "topic"))


@pytest.mark.parametrize("evasion", ["违禁示例词", "违 禁 示 例 词", "違禁示例詞", "违*禁-示例词", "违😀禁示例词",
                                     "违\u3000禁示例词", "ＷＥＩ违禁示例词", "违禁⽰例词", "违禁示\uf9b5词",
                                     "违ー禁示例词", "wei jin shi li ci"])
def test_each_evasion_is_caught_through_the_webhook(lists, school, evasion):
    assert "不适合发布" in ChatUser(phone_for(lists), "oA").say(f"留言 {evasion}")


def test_an_organisers_broadcast_is_screened_before_sending_and_an_admin_may_override(lists, session, school):
    from models.delivery import Campaign
    organiser = signed_in(lists, "cs")
    data = {"text": "周五讨论违禁示例词", "units": str(school["cs"].id), "action": "send"}
    token = csrf_token(organiser, "/admin/campaigns/new")
    page = organiser.post("/admin/campaigns", data={**data, "csrf_token": token})
    assert page.status_code == 400 and "【违禁示例词】" in page.get_data(as_text=True)
    admin = signed_in(lists, "admin")
    page = admin.post("/admin/campaigns", data={**data, "override": "1", "confirmed": "1",
                                                "csrf_token": csrf_token(admin, "/admin/campaigns/new")})
    assert page.status_code == 302 and session.scalar(select(Campaign.text)) == "周五讨论违禁示例词"
    assert session.scalar(select(AuditLog).where(AuditLog.object_type == "screening"))


def test_monitoring_and_the_flagged_message_filter(lists, session, school):
    from tests.conftest import flush_log
    chat = ChatUser(phone_for(lists), "oA")
    chat.say("留言 这里有违禁示例词")
    chat.say("留言 这是广告示例")
    chat.say("随便说一句广告示例")
    flush_log(lists)
    organiser = signed_in(lists, "cs")
    page = organiser.get("/admin/monitoring").get_data(as_text=True)
    assert "近 30 天每天命中词表的帖子数" in page and "拦截" in page and "标记" in page
    assert '<td data-label="拦截">1</td>' in page and '<td data-label="标记">1</td>' in page
    flagged = organiser.get("/admin/messages?flagged=1").get_data(as_text=True)
    assert "随便说一句广告示例" in flagged
    assert signed_in(lists, "cs").get("/admin/messages?flagged=1&text=没有这句").status_code == 200


def test_monitoring_counts_what_screening_did_whatever_happened_since(lists, session, school):
    chat = ChatUser(phone_for(lists), "oA")
    first, second = chat.say("留言 待审示例词一"), chat.say("留言 待审示例词二")
    organiser = signed_in(lists, "cs")
    for receipt in (first, second):
        act(organiser, post(session, number_in(receipt)), "approve")
    page = organiser.get("/admin/monitoring").get_data(as_text=True)
    assert '<td data-label="送审核">2</td>' in page and '<td data-label="标记">0</td>' in page


def test_organisers_are_reminded_of_posts_unanswered_for_days(lists, session, school):
    from datetime import timedelta

    from models.delivery import Campaign
    from models.feedback import remind_unanswered
    from models.members import Member
    from models.timeutil import utcnow
    from tests.helpers import make_member
    organiser = make_member(session, branch=school["cs"], role="organiser", student_no="2024500")
    ChatUser(phone_for(lists), "oOrganiser").bind(organiser)
    ChatUser(phone_for(lists), "oA").say("留言 三天前的留言")
    later = utcnow() + timedelta(days=4)
    with lists.app_context():
        from wxbot.db import db
        assert remind_unanswered(db.session, later, 3) == 1
        assert remind_unanswered(db.session, later, 3) == 0  # once a day
    session.expire_all()
    assert session.scalar(select(Campaign.audience_label).where(Campaign.audience_label == "留言未回复提醒"))
    assert session.get(Member, organiser.id) is not None


def test_a_word_split_across_two_posts_is_caught_and_the_console_names_both(lists, session, school):
    chat = ChatUser(phone_for(lists), "oA")
    first = chat.say("留言 违禁示")
    assert "已收到你的留言" in first
    assert "不适合发布" in chat.say("留言 例词")
    posts = session.scalars(select(Post).order_by(Post.id)).all()
    assert [p.status for p in posts] == ["visible", "blocked"]
    assert posts[1].hits()[0]["how"] == "连续发言" and posts[1].hits()[0]["with"] == [posts[0].number]
    page = signed_in(lists, "cs").get("/admin/feedback?show=blocked").get_data(as_text=True)
    assert f"（与 #{posts[0].number} 连起来）" in page


def test_phone_and_id_numbers_in_every_common_format_are_masked_for_others(lists, session, school):
    chat = ChatUser(phone_for(lists), "oA")
    chat.say("留言 我的电话 138-1234-5679，备用 +86 139 8765 4321，身份证 110101 19900307 1234")
    shown = session.scalar(select(Post.shown_text))
    assert "138-****-5679" in shown and "+86 139 **** 4321" in shown and "110101 ******** 1234" in shown
    assert "1234-5679" not in shown and "8765" not in shown and "19900307" not in shown


def test_every_path_an_organiser_sends_by_is_screened(lists, session, school):
    """Chat 群发, the command line and an answer to a 留言 pass the same lists as the console's 群发."""
    from models.delivery import Campaign
    from models.members import Member
    organiser = session.scalar(select(Member).where(Member.student_no == "2024001"))
    organiser.role = "organiser"
    session.commit()
    chat = ChatUser(phone_for(lists), "oA")
    chat.say("群发")
    chat.say("本支部")
    chat.say("周五讨论 违 禁 示 例 词")
    reply = chat.say("确认")
    assert "没有发送：内容中有词表里的词：【违禁示例词】" in reply
    runner = lists.test_cli_runner()
    refused = runner.invoke(args=["broadcast", "send", "--text", "wei jin shi li ci", "--all", "--yes"])
    assert refused.exit_code != 0 and "【违禁示例词】" in refused.output
    assert session.scalar(select(Campaign.id)) is None
    passed = runner.invoke(args=["broadcast", "send", "--text", "违禁示例词（已核实）", "--all", "--yes", "--override"])
    assert passed.exit_code == 0
    assert session.scalar(select(AuditLog.actor).where(AuditLog.object_type == "screening")) == "命令行"


def test_an_answer_to_a_post_that_matches_the_lists_is_refused_and_not_kept(lists, session, school):
    from models.delivery import Campaign
    receipt = ChatUser(phone_for(lists), "oB").say("留言 食堂太挤了")
    assert "已收到你的留言" in receipt, receipt
    post_id = session.scalar(select(Post.number))
    page = act(signed_in(lists, "cs"), post(session, post_id), "answer", answer="请看违禁示例词")
    page = page.get_data(as_text=True)
    assert "没有发送：内容中有词表里的词：【违禁示例词】" in page
    assert post(session, post_id).answer == "" and session.scalar(select(Campaign.id)) is None


def test_an_event_titled_with_a_listed_word_is_refused_in_the_form_and_the_import(lists, session, school):
    from models.events import Event
    from tests.helpers import csrf_token as token_of
    organiser = signed_in(lists, "cs")
    page = organiser.post("/admin/events/new", data={
        "title": "违禁示例词座谈", "kind": "主题党日", "place": "302", "starts_at": "2031-01-01T14:00",
        "ends_at": "2031-01-01T16:00", "csrf_token": token_of(organiser, "/admin/events/new")}).get_data(as_text=True)
    assert "【违禁示例词】" in page and session.scalar(select(Event.id)) is None
    import io
    csv = "标题,类型,开始时间,结束时间,地点\n违禁示例词讲座,讲座,2031-01-02 14:00,2031-01-02 16:00,302\n".encode()
    page = organiser.post("/admin/events/import", data={"file": (io.BytesIO(csv), "活动.csv"),
                                                        "csrf_token": token_of(organiser, "/admin/events/import")},
                          content_type="multipart/form-data").get_data(as_text=True)
    assert "【违禁示例词】" in page and session.scalar(select(Event.id)) is None


def test_topic_replies_are_not_留言_awaiting_an_answer(lists, session, school):
    from models.feedback import Topic
    open_topic(signed_in(lists, "admin"))
    topic = session.scalar(select(Topic))
    chat = ChatUser(phone_for(lists), "oA")
    chat.say(f"回复 {topic.id} 把专业学好")
    chat.say("留言 食堂太挤了")
    inbox = signed_in(lists, "cs").get("/admin/feedback").get_data(as_text=True)
    assert "食堂太挤了" in inbox and "把专业学好" not in inbox
    mine = chat.say("我的留言")
    assert f"已发布在话题 #{topic.id}：把专业学好" in mine and "待回复：食堂太挤了" in mine


def test_a_blocked_post_takes_no_number_and_a_colon_after_留言_is_not_content(lists, session, school):
    chat = ChatUser(phone_for(lists), "oA")
    assert "编号 #1" in chat.say("留言：希望多组织志愿服务")
    assert "不适合发布" in chat.say("留言 违禁示例词")
    assert "编号 #2" in chat.say("留言，食堂太挤了")
    texts = session.scalars(select(Post.text).where(Post.status == "visible").order_by(Post.id)).all()
    assert texts == ["希望多组织志愿服务", "食堂太挤了"]


def test_the_answer_to_a_post_is_sent_in_the_organisers_name(lists, session, school):
    from models.delivery import Campaign
    receipt = ChatUser(phone_for(lists), "oB").say("留言 学习材料能否提供电子版")
    act(signed_in(lists, "cs"), post(session, number_in(receipt)), "answer", answer="已上传。")
    assert session.scalar(select(Campaign.creator)) == "cs"


def test_the_message_log_shows_a_topic_link_as_the_phone_did(lists, session, school):
    from tests.conftest import flush_log
    open_topic(signed_in(lists, "admin"))
    ChatUser(phone_for(lists), "oA").say("话题")
    flush_log(lists)
    page = signed_in(lists, "admin").get("/admin/messages").get_data(as_text=True)
    assert "如何发挥党员先锋模范作用（链接：" in page and "&lt;a href" not in page


def test_the_inbox_shows_when_each_post_came_and_takes_an_answer_of_several_lines(lists, session, school):
    receipt = ChatUser(phone_for(lists), "oA").say("留言 希望增加夜间自习室")
    organiser = signed_in(lists, "cs")
    page = organiser.get("/admin/feedback").get_data(as_text=True)
    assert "已等 不到 1 小时" in page and '<textarea class="form-control form-control-sm" name="answer"' in page
    act(organiser, post(session, number_in(receipt)), "answer", answer="已向学院反映。\n下周起三楼开放。")
    assert post(session, number_in(receipt)).answer == "已向学院反映。\n下周起三楼开放。"
