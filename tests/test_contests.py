"""Contests between branches: from the chat (listed, entered in their window only, attempts, the time
limit, the leaderboard) and from the console (create, edit before the start, announce once, results
scoped to the viewer, export)."""
import io
import json
from datetime import timedelta
from unittest import mock

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from models.accounts import AuditLog
from models.contest import Contest
from models.delivery import Campaign, Delivery
from models.quiz import QuizAttempt
from models.timeutil import show, utcnow
from tests.conftest import phone_for
from tests.helpers import ChatUser, csrf_token, make_account, make_branch, make_member, signed_in
from tests.quizhelp import bank, letter_of, make_question, wrong_letter


def make_contest(session, questions, starts=-1, ends=24, **kw) -> Contest:
    """A contest on a fixed paper, opening `starts` hours from now and closing `ends` hours from now."""
    now = utcnow()
    contest = Contest(title=kw.pop("title", "党史知识竞赛"), mode="fixed", count=len(questions),
                      question_ids=json.dumps([q.id for q in questions]), starts_at=now + timedelta(hours=starts),
                      ends_at=now + timedelta(hours=ends), **kw)
    session.add(contest)
    session.commit()
    return contest


def play(chat, contest, right: int, total: int) -> str:
    """Enter the contest and answer `right` of `total` questions right."""
    reply = chat.say(f"竞赛 {contest.id}")
    for n in range(total):
        reply = chat.say(letter_of(reply, "对的选项") if n < right else wrong_letter(reply))
    return reply


@pytest.fixture
def players(app, session):
    branch = make_branch(session)
    chats = []
    for n in range(2):
        member = make_member(session, branch=branch, name="选手" + "甲乙"[n])
        chat = ChatUser(phone_for(app), f"oContest{n}")
        chat.bind(member)
        chats.append((chat, member))
    return chats


def test_a_contest_is_refused_before_its_window_and_after_it(app, session, players):
    chat, _member = players[0]
    questions = bank(session, 2)
    later = make_contest(session, questions, starts=2, ends=5, title="明天的竞赛")
    over = make_contest(session, questions, starts=-5, ends=-1, title="上周的竞赛")
    reply = chat.say(f"竞赛 {later.id}")
    assert "还没开始" in reply and show(later.starts_at, "%m-%d %H:%M") in reply and "第 1/" not in reply
    reply = chat.say(f"竞赛 {over.id}")
    assert "已经结束" in reply and "第 1/" not in reply
    assert session.scalar(select(func.count()).select_from(QuizAttempt)) == 0
    listing = chat.say("竞赛")
    assert "明天的竞赛" in listing and "上周的竞赛" not in listing


def test_a_contest_outside_the_members_units_is_refused(app, session, players):
    chat, _member = players[0]
    other = make_branch(session, "马克思主义学院", "教工党支部")
    contest = make_contest(session, bank(session, 2), audience=json.dumps({"units": [other.id]}))
    assert "不面向你所在的组织" in chat.say(f"竞赛 {contest.id}")
    assert "现在没有进行中的竞赛" in chat.say("竞赛")


def test_a_contest_is_played_in_the_quiz_flow_within_its_attempts(app, session, players):
    chat, _member = players[0]
    contest = make_contest(session, bank(session, 3), attempts_allowed=1)
    listing = chat.say("竞赛")
    assert f"#{contest.id} 党史知识竞赛" in listing and "已答 0/1 次" in listing
    reply = chat.say(f"竞赛 {contest.id}")
    assert "竞赛《党史知识竞赛》，共 3 题" in reply and "第 1/3 题" in reply and "第 1/1 次作答" in reply
    assert "你正在答题。答完（或回复“退出”）后再复习错题" in chat.say("错题") and "第 1/3 题" in chat.last.text
    reply = play_rest(chat, reply, right=2, total=3)
    assert "竞赛《党史知识竞赛》作答结束：答对 2/3 题" in reply and f"竞赛 {contest.id} 排行" in reply
    assert "次数已用完" in chat.say(f"竞赛 {contest.id}")
    assert "已答 1/1 次" in chat.say("竞赛")


def play_rest(chat, reply, right, total):
    for n in range(total):
        reply = chat.say(letter_of(reply, "对的选项") if n < right else wrong_letter(reply))
    return reply


