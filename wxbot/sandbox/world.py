"""What WeChat knows and enforces, played by the sandbox: followers, windows, tokens, quotas.

Plain functions of a session and values; the API views and the phone call them.
"""
from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.sandbox import SandboxMessage, SandboxQRCode, SandboxToken, SandboxUser, SandboxValue, get_value, put_value
from wxbot.store import Store

# WeChat's clock: its days and months turn at Beijing midnight.
BEIJING = ZoneInfo("Asia/Shanghai")
TOKEN_OVERLAP = timedelta(seconds=300)  # the old token keeps working this long after a new fetch
# Run-time settings and counters live in the shared store, not the database: every fake API call
# reads the faults and counts a quota, and a store round trip is a fraction of a transaction's.
FAULTS_KEY = "sandbox:faults"
QUOTA_KEY = "sandbox:quota:{name}:{day}"
QUOTA_NAMES = ("token", "minitoken", "custom", "template", "mass_calls", "mass_subscription", "qrcode")
QUOTA_TTL = 2 * 86400


class ApiError(Exception):
    """A WeChat error code, answered as {"errcode": code, "errmsg": message}."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def find_user(session: Session, openid: str) -> SandboxUser:
    """A known user, or 40003 as WeChat answers for an openid it does not know."""
    user = session.get(SandboxUser, openid)
    if user is None:
        raise ApiError(40003, "invalid openid")
    return user


def following_user(session: Session, openid: str) -> SandboxUser:
    user = find_user(session, openid)
    if not user.subscribed:
        raise ApiError(43004, "require subscribe")
    return user


def ensure_user(session: Session, openid: str, nickname: str = "") -> SandboxUser:
    """The user row, created on first sight (safe against a concurrent first message)."""
    user = session.get(SandboxUser, openid)
    if user is not None:
        return user
    try:
        with session.begin_nested():
            user = SandboxUser(openid=openid, nickname=nickname or openid[-6:])
            session.add(user)
    except IntegrityError:
        user = session.get(SandboxUser, openid)
    return user


def is_following(session: Session, openid: str) -> bool:
    user = session.get(SandboxUser, openid)
    return user is not None and user.subscribed


def follow(session: Session, openid: str, at: datetime, nickname: str = "") -> SandboxUser:
    user = ensure_user(session, openid, nickname)
    user.subscribed, user.subscribed_at = True, at
    return user


def unfollow(session: Session, openid: str) -> None:
    user = session.get(SandboxUser, openid)
    if user is not None:
        user.subscribed = False
        user.cs_window_until, user.cs_window_left, user.cs_event_until, user.cs_event_left = None, 0, None, 0


def open_window(user: SandboxUser, kind: str, at: datetime, wechat) -> None:
    """WeChat's rule, played here on its own (not with the product's tracking, whose mistakes it must
    catch): a message grants cs_window_message_count messages for cs_window_message_seconds, a click,
    follow or scan cs_window_event_count for cs_window_event_seconds; a new interaction renews the
    grant of its kind, and the other grant keeps what it had."""
    if kind == "message":
        user.cs_window_until = at + timedelta(seconds=wechat.cs_window_message_seconds)
        user.cs_window_left = wechat.cs_window_message_count
    else:
        user.cs_event_until = at + timedelta(seconds=wechat.cs_window_event_seconds)
        user.cs_event_left = wechat.cs_window_event_count


# The hot path of every single-recipient send: Core statements built once, run on the session's
# connection, so that a call skips both statement building and the ORM's bookkeeping. The event grant
# (the shorter one) is used first.
_users, _messages = SandboxUser.__table__, SandboxMessage.__table__
_following = (_users.c.openid == bindparam("to_openid"), _users.c.subscribed.is_(True))
SPEND_EVENT_GRANT = (update(_users).where(*_following, _users.c.cs_event_until >= bindparam("now"),
                                          _users.c.cs_event_left > 0)
                     .values(cs_event_left=_users.c.cs_event_left - 1))
SPEND_MESSAGE_GRANT = (update(_users).where(*_following, _users.c.cs_window_until >= bindparam("now"),
                                            _users.c.cs_window_left > 0)
                       .values(cs_window_left=_users.c.cs_window_left - 1))
DELIVER = insert(_messages)


def use_window(session: Session, openid: str, at: datetime) -> None:
    """Spend one customer-service message of an open grant, or raise 40003 / 43004 / 45015 / 45047."""
    params = {"to_openid": openid, "now": at}
    for statement in (SPEND_EVENT_GRANT, SPEND_MESSAGE_GRANT):
        if session.connection().execute(statement, params).rowcount:
            return
    user = following_user(session, openid)
    grants_open = [until for until in (user.cs_window_until, user.cs_event_until) if until is not None and until >= at]
    if not grants_open:
        raise ApiError(45015, "response out of time limit or subscription is canceled")
    raise ApiError(45047, "out of response count limit")


def deliver(session: Session, touser: str, channel: str, msgtype: str, content: dict, at: datetime) -> None:
    """Record a message as arrived on the user's phone."""
    session.connection().execute(DELIVER, {"touser": touser, "channel": channel, "msgtype": msgtype,
                                           "content": json.dumps(content, ensure_ascii=False), "created_at": at})


