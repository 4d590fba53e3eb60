"""The sandbox: the offline WeChat. Registered only when no real AppSecret is configured.

Its pages and JSON views let anyone act as any WeChat user. On loopback that is the point (tests, a
demo on one's own computer); when the server can be reached from the network they need a console
sign-in. Its fake WeChat API (/sandbox/cgi-bin/) keeps WeChat's own access-token check, and the same
rule for the token itself: the public default secret is taken only where the pages need no sign-in.
"""
import hashlib
import hmac
import ipaddress

from flask import Blueprint, current_app, jsonify, redirect, request, url_for
from flask_login import current_user

bp = Blueprint("sandbox", __name__, url_prefix="/sandbox", template_folder="templates", static_folder="static")
OPEN_ENDPOINTS = ("sandbox.showqrcode", "sandbox.static")


def is_loopback(address: str | None) -> bool:
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False


PUBLIC_SECRET = "sandbox-secret"  # config.yaml's default: everyone who read it knows it


def private_secret(settings, secret_key: str) -> str:
    """The secret the project presents to its sandbox: the configured one if it was changed, else one
    derived from secret_key (every process of a deployment shares it; nobody outside has it)."""
    if settings.sandbox.secret != PUBLIC_SECRET:
        return settings.sandbox.secret
    return hmac.new(secret_key.encode(), b"wxbot sandbox api", hashlib.sha256).hexdigest()[:32]


def exposed() -> bool:
    """The server can be reached from the network, or this request came from it."""
    return bool(current_app.config.get("WXBOT_LISTENS_BEYOND_LOOPBACK")) or not is_loopback(request.remote_addr)


def accepts_secret(settings, secret: str) -> bool:
    """The project's own secret always; the public default only where the pages need no sign-in."""
    own = private_secret(settings, current_app.config["SECRET_KEY"])
    if hmac.compare_digest(secret.encode(), own.encode()):
        return True
    return secret == settings.sandbox.secret and not exposed()


@bp.before_request
def require_sign_in_off_loopback():
    """A console sign-in, unless both the server and this visitor are on this computer only."""
    if request.endpoint in OPEN_ENDPOINTS or (request.endpoint or "").startswith("sandbox.api_"):
        return None
    if not exposed() or current_user.is_authenticated:
        return None
    if request.method == "GET" and request.endpoint == "sandbox.simulator":
        return redirect(url_for("console.login", next=request.path))
    return jsonify({"error": "沙盒可从网络访问时需要先登录管理后台"}), 401


from wxbot.sandbox import api, views  # noqa: E402,F401  (they register their routes on bp)
