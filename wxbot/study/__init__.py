"""Members' reading pages, the daily push, and the personal links that tie them together."""
from flask import Blueprint, Flask

from wxbot.delivery.links import register_link_kind
from wxbot.links import make_token, page_url

bp = Blueprint("study", __name__, template_folder="templates")
LINK_PURPOSE = "read"
STUDY_LINK = "study"  # campaigns whose link is each member's own reading page of a material


def study_link(app: Flask, member_id: int, material_id: int) -> str:
    """A member's own link to a material: it identifies the reader, so it is sealed and expires."""
    return page_url(app, f"/s/{make_token(app, LINK_PURPOSE, member_id, material_id)}")


register_link_kind(STUDY_LINK, lambda app, campaign, member_id: study_link(app, member_id, int(campaign.link_ref)),
                   mass_hint="回复“学习”打开你的学习链接，阅读时长计入学习记录")


from wxbot.study import views  # noqa: E402,F401  (registers the routes)
