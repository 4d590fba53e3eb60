"""The mini-program's JSON API under /api/v1: the chat's features over the same domain functions.

Requests and responses are pydantic models (wxbot/api/schemas.py); spectree validates requests with
them and makes the OpenAPI document from them, served at /api/v1/openapi.json. spectree was chosen
over flask-openapi3 and flask-smorest because it decorates plain Flask views in a blueprint (the
app factory stays as it is) and reads pydantic models, which also serialise the answers.

Every answer that is not a success is {code, message}: a stable code for the client and a Chinese
sentence for the member. Signing in gives our own opaque token (wxbot/api/sessions.py); writes are
rate-limited per user and made once per Idempotency-Key (a double tap counts once). Not X-Request-Id:
that header is the request's trace id, which nginx sets anew for every request (docs/部署.md).
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
import time
from collections.abc import Callable
from functools import wraps

from flask import Blueprint, Flask, g, jsonify, request
from spectree import Response, SecurityScheme, SpecTree
from spectree.models import SecureType, SecuritySchemeData
from sqlalchemy.orm import joinedload

from wxbot import services
from wxbot.api.schemas import Problem
from wxbot.db import db

bp = Blueprint("api", __name__, url_prefix="/api/v1")
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{8,64}")


class ApiProblem(Exception):
    """An answer other than success: HTTP status, stable code, the member's sentence."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _refuse_invalid(_req, _resp, error, _instance, _adapter) -> None:
    """spectree's hook after validating a request: a bad body is a 400 in our own shape."""
    if error is not None:
        where = "、".join(".".join(str(p) for p in e.get("loc", ())) or "请求" for e in error.errors()[:3])
        raise ApiProblem(400, "invalid_request", f"请求的格式不对（{where}）。")


spec = SpecTree("flask", mode="strict", title="wxbot 小程序接口", version="1.0.0",
                path="openapi-unused", before=_refuse_invalid, validation_error_status=400,
                validation_error_model=Problem,  # our refusal of a bad request, as every other refusal
                security_schemes=[SecurityScheme(name="session", data=SecuritySchemeData(
                    type=SecureType.HTTP, scheme="bearer", description="POST /api/v1/login 得到的会话"))],
                annotations=False)


def answers(model, *problems: int, signed_in: bool = True) -> Response:
    """The responses of an operation: `model` on success (None: 204) and its {code, message} statuses
    (a signed-in operation's also 401 without a good session and 429 over the rate)."""
    statuses = set(problems) | ({401, 429} if signed_in else set())
    success = {"HTTP_204": None} if model is None else {"HTTP_200": model}
    return Response(**success, **{f"HTTP_{status}": Problem for status in sorted(statuses)})


def problem(status: int, code: str, message: str) -> ApiProblem:
    return ApiProblem(status, code, message)


@bp.errorhandler(ApiProblem)
def _answer_problem(exc: ApiProblem):
    db.session.rollback()
    return jsonify(code=exc.code, message=exc.message), exc.status


IDEMPOTENCY_KEY = {"name": "Idempotency-Key", "in": "header", "required": False,
                   "description": "同一次操作的重试带同一个值：只做一次，再来时答复第一次的结果",
                   "schema": {"type": "string", "pattern": REQUEST_ID.pattern}}


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3 document, made from the models the operations validate with; every signed-in
    write (a POST with a session) also takes the Idempotency-Key header."""
    document = copy.deepcopy(spec.spec)
    for item in document["paths"].values():
        operation = item.get("post")
        if operation is not None and operation.get("security"):
            operation.setdefault("parameters", []).append(IDEMPOTENCY_KEY)
    return jsonify(document)


def signed_in_user():
    """The mini-program user of the request's Bearer token (401 without a good one)."""
    from models.miniprogram import MiniUser
    from wxbot.api.sessions import read_session
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header[:7].lower() == "bearer " else ""
    if not token:
        raise problem(401, "no_session", "请先登录。")
    held = read_session(services.store(), token, services.settings().miniprogram.session_ttl)
    user = db.session.get(MiniUser, held["user"], options=[joinedload(MiniUser.member)]) if held else None
    if user is None or user.session_epoch != held["epoch"]:
        raise problem(401, "session_expired", "登录已过期，请重新进入小程序。")
    g.token = token
    return user


def member_of(user):
    """The roster member of a signed-in user (403 until bound)."""
    if user.member is None:
        raise problem(403, "not_bound", "请先绑定身份（学号和姓名）。")
    return user.member


def call(write: bool = False, member: bool = True) -> Callable:
    """An operation of a signed-in user: passes the user (and, with `member`, their member) to the
    view. A write is limited per user and minute, made once per Idempotency-Key, and committed."""
    def decorate(view):
        @wraps(view)
        def run(*args, **kwargs):
            user = signed_in_user()
            who = member_of(user) if member else None
            if not write:
                return view(user, who, *args, **kwargs) if member else view(user, *args, **kwargs)
            _limit_writes(user.id)
            replay_key = _request_key(user.id)
            if replay_key:
                first = _first_answer(replay_key)
                if first is not None:
                    return first
            try:
                result = view(user, who, *args, **kwargs) if member else view(user, *args, **kwargs)
                db.session.commit()
            except BaseException:
                if replay_key:
                    services.store().delete(replay_key)
                raise
            if replay_key:
                _remember_answer(replay_key, result)
            return result
        return run
    return decorate


def _limit_writes(user_id: int) -> None:
    cfg = services.settings().miniprogram
    minute = int(time.time() // 60)
    if services.store().incr(f"mini:writes:{user_id}:{minute}", 60) > cfg.writes_per_minute:
        raise problem(429, "too_many_requests", "操作太频繁，请稍后再试。")


def _request_key(user_id: int) -> str:
    rid = request.headers.get("Idempotency-Key", "")
    if not rid:
        return ""
    if not REQUEST_ID.fullmatch(rid):
        raise problem(400, "invalid_request", "Idempotency-Key 需要 8 到 64 个字母、数字或 ._:-")
    path = hashlib.sha256(f"{request.method} {request.path}".encode()).hexdigest()[:16]
    return f"mini:req:{user_id}:{path}:{rid}"


def _first_answer(key: str):
    """The answer to the first request with this id: the same again, or 409 while it is running."""
    store = services.store()
    ttl = services.settings().miniprogram.request_id_ttl
    if store.add(key, "running", ttl):
        return None
    held = store.get(key)
    if held is None or held == "running":
        raise problem(409, "in_progress", "上一次的操作还在处理中，请稍候。")
    saved = json.loads(held)
    return saved["body"], saved["status"]


def _remember_answer(key: str, result) -> None:
    body, status = (result if isinstance(result, tuple) else (result, 200))
    if hasattr(body, "model_dump"):
        body = body.model_dump(mode="json")
    services.store().set(key, json.dumps({"status": status, "body": body}, ensure_ascii=False),
                         services.settings().miniprogram.request_id_ttl)


def init_api(app: Flask) -> None:
    """Register the API's blueprint (its operations are in the modules imported here)."""
    from wxbot.api import account, development, events, feedback, notices, quiz, study  # noqa: F401  (routes)
    app.register_blueprint(bp)
