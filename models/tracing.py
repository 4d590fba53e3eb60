"""The request id of the work in hand: set where a message or a page request enters, read by the
log lines and stored on the campaigns that work creates, so that one id follows a message from the
webhook through its handler to the deliveries it causes. Plain Python: models stay Flask-free."""
from __future__ import annotations

import secrets
from contextvars import ContextVar

current_request_id: ContextVar[str] = ContextVar("request_id", default="")


def new_request_id() -> str:
    return secrets.token_hex(8)


MAX_LENGTH = 40  # as stored on campaigns


def request_id() -> str:
    return current_request_id.get()[:MAX_LENGTH]
