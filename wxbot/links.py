"""Personal links (a member's reading page, a recipient's read receipt, and the pages to come): what
they carry is encrypted and authenticated, so nobody can read an id out of them or change one; and
they expire after server.link_max_age_days, so a link forwarded long ago stops working.

A token is Fernet (AES-CBC + HMAC, from `cryptography`) over a small JSON list, with a key derived
from the app's secret key and the link's purpose: a token made for one kind of page opens no other.
"""
from __future__ import annotations

import base64
import hashlib
import json
import time

from cryptography.fernet import Fernet, InvalidToken
from flask import Flask

from wxbot import services


class LinkInvalid(Exception):
    """Not a token of ours for this purpose: tampered, truncated, or made for another page."""


class LinkExpired(LinkInvalid):
    """A genuine token, older than the configured lifetime."""


def _fernet(app: Flask, purpose: str) -> Fernet:
    cache = app.extensions.setdefault("wxbot.links", {})
    if purpose not in cache:
        digest = hashlib.sha256(f"{app.config['SECRET_KEY']}|link|{purpose}".encode()).digest()
        cache[purpose] = Fernet(base64.urlsafe_b64encode(digest))
    return cache[purpose]


def make_token(app: Flask, purpose: str, *values: int | str) -> str:
    """A token carrying `values` for pages of `purpose`."""
    payload = json.dumps(list(values), separators=(",", ":")).encode()
    return _fernet(app, purpose).encrypt(payload).decode().rstrip("=")


def read_token(app: Flask, purpose: str, token: str) -> list:
    """The values a token carries; LinkExpired past the lifetime, LinkInvalid for anything not ours."""
    fernet = _fernet(app, purpose)
    padded = (token + "=" * (-len(token) % 4)).encode()
    try:
        values = json.loads(fernet.decrypt(padded))
        made = fernet.extract_timestamp(padded)
    except (InvalidToken, ValueError, TypeError):
        raise LinkInvalid() from None
    if not isinstance(values, list):
        raise LinkInvalid()
    if time.time() - made > services.settings(app).server.link_max_age_days * 86400:
        raise LinkExpired()
    return values


def page_url(app: Flask, path: str) -> str:
    """An absolute URL of this site, as members' phones reach it."""
    return f"{app.config['WXBOT'].server.public_url.rstrip('/')}{path}"
