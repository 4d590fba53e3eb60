"""Asking once before anything that messages people or cannot be undone.

A form posts without `confirmed`; the view answers with a page that says what will happen and to
how many, carrying the same fields back with confirmed=1; only that second post acts. It works with
no script at all, and a test client goes through it like a browser.
"""
from __future__ import annotations

from flask import render_template, request


def confirmed() -> bool:
    return request.form.get("confirmed") == "1"


def ask(title: str, message: str, button: str, back: str, count: int | None = None):
    """The confirmation page for the current form."""
    fields = [(key, value) for key in request.form if key not in ("csrf_token", "confirmed")
              for value in request.form.getlist(key)]
    return render_template("console/confirm.html", title=title, message=message, button=button, back=back,
                           count=count, fields=fields, action=request.path)
