"""Study from the console: the material review workflow, the plan calendar and its import, the
study dashboard with its reminder, and the points ledger with adjustments."""
import io
from datetime import timedelta

from openpyxl import Workbook
from sqlalchemy import select

from models.accounts import AuditLog
from models.delivery import Campaign, Delivery
from models.points import PointEntry, credit
from models.study import Material, PlanEntry
from models.timeutil import local_date, utcnow
from tests.helpers import csrf_token, signed_in


def post(client, path, **fields):
    return client.post(path, data={**fields, "csrf_token": csrf_token(client, "/admin/materials/new")},
                       follow_redirects=True)


def test_a_material_is_reviewed_by_someone_else_before_it_is_published(app, session, school):
    author, colleague = signed_in(app, "cs"), signed_in(app, "cs2")
    page = post(author, "/admin/materials/new", title="党史学习", summary="第一课",
                body="# 标题\n\n正文**重点**<script>x</script>").get_data(as_text=True)
    assert "已保存为草稿" in page and "<strong>重点</strong>" in page and "<script>x" not in page
    material = session.scalars(select(Material)).one()
    assert material.audience_spec()["units"] == [school["cs"].parent_id]  # the organiser's own subtree
    page = post(author, f"/admin/materials/{material.id}/approve").get_data(as_text=True)
    assert "现在不能" in page  # a draft is submitted first
    page = post(author, f"/admin/materials/{material.id}/submit").get_data(as_text=True)
    assert "待审核" in page and "审核通过并发布" not in page  # the author is not shown what they may not do
    assert "现在不能" in post(author, f"/admin/materials/{material.id}/approve").get_data(as_text=True)
    queue = colleague.get("/admin/materials?status=submitted").get_data(as_text=True)
    assert "党史学习" in queue
    post(colleague, f"/admin/materials/{material.id}/approve")
    session.expire_all()
    material = session.get(Material, material.id)
    assert material.status == "published" and material.reviewer == "cs2"
    # Editing a published text sends it back to review.
    post(author, f"/admin/materials/{material.id}", title="党史学习（修订）", body="新正文")
    session.expire_all()
    assert session.get(Material, material.id).status == "draft"
    assert session.scalar(select(AuditLog).where(AuditLog.object_type == "material", AuditLog.action == "approve"))


def test_a_reviewer_sends_a_material_back_with_a_note_the_author_sees(app, session, school):
    author, colleague = signed_in(app, "cs"), signed_in(app, "cs2")
    post(author, "/admin/materials/new", title="三会一课", body="正文")
    material = session.scalars(select(Material)).one()
    post(author, f"/admin/materials/{material.id}/submit")
    assert "退回时请写明" in post(colleague, f"/admin/materials/{material.id}/return").get_data(as_text=True)
    post(colleague, f"/admin/materials/{material.id}/return", note="第二段引用请注明出处")
    page = author.get(f"/admin/materials/{material.id}").get_data(as_text=True)
    assert "审核意见：第二段引用请注明出处" in page and "草稿" in page


def checked_form(page_html: str) -> dict:
    """What the browser would send for the material form as shown (checked boxes and field values)."""
    import re
    form = page_html.split('<form method="post" class="bg-white')[1].split("</form>")[0]
    data = {"units": re.findall(r'name="units" value="(\d+)" checked', form),
            "stages": re.findall(r'name="stages" value="([^"]+)" checked', form)}
    for name in ("title", "summary", "source", "tags", "cover"):
        data[name] = re.search(rf'id="{name}" name="{name}"[^>]*value="([^"]*)"', form).group(1)
    data["body"] = re.search(r'<textarea[^>]*name="body"[^>]*>(.*?)</textarea>', form, re.S).group(1)
    return data


