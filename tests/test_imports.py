"""Every import reads through one table reader, and none can be made to exhaust the server: a few
bytes of .xlsx that declare a million rows of 16,384 columns, a zip that unpacks to gigabytes, a
workbook of many sheets, a CSV of too many rows. Each is refused within a second or two, with a
sentence naming the limit, through every path an organiser or an operator uses."""
import io
import os
import time
import tracemalloc
import zipfile

import pytest

from models.tables import LIMITS
from tests.helpers import csrf_token, make_account, signed_in

CONTENT_TYPES = ('<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
                 'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
                 'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName='
                 '"/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.'
                 'main+xml"/>{sheets}</Types>')
SHEET_TYPE = ('<Override PartName="/xl/worksheets/sheet{n}.xml" ContentType="application/vnd.openxmlformats-'
              'officedocument.spreadsheetml.worksheet+xml"/>')
ROOT_RELS = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
             '2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
             'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>')
MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PACKAGE_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"


def workbook(sheets: list[str]) -> bytes:
    """An .xlsx written by hand, as an attacker would: each sheet's XML as given."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", CONTENT_TYPES.format(
            sheets="".join(SHEET_TYPE.format(n=n) for n in range(1, len(sheets) + 1))))
        z.writestr("_rels/.rels", ROOT_RELS)
        z.writestr("xl/workbook.xml", f'<workbook xmlns="{MAIN}" xmlns:r="{RELS}"><sheets>' + "".join(
            f'<sheet name="S{n}" sheetId="{n}" r:id="rId{n}"/>' for n in range(1, len(sheets) + 1))
            + "</sheets></workbook>")
        z.writestr("xl/_rels/workbook.xml.rels", f'<Relationships xmlns="{PACKAGE_RELS}">' + "".join(
            f'<Relationship Id="rId{n}" Type="{RELS}/worksheet" Target="worksheets/sheet{n}.xml"/>'
            for n in range(1, len(sheets) + 1)) + "</Relationships>")
        for n, xml in enumerate(sheets, 1):
            z.writestr(f"xl/worksheets/sheet{n}.xml", xml)
    return buffer.getvalue()


def sheet(cells: str, dimension: str = "A1:B2") -> str:
    return f'<worksheet xmlns="{MAIN}"><dimension ref="{dimension}"/><sheetData>{cells}</sheetData></worksheet>'


def far_corner() -> bytes:
    """The probe's 1.6 KB file: one cell at XFD1048576 under a dimension of the whole grid."""
    return workbook([sheet('<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row>',
                           "A1:XFD1048576")])


def far_column() -> bytes:
    return workbook([sheet('<row r="1"><c r="A1" t="inlineStr"><is><t>学号</t></is></c>'
                           '<c r="XFD1" t="inlineStr"><is><t>x</t></is></c></row>', "A1:XFD1")])


