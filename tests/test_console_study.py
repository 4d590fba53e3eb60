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
    page = post(author, f"/admin/materials/{material.id}/review").get_data(as_text=True)
    assert "由作者以外的人审核" in page
    assert "材料审核通过后才能发布" in post(author, f"/admin/materials/{material.id}/publish").get_data(as_text=True)
    post(colleague, f"/admin/materials/{material.id}/review")
    post(author, f"/admin/materials/{material.id}/publish")
    session.expire_all()
    material = session.get(Material, material.id)
    assert material.status == "published" and material.reviewer == "cs2"
    # Editing a published text sends it back to review.
    post(author, f"/admin/materials/{material.id}", title="党史学习（修订）", body="新正文")
    session.expire_all()
    assert session.get(Material, material.id).status == "draft"
    assert session.scalar(select(AuditLog).where(AuditLog.object_type == "material", AuditLog.action == "review"))


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
    post(organiser, "/admin/study/remind")
    campaign = session.scalars(select(Campaign)).one()
    assert set(session.scalars(select(Delivery.openid).where(Delivery.campaign_id == campaign.id))) == {"oB"}


def test_points_are_adjusted_by_an_admin_with_a_reason(app, session, school):
    admin, organiser = signed_in(app, "admin"), signed_in(app, "cs")
    page = post(admin, "/admin/points/adjust", student_no="2024001", delta="3",
                reason="线下学习补记").get_data(as_text=True)
    assert "已为" in page and "线下学习补记" in page
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