def test_the_material_form_shows_the_stored_audience_and_saving_it_unchanged_changes_nothing(app, session, school):
    import html
    organiser, admin = signed_in(app, "cs"), signed_in(app, "admin")
    post(organiser, "/admin/materials/new", title="学院材料", body="正文", stages=["正式党员"])
    material = session.scalars(select(Material)).one()
    stored = material.audience_spec()
    assert stored == {"units": [school["cs"].parent_id], "stages": ["正式党员"]}
    page = admin.get(f"/admin/materials/{material.id}").get_data(as_text=True)
    form = checked_form(page)
    assert form["units"] == [str(school["cs"].parent_id)] and form["stages"] == ["正式党员"]
    post(organiser, f"/admin/materials/{material.id}/submit")
    post(admin, f"/admin/materials/{material.id}/approve")
    post(admin, f"/admin/materials/{material.id}", **{k: html.unescape(v) if isinstance(v, str) else v
                                                      for k, v in form.items()})
    session.expire_all()
    again = session.get(Material, material.id)
    assert again.audience_spec() == stored and again.status == "published"  # still college-only, still published


def test_an_organiser_cannot_edit_another_colleges_material(app, session, school):
    material = Material(title="马院材料", status="draft", author="x", org_unit_id=school["marx"].parent_id)
    session.add(material)
    session.commit()
    organiser = signed_in(app, "cs")
    assert organiser.get(f"/admin/materials/{material.id}").status_code == 404
    assert post(organiser, f"/admin/materials/{material.id}/review").status_code == 404


def published(session, title="学习材料"):
    material = Material(title=title, status="published", author="admin", published_at=utcnow())
    session.add(material)
    session.commit()
    return material


def xlsx(rows) -> io.BytesIO:
    book = Workbook()
    sheet = book.active
    sheet.append(["日期", "材料标题"])
    for row in rows:
        sheet.append(row)
    data = io.BytesIO()
    book.save(data)
    data.seek(0)
    return data


def import_plan(client, data) -> str:
    return client.post("/admin/plan/import", follow_redirects=True,
                       data={"file": (data, "plan.xlsx"), "csrf_token": csrf_token(client, "/admin/plan")}
                       ).get_data(as_text=True)


def test_the_plan_calendar_and_its_import_all_or_nothing(app, session, school):
    admin = signed_in(app, "admin")
    first, second = published(session, "第一课"), published(session, "第二课")
    tomorrow = local_date() + timedelta(days=1)
    post(admin, "/admin/plan", day=tomorrow.isoformat(), material_id=str(first.id))
    page = admin.get(f"/admin/plan?month={tomorrow.strftime('%Y-%m')}").get_data(as_text=True)
    assert "第一课" in page
    bad = xlsx([[(tomorrow + timedelta(days=1)).isoformat(), "第二课"], ["下周一", "第二课"],
                [tomorrow.isoformat(), "没有这课"]])
    page = import_plan(admin, bad)
    assert "第 3 行" in page and "第 4 行" in page and session.query(PlanEntry).count() == 1
    good = xlsx([[tomorrow + timedelta(days=d), "第二课"] for d in range(1, 4)])
    page = import_plan(admin, good)
    assert "已导入 3 条计划" in page and session.query(PlanEntry).count() == 4
    entry = session.scalar(select(PlanEntry).where(PlanEntry.material_id == second.id).order_by(PlanEntry.day))
    post(admin, f"/admin/plan/{entry.id}/delete")
    assert session.query(PlanEntry).count() == 3


def test_the_dashboard_lists_who_has_not_studied_and_reminds_them(app, session, school):
    credit(session, school["oA"], "read", "material:1", utcnow(), app.config["WXBOT"].points)
    session.commit()
    organiser = signed_in(app, "cs")
    page = organiser.get("/admin/study").get_data(as_text=True)
    assert "2024002" in page and "2024001" not in page.split('id="idle"')[1] and "T0001" not in page
    grid = page.split("各支部每日学习完成率</title>")[1].split("</svg>")[0]
    assert "本科生第一党支部" in grid and grid.endswith("50%</text>")  # one of two studied today
    asked = post(organiser, "/admin/study/remind").get_data(as_text=True)
    assert 'data-count="1"' in asked and session.scalar(select(Campaign)) is None  # asked once, with the count
    post(organiser, "/admin/study/remind", confirmed="1")
    campaign = session.scalars(select(Campaign)).one()
    assert set(session.scalars(select(Delivery.openid).where(Delivery.campaign_id == campaign.id))) == {"oB"}