def daily_quota(store: Store, name: str, limit: int, at: datetime, code: int = 45009) -> None:
    """Count one use of a daily quota (days in Beijing time, as WeChat resets them), or raise `code`.

    Called after the call's own checks passed, so that a refused call does not use the quota."""
    if store.incr(QUOTA_KEY.format(name=name, day=at.astimezone(BEIJING).date().isoformat()), QUOTA_TTL) > limit:
        raise ApiError(code, "reach max api daily quota limit" if code == 45009 else "has no masssend quota")


def issue_token(session: Session, store: Store, at: datetime, ttl: int) -> str:
    """A new access token; the previous ones keep working for 5 minutes."""
    session.execute(update(SandboxToken).where(SandboxToken.expires_at > at + TOKEN_OVERLAP)
                    .values(expires_at=at + TOKEN_OVERLAP))
    token = secrets.token_urlsafe(48)
    session.add(SandboxToken(token=token, expires_at=at + timedelta(seconds=ttl), created_at=at))
    _bump_token_epoch(store)
    return token


# Token rows checked once are remembered per token epoch: issuing or expiring tokens starts a new
# epoch (kept in the faults value every call reads anyway), so a changed expiry is never missed.
_known_tokens: dict[tuple[str, int], datetime] = {}


def check_token(session: Session, token: str, at: datetime, epoch: int) -> None:
    """40001 for a token WeChat never issued, 42001 for an expired one."""
    expires_at = _known_tokens.get((token, epoch))
    if expires_at is None:
        row = session.get(SandboxToken, token) if token else None
        if row is None:
            raise ApiError(40001, "invalid credential, access_token is invalid or not latest")
        expires_at = row.expires_at
        if len(_known_tokens) > 1000:
            _known_tokens.clear()
        _known_tokens[(token, epoch)] = expires_at
    if expires_at <= at:
        raise ApiError(42001, "access_token expired")


def expire_tokens(session: Session, store: Store, at: datetime) -> None:
    """Fault injection: every token expires now."""
    session.execute(update(SandboxToken).values(expires_at=at))
    _bump_token_epoch(store)


def _bump_token_epoch(store: Store) -> None:
    with _faults_lock(store):
        saved = saved_faults(store)
        saved["token_epoch"] = int(saved.get("token_epoch", 0)) + 1
        store.set(FAULTS_KEY, json.dumps(saved))


def _faults_lock(store: Store):
    return store.lock(FAULTS_KEY + ":lock", timeout=5, wait=5)


