"""Demo data for a first run: a small school, so a new user sees the product at work."""
from __future__ import annotations

import secrets
from pathlib import Path

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
GIVEN = ["伟", "芳", "娜", "敏", "静", "磊", "洋", "艳", "勇", "军",
         "杰", "娟", "涛", "明", "超", "秀英", "华", "平", "刚", "桂英"]
STAGE_CYCLE = ["共青团员", "入党申请人", "入党积极分子", "发展对象", "预备党员",
               "正式党员", "正式党员", "群众", "共青团员", "正式党员"]
# The people of the demo with fixed 学号 the README names: an organiser, an admin, and a student to
# bind as in the simulator (left unbound by load_demo_followers).
ORGANISER = RosterRow("2023001", "张明", "计算机学院", "本科生第一党支部", "正式党员", "organiser")
ADMIN = RosterRow("T0001", "李华", "马克思主义学院", "教工党支部", "正式党员", "admin")
STUDENT = RosterRow("2023100", "陈晓红", "计算机学院", "本科生第一党支部", "入党积极分子", "member")
NAMED = {ORGANISER.student_no, ADMIN.student_no, STUDENT.student_no}


def demo_rows() -> list[RosterRow]:
    """About 40 members over four branches, each name once in the school, plus the named three."""
    rows, taken = [ORGANISER, ADMIN, STUDENT], {ORGANISER.name, ADMIN.name, STUDENT.name}
    n = 0
    for c_index, (college, branches) in enumerate(BRANCHES.items(), start=1):
        for b_index, branch in enumerate(branches, start=1):
            for i in range(10):
                n += 1
                name = next(SURNAMES[(n + k) % len(SURNAMES)] + GIVEN[(n * 7 + k) % len(GIVEN)] for k in range(400)
                            if SURNAMES[(n + k) % len(SURNAMES)] + GIVEN[(n * 7 + k) % len(GIVEN)] not in taken)
                taken.add(name)
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
    customer-service window is open), so broadcasts have someone to reach. The named student, the
    organiser and the admin are left unbound, for the simulator."""
    from datetime import timedelta

    from models.followers import Follower
    from models.sandbox import SandboxUser
    if session.scalar(select(func.count()).select_from(Follower)):
        return 0
    members = session.scalars(select(Member).where(Member.role == "member", Member.student_no.not_in(NAMED))
                              .order_by(Member.student_no).limit(DEMO_FOLLOWERS)).all()
    window = now + timedelta(hours=48)
    for member in members:
        openid = f"oDemo{member.student_no}"
        session.add(Follower(openid=openid, member=member, subscribed=True, first_seen_at=now, subscribed_at=now,
                             bound_at=now, last_interaction_at=now, cs_window_until=window, cs_window_left=5))
        session.add(SandboxUser(openid=openid, nickname=member.name, subscribed=True, subscribed_at=now,
                                cs_window_until=window, cs_window_left=5))
    session.commit()
    return len(members)


def demo_refusal(session: Session, settings) -> str:
    """Why demo data must not load here ('' when it may): a real AppSecret, or data that is not the
    demo school's. Demo study plans are pushed at 07:30 and demo events remind people: on a real
    account or beside a real roster they would reach real followers."""
    from models.events import Event
    from models.quiz import Question
    from models.study import Material
    from wxbot.config import is_sandbox
    if not is_sandbox(settings):
        return "配置了真实的 AppSecret（正式公众号），演示数据只能在沙盒里载入"
    demo_numbers = {row.student_no for row in demo_rows()}
    others = session.scalar(select(func.count()).select_from(Member).where(Member.student_no.not_in(demo_numbers)))
    if others:
        return f"数据库里已有 {others} 名不属于演示学校的成员（真实名单）"
    demo_loaded = session.scalar(select(Member.id).limit(1)) is not None
    content = any(session.scalar(select(model.id).limit(1)) is not None for model in (Material, Question, Event))
    if content and not demo_loaded:
        return "数据库里已有学习材料、题目或活动，却没有演示名单（真实数据）"
    return ""


def load_demo(session: Session, school: str) -> bool:
    """Load the demo roster unless members exist already; True when loaded."""
    if session.scalar(select(func.count()).select_from(Member)):
        return False
    apply_rows(session, demo_rows(), school)
    session.commit()
    return True


DEMO_MATERIALS = [
    ("中国共产党章程（总纲）", "学习党章总纲，理解党的性质、宗旨和奋斗目标。", "《中国共产党章程》"),
    ("党的二十大报告：开辟马克思主义中国化时代化新境界", "理解“两个结合”的深刻内涵。", "人民网"),
    ("全面从严治党永远在路上", "学习新时代党的建设总要求。", "求是网"),
    ("党史故事：遵义会议", "伟大转折中的实事求是。", "中共党史出版社"),
    ("社会主义核心价值观", "富强、民主、文明、和谐，自由、平等、公正、法治，爱国、敬业、诚信、友善。", "新华网"),
    ("青年大学习：把青春奋斗融入党和人民事业", "新时代青年的责任与担当。", "共青团中央"),
    ("三会一课制度", "支部党员大会、支部委员会、党小组会和党课的要求。", "《中国共产党支部工作条例》"),
    ("党员的权利和义务", "党章第一章学习。", "《中国共产党章程》"),
    ("红船精神", "开天辟地、敢为人先的首创精神。", "学习强国"),
    ("总体国家安全观", "统筹发展和安全。", "人民日报"),
]


def _demo_body(title: str, summary: str) -> str:
    return (f"{summary}\n\n"
            "### 学习要点\n\n- 原原本本读原文，读懂其中的核心概念。\n- 结合专业学习和支部实际，写下一条体会。\n"
            "- 在支部学习交流时分享自己的理解。\n\n"
            "> 学而不思则罔，思而不学则殆。\n\n"
            "阅读满 1 分钟即计入学习记录，并获得学习积分；连续学习 7 天还有额外奖励。")


def load_demo_study(session: Session, now, points) -> int:
    """Published materials and a month of study plan around today, for the whole school (once)."""
    from datetime import timedelta

    from models.study import Material, PlanEntry
    from models.timeutil import local_date
    if session.scalar(select(Material.id).limit(1)) is not None:
        return 0
    materials = []
    for title, summary, source in DEMO_MATERIALS:
        material = Material(title=title, summary=summary, body=_demo_body(title, summary), source=source,
                            status="published", author="演示数据", reviewer="演示数据", reviewed_at=now,
                            published_at=now)
        session.add(material)
        materials.append(material)
    session.flush()
    today = local_date(now)
    for offset in range(-15, 16):
        session.add(PlanEntry(day=today + timedelta(days=offset), material_id=materials[offset % len(materials)].id,
                              created_by="演示数据"))
    session.flush()
    _demo_study_history(session, materials, today, points)
    session.commit()
    return len(materials)


DEMO_READ_SECONDS = 75  # a little over the minute that counts


def _demo_study_history(session: Session, materials, today, points) -> None:
    """Two weeks of reading by the demo members, some keen and some not, up to yesterday: the day's
    plan read that evening, through the real readings and ledger, so that the dashboard, 积分 and
    排行 have something to show."""
    from datetime import timedelta

    from models.points import credit
    from models.study import Reading, credit_reference
    from models.timeutil import local_midnight
    for member in session.scalars(select(Member).order_by(Member.id)):
        keenness = (member.id * 37) % 10  # 0..9, fixed per member
        for back in range(14, 0, -1):
            if (member.id + back * 7) % 10 < keenness:
                day = today - timedelta(days=back)
                at = local_midnight(day) + timedelta(hours=20, minutes=member.id % 60)
                reading = Reading(member_id=member.id, material_id=materials[-back % len(materials)].id,
                                  plan_day=day, opened_at=at, last_seen_at=at, seconds=DEMO_READ_SECONDS,
                                  credited_at=at)
                session.add(reading)
                credit(session, member, "read", credit_reference(reading), at, points)


DEMO_QUESTIONS = Path(__file__).parent / "demo_data" / "questions.csv"


def load_demo_questions(session: Session, now) -> int:
    """The demo question bank (checkable facts with their sources) in the school's bank, and a
    党史 contest open for a week, unless the bank has questions already."""
    import json
    from datetime import timedelta

    from models.contest import Contest
    from models.questionbank import apply_questions, read_questions
    from models.quiz import Question
    if session.scalar(select(Question.id).limit(1)) is not None:
        return 0
    rows, bad = read_questions(str(DEMO_QUESTIONS))
    assert not bad, bad  # the file ships with the product; tests keep it clean
    created, _updated = apply_questions(session, rows, lambda _q: False, "演示数据", None)
    session.add(Contest(title="党史知识竞赛（演示）", mode="random", tags="党史", count=10, starts_at=now,
                        ends_at=now + timedelta(days=7), audience=json.dumps({}), attempts_allowed=2,
                        time_limit_seconds=600, created_by="演示数据"))
    session.commit()
    return created


def load_demo_events(session: Session, now) -> int:
    """Three events to try: a 主题党日 whose check-in is open now (for the check-in screen and the
    simulator's scan), a lecture in three days with three places (for the waiting list), and a
    branch meeting next week that needs no sign-up; unless events exist already."""
    from datetime import timedelta

    from models.events import Event
    from models.members import OrgUnit
    if session.scalar(select(Event.id).limit(1)) is not None:
        return 0
    branch = session.scalar(select(OrgUnit).where(OrgUnit.name == "本科生第一党支部"))
    start = now.replace(second=0, microsecond=0) + timedelta(minutes=20)
    events = [
        Event(title="主题党日：重温入党誓词（演示）", kind="主题党日", place="图书馆 301", starts_at=start,
              ends_at=start + timedelta(hours=2), checkin_before_min=60, checkin_after_min=60, points=3,
              study_hours=2, signup_required=False, topic="重温入党誓词，交流学习体会", created_by="演示数据"),
        Event(title="党课：党章学习（演示）", kind="党课", place="学术报告厅", capacity=3, points=2, study_hours=1.5,
              starts_at=start + timedelta(days=3), ends_at=start + timedelta(days=3, hours=2), created_by="演示数据"),
    ]
    if branch is not None:
        events.append(Event(title="支部党员大会（演示）", kind="支部党员大会", place="学院 204", signup_required=False,
                            org_unit_id=branch.parent_id, audience=f'{{"units": [{branch.id}]}}',
                            starts_at=start + timedelta(days=7), ends_at=start + timedelta(days=7, hours=1),
                            topic="讨论发展对象", created_by="演示数据"))
    session.add_all(events)
    session.commit()
    return len(events)


def load_demo_topic(session: Session, now) -> bool:
    """One open discussion topic, unless topics exist already."""
    from models.feedback import Topic
    if session.scalar(select(Topic.id).limit(1)) is not None:
        return False
    session.add(Topic(title="如何在专业学习中发挥党员先锋模范作用？（演示）",
                      question="结合自己的专业和学习生活，谈谈具体的做法。", audience="{}", pinned=True,
                      created_by="演示数据", created_at=now))
    session.commit()
    return True


# 发展党员 in the demo: for each stage, where a person stands, by branch (the step they reached last,
# and how many days ago a step of theirs happened), so that the board shows something due, overdue,
# ready for the next meeting and a 预备期 about to end.
DEMO_DEVELOPMENT = {
    "入党申请人": [("apply", "apply", 45), ("talk", "apply", 70), ("apply", "apply", 12), ("talk", "apply", 25)],
    "入党积极分子": [("contacts", "activist", 400), ("contacts", "activist", 120), ("contacts", "activist", 380),
                 ("education", "activist", 200)],
    "发展对象": [("candidate", "candidate", 20), ("training", "training", 10), ("branch_review", "branch_review", 3),
             ("publicity", "publicity", 30)],
    "预备党员": [("oath", "branch_meeting", 345), ("branch_meeting", "branch_meeting", 40),
             ("oath", "branch_meeting", 150), ("approval", "branch_meeting", 80)],
}


def load_demo_development(session: Session, today) -> int:
    """A class of applicants at every stage (the demo members of those stages and the student of the
    README), dated from today, unless records exist already."""
    from datetime import timedelta

    from models.development import DevRecord, record_step
    from models.devrules import earliest_path, load_rules, nth_working_day
    if session.scalar(select(DevRecord.id).limit(1)) is not None:
        return 0
    rules, made = load_rules(), 0
    people = session.scalars(select(Member).where(Member.stage.in_(tuple(DEMO_DEVELOPMENT)))
                             .order_by(Member.student_no)).all()
    seen: dict[str, int] = {}
    contacts = session.scalars(select(Member.student_no).where(Member.stage == "正式党员")
                               .order_by(Member.student_no).limit(2)).all()
    for member in people:
        n = seen[member.stage] = seen.get(member.stage, -1) + 1
        last, anchor, days_ago = DEMO_DEVELOPMENT[member.stage][n % 4]
        if member.student_no == STUDENT.student_no:
            last, anchor, days_ago = "contacts", "activist", 300
        if last == "education":
            last = "contacts"
        path = earliest_path(rules, last, today - timedelta(days=900), gap_days=7)
        shift = (today - timedelta(days=days_ago)) - path.first(anchor)
        record = DevRecord(member=member, member_id=member.id, stage_before="共青团员")
        session.add(record)
        session.flush()
        for done in path.done:
            if done.on + shift > today:
                break
            details = {"contacts": list(contacts)} if done.key == "contacts" else {}
            if done.key == "branch_meeting":
                details = {"introducers": list(contacts), "votes": {"entitled": 24, "present": 21, "favour": 21}}
            if done.key == "training":
                details = {"training_days": 3}
            on = done.on + shift
            ends_on = nth_working_day(on, rules.step(done.key).window_days)[0] if done.ends_on else None
            record_step(session, record, done.key, on, "演示数据", ends_on, details, check_people=False)
        made += 1
    session.commit()
    return made
