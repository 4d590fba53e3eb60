"""Our own sessions for the mini-program: an opaque token the client holds, what it stands for in
the store (only the token's hash is a key: a store dump signs nobody in), with a TTL renewed by use.

WeChat's session_key stays in the database with the user and never reaches the client. A session
names its user and the user's session epoch: unbinding or erasure raises the epoch, and every token
issued before stops working at once, whatever its TTL.
"""
from __future__ import annotations

import hashlib
import json
import secrets

from wxbot.store import Store

KEY = "mini:session:{digest}"


def _key(token: str) -> str:
    return KEY.format(digest=hashlib.sha256(token.encode()).hexdigest())


def open_session(store: Store, user_id: int, epoch: int, ttl: int) -> str:
    token = secrets.token_urlsafe(32)
    store.set(_key(token), json.dumps({"user": user_id, "epoch": epoch}), ttl)
    return token


def read_session(store: Store, token: str, ttl: int) -> dict | None:
    """What the token stands for, renewing its TTL when it is past half (an active member stays
    signed in; an idle token ends)."""
    if len(token) > 128:
        return None
    key = _key(token)
    raw = store.get(key)
    if raw is None:
        return None
    left = store.ttl(key)
    if left is not None and left < ttl / 2:
        store.set(key, raw, ttl)
    return json.loads(raw)


def close_session(store: Store, token: str) -> None:
    store.delete(_key(token))
