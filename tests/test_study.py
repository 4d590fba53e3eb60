"""Study: today's material in the chat, reading credit on the reading page, points, streaks,
rankings, and the daily push exactly once."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import pytest
from sqlalchemy import func, select

from models.delivery import Campaign, Delivery
from models.followers import Follower
from models.points import MemberPoints, PointEntry, adjust, credit, standing
from models.study import Material, PlanEntry
from models.timeutil import LOCAL_TZ, local_date, utcnow
from tests.conftest import phone_for
from tests.helpers import ChatUser, csrf_token, link_values, make_account, make_branch, make_member, signed_in, wait_for
from wxbot.config import load_settings
from wxbot.delivery.engine import DeliveryWorker
from wxbot.study import study_link
from wxbot.study.push import push_day

ROOT = Path(__file__).resolve().parent.parent


def make_material(session, title="习近平新时代中国特色社会主义思想学习纲要", status="published", audience=None,
                  body="## 第一节\n\n学习**重点**内容。<script>alert(1)</script>", author="organiser"):
    material = Material(title=title, summary="本周重点", body=body, status=status, author=author,
                        audience=json.dumps(audience or {}), published_at=utcnow() if status == "published" else None)
    session.add(material)
    session.commit()
    return material


def plan(session, material, day=None, audience=None):
    entry = PlanEntry(day=day or local_date(), material_id=material.id, audience=json.dumps(audience or {}))
    session.add(entry)
    session.commit()
    return entry


@pytest.fixture
def reader(app, session):
    """A bound member chatting with the account."""
    member = make_member(session, branch=make_branch(session))
    user = ChatUser(phone_for(app), "oReader01")
    user.bind(member)

    def bound():  # under a loaded machine the binding may finish after its reply budget (a late reply)
        session.expire_all()
        return session.scalar(select(Follower.member_id).where(Follower.openid == user.openid)) == member.id
    assert wait_for(bound)
    return user, member


def path_of(url: str) -> str:
    return urlparse(url).path


def test_study_sends_todays_material_with_a_personal_link(app, session, reader):
    user, member = reader
    material = make_material(session)
    plan(session, material)
    user.say("学习")
    assert user.last.kind == "news"
    article = user.last.articles[0]
    assert material.title in article["title"]
    assert link_values(app, article["url"]) == [member.id, material.id]


def test_study_without_a_plan_today_says_so_and_history_lists_the_last_days(app, session, reader):
    user, member = reader
    old = make_material(session, title="党章学习")
    plan(session, old, day=local_date() - timedelta(days=2))
    plan(session, make_material(session, title="太久以前"), day=local_date() - timedelta(days=30))
    assert "今天没有安排学习内容" in user.say("学习")
    listing = user.say("往期")
    assert "党章学习" in listing and "太久以前" not in listing
    links = re.findall(r"https?://[^\s\"<]+/s/[\w-]+", listing)
    assert [member.id, old.id] in [link_values(app, link) for link in links]


def test_drafts_and_other_audiences_are_not_shown(app, session, reader):
    user, member = reader
    plan(session, make_material(session, title="草稿材料", status="draft"))
    plan(session, make_material(session, title="给预备党员", audience={"stages": ["预备党员"]}))
    assert "今天没有安排学习内容" in user.say("学习")
    other = make_material(session, title="别的学院", audience={"units": [make_branch(session, "外国语学院").id]})
    assert app.test_client().get(path_of(study_link(app, member.id, other.id))).status_code == 404


def test_the_reading_page_is_sanitised_and_refuses_tampered_links(app, session, reader):
    _user, member = reader
    material = make_material(session)
    client = app.test_client()
    url = path_of(study_link(app, member.id, material.id))
    page = client.get(url).get_data(as_text=True)
    assert "<strong>重点</strong>" in page and "<script>alert(1)</script>" not in page
    refused = client.get(url[:-3] + "abc")
    assert refused.status_code == 404 and "发送“学习”" in refused.get_data(as_text=True)
    assert client.post(url[:-3] + "abc/beacon", json={"seconds": 15}).status_code == 404


def beacon(app, url, seconds, at):
    from unittest import mock
    with mock.patch("wxbot.study.views.utcnow", return_value=at):
        return app.test_client().post(path_of(url) + "/beacon", json={"seconds": seconds}).get_json()


def test_reading_is_credited_after_the_threshold_and_only_once(app, session, reader):
    _user, member = reader
    material = make_material(session)
    url = study_link(app, member.id, material.id)
    opened = utcnow()
    from unittest import mock
    with mock.patch("wxbot.study.views.utcnow", return_value=opened):
        app.test_client().get(path_of(url))
    assert beacon(app, url, 15, opened + timedelta(seconds=15))["credited"] is False
    # A page cannot claim more time than has passed since it was opened.
    state = beacon(app, url, 600, opened + timedelta(seconds=20))
    assert state["seconds"] <= 22 and state["credited"] is False
    for n in range(3, 6):
        state = beacon(app, url, 15, opened + timedelta(seconds=15 * n))
    assert state["credited"] is True
    beacon(app, url, 15, opened + timedelta(seconds=120))
    session.expire_all()
    assert session.scalar(select(func.sum(PointEntry.delta)).where(PointEntry.member_id == member.id)) == 1


def test_a_link_for_another_member_credits_only_that_member(app, session, reader):
    _user, member = reader
    other = make_member(session, branch=member.org_unit)
    material = make_material(session)
    token = path_of(study_link(app, member.id, material.id)).rsplit("/", 1)[1]
    import base64
    decoded = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert f"{member.id},{material.id}".encode() not in decoded  # no readable ids in the link
    # Any change to a token, or a token made for another kind of page, opens nothing.
    middle = len(token) // 2
    forged = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1:]
    assert app.test_client().get(f"/s/{forged}").status_code == 404
    from wxbot.links import make_token
    assert app.test_client().get(f"/s/{make_token(app, 'receipt', other.id, material.id)}").status_code == 404


def test_the_daily_cap_holds_and_a_capped_reading_still_counts_for_the_streak(app, session, reader):
    _user, member = reader
    settings = app.config["WXBOT"]
    now = utcnow()
    earned = [credit(session, member, "read", f"material:{n}", now, settings.points) for n in range(8)]
    session.commit()
    assert sum(earned) == 6 and earned[6:] == [0, 0]
    assert credit(session, member, "read", "material:1", now, settings.points) == 0  # never twice
    assert standing(session, member, now).today == 6
    # The next day a reading earns nothing at all (a school that gives no points for reading), yet
    # it is on the ledger and the day counts for the streak.
    from wxbot.config import load_settings
    no_points = load_settings({"points.rules": {"read": {"points": 1, "daily_cap": 0}}}).points
    tomorrow = now + timedelta(days=1)
    assert credit(session, member, "read", "material:next-day", tomorrow, no_points) == 0
    session.commit()
    assert standing(session, member, tomorrow).streak == 2
    assert session.scalar(select(PointEntry.delta).where(PointEntry.reference == "material:next-day")) == 0


def test_streaks_follow_shanghai_days_across_midnight_and_earn_the_bonus(app, session, reader):
    _user, member = reader
    points = app.config["WXBOT"].points
    # 23:50 and 00:10 Beijing time are two study days, though the same UTC day.
    start = datetime(2026, 11, 1, 23, 50, tzinfo=LOCAL_TZ).astimezone(UTC)
    credit(session, member, "read", "material:a", start, points)
    credit(session, member, "read", "material:b", start + timedelta(minutes=20), points)
    session.commit()
    assert session.get(MemberPoints, member.id).streak == 2
    for day in range(2, 7):  # days 3 to 7: the seventh day earns the bonus
        credit(session, member, "read", f"material:d{day}", start + timedelta(days=day), points)
    session.commit()
    bonus = session.scalars(select(PointEntry).where(PointEntry.rule == "streak")).all()
    assert [b.delta for b in bonus] == [5]
    assert standing(session, member, start + timedelta(days=6)).streak == 7
    # A day missed: the streak starts again.
    credit(session, member, "read", "material:late", start + timedelta(days=9), points)
    session.commit()
    assert session.get(MemberPoints, member.id).streak == 1


def test_points_and_ranking_replies(app, session, reader):
    user, member = reader
    settings = app.config["WXBOT"]
    rival = make_member(session, branch=member.org_unit, name="李雷")
    for n in range(3):
        credit(session, rival, "read", f"material:{n}", utcnow(), settings.points)
    credit(session, member, "read", "material:0", utcnow(), settings.points)
    adjust(session, member, 1, "线下学习补记", "admin", utcnow())
    session.commit()
    reply = user.say("积分")
    assert "今日：2" in reply and "总计：2" in reply and "支部排名：第 2 名" in reply
    board = user.say("排行")
    assert board.index("李雷 3 分") < board.index(f"{member.name} 2 分")
    assert f"1. 李雷（计算机学院 · {member.org_unit.name}） 3 分" in board.split("全校前十")[1]  # names repeat
    assert "你的位置：支部第 2 名（共 2 人），全校第 2 名，2 分" in board
    newcomer = ChatUser(phone_for(app), "oNewcomer")
    newcomer.bind(make_member(session, branch=member.org_unit))
    assert "还没有积分" in newcomer.say("积分")


def test_the_daily_push_goes_out_once_through_the_engine(app, session, reader):
    _user, member = reader
    material = make_material(session)
    plan(session, material)
    first = push_day(session, local_date(), utcnow())
    again = push_day(session, local_date(), utcnow())
    assert [r.recipients for r in first] == [1] and [r.already for r in again] == [True]
    DeliveryWorker(app, "push-worker").step()
    received = reader[0].received(session, "customer_service")
    assert len(received) == 1 and material.title in json.dumps(received[0], ensure_ascii=False)
    # The link in the message is the member's read link: it leads to their own reading page.
    link = received[0]["articles"][0]["url"]
    response = app.test_client().get(path_of(link))
    assert response.status_code == 302 and link_values(app, response.location) == [member.id, material.id]


def test_the_daily_push_by_hand_twice_and_from_two_processes_sends_once(app, session, backend, reader):
    material = make_material(session)
    plan(session, material)
    settings = backend["settings"]
    env = {"WXBOT_DATABASE_URL": settings["database_url"], "WXBOT_LOG_LEVEL": "WARNING",
           "WXBOT_REDIS_URL": settings.get("redis_url", ""),
           "WXBOT_REDIS_PREFIX": settings.get("redis_prefix", "wxbot"),
           "WXBOT_SERVER__PUBLIC_URL": settings["server.public_url"]}
    import os
    command = [sys.executable, "-m", "flask", "--app", "wxbot", "push", "daily"]
    runs = [subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE, text=True)
            for _ in range(2)]
    outputs = [run.communicate(timeout=60)[0] for run in runs]
    again = subprocess.run(command, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    assert "不再发送" in again.stdout, outputs
    session.expire_all()
    campaigns = session.scalars(select(Campaign).where(Campaign.link_ref == str(material.id))).all()
    assert len(campaigns) == 1
    assert session.scalar(select(func.count()).select_from(Delivery)) == 1


def test_push_daily_for_another_date_and_a_bad_date(app, session, runner, reader):
    material = make_material(session)
    tomorrow = local_date() + timedelta(days=1)
    plan(session, material, day=tomorrow)
    assert "没有已发布的材料" in runner.invoke(args=["push", "daily"]).output
    result = runner.invoke(args=["push", "daily", "--date", tomorrow.isoformat()])
    assert "已交给发送引擎，1 人" in result.output
    assert "日期格式不对" in runner.invoke(args=["push", "daily", "--date", "明天"]).output


def test_the_scheduler_has_the_daily_push_at_the_configured_time(make_app):
    from scheduler import build_scheduler
    app = make_app(push__daily_at="06:45")
    sched = build_scheduler(app)
    sched.start(paused=True)
    try:
        job = sched.get_job("study.daily_push")
        fields = {f.name: str(f) for f in job.trigger.fields}
        assert fields["hour"] == "6" and fields["minute"] == "45"
        assert job.misfire_grace_time == 3600 and job.coalesce is True
    finally:
        sched.shutdown(wait=False)


def test_a_scheduler_started_within_the_hour_after_the_push_time_pushes_at_once(make_app):
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from scheduler import _missed_lately, build_scheduler
    morning = datetime(2026, 11, 26, 7, 50, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert _missed_lately(morning, 7, 30) and not _missed_lately(morning, 6, 30)
    assert not _missed_lately(morning, 8, 0)  # still to come today: the trigger runs it
    sched = build_scheduler(make_app())
    sched.start(paused=True)
    try:  # the interval jobs (event reminders) run once at start, not an interval later
        first = sched.get_job("events.tick").next_run_time
        assert first - datetime.now(ZoneInfo("Asia/Shanghai")) < timedelta(seconds=5)
    finally:
        sched.shutdown(wait=False)



def test_the_demo_school_has_a_month_of_study_and_todays_push(app, session, runner):
    output = runner.invoke(args=["demo", "load"]).output
    assert "学习计划" in output and "推送给 12 名" in output
    entries = session.scalars(select(PlanEntry)).all()
    assert len(entries) == 31 and min(e.day for e in entries) == local_date() - timedelta(days=15)
    DeliveryWorker(app, "demo-worker").step(batches=None)
    pushed = session.scalars(select(Campaign).where(Campaign.link_kind == "study")).one()
    sent = select(func.count()).where(Delivery.campaign_id == pushed.id, Delivery.status == "sent")
    assert session.scalar(sent) == 12
    assert "没有安排" not in runner.invoke(args=["push", "daily"]).output
    assert session.scalar(select(func.count()).select_from(Campaign)) == 1  # run again: nothing new


def test_one_time_zone_setting_moves_every_day_boundary_and_shown_date(make_app, session):
    from models.timeutil import show
    make_app(scheduler__timezone="Europe/London")
    member = make_member(session)
    points = load_settings().points
    late_evening = datetime(2026, 11, 1, 23, 30, tzinfo=UTC)  # London: 1 Nov 23:30; Beijing: 2 Nov 07:30
    credit(session, member, "read", "material:a", late_evening, points)
    credit(session, member, "read", "material:b", late_evening + timedelta(hours=1), points)
    session.commit()
    assert session.get(MemberPoints, member.id).streak == 2  # two London days (one Beijing day)
    assert show(late_evening) == "2026-11-01 23:30"


def test_a_member_moved_to_another_branch_is_ranked_there_at_once(app, session, reader):
    user, member = reader
    credit(session, member, "read", "material:1", utcnow(), app.config["WXBOT"].points)
    session.commit()
    other = make_branch(session, "马克思主义学院", "教工党支部")
    make_account(session, "admin", "admin")
    admin = signed_in(app, "admin")
    admin.post(f"/admin/members/{member.id}", data={"name": member.name, "stage": member.stage, "role": "member",
                                                   "unit": str(other.id), "csrf_token": csrf_token(admin, "/admin/")})
    board = user.say("排行")
    assert "教工党支部 前十" in board and f"1. {member.name} 1 分" in board.split("全校前十")[0]


def read_for_a_minute(app, url, opened):
    from unittest import mock
    with mock.patch("wxbot.study.views.utcnow", return_value=opened):
        app.test_client().get(path_of(url))
    state = None
    for n in range(1, 6):
        state = beacon(app, url, 15, opened + timedelta(seconds=15 * n))
        if state["credited"]:
            return state  # the report that crossed the minute, with the points it earned
    return state


def test_a_material_planned_again_earns_again_on_its_new_day_and_counts_as_study(app, session, reader):
    user, member = reader
    material = make_material(session)
    plan(session, material, day=local_date() - timedelta(days=10))
    plan(session, material)  # the plan's cycle brings it back today
    earlier = utcnow() - timedelta(days=10)
    assert read_for_a_minute(app, study_link(app, member.id, material.id), earlier)["points"] == 1
    user.say("学习")
    today = read_for_a_minute(app, user.last.articles[0]["url"], utcnow())
    assert today["credited"] is True and today["points"] == 1
    assert "今日：1" in user.say("积分") and "连续学习：1 天" in user.say("积分")
    make_account(session, "admin", "admin")
    dashboard = signed_in(app, "admin").get("/admin/study").get_data(as_text=True)
    assert member.student_no not in dashboard.split('id="idle"')[1]  # not listed as "not studied this week"


def test_two_materials_on_one_day_reach_a_member_in_one_push_listing_both(app, session, reader):
    user, member = reader
    school_wide, college = make_material(session, title="全校材料"), make_material(session, title="学院材料")
    plan(session, school_wide)
    plan(session, college, audience={"units": [member.org_unit.parent_id]})
    results = push_day(session, local_date(), utcnow())
    assert [r.recipients for r in results] == [1, 1]
    DeliveryWorker(app, "push-worker").step()
    pushes = user.received(session, "customer_service")
    assert len(pushes) == 1
    article = pushes[0]["articles"][0]
    assert "全校材料" in article["title"] and "2 篇" in article["title"] and "学院材料" in article["description"]
    assert "等 2 篇" in user.say("学习") and "学院材料" in user.last.articles[0]["description"]
    page = app.test_client().get(path_of(user.last.articles[0]["url"])).get_data(as_text=True)
    assert "今天还有" in page and "学院材料" in page
    # An entry planned later that day does not push the member a second time.
    plan(session, make_material(session, title="晚到的材料"))
    push_day(session, local_date(), utcnow())
    DeliveryWorker(app, "push-worker").step()
    assert len(user.received(session, "customer_service")) == 1


def test_ties_share_a_rank_and_the_replies_say_each_thing_once(app, session, reader):
    user, member = reader
    points = app.config["WXBOT"].points
    rivals = [make_member(session, branch=member.org_unit, name=name) for name in ("甲同学", "乙同学")]
    for rival in rivals:
        credit(session, rival, "read", "plan:2026-11-01", utcnow(), points)
    newcomer = ChatUser(phone_for(app), "oNewcomer")
    newcomer.bind(make_member(session, branch=member.org_unit))
    assert "你的位置：还没有积分，学习后就会上榜" in newcomer.say("排行")
    assert "排名：还没有积分" in newcomer.say("积分") and "发送“学习”开始今天的学习" in newcomer.last.text
    credit(session, member, "read", "plan:2026-11-02", utcnow(), points)
    session.commit()
    board = user.say("排行").split("全校前十")[0]
    assert "1. 甲同学 1 分" in board and "1. 乙同学 1 分" in board and f"1. {member.name} 1 分" in board
    mine = user.say("积分")
    assert "全校排名：第 1 名" in mine and "1 分" not in mine.split("全校排名")[1]  # the total is shown once, above
    assert "今天的学习已完成" in mine


def test_history_lists_titles_as_links(app, session, reader):
    user, member = reader
    old = make_material(session, title="党章<第一章>")
    plan(session, old, day=local_date() - timedelta(days=1))
    listing = user.say("往期")
    assert '">党章&lt;第一章&gt;</a>' in listing and "<a href=\"http" in listing
