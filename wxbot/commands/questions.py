"""`questions`: the question bank from and to files."""
from __future__ import annotations

import click
from flask.cli import AppGroup

from wxbot.commands.common import InputFile
from wxbot.db import db

questions_cli = AppGroup("questions", help="题库导入导出。")


@questions_cli.command("import")
@click.argument("path", type=InputFile())
@click.option("--skip-bad", is_flag=True, help="跳过有错误的行，导入其余行。")
def questions_import(path: str, skip_bad: bool):
    """导入题库（.xlsx 或 .csv，格式同管理后台的导入模板）到全校题库；填了编号的行更新那道题。"""
    from models.accounts import audit
    from models.questionbank import apply_questions, read_questions
    from models.tables import TableError
    try:
        good, bad = read_questions(path)
    except TableError as exc:
        raise click.ClickException(str(exc)) from None
    for line, reason in bad:
        click.echo(f"第 {line} 行：{reason}", err=True)
    if bad and not skip_bad:
        raise click.ClickException(f"有 {len(bad)} 行错误，未导入任何题目。改正后重试，或加 --skip-bad 跳过错误行。")
    with click.progressbar(length=len(good), label="导入中") as bar:
        created, updated = apply_questions(db.session, good, lambda _q: True, "命令行", None, bar.update)
    audit(db.session, "命令行", "import", "question", "", f"导入题库：新增 {created} 道，更新 {updated} 道",
          after={"文件": path, "跳过错误行": len(bad)})
    db.session.commit()
    click.echo(f"导入完成：新增 {created} 道，更新 {updated} 道，跳过 {len(bad)} 行。")


@questions_cli.command("export")
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
def questions_export(path: str):
    """导出在用的题目到 .xlsx 或 .csv（导入可以读回，编号用于更新）。"""
    from sqlalchemy import select

    from models.questionbank import question_rows
    from models.quiz import Question
    from models.tables import TableError, write_table
    questions = db.session.scalars(select(Question).where(Question.active.is_(True)).order_by(Question.id))
    try:
        count = write_table(path, question_rows(questions))
    except TableError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"已导出 {count} 道题到 {path}。")
