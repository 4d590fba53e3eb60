"""Messages the account sends on its own: for now the late reply through the customer-service API."""
from __future__ import annotations

import logging

import requests
from flask import current_app
from wechatpy.exceptions import WeChatClientException

from wxbot import services
from wxbot.client import SharedTokenClient
from wxbot.config import api_base, is_sandbox
from wxbot.router import News

logger = logging.getLogger(__name__)


def wechat_client() -> SharedTokenClient:
    """The app's client; built on first use, not at import or start-up."""
    client = current_app.extensions.get(services.CLIENT)
    if client is None:
        cfg = services.settings()
        from wxbot.sandbox import private_secret
        from wxbot.sandbox.address import sandbox_api_url
        secret = cfg.wechat.secret or private_secret(cfg, current_app.config["SECRET_KEY"])
        base = api_base(cfg, sandbox_api_url(current_app) if is_sandbox(cfg) else "")
        client = SharedTokenClient(cfg.wechat.appid, secret, base, services.store(),
                                   cfg.wechat.api_timeout, cfg.wechat.token_refresh_margin)
        current_app.extensions[services.CLIENT] = client
    return client


def send_customer_service(openid: str, reply) -> str:
    """Send a reply as a customer-service message; returns the channel, or 'failed:<code>'."""
    client = wechat_client()
    try:
        if isinstance(reply, News):
            client.message.send_articles(openid, [{"title": reply.title, "description": reply.description,
                                                   "url": reply.url, "image": reply.image}])
        else:
            client.message.send_text(openid, str(reply))
    except WeChatClientException as exc:
        logger.warning("customer-service send failed: %s", exc.errcode)
        return f"failed:{exc.errcode}"
    except requests.RequestException as exc:
        logger.warning("customer-service send failed: %s", exc.__class__.__name__)
        return "failed:network"
    return "customer_service"