def test_points_are_adjusted_by_an_admin_with_a_reason(app, session, school):
    admin, organiser = signed_in(app, "admin"), signed_in(app, "cs")
    asked = post(admin, "/admin/points/adjust", student_no="2024001", delta="3", reason="线下学习补记")
    assert "确认调整积分" in asked.get_data(as_text=True) and session.scalar(select(PointEntry)) is None
    page = post(admin, "/admin/points/adjust", student_no="2024001", delta="3",
                reason="线下学习补记", confirmed="1").get_data(as_text=True)
    assert "已为" in page and "线下学习补记" in page
    too_many = post(admin, "/admin/points/adjust", student_no="2024001", delta="99999", reason="x", confirmed="1")
    assert "一次最多调整 100 分" in too_many.get_data(as_text=True)
    assert post(organiser, "/admin/points/adjust", student_no="2024001", delta="3", reason="x").status_code == 403
    refused = post(admin, "/admin/points/adjust", student_no="2024001", delta="0", reason="x")
    assert "请填写" in refused.get_data(as_text=True)
    entry = session.scalars(select(PointEntry)).one()
    assert entry.delta == 3 and entry.rule == "adjust" and entry.actor == "admin"
    assert session.scalar(select(AuditLog).where(AuditLog.object_type == "points"))
    assert "T0001" not in organiser.get("/admin/points").get_data(as_text=True)


def test_an_organisers_plan_entry_pushes_only_to_their_own_subtree(app, session, school):
    from wxbot.study.push import push_day
    material = published(session, "全校材料")
    organiser = signed_in(app, "cs")
    assert "不能修改" in organiser.get(f"/admin/materials/{material.id}").get_data(as_text=True)
    assert post(organiser, f"/admin/materials/{material.id}", title="改标题").status_code == 404
    post(organiser, "/admin/plan", day=local_date().isoformat(), material_id=str(material.id))
    push_day(session, local_date(), utcnow())
    campaign = session.scalars(select(Campaign)).one()
    assert set(session.scalars(select(Delivery.openid).where(Delivery.campaign_id == campaign.id))) == {"oA", "oB"}


def attach(client, material_id: int, name: str, content: bytes):
    return client.post(f"/admin/materials/{material_id}/attachments", follow_redirects=True,
                       content_type="multipart/form-data",
                       data={"file": (io.BytesIO(content), name),
                             "csrf_token": csrf_token(client, f"/admin/materials/{material_id}")})


def test_attachments_are_checked_on_upload_and_served_only_through_the_members_link(make_app, session):
    from tests.conftest import phone_for
    from tests.helpers import ChatUser, make_account, make_branch, make_member
    from wxbot.study import study_link
    app = make_app(study__attachment_max_bytes=1024)
    make_account(session, "admin", "admin")
    member = make_member(session, branch=make_branch(session))
    ChatUser(phone_for(app), "oReader").bind(member)
    first, second = published(session, "第一课"), published(session, "第二课")
    admin = signed_in(app, "admin")
    assert "只能上传 PDF" in attach(admin, first.id, "tool.exe", b"MZ...").get_data(as_text=True)
    assert "文件超过" in attach(admin, first.id, "big.pdf", b"%PDF" + b"x" * 2000).get_data(as_text=True)
    assert "附件已上传" in attach(admin, first.id, "讲义.pdf", b"%PDF-1.4 lecture").get_data(as_text=True)
    session.expire_all()
    item = session.get(Material, first.id).attachments[0]
    assert item.filename == "讲义.pdf" and item.size == len(b"%PDF-1.4 lecture")
    base = app.config["WXBOT"].server.public_url
    own = study_link(app, member.id, first.id).removeprefix(base)
    download = app.test_client().get(f"{own}/a/{item.id}")
    assert download.status_code == 200 and download.data == b"%PDF-1.4 lecture"
    other = study_link(app, member.id, second.id).removeprefix(base)
    assert app.test_client().get(f"{other}/a/{item.id}").status_code == 404  # another material's link
    assert app.test_client().get(f"/s/forged-token/a/{item.id}").status_code == 404


