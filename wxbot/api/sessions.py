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
import time

from wxbot.store import Store

KEY = "mini:session:{digest}"


def _key(token: str) -> str:
    return KEY.format(digest=hashlib.sha256(token.encode()).hexdigest())


def open_session(store: Store, user_id: int, epoch: int, ttl: int) -> str:
    token = secrets.token_urlsafe(32)
    _keep(store, _key(token), {"user": user_id, "epoch": epoch}, ttl)
    return token


def read_session(store: Store, token: str, ttl: int) -> dict | None:
    """What the token stands for, renewing its TTL once it is past half (an active member stays
    signed in; an idle token ends). One store read: the renewal time is kept in the value."""
    if len(token) > 128:
        return None
    key = _key(token)
    raw = store.get(key)
    if raw is None:
        return None
    held = json.loads(raw)
    if time.time() >= held.get("renew_at", 0):
        _keep(store, key, held, ttl)
    return held


def _keep(store: Store, key: str, held: dict, ttl: int) -> None:
    held["renew_at"] = int(time.time() + ttl / 2)
    store.set(key, json.dumps(held), ttl)


def close_session(store: Store, token: str) -> None:
    store.delete(_key(token))
