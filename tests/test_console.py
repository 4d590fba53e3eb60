"""The organisers' console: sign-in and its protections, scope on every page, the audit log."""
import io
import time

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from models.accounts import AuditLog
from models.members import Member, OrgUnit
from tests.conftest import flush_log, phone_for
from tests.helpers import ChatUser, console_login, csrf_token, make_account, make_branch, make_member


@pytest.fixture
def school(session):
    """Two colleges with a branch each, a member in each, and an admin and an organiser."""
    cs = make_branch(session, "计算机学院", "本科生第一党支部")
    marx = make_branch(session, "马克思主义学院", "教工党支部")
    inside = make_member(session, branch=cs, name="王芳", student_no="2024001")
    outside = make_member(session, branch=marx, name="李华", student_no="T0001")
    make_account(session, "admin", "admin")
    make_account(session, "cs", "organiser", cs.parent)
    return {"cs": cs, "marx": marx, "inside": inside, "outside": outside}


@pytest.fixture
def admin(app, school):
    client = app.test_client()
    assert console_login(client, "admin").status_code == 302
    return client


@pytest.fixture
def organiser(app, school):
    client = app.test_client()
    assert console_login(client, "cs").status_code == 302
    return client


def post(client, path, **data):
    return client.post(path, data={**data, "csrf_token": csrf_token(client, "/admin/")})


def text(response) -> str:
    return response.get_data(as_text=True)


def test_pages_need_a_signed_in_account(app, school):
    response = app.test_client().get("/admin/members")
    assert response.status_code == 302 and "/admin/login" in response.headers["Location"]


def test_a_wrong_password_is_refused(app, school):
    response = console_login(app.test_client(), "admin", "wrong-password")
    assert response.status_code == 401 and "用户名或密码错误" in text(response)


def test_five_failures_lock_the_sign_in_for_that_name_and_address(app, school):
    client = app.test_client()
    for _ in range(5):
        console_login(client, "admin", "wrong-password")
    locked = console_login(client, "admin")
    assert locked.status_code == 429 and "登录失败次数过多" in text(locked)


def test_a_form_without_the_csrf_token_is_refused(app, school):
    client = app.test_client()
    response = client.post("/admin/login", data={"username": "admin", "password": "correct-horse-42"})
    assert response.status_code == 400 and "请刷新页面后重试" in text(response)
    console_login(client, "admin")
    unit = school["cs"]
    refused = client.post(f"/admin/org/{unit.id}/rename", data={"name": "改名"})
    assert refused.status_code == 400


def test_an_idle_session_is_signed_out(admin):
    with admin.session_transaction() as flask_session:
        flask_session["seen"] = time.time() - 31 * 60
    response = admin.get("/admin/members")
    assert response.status_code == 302 and "/admin/login" in response.headers["Location"]
    assert "长时间未操作" in text(admin.get(response.headers["Location"]))


def test_the_session_cookie_is_httponly_and_samesite_and_secure_over_https(make_app, session):
    app = make_app(server__https=True)
    make_account(session, "admin", "admin")
    response = console_login(app.test_client(), "admin")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie


def test_the_dashboard_counts_only_the_organisers_subtree(app, school, session, organiser, admin):
    phone = phone_for(app)
    for openid, member in (("oIn", school["inside"]), ("oOut", school["outside"])):
        ChatUser(phone, openid).bind(member)
    flush_log(app)
    def figure(client, label):
        import re
        return int(re.search(rf'data-figure="{label}">(\d+)<', text(client.get("/admin/"))).group(1))
    assert figure(admin, "已绑定成员") == 2 and figure(organiser, "已绑定成员") == 1
    assert "<svg" in text(organiser.get("/admin/"))


def test_a_member_outside_the_subtree_is_not_found_by_direct_url(organiser, school):
    outside = school["outside"]
    refused = organiser.get(f"/admin/members/{outside.id}")
    assert refused.status_code == 404 and "不在你负责的范围内" in text(refused)
    assert post(organiser, f"/admin/members/{outside.id}", name="x", stage="群众", role="member",
                unit=str(school["cs"].id)).status_code == 404
    assert "李华" not in text(organiser.get("/admin/members?q=T0001"))


def test_member_search_and_filters(admin, school):
    assert "王芳" in text(admin.get("/admin/members?q=王")) and "李华" not in text(admin.get("/admin/members?q=王"))
    by_unit = text(admin.get(f"/admin/members?unit={school['marx'].id}"))
    assert "李华" in by_unit and "王芳" not in by_unit
    assert "李华" not in text(admin.get("/admin/members?bound=yes"))