def test_an_answer_after_the_time_limit_does_not_count(app, session, players):
    chat, member = players[0]
    contest = make_contest(session, bank(session, 3), time_limit_seconds=60)
    reply = chat.say(f"竞赛 {contest.id}")
    assert "限时 1 分钟" in reply
    reply = chat.say(letter_of(reply, "对的选项"))
    late = utcnow() + timedelta(seconds=90)
    with mock.patch("wxbot.pipeline.utcnow", return_value=late):
        reply = chat.say(letter_of(reply, "对的选项"))
    assert "时间到之后才回答，没有计入" in reply and "答对 1/3 题（答了 1 题）" in reply and "用时 1:00" in reply
    attempt = session.scalars(select(QuizAttempt).where(QuizAttempt.member_id == member.id)).one()
    assert attempt.right_count == 1 and attempt.finished_at is not None


def test_branches_are_ranked_by_participation_and_average_not_by_size(app, session, players):
    (chat_a, _), (chat_b, _) = players  # 本科生第一党支部: two players of many
    big = players[0][1].org_unit
    for n in range(6):
        make_member(session, branch=big, name="未参加" + "甲乙丙丁戊己"[n])
    small = make_branch(session, "马克思主义学院", "教工党支部")
    small_member = make_member(session, branch=small, name="赵敏")
    chat_c = ChatUser(phone_for(app), "oContestSmall")
    chat_c.bind(small_member)
    contest = make_contest(session, bank(session, 2))
    play(chat_a, contest, 2, 2)
    play(chat_b, contest, 2, 2)
    play(chat_c, contest, 1, 2)
    board = chat_a.say(f"竞赛 {contest.id} 排行")
    lines = board.splitlines()
    first_branch = next(line for line in lines if line.startswith("1. "))
    # 教工党支部: everyone played (1/1) at 50%: 50.0; 本科生第一党支部: 2 of 8 played at 100%: 25.0.
    assert first_branch.startswith("1. 教工党支部 50.0 分") and "2. 本科生第一党支部 25.0 分" in board
    assert "满分 100" in board
    assert "个人前十" in board and "你：第 " in board


def test_an_attempt_left_half_way_counts_against_the_limit_and_stays_in_the_results(app, session, players):
    chat, member = players[0]
    contest = make_contest(session, bank(session, 3), attempts_allowed=1, time_limit_seconds=600)
    reply = chat.say(f"竞赛 {contest.id}")
    reply = chat.say(letter_of(reply, "对的选项"))
    skipped = chat.say("跳过")
    assert "已跳过。正确答案在竞赛结束后公布" in skipped and "对的选项\n解析" not in skipped
    assert "对的选项" not in skipped.split("\n\n")[0]  # nothing of the right answer before the next question
    assert "作答结束：答对 1/3 题（答了 2 题）" in chat.say("退出") and "计入成绩" in chat.last.text
    chat.say("答题")
    chat.say("退出")
    assert "次数已用完" in chat.say(f"竞赛 {contest.id}")  # the reported loop: no new attempt, no new clock
    attempts = select(func.count()).select_from(QuizAttempt).where(QuizAttempt.contest_id == contest.id)
    assert session.scalar(attempts) == 1
    board = chat.say(f"竞赛 {contest.id} 排行")
    assert f"1. {member.name}（本科生第一党支部） 1/3" in board and "你：第 1 名" in board
    make_account(session, "admin", "admin")
    page = signed_in(app, "admin").get(f"/admin/contests/{contest.id}").get_data(as_text=True)
    assert member.name in page and "中途退出（共 1 次）" in page


def test_a_wrong_answer_in_an_open_contest_hides_the_right_one_until_it_closes(app, session, players):
    from unittest import mock

    from models.quizplay import ReviewCard
    from models.timeutil import local_date
    chat, member = players[0]
    contest = make_contest(session, bank(session, 2), ends=48)
    reply = chat.say(f"竞赛 {contest.id}")
    assert "竞赛期间只告诉你对错" in reply
    reply = chat.say(wrong_letter(reply))
    assert reply.startswith("✘ 回答错误。正确答案在竞赛结束后公布。") and "解析" not in reply
    chat.say(letter_of(reply, "对的选项"))
    assert "结束后公布正确答案" in chat.say(f"竞赛 {contest.id} 答案")
    card = session.scalars(select(ReviewCard).where(ReviewCard.member_id == member.id)).one()
    assert card.due >= local_date(contest.ends_at)  # 错题 would show the answer: not before the contest closes
    assert "今天没有需要复习的错题" in chat.say("错题")
    with mock.patch("wxbot.pipeline.utcnow", return_value=contest.ends_at + timedelta(minutes=1)):
        sheet = chat.say(f"竞赛 {contest.id} 答案")
    assert "答对 1/2 题" in sheet and "1. 第" in sheet and "正确答案：" in sheet and "对的选项" in sheet


