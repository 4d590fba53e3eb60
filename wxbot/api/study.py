"""Study from the mini-program: today's materials, the last days', a material with its attachments,
the reading beacon (the credit rules of the reading page: models/study.record_beacon), the rankings.

A material can also be read in a web-view on its personal reading page (read_url), which reports
its own beacon; both count the same reading once."""
from __future__ import annotations

from datetime import timedelta

from flask import current_app, request

from models.points import leader_boards, standing
from models.study import Material, Reading, may_read, plan_for, record_beacon, record_open
from models.timeutil import local_date, utcnow
from wxbot import services
from wxbot.api import answers, bp, call, problem, spec
from wxbot.api.schemas import (
    AttachmentOut,
    BeaconIn,
    BeaconOut,
    MaterialList,
    MaterialOut,
    MaterialPage,
    RankingOut,
    RankRow,
)
from wxbot.db import db
from wxbot.study import study_link
from wxbot.study.views import render_body

SESSION = {"session": []}


def material_out(member, material: Material, day=None, read: bool = False) -> dict:
    link = study_link(current_app, member.id, material.id)
    return dict(id=material.id, day=day, title=material.title, summary=material.summary, cover=material.cover,
                read_url=link, read=read,
                attachments=[AttachmentOut(name=a.filename, url=f"{link}/a/{a.id}") for a in material.attachments])


def _credited(member, material_ids: list[int]) -> set[int]:
    if not material_ids:
        return set()
    rows = db.session.query(Reading.material_id).filter(Reading.member_id == member.id,
                                                        Reading.material_id.in_(material_ids),
                                                        Reading.credited_at.is_not(None))
    return {material_id for (material_id,) in rows}


def _listed(member, first, last) -> MaterialList:
    entries = plan_for(db.session, member, first, last)
    read = _credited(member, [e.material_id for e in entries])
    return MaterialList(items=[MaterialOut(**material_out(member, e.material, e.day, e.material_id in read))
                               for e in entries])


@bp.get("/study/today")
@spec.validate(resp=answers(MaterialList, 403), tags=["学习"], security=SESSION)
@call()
def today(_user, member):
    """今天的学习材料（阅读满规定时长计入学习记录）。"""
    day = local_date(utcnow())
    return _listed(member, day, day)


@bp.get("/study/history")
@spec.validate(resp=answers(MaterialList, 403), tags=["学习"], security=SESSION)
@call()
def history(_user, member):
    """往期：最近几天的学习材料（study.history_days）。"""
    day = local_date(utcnow())
    return _listed(member, day - timedelta(days=services.settings().study.history_days - 1), day)


def _readable(member, material_id: int) -> Material:
    material = db.session.get(Material, material_id)
    if material is None or not may_read(db.session, member, material):
        raise problem(404, "not_found", "没有这篇学习材料。")
    return material


@bp.get("/study/materials/<int:material_id>")
@spec.validate(resp=answers(MaterialPage, 403, 404), tags=["学习"], security=SESSION)
@call()
def material(_user, member, material_id: int):
    """一篇学习材料：正文、附件和本人的阅读进度（打开即开始计时）。"""
    item = _readable(member, material_id)
    reading = record_open(db.session, member, item, utcnow())
    db.session.commit()
    credited = reading.credited_at is not None
    return MaterialPage(**material_out(member, item, None, credited), body=item.body,
                        body_html=str(render_body(item.body)), seconds=reading.seconds,
                        need=services.settings().study.read_seconds)


@bp.post("/study/materials/<int:material_id>/beacon")
@spec.validate(json=BeaconIn, resp=answers(BeaconOut, 400, 403, 404), tags=["学习"], security=SESSION)
@call(write=True)
def beacon(_user, member, material_id: int):
    """阅读进度：页面可见时每 15 秒报告一次；不会多于实际经过的时间。"""
    item = _readable(member, material_id)
    settings = services.settings()
    reading, points = record_beacon(db.session, member, item, request.context.json.seconds, utcnow(), settings)
    return BeaconOut(seconds=reading.seconds, need=settings.study.read_seconds,
                     credited=reading.credited_at is not None, points=points)


@bp.get("/ranking")
@spec.validate(resp=answers(RankingOut, 403), tags=["学习"], security=SESSION)
@call()
def ranking(_user, member):
    """排行：支部和全校前十，及我的位置。"""
    mine = standing(db.session, member, utcnow())
    branch, school = leader_boards(db.session, member.org_unit_id)

    def rows(board):
        return [RankRow(rank=1 + sum(other > total for _n, _b, other in board), name=name, branch=unit, points=total)
                for name, unit, total in board]
    ranked = mine.total > 0
    return RankingOut(branch=rows(branch), school=rows(school), my_points=mine.total,
                      my_branch_rank=mine.branch_rank if ranked else None,
                      my_school_rank=mine.school_rank if ranked else None)
