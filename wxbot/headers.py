"""Response headers that keep pages from being framed, sniffed or scripted by anyone else.

Every HTML page gets a Content-Security-Policy: scripts only from this site or inline with the
request's nonce (`{{ csp_nonce() }}` in templates), no framing by other sites, no plugins, forms
posting only here. Member pages send no Referer: a personal link must not leak to the sites a
material links to.
"""
from __future__ import annotations

import secrets

from flask import Flask, g, request

CSP = ("default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: https: http:; connect-src 'self'; form-action 'self'; base-uri 'none'; "
       "object-src 'none'; frame-ancestors 'none'")
MEMBER_PAGES = ("/s/", "/r/", "/t/")


def csp_nonce() -> str:
    """This response's script nonce (made on first use)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def init_security_headers(app: Flask) -> None:
    app.add_template_global(csp_nonce)

    @app.after_request
    def protect(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if response.mimetype == "text/html":
            response.headers.setdefault("Content-Security-Policy", CSP.format(nonce=csp_nonce()))
            private = request.path.startswith(MEMBER_PAGES)
            response.headers.setdefault("Referrer-Policy", "no-referrer" if private else "same-origin")
        return response