def saved_faults(store: Store) -> dict:
    raw = store.get(FAULTS_KEY)
    return json.loads(raw) if raw else {}


def faults(store: Store, cfg, saved: dict | None = None) -> dict:
    """Latency, error rate and queued errors: config defaults, overridden at run time."""
    current = {"latency_ms": cfg.latency_ms, "fault_rate": cfg.fault_rate, "inject": {}}
    current.update(saved if saved is not None else saved_faults(store))
    current.pop("token_epoch", None)
    return current


def set_faults(store: Store, changes: dict) -> dict:
    with _faults_lock(store):
        saved = saved_faults(store)
        saved.update({k: v for k, v in changes.items() if k in ("latency_ms", "fault_rate", "inject")})
        store.set(FAULTS_KEY, json.dumps(saved))
    return saved


def injected_error(store: Store, endpoint: str, saved: dict) -> int | None:
    """Pop the next queued error code for `endpoint` (or "*"), if any; two calls never pop the same."""
    if not any(saved.get("inject", {}).get(name) for name in (endpoint, "*")):
        return None
    with _faults_lock(store):
        saved = saved_faults(store)
        queue = saved.get("inject", {})
        for name in (endpoint, "*"):
            if queue.get(name):
                code = queue[name].pop(0)
                store.set(FAULTS_KEY, json.dumps(saved))
                return int(code)
    return None


def create_qrcode(session: Session, scene: str, permanent: bool, expire_seconds: int, at: datetime) -> SandboxQRCode:
    qr = SandboxQRCode(ticket=secrets.token_urlsafe(24), scene=scene, permanent=permanent, created_at=at,
                       expire_at=None if permanent else at + timedelta(seconds=expire_seconds))
    session.add(qr)
    return qr


def live_qrcodes(session: Session, at: datetime) -> list[SandboxQRCode]:
    query = select(SandboxQRCode).where((SandboxQRCode.expire_at.is_(None)) | (SandboxQRCode.expire_at > at))
    return list(session.scalars(query.order_by(SandboxQRCode.created_at.desc())))


def mass_allowance(user: SandboxUser, at: datetime, per_month: int) -> bool:
    """Count one mass message for a follower this month; False when they had `per_month` already."""
    month = at.astimezone(BEIJING).strftime("%Y-%m")
    counts = user.json_field("mass_received") or {}
    if counts.get(month, 0) >= per_month:
        return False
    counts[month] = counts.get(month, 0) + 1
    user.set_json("mass_received", counts)
    return True


def reset(session: Session, store: Store, at: datetime) -> None:
    """Forget everything the sandbox knows (POST /sandbox/reset)."""
    for model in (SandboxMessage, SandboxQRCode, SandboxToken, SandboxUser, SandboxValue):
        session.execute(delete(model))
    day = at.astimezone(BEIJING).date().isoformat()
    store.delete(FAULTS_KEY, MINI_TOKEN_CURRENT, *(QUOTA_KEY.format(name=name, day=day) for name in QUOTA_NAMES))


# --- the mini-program's side ----------------------------------------------------------------------
# Kept in the shared store (Redis in production): every web worker sees the same codes and tokens.
MINI_TOKEN = "sandbox:minitoken:{token}"
MINI_TOKEN_CURRENT = "sandbox:minitoken:current"
LOGIN_CODE = "sandbox:jscode:{code}"
LOGIN_CODE_TTL = 300  # wx.login's code lives about 5 minutes
LOGIN_RATE = "sandbox:jscode:rate:{openid}:{minute}"
LOGIN_RATE_LIMIT = 100  # jscode2session per user and minute (45011 beyond)
MSGSEC_KEY = "msgsec"  # SandboxValue: {"risky": [words], "review": [words]} the tests set
USED = "used"


