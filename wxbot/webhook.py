"""The /wechat webhook: refuse what is forged, stale, too large or malformed; answer the rest."""
from __future__ import annotations

import logging
import time

from flask import Blueprint, Response, request

from models.tracing import current_request_id
from wxbot import protocol, services
from wxbot.bodyread import connection_socket, stop_reading
from wxbot.errors import report_failure
from wxbot.metrics import APOLOGIES, REQUEST_SECONDS, REQUESTS
from wxbot.pipeline import APOLOGY
from wxbot.protocol import Refused
from wxbot.replies import render

bp = Blueprint("webhook", __name__)
logger = logging.getLogger(__name__)


@bp.get("/wechat")
def verify_url():
    """WeChat's URL check: echo `echostr` when the signature is ours."""
    wechat = services.settings().wechat
    protocol.check_signature(wechat.token, request.args)
    protocol.check_timestamp(request.args, wechat.timestamp_window)
    return Response(request.args.get("echostr", ""), mimetype="text/plain")


@bp.post("/wechat")
def receive():
    """One message from WeChat: the signature (in the query string) is checked before the body is
    even read, and the body must arrive within server.read_timeout."""
    started = time.monotonic()
    wechat = services.settings().wechat
    protocol.check_signature(wechat.token, request.args)
    protocol.check_timestamp(request.args, wechat.timestamp_window)
    body = _read_body(wechat.max_body_bytes)
    envelope = protocol.open_envelope(body, request.args, wechat)
    message = protocol.parse(envelope.xml)
    if message.type != "event" and message.id:  # WeChat's redeliveries of a message share its id
        current_request_id.set(f"wx{message.id}"[:32])  # a 400-digit MsgId must not make a 400-character id
    try:
        reply = services.pipeline().answer(message, started)
    except Exception as exc:  # Redis or the database is down: say so rather than WeChat's error page
        report_failure("message pipeline", exc)
        APOLOGIES.inc()
        reply = render(APOLOGY, message, wechat.text_reply_max_bytes)
    sealed = protocol.seal(reply, envelope, wechat, request.args.get("nonce", ""))
    REQUESTS.labels("success" if sealed == "success" else "replied").inc()
    REQUEST_SECONDS.observe(time.monotonic() - started)
    return Response(sealed, mimetype="application/xml" if sealed != "success" else "text/plain")


def _read_body(limit: int) -> bytes:
    """The body, read within server.read_timeout (BodyDeadline); a short one is refused."""
    length = request.content_length
    if length is not None and length > limit:
        raise Refused(413, "body too large")
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        raise Refused(413, "body too large")
    if length is not None and len(body) < length:
        raise Refused(400, "body shorter than announced")
    return body


@bp.errorhandler(Refused)
def refused(exc: Refused):
    """A refusal closes the connection: an unread body must not be waited for, or read as a request."""
    logger.info("refused %s: %s", exc.status, exc.reason)
    REQUESTS.labels(f"refused_{exc.status}").inc()
    stop_reading(connection_socket(request.environ))
    return Response(exc.reason, status=exc.status, mimetype="text/plain")
