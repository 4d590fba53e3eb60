"""Routers and the dispatcher: decorated plain-function handlers, first match wins.

Dispatch order, written down once:
  1. "退出" ends any conversation flow (through the flow's own leave handler when it has one).
  2. While the user is in a conversation state and types what the state takes as an answer, that
     state's handlers, in the routers' order.
  3. While in a state, for anything else: a command of another feature (any handler but the
     fallback) runs as usual and the flow keeps its place, its reply ending with where the flow
     stands; what no feature recognises goes to the state's handlers (which say what they expected).
  4. Every other handler, in the routers' order (handlers/__init__.py); the help fallback is last.
A handler receives the Context and its match results (regex groups, a QR scene) as arguments, and
returns a reply (str or News) or None.
"""
from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from wechatpy.messages import BaseMessage

from wxbot.conversation import Conversation, State

if TYPE_CHECKING:  # for the types only: these import the router's users
    from sqlalchemy.orm import Session

    from models.followers import Follower, Profile
    from models.members import Member
    from wxbot.config import Settings
    from wxbot.store import Store

CANCEL_WORD = "退出"
# Who a command is for: used for the help listing, and enforced for member and organiser.
AUDIENCES = ("all", "unbound", "member", "organiser")
ORGANISER_ROLES = ("organiser", "admin")
# Events WeChat sends about jobs, not on behalf of a user: no follower bookkeeping, answered at once.
CALLBACK_EVENTS = ("masssendjobfinish", "templatesendjobfinish")


def normalise(text: str) -> str:
    """Full-width to half-width, case folded, spaces collapsed: how keywords are compared."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


@dataclass(frozen=True)
class News:
    """A one-article news reply."""

    title: str
    description: str
    url: str
    image: str = ""


@dataclass
class Inbound:
    """What a WeChat message means to the router, whatever its XML shape."""

    message: BaseMessage
    openid: str
    msgtype: str
    event: str = ""  # lower case: subscribe, unsubscribe, scan, click, location ...
    text: str | None = None  # normalised text: typed, recognised from voice, or a CLICK key
    raw_text: str = ""  # as the user wrote it (trimmed), for content such as 留言
    click_key: str = ""
    scene: str | None = None  # QR scene of SCAN or of a subscribe by QR ("qrscene_" removed)
    # When it reached us (wall clock): a message that came before the reply to the previous one
    # went out was sent without seeing that reply (a double tap).
    received_at: float = field(default_factory=time.time)

    @property
    def is_callback(self) -> bool:
        return self.event in CALLBACK_EVENTS

    @property
    def interaction(self) -> str | None:
        """The kind of customer-service window this opens: message, event, or None."""
        if self.msgtype != "event":
            return "message"
        if self.event in ("subscribe", "scan", "click", "subscribe_scan"):
            return "event"
        return None


def read_inbound(message: BaseMessage) -> Inbound:
    """Classify a parsed wechatpy message."""
    inbound = Inbound(message=message, openid=message.source, msgtype=message.type)
    if message.type == "text":
        inbound.raw_text = (message.content or "").strip()
    elif message.type == "voice":
        inbound.raw_text = (getattr(message, "recognition", None) or "").strip()
    elif message.type == "event":
        _read_event(inbound, message)
    elif message.type == "unknown":
        inbound.msgtype = str(message._data.get("MsgType", "unknown")).lower()
        inbound.event = str(message._data.get("Event", "")).lower()
    if inbound.raw_text:
        inbound.text = normalise(inbound.raw_text)
    return inbound


def _read_event(inbound: Inbound, message: BaseMessage) -> None:
    inbound.event = message.event
    if message.event == "click":
        inbound.click_key = message.key or ""
        inbound.raw_text = inbound.click_key
    elif message.event in ("scan", "subscribe_scan"):
        inbound.scene = str(message.scene_id or "")


class Context:
    """Everything a handler may use for one message. `profile` says who sent it (follower, member,
    branch) without asking the database; `follower` and `member` are the database rows, read the
    first time a handler asks for them (a handler that only answers from the profile needs none)."""

    def __init__(self, inbound: Inbound, profile: Profile | None, store: Store, conversation: Conversation,
                 settings: Settings, now: datetime, dispatcher: Dispatcher, follower: Follower | None = None,
                 quick: bool = False):
        self.inbound, self.profile, self.store = inbound, profile, store
        self.conversation, self.settings, self.now, self.dispatcher = conversation, settings, now, dispatcher
        self._follower, self.quick = follower, quick

    @property
    def session(self) -> Session:
        """The app context's database session (begun on first use)."""
        if self.quick:  # a quick handler runs in the request thread, outside the reply budget's guard
            raise RuntimeError("a quick handler may not use the database")
        from wxbot.db import db
        return db.session

    @property
    def openid(self) -> str:
        return self.inbound.openid

    @property
    def follower(self) -> Follower | None:
        """The follower row (None for job callbacks, and for someone who unfollowed meanwhile)."""
        if self._follower is None and self.profile is not None:
            from models.followers import find_follower
            self._follower = find_follower(self.session, self.openid)
        return self._follower

    @property
    def member(self) -> Member | None:
        follower = self.follower
        return follower.member if follower is not None else None

    @property
    def bound(self) -> bool:
        return self.profile is not None and self.profile.bound

    @property
    def text(self) -> str:
        return self.inbound.text or ""

    @property
    def audiences(self) -> set[str]:
        """The audiences this user belongs to now."""
        if not self.bound:
            return {"all", "unbound"}
        return {"all", "member"} | ({"organiser"} if self.profile.role in ORGANISER_ROLES else set())


