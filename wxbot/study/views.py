"""/s/<token>: a member's own reading page of a material, its time beacon, and its attachments."""
from __future__ import annotations

import os

import markdown
import nh3
from flask import abort, current_app, jsonify, render_template, request, send_from_directory
from markupsafe import Markup
from werkzeug.exceptions import HTTPException

from models.members import Member
from models.study import Attachment, Material, may_read, plan_for, record_beacon, record_open
from models.timeutil import local_date, show, utcnow
from wxbot import services
from wxbot.db import db
from wxbot.links import LinkExpired, LinkInvalid, read_token
from wxbot.study import LINK_PURPOSE, bp, study_link

ALLOWED_TAGS = {"p", "br", "h1", "h2", "h3", "h4", "strong", "em", "blockquote", "ul", "ol", "li", "a", "img",
                "hr", "table", "thead", "tbody", "tr", "th", "td", "code", "pre"}


def render_body(text: str) -> Markup:
    """Markdown to HTML, then sanitised: organisers write Markdown, members' phones get safe HTML."""
    html = markdown.markdown(text or "", extensions=["tables", "sane_lists"])
    return Markup(nh3.clean(html, tags=ALLOWED_TAGS, attributes={"a": {"href"}, "img": {"src", "alt"}},
                            url_schemes={"http", "https"}))


def upload_dir() -> str:
    return os.path.join(current_app.instance_path, "uploads")


class ExpiredLink(HTTPException):
    code = 410


def _reader(token: str) -> tuple[Member, Material]:
    """The member and material a link was made for; an expired link is a 410, anything else not ours
    (tampered, made for another page, a material the member may not read) a 404."""
    try:
        member_id, material_id = read_token(current_app, LINK_PURPOSE, token)
    except LinkExpired:
        raise ExpiredLink() from None
    except (LinkInvalid, ValueError):
        abort(404)
    if not (isinstance(member_id, int) and isinstance(material_id, int)):
        abort(404)
    member, material = db.session.get(Member, member_id), db.session.get(Material, material_id)
    if member is None or material is None or not may_read(db.session, member, material):
        abort(404)
    return member, material


@bp.errorhandler(404)
def missing(_error):
    """Members open these links on their phones: say what to do, in their language."""
    if request.path.endswith("/beacon"):
        return jsonify({"error": "链接无效"}), 404
    return render_template("study/missing.html", expired=False), 404


@bp.errorhandler(ExpiredLink)
def expired(_error):
    if request.path.endswith("/beacon"):
        return jsonify({"error": "链接已过期"}), 410
    days = services.settings().server.link_max_age_days
    return render_template("study/missing.html", expired=True, days=days), 410


@bp.get("/s/<token>")
def read(token: str):
    member, material = _reader(token)
    now = utcnow()
    reading = record_open(db.session, member, material, now)
    db.session.commit()
    today = local_date(now)
    also_today = [(entry.material.title, study_link(current_app, member.id, entry.material_id))
                  for entry in plan_for(db.session, member, today, today) if entry.material_id != material.id]
    need = services.settings().study.read_seconds
    return render_template("study/read.html", material=material, body=render_body(material.body), token=token,
                           published=show(material.published_at, "%Y-%m-%d"), seconds=reading.seconds,
                           credited=reading.credited_at is not None, need=need, also_today=also_today)


@bp.post("/s/<token>/beacon")
def beacon(token: str):
    """The page reports the seconds it was visible since its last report (every 15 s, and on leaving)."""
    member, material = _reader(token)
    data = request.get_json(silent=True)
    seconds = data.get("seconds", 0) if isinstance(data, dict) else None
    if isinstance(seconds, float) and seconds.is_integer():
        seconds = int(seconds)
    if not isinstance(seconds, int) or isinstance(seconds, bool) or not 0 <= seconds <= 3600:
        return jsonify({"error": "需要 JSON 对象 {\"seconds\": 0 到 3600 的整数}"}), 400
    settings = services.settings()
    reading, points = record_beacon(db.session, member, material, seconds, utcnow(), settings)
    db.session.commit()
    return jsonify({"seconds": reading.seconds, "need": settings.study.read_seconds,
                    "credited": reading.credited_at is not None, "points": points})


@bp.get("/s/<token>/a/<int:attachment_id>")
def attachment(token: str, attachment_id: int):
    _member, material = _reader(token)
    item = db.session.get(Attachment, attachment_id)
    if item is None or item.material_id != material.id:
        abort(404)
    return send_from_directory(upload_dir(), item.stored_name, as_attachment=True, download_name=item.filename)
