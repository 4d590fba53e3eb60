"""The question bank from the console: edit with the chat preview, retire, import (all or nothing,
bad rows named, or skipped on purpose), export that import reads back, the 纠错 inbox, the figures,
and the subtree boundary on every write."""
import io

from openpyxl import load_workbook
from sqlalchemy import func, select

from models.accounts import AuditLog
from models.questionbank import COLUMNS, read_questions
from models.quiz import Question, QuestionReport
from models.tables import xlsx_bytes
from tests.helpers import csrf_token, signed_in
from tests.quizhelp import make_question

HEADER = ",".join(COLUMNS)


def post(client, path, files=None, **fields):
    data = {**fields, "csrf_token": csrf_token(client, "/admin/questions/new")}
    if files:
        data.update(files)
    return client.post(path, data=data, follow_redirects=True, content_type="multipart/form-data")


def question_form(**fields):
    base = {"kind": "single", "stem": "中国共产党的根本宗旨是什么？", "选项A": "实事求是",
            "选项B": "全心全意为人民服务", "选项C": "艰苦奋斗", "answer": "B", "explanation": "党章总纲。",
            "source": "党章", "tags": "党章",
            "difficulty": "1", "valid_from": "", "valid_until": ""}
    return {**base, **fields}


def count(session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(Question))


def test_an_organiser_writes_a_question_and_previews_it_as_the_chat_shows_it(app, session, school):
    organiser = signed_in(app, "cs")
    token = csrf_token(organiser, "/admin/questions/new")
    preview = organiser.post("/admin/questions/preview", data={**question_form(), "csrf_token": token})
    assert preview.json["text"].splitlines()[:3] == ["第 1/5 题（单选）", "中国共产党的根本宗旨是什么？", "A. 实事求是"]
    assert preview.json["answer"] == "B"
    wrong = organiser.post("/admin/questions/preview", data={**question_form(answer="E"), "csrf_token": token})
    assert "不在选项之中" in wrong.json["error"]
    page = post(organiser, "/admin/questions/new", **question_form(answer="E"))
    assert page.status_code == 400 and "没有保存" in page.get_data(as_text=True) and count(session) == 0
    assert "中国共产党的根本宗旨是什么？" in page.get_data(as_text=True)  # what was typed stays
    page = post(organiser, "/admin/questions/new", **question_form()).get_data(as_text=True)
    question = session.scalars(select(Question)).one()
    assert "题目已保存" in page and question.org_unit_id == school["cs"].parent_id and question.answer == "1"
    assert 'value="B"' in page and "A. 实事求是" in page  # the saved question's form and its preview
    no_options = {"选项A": "", "选项B": "", "选项C": ""}
    judge = question_form(kind="judge", stem="党员必须履行义务。", answer="对", **no_options)
    post(organiser, f"/admin/questions/{question.id}", **judge)
    session.expire_all()
    assert session.get(Question, question.id).kind == "judge" and session.get(Question, question.id).answer == "0"
    post(organiser, f"/admin/questions/{question.id}/retire")
    session.expire_all()
    assert session.get(Question, question.id).active is False
    assert "党员必须履行义务" not in organiser.get("/admin/questions").get_data(as_text=True)
    assert "党员必须履行义务" in organiser.get("/admin/questions?retired=1").get_data(as_text=True)
    actions = session.scalars(select(AuditLog.action).where(AuditLog.object_type == "question")).all()
    assert actions == ["create", "update", "retire"]


def test_an_organiser_reads_but_cannot_change_the_schools_bank(app, session, school):
    school_question = make_question(session, stem="全校题库的题")
    other = make_question(session, stem="马院的题", org_unit_id=school["marx"].parent_id)
    organiser = signed_in(app, "cs")
    listing = organiser.get("/admin/questions").get_data(as_text=True)
    assert "全校题库的题" in listing and "马院的题" not in listing
    page = organiser.get(f"/admin/questions/{school_question.id}").get_data(as_text=True)
    assert "不能修改" in page and "停用这道题" not in page and ">保存<" not in page
    assert organiser.get(f"/admin/questions/{other.id}").status_code == 404
    response = organiser.post(f"/admin/questions/{school_question.id}", data={
        **question_form(stem="改掉"), "csrf_token": csrf_token(organiser, "/admin/questions/new")})
    assert response.status_code == 404
    # An import row naming the school's question by 编号 becomes a new question of the organiser's own.
    content = (HEADER + f"\n{school_question.id},单选,改过的题干,甲,乙,,,,,A,,,,1,,\n").encode()
    post(organiser, "/admin/questions/import", files={"file": (io.BytesIO(content), "bank.csv")})
    session.expire_all()
    assert session.get(Question, school_question.id).stem == "全校题库的题"
    assert session.scalars(select(Question).where(Question.stem == "改过的题干")).one().org_unit_id == \
        school["cs"].parent_id