def issue_mini_token(store: Store, ttl: int) -> str:
    """The mini-program's access token; the previous one keeps working for 5 minutes, as WeChat's."""
    token = secrets.token_urlsafe(48)
    previous = store.get(MINI_TOKEN_CURRENT)
    if previous:
        store.set(MINI_TOKEN.format(token=previous), "1", TOKEN_OVERLAP.total_seconds())
    store.set(MINI_TOKEN.format(token=token), "1", ttl)
    store.set(MINI_TOKEN_CURRENT, token, ttl)
    return token


def check_mini_token(store: Store, token: str) -> None:
    if not token or store.get(MINI_TOKEN.format(token=token)) is None:
        raise ApiError(40001, "invalid credential, access_token is invalid or not latest")


def issue_login_code(store: Store, openid: str, unionid: str = "") -> str:
    """What wx.login gives a phone: a code for this openid, good once within 5 minutes."""
    code = secrets.token_hex(16)
    store.set(LOGIN_CODE.format(code=code), json.dumps({"openid": openid, "unionid": unionid}), LOGIN_CODE_TTL)
    return code


def redeem_login_code(store: Store, code: str, at: datetime) -> dict:
    """jscode2session: the code's openid (and unionid) with a fresh session_key; 40029 for a code
    never issued or expired, 40163 for one already used (also by a concurrent call), 45011 past
    100 logins a minute for the user."""
    key = LOGIN_CODE.format(code=code)
    held = store.get(key) if code else None
    if held is None:
        raise ApiError(40029, "invalid code")
    if held == USED or not store.delete_if(key, held):
        raise ApiError(40163, "code been used")
    store.set(key, USED, LOGIN_CODE_TTL)
    found = json.loads(held)
    minute = int(at.timestamp() // 60)
    if store.incr(LOGIN_RATE.format(openid=found["openid"], minute=minute), 60) > LOGIN_RATE_LIMIT:
        raise ApiError(45011, "api minute-quota reach limit, mustslower retry next minute")
    answer = {"openid": found["openid"], "session_key": secrets.token_urlsafe(16)}
    if found.get("unionid"):
        answer["unionid"] = found["unionid"]
    return answer


MINI_CREDITS_KEY = "mini_credits"  # SandboxValue: {mini-program openid: {template id: credits}}


def grant_mini_credit(session: Session, openid: str, template_id: str) -> int:
    known = get_value(session, MINI_CREDITS_KEY) or {}
    mine = known.setdefault(openid, {})
    mine[template_id] = mine.get(template_id, 0) + 1
    put_value(session, MINI_CREDITS_KEY, known)
    return mine[template_id]


def clear_mini_credits(session: Session, openid: str, template_id: str) -> int:
    known = get_value(session, MINI_CREDITS_KEY) or {}
    known.setdefault(openid, {})[template_id] = 0
    put_value(session, MINI_CREDITS_KEY, known)
    return 0


def spend_mini_credit(session: Session, openid: str, template_id: str) -> bool:
    known = get_value(session, MINI_CREDITS_KEY) or {}
    if known.get(openid, {}).get(template_id, 0) <= 0:
        return False
    known[openid][template_id] -= 1
    put_value(session, MINI_CREDITS_KEY, known)
    return True


UNIONIDS_KEY = "unionids"  # SandboxValue: {Official Account openid: unionid} the tests set


def set_unionid(session: Session, openid: str, unionid: str) -> None:
    known = get_value(session, UNIONIDS_KEY) or {}
    known[openid] = unionid
    put_value(session, UNIONIDS_KEY, known)


def unionid_of(session: Session, openid: str) -> str:
    return (get_value(session, UNIONIDS_KEY) or {}).get(openid, "")


def content_verdict(session: Session, content: str) -> str:
    """msg_sec_check's suggestion for a text: risky or review when it holds a word the tests set."""
    words = get_value(session, MSGSEC_KEY) or {}
    for suggest in ("risky", "review"):
        if any(word and word in content for word in words.get(suggest, [])):
            return suggest
    return "pass"
