"""`roster`: the members list from and to files, unbinding, binding codes."""
from __future__ import annotations

import click
from flask.cli import AppGroup

from wxbot import services
from wxbot.commands.common import InputFile, find_unit
from wxbot.db import db

roster_cli = AppGroup("roster", help="成员名单导入导出。")


@roster_cli.command("import")
@click.argument("path", type=InputFile())
@click.option("--skip-bad", is_flag=True, help="跳过有错误的行，导入其余行。")
def roster_import(path: str, skip_bad: bool):
    """导入名单（.xlsx 或 .csv，列：学号 姓名 学院 支部 政治面貌 角色），按学号更新。"""
    from models.roster import apply_rows, audit_role_changes, check_rows, read_roster
    from models.tables import TableError
    try:
        good, errors = check_rows(read_roster(path))
    except TableError as exc:
        raise click.ClickException(str(exc)) from None
    for error in errors:
        click.echo(f"第 {error.line} 行：{error.reason}", err=True)
    if errors and not skip_bad:
        raise click.ClickException(f"有 {len(errors)} 行错误，未导入任何数据。改正后重试，或加 --skip-bad 跳过错误行。")
    with click.progressbar(length=len(good), label="导入中") as bar:
        report = apply_rows(db.session, good, services.settings().school.name, bar.update)
    audit_role_changes(db.session, "命令行", report)
    db.session.commit()
    click.echo(f"导入完成：新增 {report.created} 人，更新 {report.updated} 人，跳过 {len(errors)} 行。")


@roster_cli.command("export")
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
def roster_export(path: str):
    """导出名单到 .xlsx 或 .csv 文件。"""
    from models.roster import roster_rows
    from models.tables import TableError, write_table
    try:
        count = write_table(path, roster_rows(db.session))
    except TableError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"已导出 {count} 名成员到 {path}。")


@roster_cli.command("unbind")
@click.argument("student_no")
def roster_unbind(student_no: str):
    """解除某个学号的微信绑定（本人换了微信时）；原微信会收到通知。"""

    from models.accounts import audit
    from models.members import member_by_student_no
    from models.privacy import unbind_wechat
    member = member_by_student_no(db.session, student_no)
    if member is None:
        raise click.ClickException(f"名单中没有学号 {student_no}")
    if not unbind_wechat(db.session, "命令行", member):
        raise click.ClickException(f"{member.name}（{member.student_no}）没有绑定微信")
    audit(db.session, "命令行", "unbind", "member", member.student_no, f"解除 {member.name} 的微信绑定",
          {"微信": "已绑定"}, {"微信": "未绑定"}, org_unit_id=member.org_unit_id)
    db.session.commit()
    click.echo(f"已解除 {member.name}（{member.student_no}）的微信绑定，原微信会收到通知。")


@roster_cli.command("codes")
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
@click.option("--unit", "unit", default="", help="只导出这个组织（含下级）的成员；重名时写 学院/支部。")
def roster_codes(path: str, unit: str):
    """导出尚未绑定的成员的一次性绑定码（members.bind_mode: code 时使用），发给成员本人。"""
    from sqlalchemy import select

    from models.accounts import audit, subtree_ids
    from models.members import Member
    from models.roster import bind_code_rows
    from models.tables import TableError, write_table
    query = select(Member)
    if unit:
        query = query.where(Member.org_unit_id.in_(subtree_ids(db.session, find_unit(unit).id)))
    rows = bind_code_rows(db.session, query)
    try:
        count = write_table(path, rows)
    except TableError as exc:
        raise click.ClickException(str(exc)) from None
    audit(db.session, "命令行", "export", "member", "", f"导出 {count} 名成员的绑定码")
    db.session.commit()
    click.echo(f"已导出 {count} 名尚未绑定成员的绑定码到 {path}。请逐人发放，用过即失效。")
