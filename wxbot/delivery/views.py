"""/r/<token>: a recipient opened a campaign's link; record the read and go on to the article."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect, render_template

from models.delivery import Campaign, Delivery
from models.timeutil import utcnow
from wxbot import services
from wxbot.db import db
from wxbot.delivery.engine import RECEIPT_PURPOSE
from wxbot.delivery.links import link_target
from wxbot.links import LinkExpired, LinkInvalid, read_token

bp = Blueprint("delivery", __name__)


@bp.get("/r/<token>")
def read(token: str):
    """Signed per recipient: a tampered or foreign token is a 404, never someone else's read."""
    try:
        (delivery_id,) = read_token(current_app, RECEIPT_PURPOSE, token)
    except LinkExpired:
        return render_template("study/missing.html", expired=True,
                               days=services.settings().server.link_max_age_days), 410
    except (LinkInvalid, ValueError):
        abort(404)
    delivery = db.session.get(Delivery, delivery_id) if isinstance(delivery_id, int) else None
    if delivery is None:
        abort(404)
    if delivery.read_at is None:
        delivery.read_at = utcnow()
        db.session.commit()
    target = link_target(current_app, db.session.get(Campaign, delivery.campaign_id), delivery.member_id)
    return redirect(target) if target else abort(404)
