"""Cover images of articles (a material, a broadcast): uploaded in the console instead of pasted as
URLs, kept under instance/covers named by their content, and served to everyone at /covers/<name>
(WeChat fetches an article's picture from there, and the reading page shows it).
"""
from __future__ import annotations

import hashlib
import os
import re

from flask import Blueprint, abort, current_app, send_from_directory

bp = Blueprint("covers", __name__)
# What a picture starts with, per kind WeChat shows in an article: JPEG, PNG, GIF.
KINDS = {b"\xff\xd8\xff": ".jpg", b"\x89PNG\r\n\x1a\n": ".png", b"GIF87a": ".gif", b"GIF89a": ".gif"}
NAME = re.compile(r"[0-9a-f]{32}\.(?:jpg|png|gif)")


class CoverRefused(ValueError):
    """Not a picture WeChat shows, or too large; the message says which."""


def cover_dir() -> str:
    return os.path.join(current_app.instance_path, "covers")


def store_cover(data: bytes, max_bytes: int) -> str:
    """Keep an uploaded picture; its file name (the same picture twice is one file)."""
    if len(data) > max_bytes:
        raise CoverRefused(f"图片超过 {max_bytes // (1024 * 1024)} MB，请压缩后再上传。")
    suffix = next((s for magic, s in KINDS.items() if data.startswith(magic)), None)
    if suffix is None:
        raise CoverRefused("封面只能是 JPG、PNG 或 GIF 图片。")
    name = hashlib.sha256(data).hexdigest()[:32] + suffix
    os.makedirs(cover_dir(), exist_ok=True)
    path = os.path.join(cover_dir(), name)
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.write(data)
    return name


@bp.get("/covers/<name>")
def cover(name: str):
    """A cover, to anyone (it is part of a published article); cached a long time (its name is its content)."""
    if not NAME.fullmatch(name):
        abort(404)
    return send_from_directory(cover_dir(), name, max_age=30 * 24 * 3600)