def unzips_big() -> bytes:
    """A few hundred KB that unzip to more than the limit."""
    filler = "<row/>" * ((LIMITS.unpacked_bytes // 6) + 10)
    return workbook([sheet(filler)])


def many_sheets() -> bytes:
    return workbook([sheet("")] * (LIMITS.sheets + 1))


BOMBS = {"far_corner": (far_corner, f"超过 {LIMITS.rows} 行"),
         "far_column": (far_column, f"最多读 {LIMITS.columns} 列"),
         "unzips_big": (unzips_big, f"解压后超过 {LIMITS.unpacked_bytes // 2**20} MB"),
         "many_sheets": (many_sheets, f"最多 {LIMITS.sheets} 张")}
CONSOLE_PATHS = {"roster": "/admin/members/import", "events": "/admin/events/import",
                 "questions": "/admin/questions/import", "plan": "/admin/plan/import"}


def measured(call):
    """Run `call`; its result, the seconds it took and the peak memory it allocated (MB)."""
    tracemalloc.start()
    started = time.monotonic()
    try:
        result = call()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return result, time.monotonic() - started, peak / 2**20


def test_the_probes_file_is_small_and_declares_the_whole_grid():
    assert len(far_corner()) < 2000


@pytest.mark.parametrize("bomb", BOMBS)
@pytest.mark.parametrize("path", CONSOLE_PATHS)
def test_every_console_import_refuses_a_file_over_the_limits_at_once(app, session, bomb, path):
    make_account(session, "admin", "admin")
    admin = signed_in(app, "admin")
    token = csrf_token(admin, "/admin/members/import")
    make, sentence = BOMBS[bomb]
    data = make()
    response, seconds, peak = measured(lambda: admin.post(CONSOLE_PATHS[path], data={
        "csrf_token": token, "file": (io.BytesIO(data), "名单.xlsx")}, content_type="multipart/form-data",
        follow_redirects=True))
    page = response.get_data(as_text=True)
    assert sentence in page, page[:3000]
    assert seconds < 2 and peak < 40, (seconds, peak)


@pytest.mark.parametrize("bomb", ["far_corner", "unzips_big"])
@pytest.mark.parametrize("command", [["roster", "import"], ["questions", "import"], ["events", "import"]])
def test_every_command_line_import_refuses_a_file_over_the_limits_at_once(runner, tmp_path, bomb, command):
    make, sentence = BOMBS[bomb]
    path = tmp_path / "导入.xlsx"
    path.write_bytes(make())
    result, seconds, peak = measured(lambda: runner.invoke(args=[*command, str(path)]))
    assert result.exit_code != 0 and sentence in result.output and "Traceback" not in result.output
    assert seconds < 2 and peak < 40, (seconds, peak)


def test_a_csv_of_too_many_rows_or_too_large_a_file_is_refused(runner, tmp_path):
    rows = tmp_path / "名单.csv"
    line = "2024001,张三,计算机学院,第一支部,共青团员\n"
    rows.write_text("学号,姓名,学院,支部,政治面貌\n" + line * (LIMITS.rows + 1), encoding="utf-8")
    result = runner.invoke(args=["roster", "import", str(rows)])
    assert f"超过 {LIMITS.rows} 行" in result.output
    big = tmp_path / "大.csv"
    with open(big, "wb") as f:
        f.truncate(LIMITS.file_bytes + 1)
    result = runner.invoke(args=["roster", "import", str(big)])
    assert f"每次最多导入 {LIMITS.file_bytes // 2**20} MB" in result.output


def test_an_ordinary_workbook_with_gaps_still_reads_every_row_where_it_is(runner, session, tmp_path):
    from openpyxl import Workbook

    from models.members import Member
    book = Workbook()
    book.active.append(["学号", "姓名", "学院", "支部", "政治面貌"])
    book.active.append(["2024101", "张三", "计算机学院", "本科生第一党支部", "共青团员"])
    book.active["A4"], book.active["B4"], book.active["C4"] = "2024102", "李四", "计算机学院"
    book.active["D4"], book.active["E4"] = "本科生第一党支部", "正式党员"
    book.save(tmp_path / "名单.xlsx")
    result = runner.invoke(args=["roster", "import", str(tmp_path / "名单.xlsx"), "--skip-bad"])
    assert "新增 2 人" in result.output, result.output
    assert {m.name for m in session.query(Member)} == {"张三", "李四"}


@pytest.mark.parametrize("command", [["roster", "import"], ["questions", "import"], ["events", "import"]])
def test_a_file_the_service_user_cannot_read_is_told_apart_from_a_missing_one(runner, tmp_path, command):
    private = tmp_path / "root-home"
    private.mkdir()
    (private / "名单.csv").write_text("学号,姓名\n", encoding="utf-8")
    private.chmod(0o700)  # as /root is: `sudo -u wxbot bin/wxbot roster import /root/名单.csv`
    as_root = os.geteuid() == 0
    if as_root:
        os.setegid(65534)
        os.seteuid(65534)  # the service user, for the length of the command
    try:
        result = runner.invoke(args=[*command, str(private / "名单.csv")])
    finally:
        if as_root:
            os.seteuid(0)
            os.setegid(0)
    assert result.exit_code != 0 and "没有权限读取" in result.output and "chmod 644" in result.output
    missing = runner.invoke(args=[*command, str(tmp_path / "没有这个.csv")])
    assert "找不到文件" in missing.output and "does not exist" not in missing.output
