"""The questions an attempt asks, without asking the database: a snapshot of each question kept in
the process, used while the question bank's generation in the store is the one it was read under.

A contest's 2,000 members answering the same five questions read them once per process, not twice
per answer. Any committed change to a question (an edit, a correction of its answer, a question
retired, a bulk statement on the table) starts a new generation right after its commit, and every
process reads the bank again on its next lookup. The generation is read before the database, once
per message (or API call): a question read while a change was being committed is kept under the
generation that change then replaces, as the profiles are (wxbot/profiles.py).
"""
from __future__ import annotations

import threading
import uuid

from flask import g, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from models.quiz import AskedQuestion, Question, read_questions_of
from wxbot.store import Store

GENERATION = "questions:generation"
GENERATION_TTL = 30 * 24 * 3600  # renewed by every change; a lost key only starts a new generation
STALE = "wxbot.questions_stale"  # session.info: a question changed in this transaction
LIMIT = 20_000  # questions kept per process; past it the cache starts again


class QuestionCache:
    def __init__(self, store: Store):
        self.store = store
        self._lock = threading.Lock()
        self._generation: str | None = None
        self._questions: dict[int, AskedQuestion] = {}

    def get(self, session: Session, ids: list[int]) -> dict[int, AskedQuestion]:
        generation = self._current_generation()
        with self._lock:
            if generation != self._generation or len(self._questions) > LIMIT:
                self._generation, self._questions = generation, {}
            kept = self._questions
        missing = [i for i in ids if i not in kept]
        if missing:
            kept.update(read_questions_of(session, missing))  # kept under the generation read above
        return {i: kept[i] for i in ids if i in kept}

    def _current_generation(self) -> str:
        """The bank's generation, read once per message (the app context) and before the database."""
        if has_app_context() and "questions_generation" in g:
            return g.questions_generation
        generation = self.store.get(GENERATION)
        if not generation:  # first start, or the key expired: one process creates it
            self.store.add(GENERATION, uuid.uuid4().hex, GENERATION_TTL)
            generation = self.store.get(GENERATION) or ""
        if has_app_context():
            g.questions_generation = generation
        return generation


def watch_question_changes(factory: sessionmaker, store: Store) -> None:
    """Start a new generation after each commit that changed a question."""
    event.listen(factory, "after_flush", _note_flush)
    event.listen(factory, "do_orm_execute", _note_statement)
    event.listen(factory, "after_commit", lambda session: _after_commit(session, store))


def _note_flush(session: Session, _context) -> None:
    if any(isinstance(obj, Question) for obj in session.deleted) or any(
            isinstance(obj, Question) and session.is_modified(obj) for obj in session.dirty):
        session.info[STALE] = True


def _note_statement(state) -> None:
    if state.is_update or state.is_delete:
        table = getattr(state.statement, "table", None)
        if getattr(table, "name", None) == Question.__tablename__:
            state.session.info[STALE] = True


def _after_commit(session: Session, store: Store) -> None:
    if session.info.pop(STALE, False):
        store.set(GENERATION, uuid.uuid4().hex, GENERATION_TTL)
