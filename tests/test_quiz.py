"""The daily quiz as a member plays it, through the real webhook: question by question, every answer
form, hints, skipping, leaving, resuming, expiry, the daily limit, answers counted once, and other
features' commands in the middle of a quiz."""
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from models.points import PointEntry
from models.quiz import AnswerRecord
from tests.conftest import phone_for
from tests.helpers import ChatUser, make_branch, make_member
from tests.quizhelp import bank, latest_attempt, letter_of, make_question, wrong_letter


@pytest.fixture
def player(app, session):
    member = make_member(session, branch=make_branch(session), name="王芳")
    chat = ChatUser(phone_for(app), "oQuizPlayer")
    chat.bind(member)
    return chat, member


def test_a_daily_quiz_from_first_question_to_the_summary(app, session, player):
    chat, member = player
    bank(session, 5)
    reply = chat.say("答题")
    assert "今日答题，共 5 题" in reply and "第 1/5 题（单选）" in reply
    for n in range(1, 6):
        reply = chat.say(letter_of(reply, "对的选项"))
        assert "✔ 回答正确" in reply and "解析：党章总纲。" in reply
        if n < 5:
            assert f"第 {n + 1}/5 题" in reply
    assert "今日答题结束：答对 5/5 题，获得 7 积分" in reply and "今天支部排名：第 1 名" in reply
    assert "错题" in reply and "排行" in reply
    assert session.scalar(select(func.sum(PointEntry.delta)).where(PointEntry.member_id == member.id)) == 7


def test_a_wrong_answer_shows_the_right_one_and_the_explanation(app, session, player):
    chat, _member = player
    bank(session, 1)
    reply = chat.say("答题")
    right = letter_of(reply, "对的选项")
    reply = chat.say(wrong_letter(reply))
    assert f"✘ 回答错误。正确答案：{right}. 对的选项" in reply and "解析：" in reply


@pytest.mark.parametrize(("kind", "options", "answer", "said"), [
    ("single", ("甲", "乙", "丙", "丁"), "2", ["{C}", "{c}", "{C_full}"]),
    ("multiple", ("甲", "乙", "丙", "丁"), "0,2", ["{A}{C}", "{A},{C}", "{a} {c}", "{C}{A}"]),
    ("judge", (), "0", ["对", "√", "正确", "A"]),
    ("judge", (), "1", ["错", "×", "错误", "B"]),
])
def test_every_way_of_writing_an_answer_is_understood(app, session, player, kind, options, answer, said):
    chat, _member = player
    for _ in said:
        make_question(session, kind=kind, options=options, answer=answer, stem=f"{kind}题")
    reply = chat.say("答题")
    for form in said:
        letters = {}
        if kind != "judge":
            right = [letter_of(reply, options[int(i)]) for i in answer.split(",")]
            letters = {"A": right[0], "C": right[-1], "a": right[0].lower(), "c": right[-1].lower(),
                       "C_full": chr(ord(right[0]) + 0xFEE0)}
        reply = chat.say(form.format(**letters))
        assert "✔ 回答正确" in reply, (form, reply)


def test_an_unclear_answer_gets_a_hint_and_the_same_question_never_a_wrong_mark(app, session, player):
    chat, _member = player
    bank(session, 2)
    chat.say("答题")
    for unclear in ("E", "好的", "AB", "对"):
        reply = chat.say(unclear)
        assert "这是单选题，请回复 A–D 中的一个字母" in reply and "第 1/2 题" in reply
    assert session.scalar(select(func.count()).select_from(AnswerRecord)) == 0


def test_skip_and_leave_work_in_every_question(app, session, player):
    chat, _member = player
    bank(session, 3)
    chat.say("答题")
    reply = chat.say("跳过")
    assert "已跳过。正确答案：" in reply and "第 2/3 题" in reply
    left = chat.say("退出")
    assert "已退出。今日答题结束：答对 0/3 题（答了 1 题），获得 0 积分。今天再答题是练习" in left
    assert "没有找到" in chat.say("B")  # no quiz waiting for an answer any more


