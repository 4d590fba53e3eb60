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


def day_article(materials: list) -> tuple[str, str]:
    """(title, description) of a day's study, the same in the push and in 学习: the first material,
    and the others named when the plan gives more than one."""
    first = materials[0]
    if len(materials) == 1:
        return f"今日学习｜{first.title}", first.summary or "点击阅读今天的学习内容"
    return (f"今日学习｜{first.title} 等 {len(materials)} 篇",
            "今天的学习：" + "；".join(f"《{m.title}》" for m in materials))


register_link_kind(STUDY_LINK, lambda app, campaign, member_id: study_link(app, member_id, int(campaign.link_ref)),
                   mass_hint="回复“学习”打开你的学习链接，阅读时长计入学习记录")


from wxbot.study import views  # noqa: E402,F401  (registers the routes)
