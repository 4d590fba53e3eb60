"""`backup`: the nightly backup (run by cron, docs/部署.md 第 8 节) and when it last ran."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from wxbot.db import db

backup_cli = AppGroup("backup", help="备份数据库和上传的文件。")


@backup_cli.command("run")
def backup_run():
    """备份数据库和上传的文件，删除过期的备份（每天由 cron 运行）。"""
    from models.timeutil import utcnow
    from wxbot.backup import BackupFailed, human_size, run_backup
    try:
        done = run_backup(current_app, utcnow())
    except BackupFailed as exc:
        raise click.ClickException(f"备份失败：{exc}") from None
    click.echo(f"已备份：{done.database_file}（{human_size(done.database_bytes)}）、{done.files_file}")
    if done.removed:
        click.echo(f"删除了过期的备份 {len(done.removed)} 个：{'、'.join(done.removed)}")


@backup_cli.command("status")
def backup_status():
    """最近一次备份的时间、文件和大小。"""
    from models.backups import backup_overdue, last_backup
    from models.timeutil import show, utcnow
    from wxbot import services
    from wxbot.backup import human_size
    last = last_backup(db.session)
    if last is None:
        raise click.ClickException("还没有备份过：按 docs/部署.md 第 8 节设置每日备份。")
    click.echo(f"最近一次备份：{show(last.finished_at, '%Y-%m-%d %H:%M')}（{last.host}）"
               f"\n  数据库 {last.database_file}（{human_size(last.database_bytes)}）\n  文件 {last.files_file}")
    if backup_overdue(last, utcnow(), services.settings().backup.warn_after_hours):
        raise click.ClickException("已经超过预期时间没有新的备份：请检查 cron（journalctl -t wxbot-backup）。")
