"""A topic's page for members: the question and the replies that passed screening, newest first,
paged; opened by a personal link (sealed, expiring) like the reading page."""
from __future__ import annotations

from flask import Blueprint, Flask, abort, current_app, render_template, request

from models.feedback import Topic, may_join, topic_replies
from models.members import Member
from wxbot.db import db
from wxbot.links import LinkExpired, LinkInvalid, make_token, page_url, read_token

bp = Blueprint("topics", __name__, template_folder="templates")
LINK_PURPOSE = "topic"
PER_PAGE = 20


def topic_link(app: Flask, member_id: int, topic_id: int) -> str:
    return page_url(app, f"/t/{make_token(app, LINK_PURPOSE, member_id, topic_id)}")


@bp.get("/t/<token>")
def topic_page(token: str):
    try:
        member_id, topic_id = read_token(current_app, LINK_PURPOSE, token)
    except LinkExpired:
        return render_template("topics/expired.html"), 410
    except (LinkInvalid, ValueError):
        abort(404)
    member, topic = db.session.get(Member, member_id), db.session.get(Topic, topic_id)
    if member is None or topic is None or not may_join(topic, member):
        abort(404)
    page = request.args.get("page", "1")
    page = int(page) if page.isdigit() and 0 < len(page) < 6 and int(page) > 0 else 1
    rows, total = topic_replies(db.session, topic, page, PER_PAGE)
    return render_template("topics/topic.html", topic=topic, rows=rows, total=total, page=page, token=token,
                           pages=max(1, -(-total // PER_PAGE)), viewer=member.id)
