"""The rows bursts read again and again, kept in the process: the questions an attempt asks and the
event a scan checks in to. A burst of answers to the same questions, or of scans of the same screen,
does not read them again; an answer is four statements; and every change (an edit in the console, an
import that updates a question in place, an event cancelled or its check-in moved, a bulk statement,
a change committed by another process) is seen by the very next answer or scan."""
import io
import json
from datetime import timedelta

from sqlalchemy import func, select, update

from models.checkins import CheckIn, scene_for, slot_of
from models.events import Event
from models.questionbank import COLUMNS
from models.quiz import Question
from models.tables import xlsx_bytes
from models.timeutil import utcnow
from tests.conftest import phone_for
from tests.helpers import ChatUser, csrf_token, make_account, make_member, signed_in, statements
from tests.quizhelp import letter_of, make_question

OPTIONS = ("选项甲", "选项乙", "选项丙", "选项丁")


def product_statements(seen: list[str]) -> list[str]:
    """What the product ran on any thread, without the sandbox playing WeChat (its own tables) and
    the message log's background writer."""
    return [s[:90] for s in seen if "sandbox_" not in s and "message_log" not in s]


def one_question_bank(session) -> Question:
    """A bank of one question whose right answer is 选项乙 (so every quiz asks it)."""
    return make_question(session, stem="中国共产党的根本宗旨是什么？", options=OPTIONS, answer="1")


def player(app, session, openid: str) -> ChatUser:
    chat = ChatUser(phone_for(app), openid)
    chat.bind(make_member(session))
    return chat


def test_members_answering_the_same_question_read_it_once(app, session):
    one_question_bank(session)
    first, second = player(app, session, "oFirst"), player(app, session, "oSecond")
    reply = first.say("答题")
    assert "✔ 回答正确" in first.say(letter_of(reply, "选项乙"))
    reply = second.say("答题")
    with statements(app) as seen:
        assert "✔ 回答正确" in second.say(letter_of(reply, "选项乙"))
    assert product_statements(seen) and not [s for s in product_statements(seen) if "FROM questions" in s]


def test_an_answer_is_recorded_in_four_statements(app, session):
    for n in range(3):
        make_question(session, stem=f"第{n}题", options=OPTIONS, answer="1")
    chat = player(app, session, "oCount")
    reply = chat.say("答题")
    with statements(app) as seen:
        reply = chat.say(letter_of(reply, "选项甲"))  # wrong: it goes into the wrong-answer book too
    assert "✘ 回答错误" in reply and "第 2/3 题" in reply
    # the attempt, the answer (once: its unique key), the attempt's position, the wrong-answer book
    assert len(product_statements(seen)) == 4, product_statements(seen)


def edit_in_console(app, session, question: Question, answer_letter: str) -> None:
    make_account(session, "admin", "admin")
    admin = signed_in(app, "admin")
    form = {"kind": "single", "stem": question.stem, "选项A": OPTIONS[0], "选项B": OPTIONS[1],
            "选项C": OPTIONS[2], "选项D": OPTIONS[3], "answer": answer_letter, "explanation": "改过的解析。",
            "source": "", "tags": "", "difficulty": "1", "valid_from": "", "valid_until": "",
            "csrf_token": csrf_token(admin, "/admin/questions/new")}
    assert admin.post(f"/admin/questions/{question.id}", data=form).status_code in (200, 302)


def test_a_corrected_answer_key_counts_for_the_next_answer(app, session):
    question = one_question_bank(session)
    warm = player(app, session, "oWarm")
    warm.say(letter_of(warm.say("答题"), "选项乙"))  # the question is now kept in the process
    chat = player(app, session, "oCorrected")
    reply = chat.say("答题")
    edit_in_console(app, session, question, "C")  # the organiser finds the key was wrong: 选项丙
    reply = chat.say(letter_of(reply, "选项丙"))
    assert "✔ 回答正确" in reply and "改过的解析。" in reply


