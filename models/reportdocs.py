"""The report laid out: the same tables for the console page, the .xlsx (a sheet per section) and the
.docx (an official document: GB/T 9704 margins, 仿宋 body, 黑体 headings, the figures filled into a
narrative frame whose assessment parts read "（待填写）")."""
from __future__ import annotations

import io
from dataclasses import dataclass, field

from models.report import BLANK, figure

UNIT_KINDS = {"school": "学校", "college": "学院", "branch": "支部"}


@dataclass
class Table:
    key: str
    title: str
    columns: list[str]
    rows: list[list] = field(default_factory=list)
    note: str = ""
    links: list[int | None] = field(default_factory=list)  # an event id per row, where a row is one


def _per_unit(report: dict, columns: list[tuple[str, str]]) -> list[list]:
    """One row per sub-unit, then the unit's total."""
    rows = [[c["name"], *(figure(report, key, c["id"]) for key, _ in columns)] for c in report["columns"]]
    rows.append([f"{report['unit']['name']}（合计）" if report["columns"] else report["unit"]["name"],
                 *(figure(report, key) for key, _ in columns)])
    return rows


def tables(report: dict) -> list[Table]:
    kinds = report["meetings"]["kinds"]
    result = [Table("overview", "基本情况", ["单位", "成员", "其中党员（含预备）"],
                    _per_unit(report, [("members", ""), ("party_members", "")]))]
    meeting_rows = []
    for row in _per_unit(report, [(f"held:{k}", "") for k in kinds] + [(f"required:{k}", "") for k in kinds]):
        held, required = row[1:1 + len(kinds)], row[1 + len(kinds):]
        meeting_rows.append([row[0], *(f"{h}/{r}" if r else "—" for h, r in zip(held, required, strict=True))])
    result.append(Table("meetings", "三会一课（按期已开/应开）", ["单位", *kinds], meeting_rows,
                        "应开：本报告期内到期的各周期要求次数（豁免的月份不计）；已开：这些周期内实际召开的次数（超出要求的不重复计）。"))
    result.append(Table("missing", "未按要求召开的会议", ["支部", "会议", "周期", "要求", "应开", "已开"],
                        [[m["unit"], m["kind"], m["period"], m["cadence"], m["required"], m["held"]]
                         for m in report["meetings"]["missing"]], "没有未按要求召开的会议。"
                        if not report["meetings"]["missing"] else ""))
    result.append(Table("held", "召开的组织生活会议",
                        ["日期", "会议", "名称", "应到", "实到", "请假", "缺席", "会议记录"],
                        [[e["date"], e["kind"], e["title"], e["expected"], e["present"], e["leave"], e["absent"],
                          "已提交" if e["minutes"] == "submitted" else ("暂存" if e["minutes"] else "未填写")]
                         for e in report["events"]], links=[e["id"] for e in report["events"]]))
    result.append(Table("attendance", "活动出勤",
                        ["单位", "活动场次", "应到", "实到", "其中迟到", "请假", "缺席", "出勤率%"],
                        _per_unit(report, [(k, "") for k in ("events", "expected", "present", "late", "leave",
                                                             "absent", "present_rate")]),
                        "已结束的活动（含三会一课），按组织单位统计；实到含迟到。"))
    channels = sorted({k for v in report["figures"].values() for k in v if k.startswith("sent:")})
    result.append(Table("study", "理论学习",
                        ["单位", "推送天数", "推送人次", *(f"送达·{c[5:]}" for c in channels), "待下次互动",
                         "过期未送达", "无法送达", "阅读人数", "阅读率%", "阅读次数", "计学分阅读", "阅读时长(小时)",
                         "活动学时(人·小时)"],
                        _per_unit(report, [("push_days", ""), ("pushed", ""), *((c, "") for c in channels),
                                           ("waiting", ""), ("expired", ""), ("unreachable", ""), ("readers", ""),
                                           ("readers_rate", ""), ("reads", ""), ("credited_reads", ""),
                                           ("reading_hours", ""), ("event_hours", "")])))
    result.append(Table("quiz", "每日答题", ["单位", "参与人数", "参与率%", "计分答题次数", "平均答对题数", "正确率%"],
                        _per_unit(report, [(k, "") for k in ("quiz_members", "quiz_members_rate", "quiz_scored",
                                                             "quiz_average_right", "quiz_right_rate")])))
    contest_rows = []
    for contest in report["contests"]:
        places = "；".join(f"{b['unit']} 第 {b['place']}/{b['of']} 名" for b in contest["branches"]) or "—"
        contest_rows.append([contest["date"], contest["title"], contest["members"], contest["average"], places])
    result.append(Table("contests", "知识竞赛", ["日期", "竞赛", "参赛人数", "平均答对题数", "支部排名"], contest_rows,
                        "" if contest_rows else "报告期内本单位成员没有参加竞赛。"))
    result.append(Table("checkins", "活动签到", ["单位", "签到人次"], _per_unit(report, [("checkins", "")]),
                        "本单位成员在报告期内的签到（含参加其他单位的活动）。"))
    stages = report["development"]["stages"]
    result.append(Table("development", "发展党员（截至报告生成时）", ["单位", *stages, "在册合计", "逾期步骤"],
                        _per_unit(report, [*((f"dev:{s}", "") for s in stages), ("dev_records", ""),
                                           ("dev_overdue", "")])))
    result.append(Table("feedback", "留言办理",
                        ["单位", "收到", "已回复", "回复率%", "首次回复中位用时(小时)", "逾期未回复"],
                        _per_unit(report, [(k, "") for k in ("feedback_received", "feedback_answered",
                                                             "feedback_answered_rate", "feedback_median_hours",
                                                             "feedback_overdue")])))
    result.append(Table("completeness", "数据完整性", ["单位", "未提交会议记录的会议", "无出勤记录的活动"],
                        _per_unit(report, [("meetings_without_minutes", ""), ("events_without_attendance", "")])))
    return result


