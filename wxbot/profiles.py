"""Who sent a message, without asking the database: the sender's Profile, kept in the store.

A profile (follower, member, branch) is stored with the identity generation it was read under, and
is used only while that generation is current. Every committed change to a member, the org tree,
or a follower's binding or subscription starts a new generation, right after its commit: a rebind,
a roster import, an edit in the console, a branch moved or renamed, an unfollow. The very next
message of anyone then reads its profile from the database again. Profiles also expire after
PROFILE_TTL, so that a change made outside wxbot (by hand in the database) is seen within that time.

The changes are noticed by the session factory's events: flushed objects (new, deleted, or changed
in a column a profile shows) and bulk statements on the three tables. Writes that bypass the ORM
session (the delivery engine's window counters) never touch what a profile holds.
"""
from __future__ import annotations

import uuid
from itertools import chain

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session, sessionmaker

from models.followers import Follower, Profile
from models.members import Member, OrgUnit
from wxbot.store import Store

GENERATION = "profiles:generation"
GENERATION_TTL = 30 * 24 * 3600  # renewed by every change; a lost key only starts a new generation
PROFILE_TTL = 900
STALE = "wxbot.profiles_stale"
IDENTITY_TABLES = frozenset({"members", "followers", "org_units"})
FOLLOWER_IDENTITY = ("openid", "member_id", "subscribed")


def profile_key(openid: str) -> str:
    return f"profile:{openid}"


def valid_profile(stored: str | None, generation: str | None) -> Profile | None:
    """The stored profile if it was read under the current generation, else None."""
    if not stored or not generation:
        return None
    made_under, _, data = stored.partition("|")
    return Profile.loads(data) if made_under == generation else None


def stored_profile(profile: Profile, generation: str) -> str:
    return f"{generation}|{profile.dumps()}"


def current_generation(store: Store, seen: str | None) -> str:
    """The generation read with the message, or a new one when none exists (first start, expiry)."""
    if seen:
        return seen
    store.add(GENERATION, uuid.uuid4().hex, GENERATION_TTL)
    return store.get(GENERATION) or ""


def new_generation(store: Store) -> None:
    """Every stored profile is out of date from now on."""
    store.set(GENERATION, uuid.uuid4().hex, GENERATION_TTL)


def watch_identity_changes(factory: sessionmaker, store: Store) -> None:
    """Start a new generation after each commit that changed what a profile shows."""
    event.listen(factory, "after_flush", _note_flush)
    event.listen(factory, "do_orm_execute", _note_statement)
    event.listen(factory, "after_commit", lambda session: _after_commit(session, store))


def _note_flush(session: Session, _context) -> None:
    if session.info.get(STALE):
        return
    for obj in chain(session.new, session.deleted):
        if _first_contact(obj, session):
            continue  # nobody's stored profile shows a follower that did not exist; its own is read after
        if isinstance(obj, (Member, OrgUnit, Follower)):
            session.info[STALE] = True
            return
    for obj in session.dirty:
        if isinstance(obj, (Member, OrgUnit)) and session.is_modified(obj):
            session.info[STALE] = True
            return
        if isinstance(obj, Follower):
            attrs = inspect(obj).attrs
            if any(attrs[name].history.has_changes() for name in FOLLOWER_IDENTITY):
                session.info[STALE] = True
                return


def _first_contact(obj, session: Session) -> bool:
    return isinstance(obj, Follower) and obj in session.new and obj.member_id is None


def _note_statement(state) -> None:
    """An UPDATE, DELETE or INSERT statement on a member, follower or org unit table."""
    if state.is_update or state.is_delete or state.is_insert:
        table = getattr(state.statement, "table", None)
        if getattr(table, "name", None) in IDENTITY_TABLES:
            state.session.info[STALE] = True


def _after_commit(session: Session, store: Store) -> None:
    if session.info.pop(STALE, False):
        new_generation(store)
