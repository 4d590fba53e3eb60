"""`flask --app wxbot ...` commands: db, demo, urls, menu, roster, chat, scheduler."""
from __future__ import annotations

import sys

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from wxbot.config import is_sandbox
from wxbot.db import db

db_cli = AppGroup("db", help="数据库迁移。")
demo_cli = AppGroup("demo", help="演示数据。")
menu_cli = AppGroup("menu", help="自定义菜单。")
roster_cli = AppGroup("roster", help="成员名单导入导出。")


@db_cli.command("upgrade")
@click.option("--revision", default="head", help="目标版本，默认最新。")
def db_upgrade(revision: str):
    """把数据库迁移到最新结构。"""
    from wxbot.migrate import upgrade
    upgrade(revision)
    click.echo("数据库已是最新结构。")


@demo_cli.command("load")
def demo_load():
    """首次运行时载入演示学校（已有成员则跳过）。"""
    from wxbot.demo import ADMIN, ORGANISER, load_demo
    if load_demo(db.session, current_app.config["WXBOT"].school.name):
        click.echo(f"已载入演示数据：2 个学院、4 个支部、42 名成员。"
                   f"组织员 {ORGANISER.name}（{ORGANISER.student_no}），管理员 {ADMIN.name}（{ADMIN.student_no}）。")


@click.command("urls")
@with_appcontext
def urls():
    """打印服务的各个地址。"""
    cfg = current_app.config["WXBOT"]
    base = cfg.server.public_url.rstrip("/")
    click.echo(f"公众号服务器地址 (URL)：{base}/wechat   Token：{cfg.wechat.token}   加密模式：{cfg.wechat.encrypt_mode}")
    click.echo(f"健康检查：{base}/healthz")
    if is_sandbox(cfg):
        click.echo(f"沙盒模式（未配置 AppSecret，由内置沙盒扮演微信）。手机模拟器：{base}/sandbox/")


@menu_cli.command("sync")
def menu_sync():
    """把 config.yaml 中的菜单发送到微信（沙盒模式下发送到沙盒）。"""
    import requests
    from wechatpy.exceptions import WeChatClientException
    from wxbot.outbound import wechat_client
    client = wechat_client()
    try:
        client.menu.create({"button": current_app.config["WXBOT"].wechat.menu})
    except WeChatClientException as exc:
        raise click.ClickException(f"菜单发送失败：{exc.errcode} {exc.errmsg}")
    except requests.RequestException:
        hint = "沙盒模式下请先运行 make run" if is_sandbox(current_app.config["WXBOT"]) else "请检查网络和 IP 白名单"
        raise click.ClickException(f"连接不上 {client.API_BASE_URL}：{hint}。")
    click.echo("菜单已更新。")


@roster_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--skip-bad", is_flag=True, help="跳过有错误的行，导入其余行。")
def roster_import(path: str, skip_bad: bool):
    """导入名单（.xlsx 或 .csv，列：学号 姓名 学院 支部 政治面貌 角色），按学号更新。"""
    from models.roster import RosterFileError, apply_rows, check_rows, read_table
    try:
        good, errors = check_rows(read_table(path))
    except RosterFileError as exc:
        raise click.ClickException(str(exc))
    for error in errors:
        click.echo(f"第 {error.line} 行：{error.reason}", err=True)
    if errors and not skip_bad:
        raise click.ClickException(f"有 {len(errors)} 行错误，未导入任何数据。改正后重试，或加 --skip-bad 跳过错误行。")
    with click.progressbar(length=len(good), label="导入中") as bar:
        report = apply_rows(db.session, good, current_app.config["WXBOT"].school.name, bar.update)
    db.session.commit()
    click.echo(f"导入完成：新增 {report.created} 人，更新 {report.updated} 人，跳过 {len(errors)} 行。")


@roster_cli.command("export")
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
def roster_export(path: str):
    """导出名单到 .xlsx 或 .csv 文件。"""
    from models.roster import RosterFileError, roster_rows, write_table
    try:
        count = write_table(path, roster_rows(db.session))
    except RosterFileError as exc:
        raise click.ClickException(str(exc))
    click.echo(f"已导出 {count} 名成员到 {path}。")


@click.command("chat")
@click.option("--openid", default="oSandboxTerminal0001", help="扮演的微信用户 openid。")
@click.option("--url", default=None, help="/wechat 的地址，默认 server.public_url。")
@with_appcontext
def chat(openid: str, url: str | None):
    """在终端里扮演一个微信用户，与运行中的服务对话（沙盒模式）。"""
    from wxbot.sandbox.terminal import run_terminal_chat
    if not is_sandbox(current_app.config["WXBOT"]):
        raise click.ClickException("已配置真实 AppSecret，沙盒未启用。")
    run_terminal_chat(openid, url, sys.stdin, click.echo)


@click.command("scheduler")
@with_appcontext
def scheduler():
    """以独立进程运行定时任务（生产环境）。"""
    from scheduler import run_blocking
    run_blocking(current_app._get_current_object())


def register_commands(app: Flask) -> None:
    for command in (db_cli, demo_cli, menu_cli, roster_cli, urls, chat, scheduler):
        app.cli.add_command(command)