def test_editing_a_member_is_audited_with_before_and_after(admin, school, session):
    member = school["inside"]
    response = post(admin, f"/admin/members/{member.id}", name="王芳", stage="预备党员", role="member",
                    unit=str(school["cs"].id))
    assert response.status_code == 302
    entry = session.scalar(select(AuditLog).where(AuditLog.object_type == "member"))
    assert entry.actor == "admin" and ("政治面貌", "共青团员", "预备党员") in entry.changes()
    assert "共青团员 → 预备党员" in text(admin.get("/admin/audit"))


def test_an_organiser_cannot_move_a_member_out_of_their_subtree(organiser, school, session):
    member = school["inside"]
    post(organiser, f"/admin/members/{member.id}", name="王芳", stage="群众", role="member",
         unit=str(school["marx"].id))
    session.expire_all()
    assert session.get(Member, member.id).org_unit_id == school["cs"].id


def test_the_org_tree_can_be_changed_and_refuses_deleting_a_unit_with_members(admin, school, session):
    college = school["cs"].parent
    post(admin, f"/admin/org/{college.id}/add", name="研究生党支部")
    new = session.scalar(select(OrgUnit).where(OrgUnit.name == "研究生党支部"))
    post(admin, f"/admin/org/{new.id}/rename", name="研究生第一党支部")
    post(admin, f"/admin/org/{new.id}/move", parent_id=str(school["marx"].parent.id))
    session.expire_all()
    moved = session.get(OrgUnit, new.id)
    assert (moved.name, moved.parent_id) == ("研究生第一党支部", school["marx"].parent.id)
    refused = post(admin, f"/admin/org/{school['cs'].id}/delete")
    assert "还有成员" in text(admin.get(refused.headers["Location"]))
    post(admin, f"/admin/org/{new.id}/delete")
    assert session.scalar(select(OrgUnit).where(OrgUnit.id == new.id)) is None
    assert len(session.scalars(select(AuditLog).where(AuditLog.object_type == "org_unit")).all()) == 4


def test_the_org_tree_page_shows_only_the_subtree(organiser, school):
    page = text(organiser.get("/admin/org"))
    assert "计算机学院" in page and "马克思主义学院" not in page
    assert post(organiser, f"/admin/org/{school['marx'].id}/rename", name="x").status_code == 404


def upload(client, name: str, content: bytes):
    return client.post("/admin/members/import", content_type="multipart/form-data",
                       data={"file": (io.BytesIO(content), name), "csrf_token": csrf_token(client, "/admin/")})


CSV_HEADER = "学号,姓名,学院,支部,政治面貌,角色\n"


def test_a_roster_with_a_bad_row_shows_the_row_and_imports_nothing(admin, session):
    bad = (CSV_HEADER + "2025001,赵磊,计算机学院,本科生第一党支部,群众,\n"
           "2025002,钱七,计算机学院,本科生第一党支部,党员,\n")
    response = upload(admin, "r.csv", bad.encode("utf-8"))
    assert response.status_code == 400 and "第 3 行" in text(response) and "政治面貌“党员”" in text(response)
    assert session.scalar(select(Member).where(Member.student_no == "2025001")) is None
    good = bad.replace("党员,\n", "正式党员,\n")
    assert upload(admin, "r.csv", good.encode("utf-8")).status_code == 302
    assert session.scalar(select(Member).where(Member.student_no == "2025002")).stage == "正式党员"


def test_an_organiser_can_only_import_into_their_subtree(organiser, session):
    rows = CSV_HEADER + "2025003,孙八,马克思主义学院,教工党支部,群众,\n"
    response = upload(organiser, "r.csv", rows.encode("utf-8"))
    assert response.status_code == 400 and "不在你负责的范围内" in text(response)


def test_export_contains_only_the_members_in_scope(organiser):
    response = organiser.get("/admin/members/export.xlsx")
    rows = list(load_workbook(io.BytesIO(response.data)).active.iter_rows(values_only=True))
    assert [r[1] for r in rows[1:]] == ["王芳"]


def test_the_message_log_is_searchable_and_scoped(app, school, organiser, admin):
    phone = phone_for(app)
    inside, outside = ChatUser(phone, "oIn"), ChatUser(phone, "oOut")
    inside.bind(school["inside"])
    outside.bind(school["outside"])
    inside.say("请问下次主题党日是什么时候")
    outside.say("我要请假")
    flush_log(app)
    found = text(organiser.get("/admin/messages?text=主题党日"))
    assert "请问下次主题党日是什么时候" in found
    assert "我要请假" not in text(organiser.get("/admin/messages"))
    assert "我要请假" in text(admin.get("/admin/messages?member=李华"))
    assert "我要请假" not in text(admin.get("/admin/messages?member=李华&end=2020-01-01"))


