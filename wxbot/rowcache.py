"""Rows the bursts read again and again, without asking the database: the questions an attempt asks
and the event a scan checks in to, kept in each process as snapshots that are used while their
table's generation in the store is the one they were read under.

A contest's 2,000 members answering the same five questions read them once per process, not twice
per answer; a hall of 300 scanning in a minute reads its event once. Any committed change to a row
of a cached table (an edit in the console, a corrected answer key, an event cancelled or moved, an
import, a bulk statement) starts a new generation of that table right after its commit, and every
process reads its rows again on the next lookup. The generation is read before the database, once
per message (or API call): a row read while a change was being committed is kept under the
generation that change then replaces, as the profiles are (wxbot/profiles.py).
"""
from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

from flask import g, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from wxbot.store import Store

GENERATION_TTL = 30 * 24 * 3600  # renewed by every change; a lost key only starts a new generation
STALE = "wxbot.rows_stale"  # session.info: the cached tables changed in this transaction
LIMIT = 20_000  # rows kept per table and process; past it the cache starts again


def generation_key(table: str) -> str:
    return f"rows:{table}:generation"


class RowCache:
    """Snapshots of one table's rows by id; `load(session, ids)` reads the missing ones."""

    def __init__(self, store: Store, table: str, load: Callable[[Session, list[int]], dict]):
        self.store, self.table, self.load = store, table, load
        self._lock = threading.Lock()
        self._generation: str | None = None
        self._rows: dict = {}

    def get(self, session: Session, ids: list[int]) -> dict:
        generation = self._current_generation()
        with self._lock:
            if generation != self._generation or len(self._rows) > LIMIT:
                self._generation, self._rows = generation, {}
            kept = self._rows
        missing = [i for i in ids if i not in kept]
        if missing:
            kept.update(self.load(session, missing))  # kept under the generation read above
        return {i: kept[i] for i in ids if i in kept}

    def _current_generation(self) -> str:
        """The table's generation, read once per message (the app context) and before the database."""
        seen = g.setdefault("row_generations", {}) if has_app_context() else {}
        if self.table in seen:
            return seen[self.table]
        key = generation_key(self.table)
        generation = self.store.get(key)
        if not generation:  # first start, or the key expired: one process creates it
            self.store.add(key, uuid.uuid4().hex, GENERATION_TTL)
            generation = self.store.get(key) or ""
        seen[self.table] = generation
        return generation


def watch_row_changes(factory: sessionmaker, store: Store, models: list[type]) -> None:
    """Start a new generation of a cached table after each commit that changed one of its rows."""
    tables = {model.__tablename__ for model in models}
    event.listen(factory, "after_flush", lambda session, _context: _note_flush(session, tuple(models)))
    event.listen(factory, "do_orm_execute", lambda state: _note_statement(state, tables))
    event.listen(factory, "after_commit", lambda session: _after_commit(session, store))


def _note_flush(session: Session, models: tuple[type, ...]) -> None:
    changed = [obj for obj in session.deleted if isinstance(obj, models)]
    changed += [obj for obj in session.dirty if isinstance(obj, models) and session.is_modified(obj)]
    if changed:
        session.info.setdefault(STALE, set()).update(obj.__tablename__ for obj in changed)


def _note_statement(state, tables: set[str]) -> None:
    if state.is_update or state.is_delete:
        name = getattr(getattr(state.statement, "table", None), "name", None)
        if name in tables:
            state.session.info.setdefault(STALE, set()).add(name)


def _after_commit(session: Session, store: Store) -> None:
    for table in session.info.pop(STALE, ()):
        store.set(generation_key(table), uuid.uuid4().hex, GENERATION_TTL)
