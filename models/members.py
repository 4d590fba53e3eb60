"""The roster: the organisation tree (school > college > branch) and its members."""
from __future__ import annotations

import secrets
import unicodedata
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from models.base import Base
from models.timeutil import utcnow

# 政治面貌, in the order a member moves through them.
STAGES = ("群众", "共青团员", "入党申请人", "入党积极分子", "发展对象", "预备党员", "正式党员")
ROLES = {"member": "成员", "organiser": "组织员", "admin": "管理员"}
ROLE_BY_LABEL = {label: key for key, label in ROLES.items()} | {key: key for key in ROLES}


class OrgUnit(Base):
    __tablename__ = "org_units"
    __table_args__ = (UniqueConstraint("parent_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"), index=True)

    parent: Mapped[OrgUnit | None] = relationship(remote_side=[id])

    def path(self) -> str:
        """Names from the college down, e.g. '计算机学院 / 本科生第一党支部'."""
        names, unit = [], self
        while unit is not None and unit.kind != "school":
            names.append(unit.name)
            unit = unit.parent
        return " / ".join(reversed(names)) or self.name


class Member(Base):
    __tablename__ = "members"

    id: Mapped[int] = mapped_column(primary_key=True)
    student_no: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    stage: Mapped[str] = mapped_column(String(16), default="群众")
    role: Mapped[str] = mapped_column(String(16), default="member")
    # One-time binding code the organiser hands out (members.bind_mode: code); cleared once used.
    bind_code: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    org_unit: Mapped[OrgUnit] = relationship()

    @property
    def role_label(self) -> str:
        return ROLES.get(self.role, self.role)


def school_root(session: Session, name: str) -> OrgUnit:
    """The school unit at the root of the tree, created on first use."""
    root = session.scalar(select(OrgUnit).where(OrgUnit.parent_id.is_(None), OrgUnit.kind == "school"))
    if root is None:
        root = OrgUnit(name=name, kind="school")
        session.add(root)
        session.flush()
    return root


def child_unit(session: Session, parent: OrgUnit, name: str, kind: str) -> OrgUnit:
    """The unit `name` under `parent`, created when missing."""
    unit = session.scalar(select(OrgUnit).where(OrgUnit.parent_id == parent.id, OrgUnit.name == name))
    if unit is None:
        unit = OrgUnit(name=name, kind=kind, parent_id=parent.id, parent=parent)
        session.add(unit)
        session.flush()
    return unit


def role_change_refusal(by_admin: bool, old_role: str, new_role: str) -> str | None:
    """Why this role change is refused to its author, or None. Only an admin grants or takes away
    the admin role: it reaches the whole school, beyond any organiser's own scope."""
    if by_admin or old_role == new_role:
        return None
    if "admin" in (old_role, new_role):
        return "只有管理员可以授予或取消“管理员”角色"
    return None


def normalise_student_no(student_no: str) -> str:
    """学号 as stored: half-width, upper case, no spaces."""
    return "".join(unicodedata.normalize("NFKC", student_no).upper().split())


def normalise_name(name: str) -> str:
    """姓名 as compared: half-width, case folded, no spaces."""
    return "".join(unicodedata.normalize("NFKC", name).casefold().split())


BIND_CODE_DIGITS = 8


def new_bind_code() -> str:
    """A fresh one-time binding code: digits only, easy to type on a phone, never part of a name."""
    return "".join(secrets.choice("0123456789") for _ in range(BIND_CODE_DIGITS))


def member_by_student_no(session: Session, student_no: str) -> Member | None:
    return session.scalar(select(Member).where(Member.student_no == normalise_student_no(student_no)))


def in_audience(member: Member, spec: dict, units_of_member: set[int]) -> bool:
    """The same spec for one member, in memory (a material's or plan entry's audience; an empty spec
    is everyone). `units_of_member` is the member's unit and every unit above it (units_above)."""
    if spec.get("units") and not units_of_member & {int(u) for u in spec["units"]}:
        return False
    if spec.get("stages") and member.stage not in spec["stages"]:
        return False
    if spec.get("roles") and member.role not in spec["roles"]:
        return False
    numbers = spec.get("student_nos")
    return not numbers or member.student_no in {normalise_student_no(s) for s in numbers}


def units_above(member: Member) -> set[int]:
    found, unit = set(), member.org_unit
    while unit is not None:
        found.add(unit.id)
        unit = unit.parent
    return found
