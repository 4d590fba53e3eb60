"""`events`: a term's schedule from a file, and the check-in code now."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from wxbot import services
from wxbot.commands.common import InputFile
from wxbot.db import db

events_cli = AppGroup("events", help="活动：导入学期安排、查看当前签到码。")


@events_cli.command("import")
@click.argument("path", type=InputFile())
def events_import(path: str):
    """导入一个学期的活动（.xlsx 或 .csv，格式同管理后台的导入模板）；有任何错误行时不导入。"""
    from models.accounts import audit
    from models.eventforms import import_events, read_events
    from models.tables import TableError
    from models.timeutil import utcnow
    try:
        good, bad = read_events(path, None, utcnow())
    except TableError as exc:
        raise click.ClickException(str(exc)) from None
    with click.progressbar(length=len(good), label="检查中") as bar:
        count = import_events(db.session, good, bad, "命令行", None, lambda _unit: True)
        bar.update(len(good))
    for line, reason in sorted(bad):
        click.echo(f"第 {line} 行：{reason}", err=True)
    if bad:
        db.session.rollback()
        raise click.ClickException(f"有 {len(bad)} 行错误，未导入任何活动。")
    audit(db.session, "命令行", "import", "event", "", f"导入活动 {count} 个", after={"文件": path})
    db.session.commit()
    click.echo(f"导入完成：{count} 个活动。")


@events_cli.command("code")
@click.argument("event_id", type=int)
def events_code(event_id: int):
    """打印活动当前的六位签到码和二维码场景值（没有投影时由组织员念出或写在黑板上）。"""
    from models.checkins import code_for, scene_for, slot_of
    from models.events import Event
    from models.timeutil import show, utcnow
    event = db.session.get(Event, event_id)
    if event is None:
        raise click.ClickException(f"没有编号为 {event_id} 的活动")
    now, seconds = utcnow(), services.settings().events.code_rotate_seconds
    slot, secret = slot_of(now, seconds), current_app.config["SECRET_KEY"]
    left = seconds - int(now.timestamp()) % seconds
    click.echo(f"《{event.title}》 签到时间 {show(event.checkin_opens, '%H:%M')}–{show(event.checkin_closes, '%H:%M')}")
    click.echo(f"签到码：{code_for(secret, event.id, slot)}（{left} 秒后更换，之后 {seconds} 秒内仍有效）")
    click.echo(f"二维码场景值：{scene_for(secret, event.id, slot)}")
