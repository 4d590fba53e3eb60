"""Members' reading pages, the daily push, and the personal links that tie them together."""
from flask import Blueprint, Flask

from wxbot.links import make_token, page_url

bp = Blueprint("study", __name__, template_folder="templates")
LINK_PURPOSE = "read"


def study_link(app: Flask, member_id: int, material_id: int) -> str:
    """A member's own link to a material: it identifies the reader, so it is sealed and expires."""
    return page_url(app, f"/s/{make_token(app, LINK_PURPOSE, member_id, material_id)}")


from wxbot.study import views  # noqa: E402,F401  (registers the routes)
