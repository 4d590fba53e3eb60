"""Conversation state for multi-step chats: a named state and its data per user, with a TTL.

A flow declares its states as a table:

    class QuizState(States):
        answering = State("waits for the answer", takes=looks_like_answer, resume=where_we_are)

and handlers match them with `@router.state(QuizState.answering)`. A state says which messages are
its answers (`takes`); anything else another feature recognises as a command runs as usual, and
the flow keeps its place and says how to go on (`resume`). A state without `takes` reads any text
as its answer (free text, like a broadcast's content) and its prompt says so. The per-user lock is
taken by the dispatcher around every message, so one user's messages never race each other.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from wxbot.store import Store


class State:
    """One named step; its name is 'Group:attribute', set when the group class is built.

    `takes(text, data)`: whether a typed text (normalised) is an answer of this step; None: any text
    is. `resume(data)`: one line saying where the flow stands and how to go on, shown after another
    feature's command ran in the middle of it. Both read only the conversation's data (no database:
    they run on the quick path too)."""

    def __init__(self, description: str = "", takes: Callable[[str, dict], bool] | None = None,
                 resume: Callable[[dict], str] | None = None):
        self.description = description
        self.takes, self.resume = takes, resume
        self.name = ""

    def is_answer(self, text: str | None, data: dict) -> bool:
        return text is not None and (self.takes is None or self.takes(text, data))

    def where_we_are(self, data: dict) -> str:
        return self.resume(data) if self.resume is not None else ""

    def __set_name__(self, owner, attr: str) -> None:
        self.name = f"{owner.__name__}:{attr}"

    def __repr__(self) -> str:
        return f"<State {self.name}>"


class States:
    """Base of a flow's state table."""


class Conversation:
    """One user's conversation: `state` (a State name or None) and `data`. A flow may give its state a
    TTL of its own (the quiz's); it is kept with the state.

    The pipeline reads the saved conversation with the message's first round trip (`saved`) and
    writes a change with its last (`deferred`, then `pending`); used on its own, a conversation reads
    and writes the store at once."""

    def __init__(self, store: Store, openid: str, ttl: float, saved: str | None = None, deferred: bool = False):
        self._store, self._key, self._ttl, self._deferred = store, conversation_key(openid), ttl, deferred
        raw = saved if deferred else store.get(self._key)
        loaded = json.loads(raw) if raw else {}
        self.state: str | None = loaded.get("state")
        self.data: dict[str, Any] = loaded.get("data", {})
        self._ttl = loaded.get("ttl", ttl)
        self.pending: tuple[str, str | None, float] | None = None  # (key, value or None to delete, ttl)
        self.notes: list[tuple[str, str, float]] = []  # deferred: other values of the user, written with it

    def enter(self, state: State, ttl: float | None = None, **data: Any) -> None:
        """Move to `state`, replacing the data with `data`; `ttl` seconds (default: conversation.state_ttl)."""
        self.state, self.data = state.name, dict(data)
        if ttl:
            self._ttl = ttl
        self._save()

    def update(self, **data: Any) -> None:
        """Keep the state, add or change data; the TTL starts again."""
        self.data.update(data)
        self._save()

    def finish(self) -> None:
        """Leave any flow."""
        self.state, self.data = None, {}
        self._write(None)

    def note(self, key: str, value: str, ttl: float) -> None:
        """Keep a value of this user's beside the conversation, outliving the flow (the question a
        纠错 is about): written with the conversation, in the message's last round trip."""
        if self._deferred:
            self.notes.append((key, value, ttl))
        else:
            self._store.set(key, value, ttl)

    def _save(self) -> None:
        self._write(json.dumps({"state": self.state, "data": self.data, "ttl": self._ttl}, ensure_ascii=False))

    def _write(self, payload: str | None) -> None:
        if self._deferred:
            self.pending = (self._key, payload, self._ttl)
        elif payload is None:
            self._store.delete(self._key)
        else:
            self._store.set(self._key, payload, self._ttl)


def conversation_key(openid: str) -> str:
    return f"conv:{openid}"


def forget_conversation(store: Store, openid: str) -> None:
    """Erase a user's conversation state (on unfollow)."""
    store.delete(conversation_key(openid))
