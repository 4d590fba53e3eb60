"""我的发展 in the mini-program: the member's own path to membership, as the chat's 我的发展 tells it
(handlers/development.progress_of): steps and dates only, never an organiser's notes."""
from __future__ import annotations

from handlers.development import progress_of
from models.timeutil import local_date, utcnow
from wxbot.api import answers, bp, call, spec
from wxbot.api.schemas import DevelopmentOut, StepDone
from wxbot.db import db

SESSION = {"session": []}


@bp.get("/development")
@spec.validate(resp=answers(DevelopmentOut, 403), tags=["我的"], security=SESSION)
@call()
def development(_user, member):
    """我的发展：已完成的步骤和日期，接下来的步骤和时间。"""
    mine = progress_of(db.session, member, local_date(utcnow()))
    return DevelopmentOut(stage=mine.stage, has_record=mine.has_record,
                          done=[StepDone(date=day, name=name) for day, name in mine.done], closed=mine.closed,
                          probation_end=mine.probation_end, upcoming=mine.upcoming)
