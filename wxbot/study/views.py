"""/s/<token>: a member's own reading page of a material, its time beacon, and its attachments."""
from __future__ import annotations

import os

import markdown
import nh3
from flask import abort, current_app, jsonify, render_template, request, send_from_directory
from itsdangerous import BadSignature
from markupsafe import Markup

from models.members import Member
from models.study import Attachment, Material, may_read, record_beacon, record_open
from models.timeutil import show, utcnow
from wxbot.db import db
from wxbot.study import bp, link_serializer

ALLOWED_TAGS = {"p", "br", "h1", "h2", "h3", "h4", "strong", "em", "blockquote", "ul", "ol", "li", "a", "img",
                "hr", "table", "thead", "tbody", "tr", "th", "td", "code", "pre"}


def render_body(text: str) -> Markup:
    """Markdown to HTML, then sanitised: organisers write Markdown, members' phones get safe HTML."""
    html = markdown.markdown(text or "", extensions=["tables", "sane_lists"])
    return Markup(nh3.clean(html, tags=ALLOWED_TAGS, attributes={"a": {"href"}, "img": {"src", "alt"}},
                            url_schemes={"http", "https"}))


def upload_dir() -> str:
    return os.path.join(current_app.instance_path, "uploads")


def _reader(token: str) -> tuple[Member, Material]:
    """The member and material a link was signed for; tampered or unknown links are a 404."""
    try:
        member_id, material_id = link_serializer(current_app).loads(token)
    except (BadSignature, ValueError, TypeError):
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
    return render_template("study/missing.html"), 404


@bp.get("/s/<token>")
def read(token: str):
    member, material = _reader(token)
    reading = record_open(db.session, member, material, utcnow())
    db.session.commit()
    need = current_app.config["WXBOT"].study.read_seconds
    return render_template("study/read.html", material=material, body=render_body(material.body), token=token,
                           published=show(material.published_at, "%Y-%m-%d"), seconds=reading.seconds,
                           credited=reading.credited_at is not None, need=need)


@bp.post("/s/<token>/beacon")
def beacon(token: str):
    """The page reports the seconds it was visible since its last report (every 15 s, and on leaving)."""
    member, material = _reader(token)
    data = request.get_json(silent=True) or {}
    try:
        seconds = int(data.get("seconds", 0))
    except (TypeError, ValueError):
        return jsonify({"error": "seconds 需要是整数"}), 400
    settings = current_app.config["WXBOT"]
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