def test_leaving_ends_the_scored_quiz_with_what_was_answered_and_later_quizzes_are_practice(app, session, player):
    chat, member = player
    bank(session, 5)
    reply = chat.say("答题")
    reply = chat.say(letter_of(reply, "对的选项"))
    assert "第 3/5 题" in chat.say("跳过")  # the right answer is shown: a re-roll would be a free pass
    assert "答对 1/5 题（答了 2 题），获得 1 积分" in chat.say("退出")
    reply = chat.say("答题")
    assert "这次是练习" in reply
    assert "练习" in chat.say("退出")
    assert "这次是练习" in chat.say("答题")
    points = session.scalars(select(PointEntry.delta).where(PointEntry.member_id == member.id,
                                                            PointEntry.rule == "quiz")).all()
    assert points == [1]


def test_coming_back_resumes_and_the_quiz_expires_after_its_ttl(make_app, session):
    app = make_app(quiz__state_ttl=1)
    chat = ChatUser(phone_for(app), "oQuizResume")
    chat.bind(make_member(session, branch=make_branch(session)))
    bank(session, 3)
    reply = chat.say("答题")
    chat.say(letter_of(reply, "对的选项"))
    assert "今日答题进行到第 2/3 题，继续" in chat.click("答题")  # the menu too
    assert "第 2/3 题（单选）" in chat.last.text
    time.sleep(1.2)
    assert "没有找到" in chat.say("A")  # expired: "A" is no longer an answer
    reply = chat.say("答题")  # the expired quiz ended with what was answered; it was the day's scored one
    assert "上次的今日答题因长时间没有作答已结束：答对 1/3 题，获得 1 积分" in reply and "这次是练习" in reply


def test_a_quiz_left_idle_is_closed_by_the_sweep_with_its_points(make_app, session):
    from scheduler import build_scheduler
    from scheduler.jobs import quiz_sweep_job
    app = make_app(quiz__state_ttl=1)
    assert "quiz.sweep" in {job.id for job in build_scheduler(app).get_jobs()}
    chat = ChatUser(phone_for(app), "oQuizSwept")
    member = make_member(session, branch=make_branch(session))
    chat.bind(member)
    bank(session, 3)
    chat.say(letter_of(chat.say("答题"), "对的选项"))
    assert quiz_sweep_job(app) == 0  # still within its time
    time.sleep(1.2)
    assert quiz_sweep_job(app) == 1 and quiz_sweep_job(app) == 0  # closed once
    attempt = latest_attempt(session)
    assert attempt.ended == "expired" and attempt.finished_at is not None and attempt.right_count == 1
    assert session.scalar(select(func.sum(PointEntry.delta)).where(PointEntry.member_id == member.id)) == 1
    assert "这次是练习" in chat.say("答题")


def test_one_scored_quiz_a_day_then_practice_without_points(app, session, player):
    chat, member = player
    bank(session, 2)
    reply = chat.say("答题")
    for _ in range(2):
        reply = chat.say(letter_of(reply, "对的选项"))
    reply = chat.say("答题")
    assert "这次是练习" in reply
    for _ in range(2):
        reply = chat.say(letter_of(reply, "对的选项"))
    assert "练习结束：答对 2/2 题（练习不计积分）" in reply
    assert session.scalar(select(func.count()).select_from(PointEntry).where(PointEntry.rule == "quiz")) == 1


def test_an_answer_delivered_twice_by_wechat_counts_once(app, session, player):
    chat, _member = player
    bank(session, 3)
    reply = chat.say("答题")
    right = letter_of(reply, "对的选项")
    query, body = chat.phone.build(chat.openid, {"MsgType": "text", "Content": right, "MsgId": 990001})
    replies = [chat.phone.read_reply(*chat.phone.transport(query, body)).text for _ in range(3)]  # WeChat's retries
    assert len(set(replies)) == 1 and "第 2/3 题" in replies[0]
    assert session.scalar(select(func.count()).select_from(AnswerRecord)) == 1
    assert latest_attempt(session).position == 1