def test_the_audit_log_is_filtered_and_scoped(admin, organiser, school):
    post(admin, f"/admin/org/{school['marx'].id}/rename", name="教工第一党支部")
    post(organiser, f"/admin/org/{school['cs'].id}/rename", name="本科生党支部")
    def audit_table(client, query=""):
        return text(client.get(f"/admin/audit{query}")).split('id="audit"')[1]
    assert "教工第一党支部" not in audit_table(organiser)
    assert "本科生党支部" in audit_table(organiser)
    mine = audit_table(admin, "?actor=cs&object_type=org_unit")
    assert "本科生党支部" in mine and "教工第一党支部" not in mine


def test_logout_ends_the_session(admin):
    response = post(admin, "/admin/logout")
    assert response.status_code == 302
    assert admin.get("/admin/").status_code == 302


def test_accounts_are_created_and_changed_from_the_command_line(runner, school):
    created = runner.invoke(args=["admin", "create", "lisi", "--role", "organiser", "--org", "马克思主义学院",
                                  "--password", "a-long-password"])
    assert created.exit_code == 0 and "已创建组织员账号 lisi" in created.output
    refused = runner.invoke(args=["admin", "create", "wangwu", "--role", "organiser", "--password", "a-long-password"])
    assert refused.exit_code != 0 and "需要指定负责的组织" in refused.output
    short = runner.invoke(args=["admin", "passwd", "lisi", "--password", "short"])
    assert short.exit_code != 0 and "至少 8 位" in short.output
    assert runner.invoke(args=["admin", "passwd", "lisi", "--password", "another-long-one"]).exit_code == 0


def test_demo_load_creates_two_console_accounts_and_shows_their_passwords_once(app, runner):
    first = runner.invoke(args=["demo", "load"])
    assert "用户名 admin" in first.output and "用户名 organiser" in first.output
    password = first.output.split("用户名 organiser  密码 ")[1].split()[0]
    assert console_login(app.test_client(), "organiser", password).status_code == 302
    assert "密码" not in runner.invoke(args=["demo", "load"]).output


def test_a_college_counts_the_members_of_its_branches(admin, school):
    page = text(admin.get("/admin/org"))
    college_row = page.split('data-unit="计算机学院"')[1].split("</tr>")[0]
    assert '成员（含下级）">1<' in college_row


def test_charts_have_readable_labels_units_and_say_whose_figures_they_are(organiser, school):
    import re
    page = text(organiser.get("/admin/study"))
    chart = page.split("<svg", 1)[1].split("</svg>", 1)[0]
    sizes = [int(n) for n in re.findall(r'font-size="(\d+)"', chart)]
    width = int(re.search(r'viewBox="0 0 (\d+)', chart).group(1))
    assert min(sizes) * 350 / width >= 11  # at least 11 px on a 390-pixel phone
    assert "%</text>" in chart and "计算机学院每日学习完成率" in page and "全部成员" not in page


def test_the_points_ledger_filters_by_day_and_sums_per_member(app, admin, school, session):
    from datetime import timedelta

    from models.points import credit
    from models.timeutil import local_date, utcnow
    points = app.config["WXBOT"].points
    credit(session, school["inside"], "read", "plan:old", utcnow() - timedelta(days=5), points)
    credit(session, school["inside"], "read", "plan:new", utcnow(), points)
    session.commit()
    today = local_date().isoformat()
    page = text(admin.get(f"/admin/points?start={today}"))
    ledger, totals = page.split('id="ledger"')[1], page.split('id="totals"')[1].split("</table>")[0]
    assert ledger.count("阅读学习材料") == 1 and '合计">1<' in totals
    assert '合计">2<' in text(admin.get("/admin/points")).split('id="totals"')[1]


def test_the_audit_filter_offers_study_plan_and_points(admin):
    page = text(admin.get("/admin/audit"))
    assert all(f'value="{kind}"' in page for kind in ("material", "plan", "points"))


def test_the_overview_tells_a_secretary_how_the_system_runs_in_plain_words(app, organiser, session):
    from models.accounts import Scope
    from models.delivery import create_campaign
    from models.timeutil import utcnow
    from tests.test_operations import beat_as
    ChatUser(phone_for(app), "oWaitsForNotice").bind(make_member(session, name="待通知"))
    create_campaign(session, "测试", Scope(None), {"everyone": True}, {"text": "通知"}, utcnow())
    session.commit()
    page = text(organiser.get("/admin/"))
    health = page.split('id="system-health"')[1].split("</ul>")[0]
    assert "发送进程：已停止" in health and "消息发不出去：请联系信息中心" in health
    assert "定时任务：已停止" in health and "今天的学习计划里没有内容" in health
    beat_as(app, "scheduler")
    beat_as(app, "worker")
    health = text(organiser.get("/admin/")).split('id="system-health"')[1].split("</ul>")[0]
    assert "发送进程：正常运行" in health and "定时任务：正常运行" in health and "请联系信息中心" not in health
