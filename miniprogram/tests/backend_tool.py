"""What the mini-program's tests ask of the backend besides its API: the organiser's answer to a post
(as the console gives it) and the facts in the records a test checks. Run with the backend's
environment: .venv/bin/python miniprogram/tests/backend_tool.py answer 2023100 "回复"."""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import func, select  # noqa: E402

from wxbot import create_app  # noqa: E402
from wxbot.db import db  # noqa: E402


def member_of(student_no: str):
    from models.members import Member
    return db.session.scalar(select(Member).where(Member.student_no == student_no))


def answer(student_no: str, text: str) -> dict:
    """The organiser answers the member's latest post (models.feedback.answer_post, as the console)."""
    from models.feedback import Post, answer_post
    from models.timeutil import utcnow
    post = db.session.scalar(select(Post).where(Post.member_id == member_of(student_no).id).order_by(Post.id.desc()))
    answer_post(post, text, "组织员", utcnow())
    db.session.commit()
    return {"number": post.number}


def facts(student_no: str) -> dict:
    from models.checkins import CheckIn
    from models.feedback import Post
    from models.points import MemberPoints
    from models.quiz import QuizAttempt
    from models.study import Reading
    member = member_of(student_no)
    count = lambda q: db.session.scalar(select(func.count()).select_from(q.subquery()))  # noqa: E731
    points = db.session.get(MemberPoints, member.id)
    return {
        "points": points.total if points else 0,
        "checkins": [m for (m,) in db.session.execute(select(CheckIn.method).where(CheckIn.member_id == member.id))],
        "readings_credited": count(select(Reading.id).where(Reading.member_id == member.id,
                                                            Reading.credited_at.is_not(None))),
        "daily_attempts": count(select(QuizAttempt.id).where(QuizAttempt.member_id == member.id,
                                                             QuizAttempt.kind == "daily")),
        "daily_finished": count(select(QuizAttempt.id).where(QuizAttempt.member_id == member.id,
                                                             QuizAttempt.kind == "daily",
                                                             QuizAttempt.finished_at.is_not(None))),
        "posts": [p.text for p in db.session.scalars(select(Post).where(Post.member_id == member.id))],
    }


def current_scene(event_title_part: str) -> dict:
    """The scene the check-in screen's codes carry now for the event whose title holds this text."""
    from flask import current_app

    from models.checkins import scene_for, slot_of
    from models.events import Event
    from models.timeutil import utcnow
    from wxbot import services
    event = db.session.scalar(select(Event).where(Event.title.contains(event_title_part)))
    slot = slot_of(utcnow(), services.settings().events.code_rotate_seconds)
    return {"event_id": event.id, "scene": scene_for(current_app.config["SECRET_KEY"], event.id, slot)}


if __name__ == "__main__":
    app = create_app()
    with app.app_context():
        command, *args = sys.argv[1:]
        print(json.dumps({"answer": answer, "facts": facts, "scene": current_scene}[command](*args),
                         ensure_ascii=False))
