"""What a new organiser runs into with members: imports in the encodings Excel saves, export of what
the list shows, adding one member, unbinding a WeChat user, and the import template."""
import io

from openpyxl import load_workbook
from sqlalchemy import select

from models.accounts import AuditLog
from models.followers import Follower
from models.members import Member
from tests.conftest import phone_for
from tests.helpers import ChatUser, csrf_token, signed_in

HEADER = "学号,姓名,学院,支部,政治面貌,角色\n"


def upload(client, name: str, content: bytes):
    return client.post("/admin/members/import", content_type="multipart/form-data",
                       data={"file": (io.BytesIO(content), name), "csrf_token": csrf_token(client, "/admin/")})


def text(response) -> str:
    return response.get_data(as_text=True)


def test_a_gbk_csv_from_excel_on_chinese_windows_imports_in_the_console_and_the_cli(app, school, session, runner,
                                                                                   tmp_path):
    rows = HEADER + "2025101,赵磊,计算机学院,本科生第一党支部,群众,\n"
    assert upload(signed_in(app, "admin"), "名单.csv", rows.encode("gbk")).status_code == 302
    assert session.scalar(select(Member).where(Member.student_no == "2025101")).name == "赵磊"
    (tmp_path / "名单.csv").write_bytes((HEADER + "2025102,钱七,计算机学院,本科生第一党支部,群众,\n").encode("gb18030"))
    result = runner.invoke(args=["roster", "import", str(tmp_path / "名单.csv")])
    assert result.exit_code == 0 and "新增 1 人" in result.output
    assert upload(signed_in(app, "admin"), "名单.csv", "\ufeff".encode() + rows.encode()).status_code == 302  # BOM


def test_an_unreadable_file_gets_one_clear_sentence(app, school, runner, tmp_path):
    refused = upload(signed_in(app, "admin"), "名单.csv", HEADER.encode("utf-16") + b"\xff\xfe\x00\xd8")
    assert refused.status_code == 400 and "无法识别文件的编码" in text(refused)
    (tmp_path / "bad.csv").write_bytes(b"\xff\xfe\x00\xd8\x00\x00")
    result = runner.invoke(args=["roster", "import", str(tmp_path / "bad.csv")])
    assert result.exit_code != 0 and "无法识别文件的编码" in result.output and "Traceback" not in result.output


def test_a_missing_branch_is_reported_as_missing_not_out_of_scope(app, school):
    rows = HEADER + "2025103,孙八,计算机学院,不存在的支部,群众,\n"
    refused = upload(signed_in(app, "cs"), "名单.csv", rows.encode())
    assert refused.status_code == 400 and "不存在" in text(refused) and "不在你负责的范围内" not in text(refused)


def test_export_contains_what_the_filtered_list_shows(app, school, session):
    admin = signed_in(app, "admin")
    exported = admin.get("/admin/members/export.xlsx?stage=正式党员")
    numbers = [row[0] for row in load_workbook(io.BytesIO(exported.data)).active.iter_rows(min_row=2, values_only=True)]
    expected = session.scalars(select(Member.student_no).where(Member.stage == "正式党员")).all()
    assert sorted(numbers) == sorted(expected) and len(numbers) < session.query(Member).count()
    assert "export.xlsx?stage=" in text(admin.get("/admin/members?stage=正式党员"))


def test_an_organiser_adds_one_member_in_the_console_within_their_scope(app, school, session):
    organiser = signed_in(app, "cs")
    page = text(organiser.get("/admin/members/new"))
    assert "马克思主义学院" not in page and "管理员" not in page.split('id="role"')[1].split("</select>")[0]
    token = csrf_token(organiser, "/admin/members/new")
    added = organiser.post("/admin/members/new", data={"student_no": "２０２５２０１", "name": "周新", "stage": "群众",
                                                       "role": "member", "unit": str(school["cs"].id),
                                                       "csrf_token": token}, follow_redirects=True)
    assert "已新增 周新（2025201）" in text(added)
    again = organiser.post("/admin/members/new", data={"student_no": "2025201", "name": "周新", "stage": "群众",
                                                       "role": "member", "unit": str(school["cs"].id),
                                                       "csrf_token": token})
    assert again.status_code == 400 and "已在名单中" in text(again)
    outside = organiser.post("/admin/members/new", data={"student_no": "2025202", "name": "吴外", "stage": "群众",
                                                         "role": "member", "unit": str(school["marx"].id),
                                                         "csrf_token": token})
    assert outside.status_code == 400 and session.scalar(select(Member).where(Member.student_no == "2025202")) is None
    assert session.scalar(select(AuditLog).where(AuditLog.object_id == "2025201", AuditLog.action == "create"))


def test_the_import_template_has_the_columns_and_reads_back(app, school):
    organiser = signed_in(app, "cs")
    template = organiser.get("/admin/members/template.xlsx")
    rows = list(load_workbook(io.BytesIO(template.data)).active.iter_rows(values_only=True))
    assert list(rows[0]) == ["学号", "姓名", "学院", "支部", "政治面貌", "角色"] and rows[1][2] == "计算机学院"
    assert "下载导入模板" in text(organiser.get("/admin/members/import"))
    assert upload(organiser, "模板.xlsx", template.data).status_code == 302  # the example row imports as it is


def test_an_organiser_unbinds_a_wechat_user_who_is_told_and_the_number_is_free_again(app, school, session, runner):
    member = school["oB"]
    organiser = signed_in(app, "cs")
    assert "解除微信绑定" in text(organiser.get(f"/admin/members/{member.id}"))
    organiser.post(f"/admin/members/{member.id}/unbind", data={"csrf_token": csrf_token(organiser, "/admin/")})
    session.expire_all()
    assert session.scalar(select(Follower).where(Follower.openid == "oB")).member_id is None
    from wxbot.delivery.engine import DeliveryWorker
    DeliveryWorker(app, "w").step()
    told = ChatUser(phone_for(app), "oB").received(session, "customer_service")
    assert "解除与" in told[-1]["content"] and member.student_no in told[-1]["content"]
    new_phone = ChatUser(phone_for(app), "oNewPhone")
    new_phone.follow()
    assert "绑定成功" in new_phone.bind(member)
    assert session.scalar(select(AuditLog).where(AuditLog.action == "unbind"))
    result = runner.invoke(args=["roster", "unbind", member.student_no])
    assert result.exit_code == 0 and "已解除" in result.output
