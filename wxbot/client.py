"""The outbound WeChat client: wechatpy's WeChatClient with one access token for every process.

The token lives in the shared store (Redis in production) and is renewed under a lock, re-checked
inside the lock so that only one process fetches (the fetch quota is 2,000 a day and a new token
invalidates the old one). A call answered 40001/40014/42001 renews once and is retried once; any
other error code is raised to the caller as wechatpy's WeChatClientException.
"""
from __future__ import annotations

import json
import logging
import time

import requests
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.session import SessionStorage

from wxbot.store import Store

logger = logging.getLogger(__name__)

TOKEN_ERRORS = (40001, 40014, 42001)
TOKEN_CACHE_SECONDS = 60


class TokenUnavailable(requests.ConnectionError):
    """The access token could not be fetched: the call that needed it was never made."""


class StoreSession(SessionStorage):
    """wechatpy session storage on top of our Store."""

    def __init__(self, store: Store):
        self.store = store

    def get(self, key, default=None):
        raw = self.store.get(f"wechat:{key}")
        return json.loads(raw) if raw is not None else default

    def set(self, key, value, ttl=None):
        if value is not None:
            self.store.set(f"wechat:{key}", json.dumps(value), ttl)

    def delete(self, key):
        self.store.delete(f"wechat:{key}")


class SharedTokenClient(WeChatClient):
    def __init__(self, appid: str, secret: str, api_base: str, store: Store, timeout: float,
                 refresh_margin: int):
        super().__init__(appid, secret, session=StoreSession(store), timeout=timeout, auto_retry=False)
        # One pooled connection per sending thread (requests keeps 10 by default).
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=64)
        self._http.mount("http://", adapter)
        self._http.mount("https://", adapter)
        # Proxy settings are read once from the environment, not again on every call.
        self._http.proxies = requests.utils.get_environ_proxies(api_base)
        self._http.trust_env = False
        self._cached: tuple[str, float] | None = None
        self.API_BASE_URL = api_base
        self.store = store
        self.refresh_margin = refresh_margin

    @property
    def access_token(self) -> str:
        # Kept in the process for a minute: a replaced token keeps working 5 minutes at WeChat.
        cached = self._cached
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        token = self.session.get(self.access_token_key) or self.renew_token(stale=None)
        self._cached = (token, time.monotonic() + TOKEN_CACHE_SECONDS)
        return token

    def renew_token(self, stale: str | None) -> str:
        """Fetch a new token unless another process already replaced `stale` (checked in the lock)."""
        with self.store.lock("access_token", timeout=30, wait=15):
            current = self.session.get(self.access_token_key)
            if current and current != stale:
                return current
            try:
                result = self._fetch_access_token(self.API_BASE_URL + "token", {
                    "grant_type": "client_credential", "appid": self.appid, "secret": self.secret})
            except requests.RequestException as exc:
                # The cause as it was (wxbot.delivery.send logs it, without the URL's secret)
                raise TokenUnavailable(*exc.args, request=exc.request) from exc
            lifetime = int(result.get("expires_in", 7200))
            token = result["access_token"]
            # Renew ahead of expiry: both tokens work for about 5 minutes after a fetch.
            self.session.set(self.access_token_key, token, max(60, lifetime - self.refresh_margin))
            logger.info("access token renewed")
            return token

    def fetch_access_token(self):
        return {"access_token": self.renew_token(stale=self.session.get(self.access_token_key))}

    def _request(self, method, url_or_endpoint, **kwargs):
        params = dict(kwargs.pop("params", None) or {})
        token = params.get("access_token") or self.access_token
        try:
            return super()._request(method, url_or_endpoint, params=dict(params, access_token=token), **dict(kwargs))
        except WeChatClientException as exc:
            if exc.errcode not in TOKEN_ERRORS:
                raise
            logger.info("token refused (%s), renewing once", exc.errcode)
            self._cached = None
            fresh = self.renew_token(stale=token)
            return super()._request(method, url_or_endpoint, params=dict(params, access_token=fresh), **kwargs)

    def qrcode_image_url(self, ticket: str) -> str:
        """Where the image of a QR ticket is shown (the sandbox serves its own)."""
        if "api.weixin.qq.com" in self.API_BASE_URL:
            return self.qrcode.get_url(ticket)
        from urllib.parse import quote
        return f"{self.API_BASE_URL}showqrcode?ticket={quote(ticket)}"
