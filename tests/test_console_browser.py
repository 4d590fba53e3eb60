"""The console in a real browser: Playwright drives Debian's Chromium against the live server.

Screenshots of failing pages are kept under tests/artifacts/ (ignored by git).
"""
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.helpers import PASSWORD, make_account, make_branch, make_member

ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, app, request):
    context = browser.new_context(base_url=app.config["WXBOT"].server.public_url, locale="zh-CN",
                                  viewport={"width": 1100, "height": 800})
    page = context.new_page()
    page.set_default_timeout(10000)
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^\w.-]", "_", request.node.name)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    context.close()


@pytest.fixture
def school(session):
    cs = make_branch(session, "计算机学院", "本科生第一党支部")
    marx = make_branch(session, "马克思主义学院", "教工党支部")
    make_member(session, branch=cs, name="王芳", student_no="2024001")
    outsider = make_member(session, branch=marx, name="李华", student_no="T0001")
    make_account(session, "admin", "admin")
    make_account(session, "cs", "organiser", cs.parent)
    return {"outsider": outsider, "cs": cs}


def sign_in(page, username):
    page.goto("/admin/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("heading", name=re.compile("概况"))).to_be_visible()
    page.wait_for_load_state("load")  # the menu button works once Bootstrap's script has run


def test_an_admin_imports_fixes_edits_sees_the_audit_and_signs_out(page, school, tmp_path):
    sign_in(page, "admin")
    page.get_by_role("link", name="成员").click()
    page.get_by_role("link", name="导入名单").click()
    header = "学号,姓名,学院,支部,政治面貌,角色\n"
    bad = tmp_path / "名单.csv"
    bad.write_text(header + "2025001,赵磊,计算机学院,本科生第一党支部,共青团员,\n"
                            "2025002,钱七,计算机学院,本科生第一党支部,党员,\n", encoding="utf-8")
    page.get_by_label("名单文件").set_input_files(str(bad))
    page.get_by_role("button", name="导入").click()
    expect(page.locator("#import-errors")).to_contain_text("第 3 行")
    expect(page.locator("#import-errors")).to_contain_text("政治面貌“党员”")
    bad.write_text(bad.read_text(encoding="utf-8").replace(",党员,", ",正式党员,"), encoding="utf-8")
    page.get_by_label("名单文件").set_input_files(str(bad))
    page.get_by_role("button", name="导入").click()
    expect(page.get_by_role("alert")).to_contain_text("新增 2 人")

    page.get_by_label("搜索").fill("赵磊")
    page.get_by_role("button", name="查找").click()
    page.get_by_role("row", name=re.compile("赵磊")).get_by_role("link", name="编辑").click()
    page.get_by_label("政治面貌").select_option("入党积极分子")
    page.get_by_role("button", name="保存").click()
    expect(page.get_by_role("alert")).to_contain_text("已保存 赵磊 的信息")

    page.get_by_role("link", name="操作日志").click()
    expect(page.locator("#audit")).to_contain_text("共青团员 → 入党积极分子")

    page.get_by_role("button", name="退出登录").click()
    expect(page.get_by_role("heading", name="登录管理后台")).to_be_visible()
    page.goto("/admin/members")
    expect(page.get_by_role("heading", name="登录管理后台")).to_be_visible()


def test_an_organiser_is_refused_a_member_outside_their_subtree(page, school):
    sign_in(page, "cs")
    page.get_by_role("link", name="成员").click()
    expect(page.get_by_role("table")).to_contain_text("王芳")
    expect(page.get_by_role("table")).not_to_contain_text("李华")
    response = page.goto(f"/admin/members/{school['outsider'].id}")
    assert response.status == 404


def test_the_console_fits_a_phone(browser, app, school):
    context = browser.new_context(base_url=app.config["WXBOT"].server.public_url,
                                  viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    sign_in(page, "admin")
    page.get_by_role("button", name="菜单").click()
    page.get_by_role("link", name="成员").click()
    expect(page.get_by_role("table")).to_contain_text("王芳")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1  # no sideways scrolling of the page itself
    context.close()


def test_an_admin_composes_a_broadcast_sees_the_live_count_and_the_progress(page, school, app, session):
    from sqlalchemy import select

    from models.members import Member
    from tests.conftest import phone_for
    from tests.helpers import ChatUser
    from wxbot.delivery.engine import DeliveryWorker
    for openid, number in (("oBrowserA", "2024001"), ("oBrowserB", "T0001")):
        member = session.scalar(select(Member).where(Member.student_no == number))
        ChatUser(phone_for(app), openid).bind(member)
    sign_in(page, "admin")
    page.get_by_role("link", name="群发").click()
    page.get_by_role("link", name="新建群发").click()
    page.get_by_label("文字").fill("周五下午三点开支部大会")
    expect(page.locator("#count")).to_have_text("0 人")
    page.get_by_label("全部关注者").check()
    expect(page.locator("#count")).to_have_text("2 人")
    page.get_by_role("button", name="群发…").click()
    expect(page.locator("#confirm [data-count]")).to_have_text("共 2 人")  # asked once, with the count
    page.get_by_role("button", name="确认发送").click()
    expect(page.get_by_role("heading", name=re.compile("群发 #"))).to_be_visible()
    DeliveryWorker(app, "browser-worker").step()
    expect(page.locator('[data-key="sent"]')).to_have_text("2", timeout=8000)
    expect(page.locator("#channels")).to_contain_text("客服消息 2")


def test_a_material_is_written_reviewed_published_and_read_on_a_phone(page, school, app, session, browser):
    from sqlalchemy import select

    from models.members import Member
    from models.study import Material
    from wxbot.study import study_link
    sign_in(page, "cs")
    page.get_by_role("link", name="学习材料").first.click()
    page.get_by_role("link", name="新建材料").click()
    page.get_by_label("标题", exact=True).fill("红船精神")
    page.get_by_label("摘要").fill("开天辟地、敢为人先")
    page.get_by_label(re.compile("正文")).fill("## 首创精神\n\n**坚定理想**，百折不挠。")
    page.get_by_role("button", name="保存草稿").click()
    expect(page.locator("#preview strong")).to_have_text("坚定理想")
    page.get_by_role("button", name="提交审核").click()
    expect(page.locator("#state")).to_have_text("待审核")
    expect(page.get_by_role("button", name="审核通过并发布")).to_have_count(0)  # not for the author
    page.get_by_role("button", name="退出登录", exact=True).click()
    sign_in(page, "admin")
    expect(page.get_by_role("link", name=re.compile("学习材料 1"))).to_be_visible()  # the reviewer is told
    page.get_by_role("link", name=re.compile("学习材料")).first.click()
    page.get_by_role("link", name=re.compile("等我审核")).click()
    page.get_by_role("link", name="红船精神").click()
    page.get_by_role("button", name="审核通过并发布").click()
    expect(page.locator("#state")).to_have_text("已发布")
    material = session.scalars(select(Material)).one()
    member = session.scalars(select(Member).where(Member.student_no == "2024001")).one()
    phone = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    reader = phone.new_page()
    reader.goto(study_link(app, member.id, material.id))
    expect(reader.get_by_role("heading", name="红船精神")).to_be_visible()
    expect(reader.locator("#progress")).to_contain_text("满 60 秒计入学习记录")
    assert reader.evaluate("document.documentElement.scrollWidth") <= 391
    phone.close()


@pytest.fixture
def phone_page(browser, app, request):
    """The console in a 390-pixel-wide phone, with a screenshot kept when the test fails."""
    context = browser.new_context(base_url=app.config["WXBOT"].server.public_url, locale="zh-CN",
                                  viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(10000)
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^\w.-]", "_", request.node.name)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    context.close()


def fits_the_phone(page) -> None:
    """No sideways scrolling: neither the page nor any box inside it (a wide table in a scroll box)."""
    assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1
    scrolling = page.evaluate("""Array.from(document.querySelectorAll('main *')).filter((el) =>
        el.offsetParent !== null && getComputedStyle(el).overflowX !== 'visible'
        && el.scrollWidth > el.clientWidth + 1).map((el) => el.id || el.className)""")
    assert scrolling == []


@pytest.mark.parametrize(("path", "key_button"), [("/admin/plan", "加入计划"), ("/admin/org", "改名"),
                                                 ("/admin/messages", "查找"), ("/admin/campaigns/new", "群发…"),
                                                 ("/admin/questions", "搜索"), ("/admin/questions/new", "保存"),
                                                 ("/admin/contests/new", "保存"), ("/admin/events/new", "保存"),
                                                 ("/admin/events/import", "导入"), ("/admin/events/stats", "查看"),
                                                 ("/admin/channels", "保存"), ("/admin/feedback", None),
                                                 ("/admin/topics", "发起"), ("/admin/monitoring", None)],
                         ids=["plan calendar", "org page", "message log", "compose page", "question bank",
                              "question editor", "contest form", "event form", "event import", "attendance",
                              "channel settings", "feedback inbox", "topics", "monitoring"])
def test_console_pages_work_at_phone_width(phone_page, app, school, session, path, key_button):
    from sqlalchemy import select

    from models.members import Member
    from models.study import Material, PlanEntry
    from models.timeutil import local_date
    from tests.conftest import flush_log, phone_for
    from tests.helpers import ChatUser
    material = Material(title="习近平新时代中国特色社会主义思想学习纲要（第一章）", body="正文", status="published")
    session.add(material)
    session.flush()
    session.add(PlanEntry(day=local_date(), material_id=material.id))
    session.commit()
    member = session.scalars(select(Member)).first()
    chat = ChatUser(phone_for(app), "oPhoneWidth")
    chat.bind(member)
    chat.say("请问这周的主题党日安排在什么时间？地点是不是在学院三楼会议室？")
    flush_log(app)
    sign_in(phone_page, "admin")
    phone_page.goto(path)
    fits_the_phone(phone_page)
    if key_button:  # pages that only show figures have no main button
        button = phone_page.get_by_role("button", name=key_button).first
        expect(button).to_be_visible()
        box = button.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390  # the main button is on screen, not to the side
    if path == "/admin/plan":
        expect(phone_page.locator("#plan-list")).to_contain_text("学习纲要")
    if path == "/admin/messages":
        name_cell = phone_page.locator("#messages td[data-label='成员']").first
        assert name_cell.bounding_box()["height"] < 40  # a name on one line, not a character per line


def test_the_simulator_at_phone_width_starts_with_the_chat_and_keeps_the_codes_near(phone_page, app):
    phone_page.goto("/sandbox/")
    chat, controls = phone_page.locator("#chat").bounding_box(), phone_page.locator("#user").bounding_box()
    assert chat["y"] < controls["y"] and chat["y"] < 844  # the chat is on the first screen, the controls below
    codes = phone_page.locator("#qrcodes").bounding_box()
    assert codes["y"] < controls["y"]  # the codes to scan come right after the chat, before the other controls
    phone_page.get_by_role("link", name="扫一扫").click()
    assert phone_page.evaluate("document.getElementById('scan').getBoundingClientRect().top") < 100
    fits_the_phone(phone_page)


def test_the_simulators_buttons_stay_inside_their_card_on_a_desktop(browser, app):
    context = browser.new_context(base_url=app.config["WXBOT"].server.public_url,
                                  viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto("/sandbox/")
    card = page.locator("section.side").first.bounding_box()
    for name in ("关注", "取消关注", "发送图片", "允许订阅通知"):
        box = page.get_by_role("button", name=name, exact=True).bounding_box()
        assert card["x"] <= box["x"] and box["x"] + box["width"] <= card["x"] + card["width"], name
    context.close()


def labels_overlap(page) -> list[str]:
    """Texts of each chart drawn on the page that run into one another, or out of their drawing."""
    return page.evaluate("""() => {
        const found = [];
        for (const svg of document.querySelectorAll('svg.chart')) {
            const frame = svg.getBoundingClientRect();
            const boxes = Array.from(svg.querySelectorAll('text'))
                .map((t) => [t.textContent, t.getBoundingClientRect()]);
            for (const [text, b] of boxes) {
                const out = b.left < frame.left - 1 || b.right > frame.right + 1 || b.top < frame.top - 1;
                if (out) found.push('out:' + text);
            }
            for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
                const [p, a] = boxes[i], [q, b] = boxes[j];
                const across = a.left < b.right - 0.5 && b.left < a.right - 0.5;
                if (across && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5) found.push(p + '|' + q);
            }
        }
        return found;
    }""")


@pytest.mark.parametrize("width", [1280, 390])
def test_chart_labels_never_run_into_each_other(browser, app, school, session, width):
    from datetime import timedelta

    from models.feedback import Post
    from models.timeutil import utcnow
    member = session.scalars(select_members()).first()
    for days in range(30):  # a hit or none on each of the 30 days
        session.add(Post(member_id=member.id, org_unit_id=member.org_unit_id, text="x", shown_text="x",
                         status="visible", screening='[{"category": "示例", "action": "flag", "word": "x"}]'
                         if days % 7 == 3 else "[]", created_at=utcnow() - timedelta(days=days)))
    session.commit()
    context = browser.new_context(base_url=app.config["WXBOT"].server.public_url, locale="zh-CN",
                                  viewport={"width": width, "height": 900})
    page = context.new_page()
    sign_in(page, "admin")
    for path in ("/admin/", "/admin/monitoring", "/admin/questions/stats", "/admin/study"):
        page.goto(path)
        assert labels_overlap(page) == [], path
    context.close()


def select_members():
    from sqlalchemy import select

    from models.members import Member
    return select(Member)


def test_the_members_list_comes_a_page_at_a_time_on_a_phone(phone_page, app, school, session):
    from tests.helpers import make_branch, make_member
    branch = make_branch(session)
    for n in range(45):
        make_member(session, branch=branch, student_no=f"2026{n:04d}")
    sign_in(phone_page, "admin")
    phone_page.goto("/admin/members")
    expect(phone_page.get_by_text("第 1 页（每页 20 人）")).to_be_visible()
    assert phone_page.evaluate("document.documentElement.scrollHeight") < 5000
    phone_page.get_by_role("link", name="下一页").click()
    expect(phone_page.get_by_text("第 2 页")).to_be_visible()
    fits_the_phone(phone_page)


def test_a_question_bank_is_imported_after_fixing_its_bad_row_then_edited_with_a_live_preview(page, school, tmp_path):
    from models.questionbank import COLUMNS
    sign_in(page, "cs")
    page.get_by_role("link", name="题库").click()
    page.get_by_role("link", name="导入").click()
    bank = tmp_path / "题库.csv"
    rows = [",".join(COLUMNS),
            ",单选,中国共产党的根本宗旨是什么？,实事求是,全心全意为人民服务,艰苦奋斗,,,,B,党章总纲。,党章,党章,1,,",
            ",判断,党的最高理想和最终目标是实现共产主义。,,,,,,,是的,党章总纲。,党章,党章,1,,"]
    bank.write_text("\n".join(rows) + "\n", encoding="gbk")
    page.get_by_label("题库文件").set_input_files(str(bank))
    page.get_by_role("button", name="导入").click()
    expect(page.locator("#import-errors")).to_contain_text("第 3 行")
    expect(page.locator("#import-errors")).to_contain_text("判断题的答案“是的”")
    expect(page.get_by_role("alert")).to_contain_text("未导入任何题目")
    page.get_by_role("link", name="题库").first.click()
    expect(page.locator("#questions")).to_contain_text("没有符合条件的题目")
    bank.write_text(bank.read_text(encoding="gbk").replace(",是的,", ",对,"), encoding="gbk")
    page.get_by_role("link", name="导入").click()
    page.get_by_label("题库文件").set_input_files(str(bank))
    page.get_by_role("button", name="导入").click()
    expect(page.get_by_role("alert")).to_contain_text("新增 2 道")

    page.get_by_role("link", name=re.compile("根本宗旨")).click()
    preview = page.locator("#preview")
    expect(preview).to_contain_text("B. 全心全意为人民服务")
    page.get_by_label("选项D").fill("与时俱进")
    expect(preview).to_contain_text("D. 与时俱进")  # the preview follows the typing, before saving
    page.get_by_label("答案").fill("E")
    expect(preview).to_contain_text("不在选项之中")
    page.get_by_label("答案").fill("B")
    expect(page.locator("#preview-answer")).to_have_text("正确答案：B")
    page.get_by_role("button", name="保存").click()
    expect(page.get_by_role("alert")).to_contain_text("题目已保存")
    expect(page.get_by_label("选项D")).to_have_value("与时俱进")


def test_the_simulators_suggestions_take_a_new_user_from_binding_to_a_question(page, app, school, session):
    from tests.quizhelp import make_question
    make_question(session, stem="中国共产党的根本宗旨是什么？")
    page.goto("/sandbox/")
    page.get_by_placeholder("新用户昵称").fill("试用者")
    page.get_by_role("button", name="新用户关注").click()
    expect(page.locator("#chat")).to_contain_text("欢迎")
    page.locator("#text").fill("绑定 2024001 王芳")
    page.get_by_role("button", name="发送", exact=True).click()
    expect(page.locator("#chat")).to_contain_text("绑定成功")
    page.locator("#suggestions").get_by_role("button", name="答题").click()
    expect(page.locator("#chat")).to_contain_text("第 1/1 题（单选）")
    expect(page.locator("#chat")).to_contain_text("中国共产党的根本宗旨是什么？")


@pytest.fixture
def quick_codes(page, make_app):
    """The check-in code changes every 5 seconds (the least allowed) so that the test sees it change;
    built after `page` (whose app the live server would otherwise serve)."""
    return make_app(events__code_rotate_seconds=5)


def test_the_check_in_screen_changes_its_code_and_counts_a_scan(quick_codes, page, school, session):
    from datetime import timedelta

    from sqlalchemy import select

    from models.checkins import scene_for, slot_of
    from models.events import Event
    from models.members import Member
    from models.timeutil import utcnow
    from tests.conftest import phone_for
    from tests.helpers import ChatUser
    app = quick_codes
    now = utcnow()
    event = Event(title="主题党日：重温入党誓词", kind="主题党日", place="图书馆 301", org_unit_id=None,
                  starts_at=now - timedelta(minutes=5), ends_at=now + timedelta(hours=1))
    session.add(event)
    session.commit()
    sign_in(page, "admin")
    page.goto(f"/admin/events/{event.id}/screen")
    code = page.locator("#code")
    expect(code).to_have_text(re.compile(r"^\d{6}$"))
    expect(page.locator("#qr")).to_have_attribute("src", re.compile("showqrcode"))
    first = code.inner_text()
    expect(code).not_to_have_text(first, timeout=12000)  # it changes on its own
    expect(page.locator("#count")).to_have_text("0")
    chat = ChatUser(phone_for(app), "oScreen")
    member = session.scalar(select(Member).where(Member.name == "王芳"))
    chat.bind(member)
    reply = chat.scan(scene_for(app.config["SECRET_KEY"], event.id, slot_of(utcnow(), 5)))
    assert "签到成功" in reply
    expect(page.locator("#count")).to_have_text("1", timeout=6000)
    expect(page.locator("#recent")).to_contain_text("王芳")


def test_a_held_reply_is_approved_in_the_queue_and_appears_on_the_topic_page(page, app, school, session):
    import re as _re

    from sqlalchemy import select

    from models.feedback import Topic
    from models.members import Member
    from tests.conftest import phone_for
    from tests.helpers import ChatUser
    topic = Topic(title="如何发挥党员先锋模范作用", question="结合专业学习谈谈", audience="{}")
    session.add(topic)
    session.commit()
    chat = ChatUser(phone_for(app), "oTopic")
    chat.bind(session.scalar(select(Member).where(Member.name == "王芳")))
    assert "审核通过后会显示" in chat.say(f"回复 {topic.id} 我想谈谈待审示例词的看法")  # the demo lists hold it
    link = _re.search(r'href="([^"]+)"', chat.say("话题")).group(1)
    sign_in(page, "admin")
    page.goto("/admin/feedback?show=held")
    row = page.get_by_role("row", name=_re.compile("待审示例词"))
    row.get_by_role("button", name="通过", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("通过留言")
    page.goto(link)
    expect(page.locator("#replies")).to_contain_text("我想谈谈待审示例词的看法")


def test_a_fixed_paper_is_ticked_from_the_bank_and_the_check_in_area_taken_from_where_one_stands(
        browser, app, school, session):
    from sqlalchemy import select

    from models.contest import Contest
    from tests.quizhelp import make_question
    first, second = make_question(session, stem="党的根本宗旨"), make_question(session, stem="入党年龄")
    context = browser.new_context(base_url=app.config["WXBOT"].server.public_url, locale="zh-CN",
                                  viewport={"width": 1100, "height": 900}, permissions=["geolocation"],
                                  geolocation={"latitude": 26.5783, "longitude": 106.7135})
    page = context.new_page()
    sign_in(page, "admin")
    page.goto("/admin/contests/new")
    page.get_by_label("名称").fill("党章竞赛")
    page.get_by_label("固定试卷", exact=False).first.check()
    page.locator("details.picker summary").click()
    page.get_by_label(f"#{second.id} 入党年龄").check()
    page.get_by_label(f"#{first.id} 党的根本宗旨").check()
    expect(page.locator("#question_ids")).to_have_value(f"{second.id}, {first.id}")  # in the order picked
    page.get_by_label("开始时间").fill("2031-01-01T09:00")
    page.get_by_label("结束时间").fill("2031-01-08T09:00")
    page.get_by_role("button", name="保存").click()
    expect(page.get_by_role("alert")).to_contain_text("竞赛已保存")
    assert session.scalar(select(Contest.question_ids)) == f"[{second.id}, {first.id}]"
    page.goto("/admin/events/new")
    page.get_by_text("签到范围（可选").click()
    page.get_by_role("button", name="用我现在的位置").click()
    expect(page.locator("#latitude")).to_have_value("26.578300")
    expect(page.locator("#radius_m")).to_have_value("200")
    context.close()


def test_a_secretary_records_the_next_step_on_a_phone(browser, app, session):
    """发展党员 at 390 px: the board, a person's timeline and its form, without sideways scrolling."""
    from models.timeutil import local_date
    from wxbot.demo import load_demo, load_demo_development
    load_demo(session, "演示大学")
    load_demo_development(session, local_date())
    make_account(session, "admin", "admin")
    context = browser.new_context(base_url=app.config["WXBOT"].server.public_url,
                                  viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    sign_in(page, "admin")
    page.goto("/admin/development?show=overdue")
    expect(page.locator("#board")).to_contain_text("逾期")
    assert page.evaluate("document.documentElement.scrollWidth") <= 391
    page.locator("#board a").first.click()
    expect(page.locator("#timeline")).to_contain_text("递交入党申请书")
    page.wait_for_load_state("load")
    assert page.evaluate("document.documentElement.scrollWidth") <= 391
    form = page.locator("details[open] form").first
    form.locator("input[name=on]").fill(local_date().isoformat())
    form.get_by_role("button").click()
    expect(page.locator(".alert").first).to_contain_text("已记录")
    page.wait_for_load_state("load")  # measured with its stylesheet applied, as the member sees it
    assert page.evaluate("document.documentElement.scrollWidth") <= 391
    context.close()


def test_the_report_is_read_and_submitted_on_a_phone(phone_page, app, school, session):
    """工作报告 at 390 px: every section stacked without sideways scrolling, the documents a tap away,
    and a branch secretary submits the month's report after the one confirmation."""
    from models.reportflow import Report, ReportPeriod
    from models.timeutil import local_date
    from tests.test_meetings import branch_meeting
    branch_meeting(session, school["cs"], kind="支委会")
    month = local_date().strftime("%Y-%m")
    session.add(ReportPeriod(kind="month", value=month, label="本月", first=local_date().replace(day=1),
                             last=local_date(), deadline=local_date()))
    session.commit()
    make_account(session, "branch", "organiser", school["cs"])
    sign_in(phone_page, "branch")
    phone_page.goto(f"/admin/reports?unit={school['cs'].id}&kind=month&value={month}")
    expect(phone_page.locator("#report-title")).to_contain_text("本科生第一党支部")
    expect(phone_page.locator("#section-held")).to_contain_text("支委会")
    fits_the_phone(phone_page)
    for name in ("下载 Word", "下载 Excel", "报送当前数据"):
        box = phone_page.get_by_role("link" if name.startswith("下载") else "button", name=name).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390 and box["height"] >= 36  # a thumb's target
    phone_page.get_by_role("button", name="报送当前数据").click()
    phone_page.get_by_role("button", name="确认报送").click()
    expect(phone_page.locator("#frozen")).to_contain_text("校验码")
    fits_the_phone(phone_page)
    session.expire_all()
    assert session.query(Report).one().status == "college_review"