BAD_FILE = "\n".join([
    HEADER,
    ",单选,党的最高理想是什么？,共产主义,小康社会,,,,,A,党章总纲。,党章,党章,1,,",
    ",单选,没有答案的题,甲,乙,,,,,,,,,1,,",
    ",单选,答案不在选项里,甲,乙,丙,丁,,,E,,,,1,,",
    ",多选,七个选项,1,2,3,4,5,6,7,A,,,,1,,",  # the 7th option pushes every later cell one column right
    ",判断,日期不对,,,,,,,对,,,,1,2026-13-01,",
]) + "\n"


def test_an_import_with_bad_rows_names_each_and_imports_nothing(app, session, school):
    admin = signed_in(app, "admin")
    for encoding in ("utf-8-sig", "gbk"):
        upload = {"file": (io.BytesIO(BAD_FILE.encode(encoding)), "题库.csv")}
        page = post(admin, "/admin/questions/import", files=upload)
        text = page.get_data(as_text=True)
        assert page.status_code == 400 and "有 4 行错误，未导入任何题目" in text
        for line, reason in ((3, "答案为空"), (4, "答案“E”不在选项之中"), (5, "答案“7”不在选项之中"), (6, "生效日期")):
            assert f"第 {line} 行" in text and reason in text
        assert count(session) == 0
    post(admin, "/admin/questions/import", files={"file": (io.BytesIO(BAD_FILE.encode()), "题库.csv")}, skip_bad="1")
    assert count(session) == 1
    seven = [[*COLUMNS[:9], "选项G", *COLUMNS[9:]], ["", "单选", "七个选项", *"1234567", "A", "", "", "", 1, "", ""]]
    page = post(admin, "/admin/questions/import", files={"file": (io.BytesIO(xlsx_bytes(seven)), "题库.xlsx")})
    assert "第 2 行" in page.get_data(as_text=True) and "有 7 个选项（最多 6 个）" in page.get_data(as_text=True)
    assert count(session) == 1


def test_the_export_is_read_back_by_the_import_and_updates_in_place(app, session, school):
    make_question(session, stem="党的根本宗旨是什么？", tags="党章", source="党章总纲")
    make_question(session, kind="judge", stem="预备期为一年。", answer="0", options=())
    admin = signed_in(app, "admin")
    exported = admin.get("/admin/questions/export.xlsx").data
    good, bad = read_questions("题库.xlsx", exported)
    assert bad == [] and [row.fields["stem"] for row in good] == ["党的根本宗旨是什么？", "预备期为一年。"]
    book = load_workbook(io.BytesIO(exported))
    rows = [list(r) for r in book.active.values]
    rows[1][COLUMNS.index("题干")] = "党的根本宗旨是什么？（修订）"
    post(admin, "/admin/questions/import", files={"file": (io.BytesIO(xlsx_bytes(rows)), "题库.xlsx")})
    assert count(session) == 2
    assert session.scalars(select(Question.stem).order_by(Question.id)).all()[0] == "党的根本宗旨是什么？（修订）"
    template = load_workbook(io.BytesIO(admin.get("/admin/questions/template.xlsx").data))
    assert read_questions("t.xlsx", admin.get("/admin/questions/template.xlsx").data)[1] == []
    assert [c.value for c in template.active[1]] == list(COLUMNS)


def test_search_and_the_stale_filter(app, session, school):
    from datetime import date
    make_question(session, stem="二十大报告的题", tags="二十大", valid_until=date(2020, 1, 1))
    make_question(session, stem="党章的题", tags="党章", kind="judge", answer="0", options=())
    admin = signed_in(app, "admin")
    assert "党章的题" not in admin.get("/admin/questions?q=二十大").get_data(as_text=True)
    assert "二十大报告的题" not in admin.get("/admin/questions?tag=党章").get_data(as_text=True)
    assert "二十大报告的题" not in admin.get("/admin/questions?kind=judge").get_data(as_text=True)
    stale = admin.get("/admin/questions?stale=1").get_data(as_text=True)
    assert "二十大报告的题" in stale and "党章的题" not in stale and "已过期" in stale


