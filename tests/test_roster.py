"""Roster import and export from the command line."""
import csv

from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from models.members import Member, OrgUnit
from models.timeutil import utcnow
from tests.conftest import phone_for
from tests.helpers import ChatUser

HEADER = ["学号", "姓名", "学院", "支部", "政治面貌", "角色"]
GOOD = [["2025001", "王芳", "计算机学院", "本科生第一党支部", "入党积极分子", "成员"],
        ["2025002", "李娜", "计算机学院", "研究生党支部", "正式党员", "组织员"],
        ["２０２５００３", "赵磊", "文学院", "本科生党支部", "", ""]]


def write_csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8-sig") as f:
        csv.writer(f).writerows([HEADER] + rows)
    return str(path)


def write_xlsx(path, rows):
    book = Workbook()
    for row in [HEADER] + rows:
        book.active.append(row)
    book.save(path)
    return str(path)


def count_members(session):
    session.expire_all()
    return session.scalar(select(func.count()).select_from(Member))


def test_importing_a_csv_creates_members_and_the_org_tree(runner, session, tmp_path):
    result = runner.invoke(args=["roster", "import", write_csv(tmp_path / "r.csv", GOOD)])
    assert result.exit_code == 0, result.output
    assert "新增 3 人" in result.output
    zhao = session.scalar(select(Member).where(Member.student_no == "2025003"))
    assert (zhao.org_unit.path(), zhao.stage, zhao.role) == ("文学院 / 本科生党支部", "群众", "member")
    assert session.scalar(select(Member).where(Member.name == "李娜")).role == "organiser"
    assert session.scalar(select(func.count()).select_from(OrgUnit).where(OrgUnit.kind == "branch")) == 3


def test_importing_an_xlsx_works_the_same(runner, session, tmp_path):
    result = runner.invoke(args=["roster", "import", write_xlsx(tmp_path / "r.xlsx", GOOD)])
    assert result.exit_code == 0, result.output
    assert count_members(session) == 3


def test_a_file_with_bad_rows_lists_each_and_imports_nothing(runner, session, tmp_path):
    rows = GOOD + [["", "无学号", "计算机学院", "本科生第一党支部", "群众", ""],
                   ["2025009", "钱七", "计算机学院", "本科生第一党支部", "党员", ""],
                   ["2025001", "重复", "计算机学院", "本科生第一党支部", "群众", ""],
                   ["2025010", "孙八", "计算机学院", "本科生第一党支部", "群众", "校长"]]
    result = runner.invoke(args=["roster", "import", write_csv(tmp_path / "bad.csv", rows)])
    assert result.exit_code != 0
    assert "第 5 行：学号为空" in result.output
    assert "第 6 行：政治面貌“党员”" in result.output
    assert "第 7 行：学号 2025001 与第 2 行重复" in result.output
    assert "第 8 行：角色“校长”" in result.output
    assert "未导入任何数据" in result.output and count_members(session) == 0


def test_skip_bad_imports_the_good_rows(runner, session, tmp_path):
    rows = GOOD + [["2025009", "钱七", "计算机学院", "本科生第一党支部", "党员", ""]]
    result = runner.invoke(args=["roster", "import", "--skip-bad", write_csv(tmp_path / "bad.csv", rows)])
    assert result.exit_code == 0 and "跳过 1 行" in result.output
    assert count_members(session) == 3


def test_importing_again_updates_by_student_number_and_keeps_bindings(runner, session, phone, tmp_path):
    runner.invoke(args=["roster", "import", write_csv(tmp_path / "r.csv", GOOD)])
    user = ChatUser(phone, "oRosterUser")
    user.follow()
    user.say("绑定 2025001 王芳")
    moved = [["2025001", "王芳", "计算机学院", "研究生党支部", "发展对象", "成员"]]
    result = runner.invoke(args=["roster", "import", write_csv(tmp_path / "r2.csv", moved)])
    assert "更新 1 人" in result.output and count_members(session) == 3
    profile = user.say("我的")
    assert "研究生党支部" in profile and "发展对象" in profile


def test_a_file_without_the_required_columns_is_refused(runner, tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("name,number\n张三,1\n", encoding="utf-8")
    result = runner.invoke(args=["roster", "import", str(path)])
    assert result.exit_code != 0 and "缺少列：学号、姓名、学院、支部" in result.output


def test_export_writes_what_import_reads(runner, session, tmp_path):
    runner.invoke(args=["roster", "import", write_csv(tmp_path / "r.csv", GOOD)])
    out = tmp_path / "out.xlsx"
    result = runner.invoke(args=["roster", "export", str(out)])
    assert result.exit_code == 0 and "已导出 3 名成员" in result.output
    rows = list(load_workbook(out).active.iter_rows(values_only=True))
    assert list(rows[0]) == HEADER and ("2025002", "李娜", "计算机学院", "研究生党支部", "正式党员", "组织员") in rows
    again = runner.invoke(args=["roster", "import", str(out)])
    assert "更新 3 人" in again.output


def test_the_demo_school_loads_once(runner, session):
    first = runner.invoke(args=["demo", "load"])
    assert "43 名成员" in first.output and count_members(session) == 43
    assert "12 名演示成员关注并绑定" in first.output
    runner.invoke(args=["demo", "load"])
    assert count_members(session) == 43
    roles = session.scalars(select(Member.role).where(Member.role != "member")).all()
    assert sorted(roles) == ["admin", "organiser"]
    names = session.scalars(select(Member.name)).all()
    assert len(set(names)) == len(names)  # nobody twice in the school
    assert "学生 陈晓红（2023100）" in first.output


def test_the_demo_student_is_left_to_bind_in_the_simulator_and_the_school_board_names_colleges(app, runner, session):
    from models.followers import Follower
    from models.points import credit
    runner.invoke(args=["demo", "load"])
    student = session.scalar(select(Member).where(Member.student_no == "2023100"))
    assert session.scalar(select(Follower).where(Follower.member_id == student.id)) is None
    chat = ChatUser(phone_for(app), "oDemoStudent")
    assert "陈晓红" in chat.say("绑定 2023100 陈晓红")
    assert "群发" not in chat.say("帮助")  # a student's help, not an organiser's
    settings = app.config["WXBOT"]
    credit(session, student, "event", "demo:1", utcnow(), settings.points, points=50)
    session.commit()
    assert "陈晓红（计算机学院 · 本科生第一党支部）" in chat.say("排行")
