"""Console accounts, the audit log, and the scope an account may see and change."""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from sqlalchemy import Boolean, ForeignKey, Integer, Select, String, Text, delete, event, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from models.base import Base
from models.members import Member, OrgUnit
from models.textutil import shorten
from models.timeutil import utcnow

ACCOUNT_ROLES = {"admin": "管理员", "organiser": "组织员"}
MIN_PASSWORD = 8


class AccountError(ValueError):
    """A console account cannot be created or changed as asked; the message says why."""


class AdminUser(Base):
    __tablename__ = "admin_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    org_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Every console session carries the generation it began in; bumping it ends them all
    # (sign-out, password change, role change, disabling).
    session_gen: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]

    org_unit: Mapped[OrgUnit | None] = relationship()

    # What Flask-Login asks of a user object (kept here without importing Flask).
    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        return self.active

    def get_id(self) -> str:
        return str(self.id)

    @property
    def role_label(self) -> str:
        return ACCOUNT_ROLES.get(self.role, self.role)


class AuditLog(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    actor: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(32))
    object_type: Mapped[str] = mapped_column(String(32), index=True)
    object_id: Mapped[str] = mapped_column(String(64), default="")
    summary: Mapped[str] = mapped_column(String(200), default="")
    before: Mapped[str] = mapped_column(Text, default="")
    after: Mapped[str] = mapped_column(Text, default="")
    # The org unit the change belongs to: organisers see the entries of their subtree.
    org_unit_id: Mapped[int | None] = mapped_column(Integer, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    def changes(self) -> list[tuple[str, str, str]]:
        """(field, before, after) for every field that differs."""
        before, after = json.loads(self.before or "{}"), json.loads(self.after or "{}")
        keys = list(dict.fromkeys([*before, *after]))
        return [(k, str(before.get(k, "")), str(after.get(k, ""))) for k in keys if before.get(k) != after.get(k)]


class AuditReach(Base):
    """A further org unit an audit entry concerns (a broadcast reaching it): its organisers see the entry."""

    __tablename__ = "audit_reach"

    audit_id: Mapped[int] = mapped_column(ForeignKey("audit_log.id", ondelete="CASCADE"), primary_key=True)
    org_unit_id: Mapped[int] = mapped_column(Integer, primary_key=True, index=True)


def audit(session: Session, actor: AdminUser | str, action: str, object_type: str, object_id, summary: str,
          before: dict | None = None, after: dict | None = None, org_unit_id: int | None = None,
          reach: Iterable[int] = ()) -> None:
    """Record one change: who, when, what, before and after; shown to the organisers of `org_unit_id`
    and of every unit in `reach`."""
    entry = AuditLog(actor=actor if isinstance(actor, str) else actor.username, action=action,
                     object_type=object_type, object_id=str(object_id or ""), summary=shorten(summary, 200),
                     before=json.dumps(before or {}, ensure_ascii=False),
                     after=json.dumps(after or {}, ensure_ascii=False), org_unit_id=org_unit_id)
    session.add(entry)
    units = set(reach) - {org_unit_id}
    if units:
        session.flush()
        session.add_all(AuditReach(audit_id=entry.id, org_unit_id=unit) for unit in units)


def audit_in_scope(query: Select, scope: Scope) -> Select:
    """Audit entries of the scope's units, or reaching them (a broadcast); all for an admin."""
    if scope.everything:
        return query
    reached = select(AuditReach.audit_id).where(AuditReach.org_unit_id.in_(scope.unit_ids))
    return query.where(AuditLog.org_unit_id.in_(scope.unit_ids) | AuditLog.id.in_(reached))


def create_account(session: Session, username: str, password: str, role: str, org_unit: OrgUnit | None) -> AdminUser:
    """A new console account; organisers need the org unit they are responsible for."""
    username = username.strip()
    if not username or len(username) > 64:
        raise AccountError("用户名不能为空，最长 64 个字符")
    if role not in ACCOUNT_ROLES:
        raise AccountError("角色只能是 admin（管理员）或 organiser（组织员）")
    if role == "organiser" and org_unit is None:
        raise AccountError("组织员需要指定负责的组织（--org）")
    if session.scalar(select(AdminUser).where(AdminUser.username == username)):
        raise AccountError(f"用户 {username} 已存在")
    account = AdminUser(username=username, role=role, org_unit=org_unit, password_hash="")
    set_password(account, password)
    session.add(account)
    session.flush()
    return account


def set_password(account: AdminUser, password: str) -> None:
    """A new password; every session signed in with the old one ends."""
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"密码至少 {MIN_PASSWORD} 位")
    account.password_hash = generate_password_hash(password, method="scrypt")
    end_sessions(account)


