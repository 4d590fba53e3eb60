"""Commands to set up and run the product: db, demo, urls, menu, chat, scheduler, worker."""
from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from wxbot import services
from wxbot.config import is_sandbox
from wxbot.db import db

db_cli = AppGroup("db", help="数据库迁移。")


demo_cli = AppGroup("demo", help="演示数据。")


menu_cli = AppGroup("menu", help="自定义菜单。")


@db_cli.command("upgrade")
@click.option("--revision", default="head", help="目标版本，默认最新。")
def db_upgrade(revision: str):
    """把数据库迁移到最新结构。"""
    from wxbot.migrate import upgrade
    upgrade(revision)
    click.echo("数据库已是最新结构。")


@db_cli.command("downgrade")
@click.argument("revision")
@click.option("--yes", is_flag=True, help="不再确认。")
def db_downgrade(revision: str, yes: bool):
    """回退数据库结构到 REVISION（回滚升级时用，如 0012）：新版本加的表和列连同其中的数据会被删除，请先备份。"""
    from wxbot.migrate import downgrade
    if not yes:
        click.confirm(f"回退到 {revision} 会删除之后版本加的表和列（连同数据）。已经备份了吗？继续？", abort=True)
    downgrade(revision)
    click.echo(f"数据库结构已回退到 {revision}。")


@demo_cli.command("load")
@click.option("--if-safe", is_flag=True, help="不能载入时只提示原因并正常退出（make run 用）。")
def demo_load(if_safe: bool):
    """在沙盒里载入演示学校；有真实名单、真实数据或真实 AppSecret 时拒绝。"""
    from wxbot.demo import ADMIN, ORGANISER, STUDENT, demo_refusal, load_demo, load_demo_accounts
    refusal = demo_refusal(db.session, services.settings())
    if refusal:
        message = f"不载入演示数据：{refusal}。"
        if if_safe:
            click.echo(message)
            return
        raise click.ClickException(message)
    if load_demo(db.session, services.settings().school.name):
        click.echo(f"已载入演示数据：2 个学院、4 个支部、43 名成员。学生 {STUDENT.name}（{STUDENT.student_no}），"
                   f"组织员 {ORGANISER.name}（{ORGANISER.student_no}），管理员 {ADMIN.name}（{ADMIN.student_no}）。")
    if is_sandbox(services.settings()):
        from models.timeutil import utcnow
        from wxbot.demo import load_demo_followers
        followers = load_demo_followers(db.session, utcnow())
        if followers:
            click.echo(f"沙盒中已有 {followers} 名演示成员关注并绑定，可以直接试群发。")
    from models.timeutil import utcnow
    from wxbot.demo import load_demo_study
    if load_demo_study(db.session, utcnow(), services.settings().points):
        click.echo("已载入演示学习材料和前后各 15 天的学习计划：发送“学习”试试，每天 "
                   f"{current_app.config['WXBOT'].push.daily_at} 自动推送。")
        if is_sandbox(services.settings()):  # show the push at work now, not tomorrow morning
            from models.timeutil import local_date
            from wxbot.study.push import push_day
            pushed = sum(r.recipients for r in push_day(db.session, local_date(), utcnow(),
                                                        services.settings().push.mass_send))
            click.echo(f"今天的学习内容已交给发送引擎推送给 {pushed} 名演示关注者（在模拟器里可以看到）。")
    from wxbot.demo import load_demo_questions
    questions = load_demo_questions(db.session, utcnow())
    if questions:
        click.echo(f"已载入演示题库 {questions} 道题和一场为期一周的党史知识竞赛：发送“答题”或“竞赛”试试。")
    from wxbot.demo import load_demo_events
    if load_demo_events(db.session, utcnow()):
        click.echo("已载入演示活动：一个 20 分钟后开始、现在就能签到的主题党日（后台“活动”里打开签到屏幕，"
                   "在模拟器里扫码），一个只有 3 个名额的党课（试试候补），一个不用报名的支部党员大会。")
    from wxbot.demo import load_demo_topic
    if load_demo_topic(db.session, utcnow()):
        click.echo("已载入一个演示话题：发送“话题”“回复 编号 内容”试试；留言的示例词表在 screening_lists/。")
    from models.timeutil import local_date
    from wxbot.demo import load_demo_development
    records = load_demo_development(db.session, local_date())
    if records:
        click.echo(f"已载入 {records} 名同志的发展党员记录（各阶段都有，部分已逾期）：后台“发展党员”查看，"
                   f"{STUDENT.name}发送“我的发展”试试。")
    accounts = load_demo_accounts(db.session)
    if accounts:
        lines = [f"  {label}：用户名 {name}  密码 {password}" for name, password, label in accounts]
        click.echo("已创建管理后台演示账号（密码只显示这一次，可用 flask --app wxbot admin passwd 修改）：\n"
                   + "\n".join(lines))