def test_members_reports_wait_in_the_inbox_until_handled(app, session, school):
    from tests.conftest import phone_for
    from tests.helpers import ChatUser
    make_question(session, org_unit_id=school["cs"].parent_id)
    chat = ChatUser(phone_for(app), "oA")
    chat.say("答题")
    chat.say("纠错 第二个选项有错别字")
    organiser = signed_in(app, "cs")
    listing = organiser.get("/admin/questions").get_data(as_text=True)
    assert 'badge bg-danger">1<' in listing
    inbox = organiser.get("/admin/questions/reports").get_data(as_text=True)
    assert "第二个选项有错别字" in inbox and "待处理" in inbox
    report = session.scalars(select(QuestionReport)).one()
    post(organiser, f"/admin/questions/reports/{report.id}/resolve")
    session.expire_all()
    assert session.get(QuestionReport, report.id).status == "resolved"
    assert "已处理" in organiser.get("/admin/questions/reports").get_data(as_text=True)


def test_statistics_list_hard_questions_and_chart_branches_and_days(make_app, session):
    from tests.conftest import phone_for
    from tests.helpers import ChatUser, make_account, make_branch, make_member
    from tests.quizhelp import wrong_letter
    app = make_app(quiz__hard_question_min_answers=3)
    branch = make_branch(session)
    hard = make_question(session, stem="很难的题", options=("错的选项甲", "对的选项", "错的选项乙"))
    make_account(session, "admin", "admin")
    for n in range(3):
        member = make_member(session, branch=branch, name="答题" + "甲乙丙"[n])
        chat = ChatUser(phone_for(app), f"oStats{n}")
        chat.bind(member)
        chat.say(wrong_letter(chat.say("答题")))
    page = signed_in(app, "admin").get("/admin/questions/statistics").get_data(as_text=True)
    assert f"#{hard.id} 很难的题" in page and "0%" in page
    assert "示范大学近 14 天每日答题数" in page or "全校近 14 天每日答题数" in page
    assert "各支部近 14 天答题" in page and "本科生第一党支部" in page
    row = page[page.index('id="branches"'):]
    assert ('<td data-label="人数">3</td><td data-label="答过题">3</td><td data-label="答题数">3</td>'
            '<td data-label="答对">0</td>') in row


def test_the_command_line_imports_all_or_nothing_and_exports_what_it_reads_back(app, session, runner, tmp_path):
    bad = tmp_path / "题库.csv"
    bad.write_text(BAD_FILE, encoding="gbk")
    result = runner.invoke(args=["questions", "import", str(bad)])
    assert result.exit_code != 0 and "第 3 行：答案为空" in result.output and "未导入任何题目" in result.output
    assert count(session) == 0
    result = runner.invoke(args=["questions", "import", str(bad), "--skip-bad"])
    assert result.exit_code == 0 and "新增 1 道" in result.output and "跳过 4 行" in result.output
    exported = tmp_path / "导出.xlsx"
    assert "已导出 1 道题" in runner.invoke(args=["questions", "export", str(exported)]).output
    result = runner.invoke(args=["questions", "import", str(exported)])
    assert "新增 0 道，更新 1 道" in result.output and count(session) == 1
    assert session.scalar(select(AuditLog).where(AuditLog.object_type == "question", AuditLog.actor == "命令行"))


def test_the_demo_bank_is_loaded_once_with_a_contest_to_try(app, session, runner):
    from models.contest import Contest
    assert "演示题库 69 道题" in runner.invoke(args=["demo", "load"]).output
    assert "演示题库" not in runner.invoke(args=["demo", "load"]).output
    assert count(session) == 69
    questions = session.scalars(select(Question)).all()
    assert all(q.explanation and q.source for q in questions)  # every fact says where it comes from
    contest = session.scalars(select(Contest)).one()
    assert contest.state(contest.starts_at) == "open"


def test_difficulty_may_be_written_as_easy_medium_hard_and_the_page_says_so(app, session, school):
    admin = signed_in(app, "admin")
    assert "易、中、难" in admin.get("/admin/questions/import").get_data(as_text=True)
    rows = [list(COLUMNS)] + [["", "判断", f"第{n}题", *[""] * 6, "对", "", "", "", word, "", ""]
                              for n, word in enumerate(("易", "中", "难", "2"))]
    post(admin, "/admin/questions/import", files={"file": (io.BytesIO(xlsx_bytes(rows)), "题库.xlsx")})
    assert session.scalars(select(Question.difficulty).order_by(Question.id)).all() == [1, 2, 3, 2]
    bad = [list(COLUMNS), ["", "判断", "第9题", *[""] * 6, "对", "", "", "", "超难", "", ""]]
    page = post(admin, "/admin/questions/import", files={"file": (io.BytesIO(xlsx_bytes(bad)), "题库.xlsx")})
    assert "难度“超难”应为 1、2、3 或 易、中、难" in page.get_data(as_text=True)