def test_an_open_contests_paper_is_not_drawn_for_the_daily_quiz(app, session, players):
    chat, _member = players[0]
    on_paper = bank(session, 2)
    make_contest(session, on_paper)
    make_question(session, stem="平常的一道题")
    reply = chat.say("答题")
    assert "共 1 题" in reply and "平常的一道题" in reply


def test_a_contest_attempt_keeps_its_clock_when_other_commands_come_between(app, session, players):
    from unittest import mock
    chat, _member = players[0]
    contest = make_contest(session, bank(session, 3), attempts_allowed=2, time_limit_seconds=300)
    reply = chat.say(letter_of(chat.say(f"竞赛 {contest.id}"), "对的选项"))
    assert reply.endswith("（回复一个字母作答，如 A；跳过、退出、纠错 说明）")
    assert chat.say("活动").endswith("竞赛进行到第 2/3 题，发送“答题”继续。")
    later = utcnow() + timedelta(seconds=120)
    with mock.patch("wxbot.pipeline.utcnow", return_value=later):
        resumed = chat.say(f"竞赛 {contest.id}")
    assert "竞赛《党史知识竞赛》进行到第 2/3 题，还剩 2:5" in resumed or "还剩 3:0" in resumed, resumed
    with mock.patch("wxbot.pipeline.utcnow", return_value=utcnow() + timedelta(seconds=400)):
        reply = chat.say(f"竞赛 {contest.id}")  # its time ran out meanwhile: closed at the limit, a new attempt
    assert "上次的竞赛因时间到已结束：答对 1/3 题" in reply and "第 2/2 次作答" in reply
    attempts = session.scalars(select(QuizAttempt).where(QuizAttempt.contest_id == contest.id)
                               .order_by(QuizAttempt.id)).all()
    assert attempts[0].ended == "time_up" and (attempts[0].finished_at - attempts[0].started_at).seconds == 300


def test_a_contests_leaderboard_is_for_its_audience_only(app, session, players):
    chat, _member = players[0]
    other = make_branch(session, "马克思主义学院", "教工党支部")
    outsider = ChatUser(phone_for(app), "oContestOutsider")
    outsider.bind(make_member(session, branch=other, name="外院成员"))
    contest = make_contest(session, bank(session, 2), audience=json.dumps({"units": [other.id]}))
    play(outsider, contest, 2, 2)
    assert "没有这个竞赛" in chat.say(f"竞赛 {contest.id} 排行") and "外院成员" not in chat.last.text
    assert "外院成员" in outsider.say(f"竞赛 {contest.id} 排行")


# --- the console ------------------------------------------------------------------------------------

def form(**fields):
    now = utcnow()
    base = {"title": "学党章知识竞赛", "mode": "random", "count": "2", "tags": "", "difficulty": "",
            "starts_at": show(now + timedelta(hours=1), "%Y-%m-%dT%H:%M"),
            "ends_at": show(now + timedelta(days=2), "%Y-%m-%dT%H:%M"), "attempts_allowed": "2", "time_limit": "10"}
    return {**base, **fields}


def post(client, path, **fields):
    return client.post(path, data={**fields, "csrf_token": csrf_token(client, "/admin/contests/new")},
                       follow_redirects=True)


