"""Who sent a message, without asking the database: the sender's Profile, kept in the store.

A profile (follower, member, branch) is stored with the generations it was read under: the school's
and the person's own. It is used only while both are current. A committed change to one follower
(binding, unbinding, following, unfollowing) or to one member (an edit in the console, a new stage)
starts a new generation for that person only, right after its commit: in the first weeks of a term,
when students bind all day, everyone else's profile stays in the cache. A change to the org tree (a
branch moved or renamed) or a bulk statement on the identity tables starts a new generation for
everyone. The person's next message then reads its profile from the database again. Profiles also
expire after PROFILE_TTL, so that a change made outside wxbot (by hand in the database) is seen
within that time.

Both generations are read with the message, before the database: a profile read from the database
while a change was being committed is stored under the generation that change then replaces.

The changes are noticed by the session factory's events: flushed objects (new, deleted, or changed
in a column a profile shows) and bulk statements on the three tables. Writes that bypass the ORM
session (the delivery engine's window counters) never touch what a profile holds.
"""
from __future__ import annotations

import uuid
from itertools import chain

from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session, sessionmaker

from models.followers import Follower, Profile
from models.members import Member, OrgUnit
from wxbot.store import Store

GENERATION = "profiles:generation"
GENERATION_TTL = 30 * 24 * 3600  # renewed by every change; a lost key only starts a new generation
PROFILE_TTL = 900
STALE = "wxbot.profiles_stale"  # session.info: everyone's profiles changed
STALE_OPENIDS = "wxbot.profiles_stale_openids"  # session.info: these followers' profiles changed
IDENTITY_TABLES = frozenset({"members", "followers", "org_units"})
FOLLOWER_IDENTITY = ("openid", "member_id", "subscribed")


def profile_key(openid: str) -> str:
    return f"profile:{openid}"


def personal_generation_key(openid: str) -> str:
    return f"{GENERATION}:{openid}"


def identity_keys(openid: str) -> list[str]:
    """What a message reads of the sender's identity, in one round trip with its other keys."""
    return [profile_key(openid), GENERATION, personal_generation_key(openid)]


def generation_of(school: str, personal: str | None) -> str:
    """The generation a profile is valid under: the school's and the person's (none yet: "")."""
    return f"{school}:{personal or ''}"


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


def new_personal_generation(store: Store, openid: str) -> None:
    """This follower's stored profile is out of date from now on."""
    store.set(personal_generation_key(openid), uuid.uuid4().hex, GENERATION_TTL)


def watch_identity_changes(factory: sessionmaker, store: Store) -> None:
    """Start new generations after each commit that changed what a profile shows: the changed
    people's, or everyone's for a change to the org tree or a bulk statement."""
    event.listen(factory, "after_flush", _note_flush)
    event.listen(factory, "do_orm_execute", _note_statement)
    event.listen(factory, "after_commit", lambda session: _after_commit(session, store))


def _note_flush(session: Session, _context) -> None:
    if session.info.get(STALE):
        return
    openids: set[str] = session.info.setdefault(STALE_OPENIDS, set())
    members: set[int] = set()
    for obj in chain(session.new, session.deleted):
        if isinstance(obj, OrgUnit) or (isinstance(obj, Member) and obj in session.deleted):
            session.info[STALE] = True
            return
        if isinstance(obj, Follower) and not _first_contact(obj, session):
            openids.add(obj.openid)  # its own profile; nobody else's shows a follower
    for obj in session.dirty:
        if isinstance(obj, OrgUnit) and session.is_modified(obj):
            session.info[STALE] = True
            return
        if isinstance(obj, Member) and session.is_modified(obj):
            members.add(obj.id)
        if isinstance(obj, Follower):
            attrs = inspect(obj).attrs
            if any(attrs[name].history.has_changes() for name in FOLLOWER_IDENTITY):
                openids.add(obj.openid)
    if members:  # a member's profile is their follower's; read within the flush, before the commit
        openids.update(session.connection().execute(
            select(Follower.openid).where(Follower.member_id.in_(members))).scalars())


def _first_contact(obj, session: Session) -> bool:
    return isinstance(obj, Follower) and obj in session.new and obj.member_id is None


def _note_statement(state) -> None:
    """An UPDATE, DELETE or INSERT statement on a member, follower or org unit table: whose rows it
    changes is not known here, so everyone's profiles are out of date."""
    if state.is_update or state.is_delete or state.is_insert:
        table = getattr(state.statement, "table", None)
        if getattr(table, "name", None) in IDENTITY_TABLES:
            state.session.info[STALE] = True


def _after_commit(session: Session, store: Store) -> None:
    openids = session.info.pop(STALE_OPENIDS, set())
    if session.info.pop(STALE, False):
        new_generation(store)
        return
    for openid in openids:
        new_personal_generation(store, openid)