@click.command("urls")
@click.option("--host", default="127.0.0.1", help="服务监听的地址（make run 的 HOST）。")
@with_appcontext
def urls(host: str):
    """打印服务的各个地址。"""
    cfg = services.settings()
    base = cfg.server.public_url.rstrip("/")
    click.echo(f"公众号服务器地址 (URL)：{base}/wechat   Token：{cfg.wechat.token}   "
               f"加密模式：{cfg.wechat.encrypt_mode}")
    click.echo(f"健康检查：{base}/healthz")
    click.echo(f"管理后台：{base}/admin/")
    if is_sandbox(cfg):
        click.echo(f"沙盒模式（未配置 AppSecret，由内置沙盒扮演微信）。手机模拟器：{base}/sandbox/")
    from wxbot.sandbox import is_loopback
    if host != "localhost" and not is_loopback(host):
        click.echo(f"注意：服务监听在 {host}，网络上的其他人也能访问。正式对外服务请在前面放 nginx（负责 HTTPS、"
                   "缓冲慢速请求、限制请求大小），并设置 server.trusted_proxies；见 docs/部署.md 和 docs/安全.md。"
                   + ("沙盒页面此时需要先登录管理后台。" if is_sandbox(cfg) else ""))


@menu_cli.command("sync")
def menu_sync():
    """把 config.yaml 中的菜单发送到微信（沙盒模式下发送到沙盒）。"""
    import requests
    from wechatpy.exceptions import WeChatClientException

    from wxbot.outbound import wechat_client
    client = wechat_client()
    try:
        client.menu.create({"button": services.settings().wechat.menu})
    except WeChatClientException as exc:
        raise click.ClickException(f"菜单发送失败：{exc.errcode} {exc.errmsg}") from None
    except requests.RequestException:
        hint = "沙盒模式下请先运行 make run" if is_sandbox(services.settings()) else "请检查网络和 IP 白名单"
        raise click.ClickException(f"连接不上 {client.API_BASE_URL}：{hint}。") from None
    click.echo("菜单已更新。")


@click.command("chat")
@click.option("--openid", default="oSandboxTerminal0001", help="扮演的微信用户 openid。")
@click.option("--url", default=None, help="/wechat 的地址，默认 server.public_url。")
@with_appcontext
def chat(openid: str, url: str | None):
    """在终端里扮演一个微信用户，与运行中的服务对话（沙盒模式）。"""
    from wxbot.sandbox.terminal import run_terminal_chat
    if not is_sandbox(services.settings()):
        raise click.ClickException("已配置真实 AppSecret，沙盒未启用。")
    run_terminal_chat(openid, url, sys.stdin, click.echo)


@click.command("scheduler")
@with_appcontext
def scheduler():
    """以独立进程运行定时任务（生产环境）。"""
    from scheduler import run_blocking
    run_blocking(current_app._get_current_object())


@click.command("worker")
@with_appcontext
def worker():
    """运行一个发送进程（生产环境可以在多台机器上运行多个）。收到 SIGTERM 时发完手上的再退出。"""
    import signal
    import threading

    from wxbot.delivery.engine import DeliveryWorker
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):  # a deploy or Ctrl-C: finish what is in flight, then exit
        signal.signal(signum, lambda *_: stop.set())
    DeliveryWorker(current_app._get_current_object()).run(stop)
    click.echo("发送进程已退出：手上的都已发完并记录。")