def title_of(report: dict, label: str) -> str:
    return f"{report['unit']['name']}{label}党建工作报告"


# -- .xlsx ----------------------------------------------------------------------------------------

def to_xlsx(report: dict, label: str) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font
    book = Workbook()
    cover = book.active
    cover.title = "说明"
    for row in ([title_of(report, label)], ["单位", report["unit"]["path"]],
                ["时间段", f"{report['first']} 至 {report['last']}"], ["生成时间", report["generated_at"]],
                ["校验码", report["digest"]], ["说明", "每个数字的来源见 docs/报告.md；评价部分由支部填写。"]):
        cover.append(row)
    cover["A1"].font = Font(bold=True, size=14)
    for table in tables(report):
        sheet = book.create_sheet(table.title[:31].replace("/", "／"))
        sheet.append(table.columns)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in table.rows:
            sheet.append(row)
        if table.note:
            sheet.append([])
            sheet.append([table.note])
        sheet.column_dimensions["A"].width = 24
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# -- .docx ----------------------------------------------------------------------------------------

BODY_FONT, HEADING_FONT = "仿宋_GB2312", "黑体"
DOCX_ROWS = 60  # a list longer than this (a school's meetings over a year) is printed in the .xlsx only


def _font(run, name: str, size: float, bold: bool = False) -> None:
    """Name the font for every script, so that Word on Windows shows 仿宋 and 黑体 (the East Asian
    slot is the one it reads for Chinese)."""
    from docx.oxml.ns import qn
    from docx.shared import Pt
    run.font.name, run.font.size, run.font.bold = name, Pt(size), bold
    fonts = run._element.get_or_add_rPr().get_or_add_rFonts()
    for slot in ("w:eastAsia", "w:ascii", "w:hAnsi", "w:cs"):
        fonts.set(qn(slot), name)


def _paragraph(doc, text: str, font: str = BODY_FONT, size: float = 16, bold: bool = False, centre: bool = False,
               indent: bool = True):
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Pt
    paragraph = doc.add_paragraph()
    fmt = paragraph.paragraph_format
    fmt.line_spacing, fmt.space_before, fmt.space_after = Pt(28), Pt(0), Pt(0)  # 28 磅: 22 lines a page
    if indent:
        fmt.first_line_indent = Pt(size * 2)
    if centre:
        paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _font(paragraph.add_run(text), font, size, bold)
    return paragraph