@dataclass
class Handler:
    func: Callable[..., Any]
    match: Callable[[Inbound], tuple | None]
    state: str | None = None
    who: str = "all"
    usage: str = ""
    summary: str = ""
    # Answers from the sender's profile, the conversation and the settings alone (no database, no
    # network): runs in the request thread, with no handoff to the handler pool.
    quick: bool = False
    router: str = ""
    flow: State | None = None  # the state this handler answers in (state and leave handlers)
    leaves: bool = False  # the state's handler for 退出
    fallback: bool = False


@dataclass(frozen=True)
class Route:
    """What the dispatcher will run for a message: a handler and its match results; `keeps` the
    flow a command interrupted, whose place is told after the command's reply."""

    func: Callable[..., Any]
    args: tuple = ()
    quick: bool = False
    keeps: State | None = None

    def run(self, ctx: Context):
        reply = self.func(ctx, *self.args)
        if self.keeps is None or ctx.conversation.state != self.keeps.name or not isinstance(reply, str):
            return reply
        where = self.keeps.where_we_are(ctx.conversation.data)
        return f"{reply}\n\n{where}" if where else reply


@dataclass
class Router:
    """The handlers of one feature module, in the order they are written. `topic`: the section of
    帮助 its commands appear in; `display`: their order there (routing order is for matching: 取消报名
    must be tried before 报名, but a member reads 报名 first)."""

    name: str
    topic: str = ""
    display: tuple[str, ...] = ()
    handlers: list[Handler] = field(default_factory=list)

    def _add(self, match, state=None, who="all", help=None, quick=False, leaves=False, fallback=False):
        if who not in AUDIENCES:
            raise ValueError(f"unknown audience {who!r}")
        usage, summary = help or ("", "")

        def decorate(func):
            self.handlers.append(Handler(func, match, state and state.name, who, usage, summary, quick, self.name,
                                         state, leaves, fallback))
            return func
        return decorate

    def text(self, *words: str, who="all", help=None, quick=False):
        """Match a keyword (or a CLICK whose key is that keyword), after normalising."""
        wanted = {normalise(w) for w in words}
        return self._add(lambda i: () if i.text in wanted else None, who=who, help=help, quick=quick)

    def regex(self, pattern: str, who="all", help=None, quick=False):
        """Match the normalised text against `pattern`; its groups become arguments."""
        compiled = re.compile(pattern)

        def match(inbound):
            found = compiled.fullmatch(inbound.text) if inbound.text is not None else None
            return found.groups() if found else None
        return self._add(match, who=who, help=help, quick=quick)

    def click(self, key: str, who="all"):
        """Match a menu CLICK with this exact key."""
        return self._add(lambda i: () if i.event == "click" and i.click_key == key else None, who=who)

    def event(self, name: str):
        """Match an event by its lower-case name (subscribe, unsubscribe, location, view ...)."""
        def match(inbound):
            return () if inbound.event == name or (name == "subscribe" and inbound.event == "subscribe_scan") else None
        return self._add(match)

    def scan(self, prefix: str, who="all"):
        """Match a QR scan (SCAN, or a follow by QR) whose scene starts with `prefix`."""
        def match(inbound):
            scene = inbound.scene
            return (scene[len(prefix):],) if scene is not None and scene.startswith(prefix) else None
        return self._add(match, who=who)

    def state(self, state: State, who="all"):
        """Match anything typed (not a menu click) while the user is in `state`."""
        return self._add(lambda i: () if i.text is not None and i.event != "click" else None, state=state, who=who)

    def leave(self, state: State, who="all"):
        """Handle 退出 in `state` (the flow closes what it holds and says so); without one, 退出
        simply ends the flow."""
        return self._add(lambda i: (), state=state, who=who, leaves=True)

    def fallback(self, quick=False):
        """Match anything a user typed or clicked, or sent as a message; for the last router."""
        return self._add(lambda i: () if i.text is not None or i.msgtype != "event" else None, quick=quick,
                         fallback=True)