def end_sessions(account: AdminUser) -> None:
    """Sign the account out everywhere: sessions of an older generation are refused."""
    account.session_gen = (account.session_gen or 0) + 1


def set_role(account: AdminUser, role: str, org_unit: OrgUnit | None) -> None:
    """Change what an account may do; its sessions end, so the change holds at once."""
    if role not in ACCOUNT_ROLES:
        raise AccountError("角色只能是 admin（管理员）或 organiser（组织员）")
    if role == "organiser" and org_unit is None:
        raise AccountError("组织员需要指定负责的组织（--org）")
    account.role, account.org_unit = role, org_unit if role == "organiser" else None
    end_sessions(account)


def set_active(account: AdminUser, active: bool) -> None:
    account.active = active
    end_sessions(account)


@cache
def _dummy_hash() -> str:
    """Checked against when the name is unknown, so that the time taken does not tell which names exist."""
    return generate_password_hash("not-a-password", method="scrypt")


def check_password(account: AdminUser | None, password: str) -> bool:
    if account is None:
        check_password_hash(_dummy_hash(), password)
        return False
    return check_password_hash(account.password_hash, password) and account.active


class RevokedSession(Base):
    """A console session signed out before it expired; remembered until it would have expired anyway."""

    __tablename__ = "revoked_sessions"

    sid: Mapped[str] = mapped_column(String(32), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)


def revoke_session(session: Session, sid: str, until: datetime) -> None:
    """Refuse this session id from now on; forget long-dead ones on the way."""
    if sid:
        session.execute(delete(RevokedSession).where(RevokedSession.expires_at < utcnow()))
        session.merge(RevokedSession(sid=sid[:32], expires_at=until))


def session_revoked(session: Session, sid: str) -> bool:
    return not sid or session.get(RevokedSession, sid[:32]) is not None


@dataclass(frozen=True)
class Scope:
    """The org units an account may see: None means everything (an admin)."""

    unit_ids: frozenset[int] | None

    @property
    def everything(self) -> bool:
        """An admin's scope: the whole school."""
        return self.unit_ids is None

    def allows_unit(self, unit_id: int | None) -> bool:
        return self.unit_ids is None or unit_id in self.unit_ids

    def filter(self, query: Select, column, school_wide: bool = False) -> Select:
        """Restrict `query` to rows whose `column` (an org unit id) lies in this scope; with
        `school_wide`, rows of no unit (the admins' school-wide ones) stay visible too."""
        if self.unit_ids is None:
            return query
        inside = column.in_(self.unit_ids)
        return query.where(inside | column.is_(None) if school_wide else inside)

    def members(self, query: Select) -> Select:
        """Restrict a query over Member to this scope."""
        return self.filter(query, Member.org_unit_id)


ORG_CHILDREN = "wxbot.org_children"


def org_children(session: Session) -> dict[int | None, list[int]]:
    """Each unit's children, read once per transaction (one message, one request): the tree is small
    and every scope and audience asks for it; the copy is forgotten at commit and rollback, and when a
    flush changes a unit."""
    children = session.info.get(ORG_CHILDREN)
    if children is None:
        children = {}
        for unit_id, parent_id in session.execute(select(OrgUnit.id, OrgUnit.parent_id)):
            children.setdefault(parent_id, []).append(unit_id)
        session.info[ORG_CHILDREN] = children
    return children


@event.listens_for(Session, "after_flush")
def _forget_org_tree(session: Session, _context) -> None:
    if any(isinstance(obj, OrgUnit) for obj in (*session.new, *session.dirty, *session.deleted)):
        session.info.pop(ORG_CHILDREN, None)


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _forget_org_tree_at_the_end(session: Session) -> None:
    session.info.pop(ORG_CHILDREN, None)


def subtree_ids(session: Session, root_id: int) -> frozenset[int]:
    """The unit and every unit below it."""
    children = org_children(session)
    found, todo = set(), [root_id]
    while todo:
        unit_id = todo.pop()
        found.add(unit_id)
        todo.extend(children.get(unit_id, []))
    return frozenset(found)


def scope_of(session: Session, role: str, unit_id: int | None) -> Scope:
    """An admin sees everything; anyone else their unit and what lies below it (nothing without one)."""
    if role == "admin":
        return Scope(None)
    return Scope(subtree_ids(session, unit_id) if unit_id else frozenset())


def scope_for(session: Session, account: AdminUser) -> Scope:
    """A console account's scope."""
    return scope_of(session, account.role, account.org_unit_id)
