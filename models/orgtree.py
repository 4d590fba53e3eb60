"""Changing the organisation tree (school > college > branch) and editing members."""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.members import ROLES, STAGES, Member, OrgUnit, normalise_student_no, role_change_refusal

CHILD_KIND = {"school": "college", "college": "branch"}
KIND_LABELS = {"school": "学校", "college": "学院", "branch": "支部"}


class TreeError(ValueError):
    """The change is refused; the message says why, in words an organiser understands."""


def add_unit(session: Session, parent: OrgUnit, name: str) -> OrgUnit:
    kind = CHILD_KIND.get(parent.kind)
    if kind is None:
        raise TreeError("支部下面不能再建下级组织")
    _check_name(session, parent.id, name)
    unit = OrgUnit(name=name.strip(), kind=kind, parent=parent, parent_id=parent.id)
    session.add(unit)
    session.flush()
    return unit


def rename_unit(session: Session, unit: OrgUnit, name: str) -> None:
    if name.strip() != unit.name:
        _check_name(session, unit.parent_id, name)
    unit.name = name.strip()


def move_unit(session: Session, unit: OrgUnit, new_parent: OrgUnit) -> None:
    """Move a unit under another parent of the level above it (a branch to another college)."""
    if unit.kind == "school":
        raise TreeError("学校是根节点，不能移动")
    if CHILD_KIND.get(new_parent.kind) != unit.kind:
        raise TreeError(f"{KIND_LABELS[unit.kind]}只能放在{KIND_LABELS[_parent_kind(unit.kind)]}下面")
    _check_name(session, new_parent.id, unit.name)
    unit.parent, unit.parent_id = new_parent, new_parent.id


def delete_unit(session: Session, unit: OrgUnit) -> None:
    """Delete an empty unit; refused while it has members or units below it."""
    if unit.kind == "school":
        raise TreeError("不能删除学校")
    if session.scalar(select(func.count()).select_from(Member).where(Member.org_unit_id == unit.id)):
        raise TreeError(f"“{unit.name}”还有成员，请先把成员调到其他组织")
    if session.scalar(select(func.count()).select_from(OrgUnit).where(OrgUnit.parent_id == unit.id)):
        raise TreeError(f"“{unit.name}”下面还有组织，请先删除或移走")
    session.delete(unit)


def _parent_kind(kind: str) -> str:
    return next(parent for parent, child in CHILD_KIND.items() if child == kind)


def _check_name(session: Session, parent_id: int | None, name: str) -> None:
    name = name.strip()
    if not name or len(name) > 100:
        raise TreeError("名称不能为空，最长 100 个字")
    clash = select(OrgUnit.id).where(OrgUnit.parent_id == parent_id, OrgUnit.name == name)
    if session.scalar(clash):
        raise TreeError(f"同一上级下已有“{name}”")


def member_snapshot(member: Member) -> dict:
    """The fields an organiser can change, as the audit log records them."""
    return {"学号": member.student_no, "姓名": member.name, "支部": member.org_unit.path(),
            "政治面貌": member.stage, "角色": ROLES.get(member.role, member.role)}


def edit_member(member: Member, name: str, stage: str, role: str, unit: OrgUnit, by_admin: bool) -> None:
    """Change a member's roster entry; the checks an import applies apply here too, and the author
    may not grant more than they hold (`by_admin`: the author is an administrator)."""
    if not name.strip():
        raise TreeError("姓名不能为空")
    if stage not in STAGES:
        raise TreeError("政治面貌不在可选范围内")
    if role not in ROLES:
        raise TreeError("角色不在可选范围内")
    if unit.kind != "branch":
        raise TreeError("成员只能属于某个支部")
    refusal = role_change_refusal(by_admin, member.role, role)
    if refusal:
        raise TreeError(refusal)
    member.name, member.stage, member.role, member.org_unit, member.org_unit_id = \
        name.strip(), stage, role, unit, unit.id


def add_member(session: Session, student_no: str, name: str, stage: str, role: str, unit: OrgUnit,
               by_admin: bool) -> Member:
    """One new member on the roster, with the checks an import and an edit apply."""
    number = normalise_student_no(student_no)
    if not number or len(number) > 32 or not number.replace("-", "").replace("_", "").isalnum():
        raise TreeError("学号只能包含字母和数字")
    if session.scalar(select(Member.id).where(Member.student_no == number)):
        raise TreeError(f"学号 {number} 已在名单中")
    member = Member(student_no=number, name="", stage=STAGES[0], role="member", org_unit=unit, org_unit_id=unit.id)
    edit_member(member, name, stage, role, unit, by_admin)
    session.add(member)
    session.flush()
    return member


def tree_rows(session: Session, scope_ids: frozenset[int] | None) -> list[tuple[OrgUnit, int, int]]:
    """(unit, depth, members in it and every unit below) in tree order, limited to `scope_ids` when given."""
    units = list(session.scalars(select(OrgUnit).order_by(OrgUnit.name)))
    direct = dict(session.execute(select(Member.org_unit_id, func.count()).group_by(Member.org_unit_id)).all())
    children: dict[int | None, list[OrgUnit]] = {}
    for unit in units:
        children.setdefault(unit.parent_id, []).append(unit)

    def total(unit: OrgUnit) -> int:
        return direct.get(unit.id, 0) + sum(total(child) for child in children.get(unit.id, []))
    rows, todo = [], [(u, 0) for u in reversed(children.get(None, []))]
    while todo:
        unit, depth = todo.pop()
        if scope_ids is None or unit.id in scope_ids:
            rows.append((unit, depth, total(unit)))
        todo.extend((child, depth + 1) for child in reversed(children.get(unit.id, [])))
    return rows