def test_an_organiser_creates_a_contest_and_edits_it_until_it_starts(app, session, school):
    organiser = signed_in(app, "cs")
    page = post(organiser, "/admin/contests/new", **form(mode="fixed", question_ids="99999"))
    assert "没有保存：题库中没有这些可用的题目：99999" in page.get_data(as_text=True)
    assert 'value="学党章知识竞赛"' in page.get_data(as_text=True)  # the form keeps what was typed
    page = post(organiser, "/admin/contests/new", **form(ends_at=form()["starts_at"]))
    assert "结束时间要晚于开始时间" in page.get_data(as_text=True)
    page = post(organiser, "/admin/contests/new", **form()).get_data(as_text=True)
    contest = session.scalars(select(Contest)).one()
    assert "竞赛已保存" in page and contest.time_limit_seconds == 600 and contest.attempts_allowed == 2
    assert contest.audience_spec()["units"] == [school["cs"].parent_id]  # the organiser's own subtree
    post(organiser, f"/admin/contests/{contest.id}/edit", **form(title="学党章知识竞赛（决赛）", count="3"))
    session.expire_all()
    assert session.get(Contest, contest.id).title == "学党章知识竞赛（决赛）"
    contest.starts_at = utcnow() - timedelta(minutes=1)
    session.commit()
    page = post(organiser, f"/admin/contests/{contest.id}/edit", **form(title="改名")).get_data(as_text=True)
    assert "竞赛已经开始，不能再修改" in page
    session.expire_all()
    assert session.get(Contest, contest.id).title == "学党章知识竞赛（决赛）"
    assert "修改</a>" not in organiser.get(f"/admin/contests/{contest.id}").get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.object_type == "contest")) == 2


def test_an_organiser_cannot_aim_a_contest_outside_their_subtree(app, session, school):
    organiser = signed_in(app, "cs")
    post(organiser, "/admin/contests/new", **form(units=str(school["marx"].id)))
    contest = session.scalars(select(Contest)).one()
    assert contest.audience_spec()["units"] == [school["cs"].parent_id]
    admin_contest = make_contest(session, bank(session, 1), title="全校竞赛")
    assert organiser.post(f"/admin/contests/{admin_contest.id}/edit", data=form()).status_code in (400, 404)


def test_announcing_asks_with_the_count_and_sends_once(app, session, school):
    organiser = signed_in(app, "cs")
    post(organiser, "/admin/contests/new", **form())
    contest = session.scalars(select(Contest)).one()
    page = post(organiser, f"/admin/contests/{contest.id}/announce").get_data(as_text=True)
    assert "确认发送竞赛通知" in page and 'data-count="2"' in page  # two bound members of 计算机学院
    assert "预计送达方式" in page and "客服消息：2 人" in page
    assert session.scalar(select(func.count()).select_from(Campaign)) == 0
    post(organiser, f"/admin/contests/{contest.id}/announce", confirmed="1")
    campaign = session.scalars(select(Campaign)).one()
    assert f"回复“竞赛 {contest.id}”参加" in campaign.text
    assert session.scalar(select(func.count()).select_from(Delivery)) == 2
    page = post(organiser, f"/admin/contests/{contest.id}/announce", confirmed="1").get_data(as_text=True)
    assert "已经通知过了" in page and session.scalar(select(func.count()).select_from(Campaign)) == 1


def test_results_show_only_the_viewers_branches_and_export_as_a_workbook(app, session, school):
    questions = bank(session, 2)
    contest = make_contest(session, questions, title="全校竞赛")  # the school's: every member
    for openid, right in (("oA", 2), ("oC", 1)):
        play(ChatUser(phone_for(app), openid), contest, right, 2)
    admin, organiser = signed_in(app, "admin"), signed_in(app, "cs")
    page = admin.get(f"/admin/contests/{contest.id}").get_data(as_text=True)
    assert "本科生第一党支部" in page and "教工党支部" in page
    page = organiser.get(f"/admin/contests/{contest.id}").get_data(as_text=True)
    assert "本科生第一党支部" in page and "教工党支部" not in page and school["oC"].name not in page
    book = load_workbook(io.BytesIO(admin.get(f"/admin/contests/{contest.id}/results.xlsx").data))
    assert book.sheetnames == ["个人成绩", "支部排名"]
    people = list(book["个人成绩"].values)
    assert people[1][1:5] == (school["oA"].name, "本科生第一党支部", 2, 2) and len(people) == 3
    branches = list(book["支部排名"].values)
    assert [row[1] for row in branches[1:]] == ["教工党支部", "本科生第一党支部"]  # 1/1 at 50% beats 1/2 at 100%
