"""Members' reading pages, the daily push, and the personal signed links that tie them together."""
from __future__ import annotations

from flask import Blueprint, Flask
from itsdangerous import URLSafeSerializer

bp = Blueprint("study", __name__, template_folder="templates")


def link_serializer(app: Flask) -> URLSafeSerializer:
    return URLSafeSerializer(app.config["SECRET_KEY"], salt="study-read")


def study_link(app: Flask, member_id: int, material_id: int) -> str:
    """A member's own link to a material: it identifies the reader, so it is signed."""
    token = link_serializer(app).dumps([member_id, material_id])
    return f"{app.config['WXBOT'].server.public_url.rstrip('/')}/s/{token}"


from wxbot.study import views  # noqa: E402,F401  (registers the routes)