def test_the_plan_calendar_offers_delete_only_where_the_viewer_may(app, session, school):
    school_wide = published(session, "全校材料")
    tomorrow = local_date() + timedelta(days=1)
    admin, organiser = signed_in(app, "admin"), signed_in(app, "cs")
    post(admin, "/admin/plan", day=tomorrow.isoformat(), material_id=str(school_wide.id))
    post(organiser, "/admin/plan", day=tomorrow.isoformat(), material_id=str(school_wide.id))
    month = tomorrow.strftime("%Y-%m")
    page = organiser.get(f"/admin/plan?month={month}").get_data(as_text=True)
    own, admins = [session.scalar(select(PlanEntry).where(PlanEntry.org_unit_id == unit)) for unit in
                   (school["cs"].parent_id, None)]
    assert f"/admin/plan/{own.id}/delete" in page and f"/admin/plan/{admins.id}/delete" not in page
    assert f"/admin/plan/{admins.id}/delete" in admin.get(f"/admin/plan?month={month}").get_data(as_text=True)


def test_the_plan_page_says_how_todays_push_would_go(app, session, school):
    admin = signed_in(app, "admin")
    post(admin, "/admin/plan", day=local_date().isoformat(), material_id=str(published(session, "今天的课").id))
    page = admin.get("/admin/plan").get_data(as_text=True)
    assert "今天的学习推送如果现在发出，预计送达方式：客服消息：" in page and "：；" not in page


def test_a_member_who_read_todays_study_through_学习_counts_as_read(app, session, school):
    from urllib.parse import urlparse

    from tests.conftest import phone_for
    from tests.helpers import ChatUser
    from wxbot.study.push import push_day
    admin = signed_in(app, "admin")
    post(admin, "/admin/plan", day=local_date().isoformat(), material_id=str(published(session, "今天的课").id))
    push_day(session, local_date(), utcnow())
    session.commit()
    assert "已读 0" in admin.get("/admin/study").get_data(as_text=True)
    chat = ChatUser(phone_for(app), "oA")
    chat.say("学习")  # not the push's link: the reply's own
    app.test_client().get(urlparse(chat.last.articles[0]["url"]).path)
    assert "已读 1" in admin.get("/admin/study").get_data(as_text=True)


def test_the_overview_counts_everyone_the_days_push_reached_in_all_its_runs(app, session, school):
    from tests.conftest import phone_for
    from tests.helpers import ChatUser, make_member
    from wxbot.study.push import push_day
    admin = signed_in(app, "admin")
    post(admin, "/admin/plan", day=local_date().isoformat(), material_id=str(published(session, "早上的课").id))
    push_day(session, local_date(), utcnow())  # 07:30: the three bound members
    session.commit()
    for n in range(2):  # two more bind during the day; a material added later goes out to everyone new
        ChatUser(phone_for(app), f"oLate{n}").bind(make_member(session, branch=school["cs"]))
    post(admin, "/admin/plan", day=local_date().isoformat(), material_id=str(published(session, "下午的课").id))
    push_day(session, local_date(), utcnow())
    session.commit()
    health = admin.get("/admin/").get_data(as_text=True).split('id="system-health"')[1].split("</ul>")[0]
    assert "起推送给 5 人" in health


def test_a_cover_is_uploaded_served_to_anyone_and_only_pictures_are_taken(app, session, school):
    import io
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    admin = signed_in(app, "admin")
    token = csrf_token(admin, "/admin/materials/new")
    answer = admin.post("/admin/covers", data={"cover": (io.BytesIO(png), "封面.png")},
                        headers={"X-CSRFToken": token}, content_type="multipart/form-data").get_json()
    path = "/covers/" + answer["url"].rsplit("/covers/", 1)[1]
    assert app.test_client().get(path).data == png  # WeChat and members' phones fetch it without a sign-in
    refused = admin.post("/admin/covers", data={"cover": (io.BytesIO(b"<svg onload=alert(1)>"), "x.png")},
                         headers={"X-CSRFToken": token}, content_type="multipart/form-data")
    assert refused.status_code == 400 and "JPG、PNG 或 GIF" in refused.get_json()["error"]
    assert app.test_client().get("/covers/../wxbot.db").status_code == 404
    assert 'id="cover-file"' in admin.get("/admin/materials/new").get_data(as_text=True)