def test_a_double_tap_sent_before_the_first_reply_counts_once(app, session, player):
    chat, _member = player
    bank(session, 3)
    right = letter_of(chat.say("答题"), "对的选项")
    replies = []
    from unittest import mock

    import handlers.quiz
    original = handlers.quiz.after_answer

    def slowly(*args):  # the first answer is still being handled when the second tap arrives
        time.sleep(0.4)
        return original(*args)
    # Two messages as WeChat posts them, each with its own MsgId (two taps, not a retry).
    sent = [chat.phone.build(chat.openid, {"MsgType": "text", "Content": right, "MsgId": 880100 + n}) for n in range(2)]
    taps = [threading.Thread(target=lambda m=m: replies.append(chat.phone.read_reply(*chat.phone.transport(*m)).text))
            for m in sent]
    with mock.patch.object(handlers.quiz, "after_answer", slowly):
        taps[0].start()
        time.sleep(0.1)
        taps[1].start()
        for tap in taps:
            tap.join()
    assert any("相同的回答只算一次" in r for r in replies) and all("第 2/3 题" in r for r in replies), replies
    assert session.scalar(select(func.count()).select_from(AnswerRecord)) == 1


@pytest.mark.parametrize("same", ["A", "错"])
def test_the_same_answer_to_the_next_question_after_its_reply_is_a_new_answer(app, session, player, same):
    chat, _member = player
    kind = "judge" if same == "错" else "single"
    for n in range(3):
        make_question(session, stem=f"同样的回答{n}", kind=kind, options=PLAIN if kind == "single" else (), answer="1")
    chat.say("答题")
    first = chat.say(same)
    assert "第 2/3 题" in first
    second = chat.say(same)  # a second after the verdict arrived: the answer to question 2
    assert "只算一次" not in second and "第 3/3 题" in second
    assert session.scalar(select(func.count()).select_from(AnswerRecord)) == 2


PLAIN = ("甲", "乙", "丙", "丁")  # judge questions ignore options; single ones shuffle them


def test_commands_of_other_features_run_in_the_middle_of_a_quiz_and_it_keeps_its_place(app, session, player):
    chat, _member = player
    bank(session, 3)
    reply = chat.say(letter_of(chat.say("答题"), "对的选项"))
    assert "第 2/3 题" in reply
    for command in ("活动", "报名 3", "竞赛 1 排行", "积分", "帮助"):
        reply = chat.say(command)
        assert "没看懂" not in reply and reply.endswith("答题进行到第 2/3 题，发送“答题”继续。"), (command, reply)
    assert "没看懂这个回答" in chat.say("嗯嗯")  # what no feature knows is still an unclear answer
    reply = chat.say("答题")
    assert "今日答题进行到第 2/3 题，继续" in reply
    reply = chat.say(letter_of(reply, "对的选项"))
    assert "✔ 回答正确" in reply and "第 3/3 题" in reply


def test_a_stale_question_is_never_drawn(app, session, player):
    chat, _member = player
    from models.timeutil import local_date
    make_question(session, stem="过期的政策题", valid_until=local_date() - timedelta(days=1))
    make_question(session, stem="还没生效的题", valid_from=local_date() + timedelta(days=1))
    make_question(session, stem="有效的题")
    reply = chat.say("答题")
    assert "有效的题" in reply and "共 1 题" in reply


def test_a_report_right_after_a_question_waits_in_the_console(app, session, player):
    from models.quiz import QuestionReport
    chat, _member = player
    bank(session, 2)
    reply = chat.say("答题")
    reply = chat.say(letter_of(reply, "对的选项"))
    answered = latest_attempt(session).question_ids[0]
    assert "已收到你对“第" in chat.say("纠错 选项里的年份不对") and "第 2/2 题" in chat.last.text
    report = session.scalars(select(QuestionReport)).one()
    assert report.question_id == answered and report.note == "选项里的年份不对"


