"""The number of statements a page, a message or a job runs does not grow with the data it shows."""
from datetime import timedelta

from models.members import units_above
from models.study import Material, PlanEntry, plan_for
from models.timeutil import local_date, utcnow
from tests.conftest import phone_for
from tests.helpers import ChatUser, make_branch, make_member, statements
from wxbot.study.push import push_day


def published(session, n: int) -> list[Material]:
    materials = [Material(title=f"材料{i}", body="正文", status="published") for i in range(n)]
    session.add_all(materials)
    session.commit()
    return materials


def test_a_week_of_plan_is_read_in_one_statement(app, session):
    member = make_member(session)
    today = local_date()
    for offset, material in enumerate(published(session, 7)):
        session.add(PlanEntry(day=today - timedelta(days=offset), material_id=material.id))
    session.commit()
    units_above(member)  # the member's org path, as every message has it loaded already
    with statements(app) as seen:
        entries = plan_for(session, member, today - timedelta(days=6), today)
        titles = [e.material.title for e in entries]
    assert len(titles) == 7 and len(seen) == 1


def test_pushing_a_day_again_costs_the_same_however_many_entries(app, session):
    ChatUser(phone_for(app), "oReader").bind(make_member(session))
    today = local_date()
    for material in published(session, 6):
        session.add(PlanEntry(day=today, material_id=material.id))
    session.commit()
    push_day(session, today, utcnow())
    with statements(app) as seen:
        again = push_day(session, today, utcnow())
    assert [r.already for r in again] == [True] * 6 and len(seen) <= 3


def organiser(app, session):
    branch = make_branch(session, "计算机学院", "本科生第一党支部")
    for n in range(3):
        ChatUser(phone_for(app), f"oMember{n}").bind(make_member(session, branch=branch))
    chat = ChatUser(phone_for(app), "oOrganiser")
    chat.bind(make_member(session, branch=branch, role="organiser"))
    return chat


def test_broadcast_progress_costs_the_same_for_one_campaign_or_five(app, session):
    chat = organiser(app, session)

    def progress_statements():
        with statements(app) as seen:
            chat.say("群发进度")
        return len([s for s in seen if "campaigns" in s or "deliveries" in s])  # not the follower bookkeeping

    def broadcast():
        for line in ("群发", "本支部", "开会", "确认"):
            chat.say(line)
    broadcast()
    one = progress_statements()
    for _ in range(4):
        broadcast()
    assert "最近的群发" in chat.say("群发进度") and progress_statements() == one


def test_a_broadcast_step_reads_the_org_tree_once(app, session):
    chat = organiser(app, session)
    chat.say("群发")
    with statements(app) as seen:
        assert "共 4 人" in chat.say("本科生第一党支部")
    assert sum("org_units.parent_id" in s and "FROM org_units" in s and "WHERE" not in s for s in seen) == 1
