"""The sandbox: the offline WeChat. Registered only when no real AppSecret is configured."""
from flask import Blueprint

bp = Blueprint("sandbox", __name__, url_prefix="/sandbox", template_folder="templates", static_folder="static")

from wxbot.sandbox import api, views  # noqa: E402,F401  (they register their routes on bp)