def _say(_ctx: Context, text: str) -> str:
    return text


class Dispatcher:
    """Routers joined in a written order."""

    def __init__(self, routers: Iterable[Router], unbound: Callable[[Context], str] | None = None,
                 topics: tuple[str, ...] = ()):
        """`unbound`: what a member-only command says to someone not bound yet (the members feature
        knows how binding works; the core does not). `topics`: the order of 帮助's sections."""
        self.routers = list(routers)
        self.topics = topics
        self.unbound = unbound or (lambda _ctx: "该功能需要先绑定身份。")
        handlers = [h for r in self.routers for h in r.handlers]
        self.handlers = [h for h in handlers if not h.state]
        self.commands = [h for h in self.handlers if not h.fallback]
        self.fallbacks = [h for h in self.handlers if h.fallback]
        self.flows = {h.state: h.flow for h in handlers if h.state}
        self.answers = {name: [h for h in handlers if h.state == name and not h.leaves] for name in self.flows}
        self.leaving = {h.state: h for h in reversed(handlers) if h.leaves}
        # The routers that run a flow: their commands are part of it (答题 resumes the quiz) and
        # get no "where the flow stands" line.
        self.owners = {name: {h.router for h in handlers if h.state == name} for name in self.flows}

    def dispatch(self, ctx: Context):
        """Run the first matching handler and return its reply."""
        route = self.route(ctx)
        return route.run(ctx) if route is not None else None

    def route(self, ctx: Context) -> Route | None:
        """The first matching handler (or its refusal), without running it."""
        state = ctx.conversation.state
        flow = self.flows.get(state) if state else None
        if ctx.inbound.text == CANCEL_WORD:
            leave = self.leaving.get(state) if flow is not None else None
            return self._first([leave], ctx) if leave is not None else Route(self._cancel, quick=True)
        if flow is None:
            return self._first(self.handlers, ctx)
        typed = ctx.inbound.text if ctx.inbound.event != "click" else None
        if flow.is_answer(typed, ctx.conversation.data):
            return self._first(self.answers[state] + self.handlers, ctx)
        return self._first(self.commands, ctx, keeps=flow) or self._first(self.answers[state] + self.fallbacks, ctx)

    def _first(self, handlers: list[Handler], ctx: Context, keeps: State | None = None) -> Route | None:
        for handler in handlers:
            args = handler.match(ctx.inbound)
            if args is None:
                continue
            kept = keeps if keeps is not None and handler.router not in self.owners[keeps.name] else None
            refusal = self._refusal(handler, ctx)
            if refusal:
                return Route(_say, (refusal,), quick=True, keeps=kept)
            return Route(handler.func, args, handler.quick, kept)
        return None

    def help_topics(self, audiences: set[str]) -> dict[str, list[tuple[str, str]]]:
        """帮助's sections: topic -> (usage, summary) of the commands this user can use now, the topics in
        their order (then any other in routing order), each command in its router's display order."""
        topics: dict[str, list[tuple[str, str]]] = {topic: [] for topic in self.topics}
        for router in self.routers:
            mine = [h for h in router.handlers if h.usage and not h.state and h.who in audiences]
            order = {usage: n for n, usage in enumerate(router.display)}
            mine.sort(key=lambda h: order.get(h.usage, len(order)))
            if mine:
                topics.setdefault(router.topic or "其他", []).extend((h.usage, h.summary) for h in mine)
        return {topic: commands for topic, commands in topics.items() if commands}

    @staticmethod
    def _cancel(ctx: Context) -> str:
        if ctx.conversation.state is None:
            return "当前没有进行中的操作。发送“帮助”查看可用功能。"
        ctx.conversation.finish()
        return "已退出当前操作。"

    def _refusal(self, handler: Handler, ctx: Context) -> str | None:
        if handler.who == "member" and not ctx.bound:
            return self.unbound(ctx)
        if handler.who == "organiser" and "organiser" not in ctx.audiences:
            return "该功能仅限组织员和管理员使用。"
        return None