def narrative(report: dict, label: str) -> list[tuple[str, list[str]]]:
    """The frame of the report: headings, and paragraphs with the figures filled in. What was
    discussed and how the work went are the branch's to write: those parts read （待填写）."""
    total = report["figures"]["total"]
    f = lambda key: total.get(key, 0)  # noqa: E731 - a short reader for the sentences below
    missing = report["meetings"]["missing"]
    kinds = "、".join(sorted({m["kind"] for m in missing})) if missing else ""
    return [
        ("一、基本情况", [f"{report['unit']['path']}现有成员 {f('members')} 人，其中党员（含预备党员）"
                       f"{f('party_members')} 人。本报告统计 {report['first']} 至 {report['last']} 的工作情况。"]),
        ("二、组织生活开展情况", [
            f"按要求应召开组织生活会议 {f('meetings_required')} 次，已召开 {f('meetings_held')} 次"
            + (f"，{len(missing)} 项未按要求召开（{kinds}），明细见附表。" if missing else "，均按要求召开。"),
            f"报告期内共组织活动 {f('events')} 场，应到 {f('expected')} 人次，实到 {f('present')} 人次，"
            f"请假 {f('leave')} 人次，缺席 {f('absent')} 人次，出勤率 {f('present_rate')}%。",
            f"会议主要内容和成效：{BLANK}"]),
        ("三、理论学习情况", [
            f"推送学习内容 {f('push_days')} 天，共 {f('pushed')} 人次；{f('readers')} 人阅读，阅读率 "
            f"{f('readers_rate')}%，累计阅读 {f('reading_hours')} 小时；参加活动获得学时 {f('event_hours')} 人·小时。",
            f"每日答题 {f('quiz_members')} 人参与（参与率 {f('quiz_members_rate')}%），正确率 {f('quiz_right_rate')}%；"
            f"参加知识竞赛 {f('contests')} 场。",
            f"学习中的特色做法：{BLANK}"]),
        ("四、发展党员工作", [
            f"正在培养考察（入党申请人至预备党员）{f('dev_records')} 人，其中下一步已过期限的 {f('dev_overdue')} 人。",
            f"培养教育和考察情况：{BLANK}"]),
        ("五、联系服务党员群众", [
            f"收到留言 {f('feedback_received')} 条，已回复 {f('feedback_answered')} 条（回复率 "
            f"{f('feedback_answered_rate')}%），首次回复用时中位数 {f('feedback_median_hours')} 小时，"
            f"逾期未回复 {f('feedback_overdue')} 条。"]),
        ("六、数据完整性", [
            f"未提交会议记录的会议 {f('meetings_without_minutes')} 次，无出勤记录的活动 "
            f"{f('events_without_attendance')} 场。"]),
        ("七、存在的问题", [BLANK]),
        ("八、下一步工作打算", [BLANK]),
    ]


def _add_rows(grid, rows: list[list]) -> None:
    """The table's rows: one row formatted through python-docx, then copied as XML for each row with
    its texts set (formatting every cell anew costs most of a school's document)."""
    from copy import deepcopy

    from docx.oxml.ns import qn
    proto = grid.add_row()
    for cell in proto.cells:
        _font(cell.paragraphs[0].add_run("-"), BODY_FONT, 10.5)
    template = proto._tr
    table = template.getparent()
    table.remove(template)
    for row in rows:
        tr = deepcopy(template)
        for text, value in zip(tr.iter(qn("w:t")), row, strict=True):
            text.text = str(value)
        table.append(tr)


def to_docx(report: dict, label: str) -> bytes:
    from docx import Document
    from docx.shared import Mm, Pt
    doc = Document()
    section = doc.sections[0]
    # GB/T 9704-2012: A4, 天头 37 mm, 订口 28 mm, 版心 156 x 225 mm.
    section.page_width, section.page_height = Mm(210), Mm(297)
    section.top_margin, section.bottom_margin = Mm(37), Mm(35)
    section.left_margin, section.right_margin = Mm(28), Mm(26)
    normal = doc.styles["Normal"]
    normal.font.name, normal.font.size = BODY_FONT, Pt(16)
    normal.element.get_or_add_rPr().get_or_add_rFonts().set(
        "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}eastAsia", BODY_FONT)
    _paragraph(doc, title_of(report, label), HEADING_FONT, 22, centre=True, indent=False)
    _paragraph(doc, f"（{report['first']} 至 {report['last']}）", BODY_FONT, 16, centre=True, indent=False)
    for heading, paragraphs in narrative(report, label):
        _paragraph(doc, heading, HEADING_FONT, 16)
        for text in paragraphs:
            _paragraph(doc, text)
    _paragraph(doc, "附表", HEADING_FONT, 16, indent=False)
    for table in tables(report):
        _paragraph(doc, table.title, HEADING_FONT, 14, indent=False)
        if not table.rows:
            _paragraph(doc, table.note or "无。", BODY_FONT, 12, indent=False)
            continue
        rows = table.rows[:DOCX_ROWS]
        grid = doc.add_table(rows=1, cols=len(table.columns))
        grid.style = "Table Grid"
        for cell, text in zip(grid.rows[0].cells, table.columns, strict=True):
            cell.text = ""
            _font(cell.paragraphs[0].add_run(str(text)), HEADING_FONT, 10.5)
        _add_rows(grid, rows)
        if len(table.rows) > len(rows):
            _paragraph(doc, f"以上为前 {len(rows)} 行，共 {len(table.rows)} 行，全部见 Excel 版的同名工作表。",
                       BODY_FONT, 10.5, indent=False)
        if table.note:
            _paragraph(doc, table.note, BODY_FONT, 10.5, indent=False)
    _paragraph(doc, f"数据生成于 {report['generated_at']}，校验码 {report['digest']}。数字均由平台记录统计，"
                    "报送后冻结，不随之后的数据变化。", BODY_FONT, 12, indent=False)
    footer = section.footer.paragraphs[0]
    _font(footer.add_run(f"校验码 {report['digest']}"), BODY_FONT, 10.5)
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()
