"""`report`: the report of one unit over a period as a document, for scripts."""
from __future__ import annotations

from datetime import date

import click
from flask.cli import AppGroup

from wxbot import services
from wxbot.db import db

report_cli = AppGroup("report", help="工作报告：生成某单位某时间段的 Word 或 Excel 报告。")


def _day(_ctx, _param, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("需要 YYYY-MM-DD 格式的日期") from None


@report_cli.command("build")
@click.option("--unit", "unit_id", required=True, type=int, help="单位编号（管理后台“组织”页可见）")
@click.option("--from", "first", required=True, callback=_day, help="开始日期，如 2026-09-01")
@click.option("--to", "last", required=True, callback=_day, help="结束日期（含），如 2027-01-31")
@click.option("--format", "fmt", type=click.Choice(["docx", "xlsx"]), default="docx", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), help="输出文件（默认按标题命名）")
def report_build(unit_id: int, first: date, last: date, fmt: str, output: str | None):
    """生成报告文件：数字按生成时的记录统计（与管理后台相同），评价部分为“（待填写）”。"""
    from models.members import OrgUnit
    from models.report import ReportError, build_report, check_range
    from models.reportdocs import title_of, to_docx, to_xlsx
    from models.timeutil import utcnow
    unit = db.session.get(OrgUnit, unit_id)
    if unit is None:
        raise click.ClickException(f"没有编号为 {unit_id} 的单位")
    try:
        first, last, label = check_range(first, last)
    except ReportError as exc:
        raise click.ClickException(str(exc)) from None
    report = build_report(db.reading_session, unit, first, last, utcnow(), services.settings())
    content = to_docx(report, label) if fmt == "docx" else to_xlsx(report, label)
    path = output or f"{title_of(report, label).replace(' ', '')}.{fmt}"
    with open(path, "wb") as out:
        out.write(content)
    click.echo(f"已生成 {path}（校验码 {report['digest']}）")