def test_an_import_that_updates_a_question_in_place_is_seen(app, session):

    question = one_question_bank(session)
    warm = player(app, session, "oWarm")
    warm.say(letter_of(warm.say("答题"), "选项乙"))
    chat = player(app, session, "oImported")
    reply = chat.say("答题")
    row = {"编号": question.id, "题型": "单选", "题干": question.stem, "选项A": OPTIONS[0], "选项B": OPTIONS[1],
           "选项C": OPTIONS[2], "选项D": OPTIONS[3], "答案": "D", "解析": "导入改过的。"}
    make_account(session, "admin", "admin")
    admin = signed_in(app, "admin")
    admin.post("/admin/questions/import", content_type="multipart/form-data", follow_redirects=True, data={
        "csrf_token": csrf_token(admin, "/admin/questions/new"),
        "file": (io.BytesIO(xlsx_bytes([list(COLUMNS)] + [[row.get(c, "") for c in COLUMNS]])), "题库.xlsx")})
    session.expire_all()
    assert session.get(Question, question.id).answer == "3"  # the import did update it in place
    assert "✔ 回答正确" in chat.say(letter_of(reply, "选项丁"))


def test_a_bulk_statement_on_the_bank_is_seen(app, session):
    question = one_question_bank(session)
    chat = player(app, session, "oBulk")
    reply = chat.say("答题")
    session.execute(update(Question).where(Question.id == question.id)
                    .values(options=json.dumps(["新甲", "新乙", "新丙", "新丁"], ensure_ascii=False)))
    session.commit()
    reply = chat.say(letter_of(reply, "选项甲"))  # wrong: the reply shows the right option's words
    assert "回答错误" in reply and "新乙" in reply


def test_a_change_committed_by_another_process_is_seen(make_app, backend, session):
    """Two apps sharing Redis and the database, as two gunicorn workers do (the embedded store lives
    in its one process: there the change comes from another session of the same process)."""
    console_app = make_app()
    chat_app = make_app() if backend["name"] == "production" else console_app  # the last built serves the phone
    question = one_question_bank(session)
    chat = player(chat_app, session, "oTwoProcesses")
    reply = chat.say("答题")
    with console_app.app_context():
        from wxbot.db import db
        db.session.get(Question, question.id).answer = "2"
        db.session.commit()
    assert "✔ 回答正确" in chat.say(letter_of(reply, "选项丙"))


# --- the event a scan checks in to -------------------------------------------------------------------

def open_event(session) -> Event:
    now = utcnow()
    event = Event(title="主题党日", kind="主题党日", place="大礼堂", points=2, starts_at=now + timedelta(minutes=5),
                  ends_at=now + timedelta(hours=2))
    session.add(event)
    session.commit()
    return event


def scan(app, chat: ChatUser, event: Event) -> str:
    return chat.scan(scene_for(app.config["SECRET_KEY"], event.id, slot_of(utcnow(), 15)))


def test_a_hall_scanning_the_same_screen_reads_the_event_once(app, session):
    event = open_event(session)
    assert "签到成功" in scan(app, player(app, session, "oFirstIn"), event)
    second = player(app, session, "oSecondIn")
    with statements(app) as seen:
        assert "签到成功" in scan(app, second, event)
    assert product_statements(seen) and not [s for s in product_statements(seen) if "FROM events" in s]


def test_an_event_cancelled_in_the_console_refuses_the_next_scan(app, session):
    event = open_event(session)
    assert "签到成功" in scan(app, player(app, session, "oEarly"), event)  # the event is now kept
    make_account(session, "admin", "admin")
    admin = signed_in(app, "admin")
    admin.post(f"/admin/events/{event.id}/cancel", data={"confirmed": "1",
                                                         "csrf_token": csrf_token(admin, "/admin/events/new")})
    late = player(app, session, "oLate")
    assert "已取消" in scan(app, late, event)
    assert session.scalar(select(func.count()).select_from(CheckIn)) == 1


def test_a_check_in_window_moved_by_a_bulk_statement_is_seen(app, session):
    event = open_event(session)
    assert "签到成功" in scan(app, player(app, session, "oBefore"), event)
    later = utcnow() + timedelta(days=1)
    session.execute(update(Event).where(Event.id == event.id).values(starts_at=later,
                                                                     ends_at=later + timedelta(hours=2)))
    session.commit()
    assert "签到" in (reply := scan(app, player(app, session, "oAfter"), event)) and "开始" in reply


def test_an_event_changed_by_another_process_is_seen(make_app, backend, session):
    console_app = make_app()
    chat_app = make_app() if backend["name"] == "production" else console_app  # the last built serves the phone
    event = open_event(session)
    assert "签到成功" in scan(chat_app, player(chat_app, session, "oOne"), event)
    with console_app.app_context():
        from wxbot.db import db
        db.session.get(Event, event.id).status = "cancelled"
        db.session.commit()
    assert "已取消" in scan(chat_app, player(chat_app, session, "oTwo"), event)
