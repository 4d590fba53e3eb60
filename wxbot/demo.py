"""Demo data for a first run: a small school, so a new user sees the product at work."""
from __future__ import annotations

import secrets

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.accounts import AdminUser, create_account
from models.members import Member, OrgUnit
from models.roster import RosterRow, apply_rows

BRANCHES = {
    "计算机学院": ["本科生第一党支部", "研究生党支部"],
    "马克思主义学院": ["本科生党支部", "教工党支部"],
}
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = ["伟", "芳", "娜", "敏", "静", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛", "明", "超", "秀英", "华", "平", "刚", "桂英"]
STAGE_CYCLE = ["共青团员", "入党申请人", "入党积极分子", "发展对象", "预备党员", "正式党员", "正式党员", "群众", "共青团员", "正式党员"]
# The two console-side people of the demo, with fixed 学号 the README names.
ORGANISER = RosterRow("2023001", "张明", "计算机学院", "本科生第一党支部", "正式党员", "organiser")
ADMIN = RosterRow("T0001", "李华", "马克思主义学院", "教工党支部", "正式党员", "admin")


def demo_rows() -> list[RosterRow]:
    """About 40 members over four branches, plus an organiser and an admin."""
    rows = [ORGANISER, ADMIN]
    n = 0
    for c_index, (college, branches) in enumerate(BRANCHES.items(), start=1):
        for b_index, branch in enumerate(branches, start=1):
            for i in range(10):
                n += 1
                name = SURNAMES[n % len(SURNAMES)] + GIVEN[(n * 7) % len(GIVEN)]
                student_no = f"20{23 + i % 3}{c_index}{b_index}{i:02d}"
                rows.append(RosterRow(student_no, name, college, branch, STAGE_CYCLE[i], "member"))
    return rows


DEMO_ACCOUNTS = (("admin", "admin", None), ("organiser", "organiser", "计算机学院"))


def load_demo_accounts(session: Session) -> list[tuple[str, str, str]]:
    """A demo admin and a demo organiser (计算机学院) with fresh random passwords, unless any
    console account exists; returns (username, password, role label) to show once."""
    if session.scalar(select(func.count()).select_from(AdminUser)):
        return []
    created = []
    for username, role, unit_name in DEMO_ACCOUNTS:
        unit = session.scalar(select(OrgUnit).where(OrgUnit.name == unit_name)) if unit_name else None
        password = secrets.token_urlsafe(9)
        account = create_account(session, username, password, role, unit)
        created.append((username, password, account.role_label + (f"（{unit.name}）" if unit else "")))
    session.commit()
    return created


DEMO_FOLLOWERS = 12


def load_demo_followers(session: Session, now) -> int:
    """Sandbox only: 12 demo members follow the account and have just written to it (their
    customer-service window is open), so broadcasts have someone to reach. The organiser and the
    admin are left unbound, for the simulator."""
    from datetime import timedelta

    from models.followers import Follower
    from models.sandbox import SandboxUser
    if session.scalar(select(func.count()).select_from(Follower)):
        return 0
    members = session.scalars(select(Member).where(Member.role == "member").order_by(Member.student_no)
                              .limit(DEMO_FOLLOWERS)).all()
    window = now + timedelta(hours=48)
    for member in members:
        openid = f"oDemo{member.student_no}"
        session.add(Follower(openid=openid, member=member, subscribed=True, first_seen_at=now, subscribed_at=now,
                             bound_at=now, last_interaction_at=now, cs_window_until=window, cs_window_left=5))
        session.add(SandboxUser(openid=openid, nickname=member.name, subscribed=True, subscribed_at=now,
                                cs_window_until=window, cs_window_left=5))
    session.commit()
    return len(members)


def load_demo(session: Session, school: str) -> bool:
    """Load the demo roster unless members exist already; True when loaded."""
    if session.scalar(select(func.count()).select_from(Member)):
        return False
    apply_rows(session, demo_rows(), school)
    session.commit()
    return True