def test_a_wrong_answer_comes_back_after_1_2_4_7_and_15_days_then_leaves(app, session, player):
    from unittest import mock

    from models.quizplay import ReviewCard
    from models.timeutil import local_date, utcnow
    chat, member = player
    bank(session, 1)
    reply = chat.say("答题")
    chat.say(wrong_letter(reply))
    start = utcnow()
    card = session.scalars(select(ReviewCard)).one()
    assert card.due == local_date(start) + timedelta(days=1)
    assert "下一道在" in chat.say("错题")  # nothing due today
    day = 0
    for interval in (1, 2, 4, 7, 15):
        day += interval
        with mock.patch("wxbot.pipeline.utcnow", return_value=start + timedelta(days=day)):
            if interval > 1:  # the day before it is due, nothing to review yet
                with mock.patch("wxbot.pipeline.utcnow", return_value=start + timedelta(days=day - 1)):
                    assert "今天没有需要复习的错题" in chat.say("错题")
            reply = chat.say("错题")
            assert "错题复习，共 1 题" in reply, (day, reply)
            reply = chat.say(letter_of(reply, "对的选项"))
        session.expire_all()
        cards = session.scalars(select(ReviewCard).where(ReviewCard.member_id == member.id)).all()
        if interval < 15:
            assert "复习结束：答对 1/1 题" in reply and len(cards) == 1
        else:
            assert cards == [] and "错题本已经清空" in reply


def test_a_wrong_answer_in_a_review_starts_the_schedule_again(app, session, player):
    from unittest import mock

    from models.quizplay import ReviewCard
    from models.timeutil import local_date, utcnow
    chat, _member = player
    bank(session, 1)
    chat.say(wrong_letter(chat.say("答题")))
    later = utcnow() + timedelta(days=1)
    with mock.patch("wxbot.pipeline.utcnow", return_value=later):
        reply = chat.say(letter_of(chat.say("错题"), "对的选项"))
    later += timedelta(days=2)
    with mock.patch("wxbot.pipeline.utcnow", return_value=later):
        chat.say(wrong_letter(chat.say("错题")))
    card = session.scalars(select(ReviewCard)).one()
    session.refresh(card)
    assert card.stage == 0 and card.due == local_date(later) + timedelta(days=1) and "复习结束" in reply


def test_the_optional_reminder_reaches_those_who_have_not_answered_once_a_day(make_app, session):
    from models.delivery import Campaign, Delivery
    from scheduler import build_scheduler
    from scheduler.jobs import quiz_reminder_job
    from wxbot.delivery.engine import DeliveryWorker
    assert "quiz.reminder" not in {job.id for job in build_scheduler(make_app()).get_jobs()}  # off by default
    app = make_app(quiz__reminder_enabled=True, quiz__reminder_at="20:30")
    jobs = {job.id: job for job in build_scheduler(app).get_jobs()}
    assert {f.name: str(f) for f in jobs["quiz.reminder"].trigger.fields}["hour"] == "20"
    bank(session, 1)
    branch = make_branch(session)
    done, idle = ChatUser(phone_for(app), "oQuizDone"), ChatUser(phone_for(app), "oQuizIdle")
    done.bind(make_member(session, branch=branch, name="答完了"))
    idle.bind(make_member(session, branch=branch, name="没答题"))
    done.say(letter_of(done.say("答题"), "对的选项"))
    assert quiz_reminder_job(app) == 1
    assert quiz_reminder_job(app) == 0  # a second run, a restart, a second scheduler: nothing more
    DeliveryWorker(app, "quiz-reminder").step(batches=None)
    assert [m["content"] for m in idle.received(session, "customer_service")] == [
        "今天的 5 道题还没有答，回复“答题”开始，答对得积分。"]
    assert done.received(session, "customer_service") == []
    assert session.scalar(select(func.count()).select_from(Campaign)) == 1
    assert session.scalar(select(func.count()).select_from(Delivery)) == 1


def test_help_lists_the_quiz_commands_and_none_says_coming_soon(app, session, player):
    chat, _member = player
    assert "· 帮助 答题：答题、错题、纠错、竞赛" in chat.say("帮助")
    reply = chat.say("帮助 答题")
    for command in ("答题", "错题", "纠错 说明", "竞赛"):
        assert command in reply
    for command in ("答题", "错题", "竞赛"):
        assert "即将开放" not in chat.say(command)
