"""`flask --app wxbot ...` commands: db, demo, urls, menu, roster, questions, events, chat, scheduler."""
from __future__ import annotations

import sys

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from wxbot import services
from wxbot.config import is_sandbox
from wxbot.db import db

db_cli = AppGroup("db", help="数据库迁移。")
demo_cli = AppGroup("demo", help="演示数据。")
menu_cli = AppGroup("menu", help="自定义菜单。")
roster_cli = AppGroup("roster", help="成员名单导入导出。")
questions_cli = AppGroup("questions", help="题库导入导出。")
events_cli = AppGroup("events", help="活动：导入学期安排、查看当前签到码。")


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
    from wxbot.demo import ADMIN, ORGANISER, demo_refusal, load_demo, load_demo_accounts
    refusal = demo_refusal(db.session, services.settings())
    if refusal:
        message = f"不载入演示数据：{refusal}。"
        if if_safe:
            click.echo(message)
            return
        raise click.ClickException(message)
    if load_demo(db.session, services.settings().school.name):
        click.echo(f"已载入演示数据：2 个学院、4 个支部、42 名成员。"
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


@roster_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
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
    from sqlalchemy import select

    from models.accounts import audit
    from models.followers import Follower, unbind_member
    from models.members import member_by_student_no
    from models.privacy import notify_unbound
    member = member_by_student_no(db.session, student_no)
    if member is None:
        raise click.ClickException(f"名单中没有学号 {student_no}")
    follower = db.session.scalar(select(Follower).where(Follower.member_id == member.id))
    if follower is None:
        raise click.ClickException(f"{member.name}（{member.student_no}）没有绑定微信")
    notify_unbound(db.session, "命令行", follower, member)
    unbind_member(follower)
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
        query = query.where(Member.org_unit_id.in_(subtree_ids(db.session, _find_unit(unit).id)))
    rows = bind_code_rows(db.session, query)
    try:
        count = write_table(path, rows)
    except TableError as exc:
        raise click.ClickException(str(exc)) from None
    audit(db.session, "命令行", "export", "member", "", f"导出 {count} 名成员的绑定码")
    db.session.commit()
    click.echo(f"已导出 {count} 名尚未绑定成员的绑定码到 {path}。请逐人发放，用过即失效。")


@questions_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
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




admin_cli = AppGroup("admin", help="管理后台账号。")


def _find_unit(path: str):
    """A unit by name, or by '学院/支部' when a name is used twice."""
    from sqlalchemy import select

    from models.members import OrgUnit
    parts = [p.strip() for p in path.replace(" / ", "/").split("/") if p.strip()]
    candidates = list(db.session.scalars(select(OrgUnit).where(OrgUnit.name == parts[-1]))) if parts else []
    if len(parts) > 1:
        candidates = [u for u in candidates if u.parent and u.parent.name == parts[-2]]
    if len(candidates) != 1:
        hint = "（重名，请写成 学院/支部）" if len(candidates) > 1 else ""
        raise click.ClickException(f"找不到唯一的组织“{path}”{hint}")
    return candidates[0]


@admin_cli.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(["admin", "organiser"]), required=True, help="admin 或 organiser。")
@click.option("--org", "org", default="", help="组织员负责的组织（名称，或 学院/支部）。")
@click.password_option("--password", help="密码（不给出时交互输入）。")
def admin_create(username: str, role: str, org: str, password: str):
    """新建管理后台账号。"""
    from models.accounts import AccountError, audit, create_account
    unit = _find_unit(org) if org else None
    try:
        account = create_account(db.session, username, password, role, unit)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    audit(db.session, "命令行", "create", "account", account.id, f"新建账号 {username}（{account.role_label}）",
          after={"用户名": username, "角色": account.role_label, "组织": unit.name if unit else "全部"},
          org_unit_id=account.org_unit_id)
    db.session.commit()
    click.echo(f"已创建{account.role_label}账号 {username}。")


@admin_cli.command("passwd")
@click.argument("username")
@click.password_option("--password", help="新密码（不给出时交互输入）。")
def admin_passwd(username: str, password: str):
    """修改管理后台账号的密码。"""
    from models.accounts import AccountError, audit, set_password
    account = _account(username)
    try:
        set_password(account, password)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    audit(db.session, "命令行", "update", "account", account.id, f"修改 {username} 的密码",
          org_unit_id=account.org_unit_id)
    db.session.commit()
    click.echo(f"已修改 {username} 的密码。")


def _account(username: str):
    from sqlalchemy import select

    from models.accounts import AdminUser
    account = db.session.scalar(select(AdminUser).where(AdminUser.username == username))
    if account is None:
        raise click.ClickException(f"没有账号 {username}")
    return account


@admin_cli.command("role")
@click.argument("username")
@click.option("--role", type=click.Choice(["admin", "organiser"]), required=True, help="admin 或 organiser。")
@click.option("--org", "org", default="", help="组织员负责的组织（名称，或 学院/支部）。")
def admin_role(username: str, role: str, org: str):
    """修改账号的角色或负责的组织（该账号在所有设备上退出登录）。"""
    from models.accounts import AccountError, audit, set_role
    account = _account(username)
    before = {"角色": account.role_label, "组织": account.org_unit.name if account.org_unit else "全部"}
    try:
        set_role(account, role, _find_unit(org) if org else None)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    db.session.flush()
    audit(db.session, "命令行", "update", "account", account.id, f"修改 {username} 的角色", before,
          {"角色": account.role_label, "组织": account.org_unit.name if account.org_unit else "全部"},
          org_unit_id=account.org_unit_id)
    db.session.commit()
    click.echo(f"{username} 现在是{account.role_label}，已在所有设备上退出登录。")


@admin_cli.command("disable")
@click.argument("username")
def admin_disable(username: str):
    """停用账号（立即在所有设备上退出登录，不能再登录）。"""
    _set_active(username, False)


@admin_cli.command("enable")
@click.argument("username")
def admin_enable(username: str):
    """重新启用停用的账号。"""
    _set_active(username, True)


def _set_active(username: str, active: bool) -> None:
    from models.accounts import audit, set_active
    account = _account(username)
    set_active(account, active)
    audit(db.session, "命令行", "update", "account", account.id, f"{'启用' if active else '停用'}账号 {username}",
          {"状态": "停用" if active else "启用"}, {"状态": "启用" if active else "停用"},
          org_unit_id=account.org_unit_id)
    db.session.commit()
    click.echo(f"已{'启用' if active else '停用'}账号 {username}。")


broadcast_cli = AppGroup("broadcast", help="群发与推送。")


@broadcast_cli.command("send")
@click.option("--text", default="", help="文字内容。")
@click.option("--title", default="", help="图文标题（与 --url 一起使用）。")
@click.option("--description", default="", help="图文摘要。")
@click.option("--url", default="", help="图文链接（每位收件人得到自己的阅读统计链接）。")
@click.option("--cover", default="", help="图文封面图片地址。")
@click.option("--all", "everyone", is_flag=True, help="全部关注者。")
@click.option("--unit", "units", multiple=True, help="组织（含下级），可多次给出；重名时写 学院/支部。")
@click.option("--stage", "stages", multiple=True, help="政治面貌，可多次给出。")
@click.option("--role", "roles", multiple=True, type=click.Choice(["member", "organiser", "admin"]), help="角色。")
@click.option("--student-no", "student_nos", multiple=True, help="学号，可多次给出。")
@click.option("--at", "at", default="", help="定时发送，北京时间 YYYY-MM-DD HH:MM；默认立即。")
@click.option("--yes", is_flag=True, help="不再确认，直接发送。")
@click.option("--override", is_flag=True, help="内容命中词表时仍然发送（记入操作日志）。")
def broadcast_send(text, title, description, url, cover, everyone, units, stages, roles, student_nos, at, yes,
                   override):
    """创建一次群发：先显示人数，确认后交给发送队列。"""
    from models.accounts import Scope
    from models.audience import AudienceError, count_audience
    from models.delivery import BROADCAST, create_campaign
    from models.members import STAGES
    from models.timeutil import utcnow
    bad = [s for s in stages if s not in STAGES]
    if bad:
        raise click.ClickException(f"政治面貌“{bad[0]}”不在 {'、'.join(STAGES)} 之中")
    spec = {"everyone": everyone, "units": [_find_unit(u).id for u in units], "stages": list(stages),
            "roles": list(roles), "student_nos": list(student_nos)}
    if not (everyone or units or stages or roles or student_nos):
        raise click.ClickException("请指定发送对象：--all，或 --unit / --stage / --role / --student-no")
    scope, when = Scope(None), _parse_local_time(at) if at else utcnow()
    count = count_audience(db.session, spec, scope)
    from wxbot.delivery.reach import audience_forecast
    click.echo(audience_forecast(db.session, spec, scope, utcnow()).text())
    if not yes:
        click.confirm(f"将发送给 {count} 人，确认？", abort=True)
    try:
        campaign = create_campaign(db.session, "命令行", scope, spec, {"text": text, "title": title,
                                   "description": description, "url": url, "cover": cover}, when,
                                   excluded=BROADCAST, passed_by="命令行" if override else None)
    except AudienceError as exc:
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(f"已创建群发 #{campaign.id}：{count} 人（{campaign.audience_label}）。"
               f"查看进度：flask --app wxbot broadcast status {campaign.id}")


def _parse_local_time(text: str):
    from models.timeutil import parse_local_time
    at = parse_local_time(text)
    if at is None:
        raise click.ClickException("时间格式应为 YYYY-MM-DD HH:MM（本地时间）")
    return at


@broadcast_cli.command("status")
@click.argument("campaign_id", type=int)
def broadcast_status(campaign_id: int):
    """显示一次群发的进度。"""
    from models.delivery import CAMPAIGN_STATUSES, Campaign, campaign_counts
    from wxbot.delivery.channels import CHANNEL_LABELS
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None:
        raise click.ClickException(f"没有群发 #{campaign_id}")
    c = campaign_counts(db.session, campaign_id)
    channels = "、".join(f"{CHANNEL_LABELS.get(k, k)} {v}" for k, v in c["by_channel"].items()) or "无"
    click.echo(f"#{campaign.id} {campaign.label}（{campaign.audience_label}）：{CAMPAIGN_STATUSES[campaign.status]}\n"
               f"共 {c['total']} 人：已送达 {c['sent']}，待发送 {c['pending'] + c['sending']}，"
               f"等下次互动 {c['waiting']}，过期未送达 {c['expired']}，失败 {c['failed']}，"
               f"无法触达 {c['unreachable']}，结果未知 {c['unknown']}，已取消 {c['cancelled']}，"
               f"已读 {c['read']}，可能重复 {c['possibly_duplicated']}\n"
               f"按渠道：{channels}")
    if c["unknown"]:
        click.echo(f"结果未知的 {c['unknown']} 人：请求已发出但微信没有应答，可能已经收到，没有自动重发。"
                   f"确认要再发：flask --app wxbot broadcast resend-unknown {campaign.id}")


@broadcast_cli.command("resend-unknown")
@click.argument("campaign_id", type=int)
@click.option("--yes", is_flag=True, help="不再询问。")
def broadcast_resend_unknown(campaign_id: int, yes: bool):
    """再发一次结果未知的（他们可能收到两次，记为“可能重复”）。"""
    from models.delivery import Campaign, resend_unknown, unknown_count
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None:
        raise click.ClickException(f"没有群发 #{campaign_id}")
    count = unknown_count(db.session, campaign_id)
    if not count:
        raise click.ClickException("这次群发没有结果未知的收件人。")
    if not yes:
        click.confirm(f"再发给结果未知的 {count} 人？其中可能有人已经收到，会收到两次。", abort=True)
    resend_unknown(db.session, campaign, "命令行")
    db.session.commit()
    click.echo(f"已重新排队 {count} 人，标记为“可能重复”。")


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


push_cli = AppGroup("push", help="每日学习推送。")


@push_cli.command("daily")
@click.option("--date", "day", default="", help="推送哪一天的学习计划，YYYY-MM-DD（北京时间）；默认今天。")
def push_daily(day: str):
    """把某天学习计划里的材料推送给各自的对象；重复运行不会重复推送。"""
    from datetime import date

    from models.timeutil import local_date, utcnow
    from wxbot.study.push import push_day
    try:
        wanted = date.fromisoformat(day) if day else local_date()
    except ValueError:
        raise click.ClickException(f"日期格式不对：{day}（应为 YYYY-MM-DD）") from None
    results = push_day(db.session, wanted, utcnow(), services.settings().push.mass_send)
    if not results:
        click.echo(f"{wanted} 的学习计划里没有已发布的材料。")
    for item in results:
        state = "之前已推送，这次不再发送" if item.already else f"已交给发送引擎，{item.recipients} 人"
        click.echo(f"{wanted} 《{item.title}》：{state}")


@events_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def events_import(path: str):
    """导入一个学期的活动（.xlsx 或 .csv，格式同管理后台的导入模板）；有任何错误行时不导入。"""
    from models.accounts import audit
    from models.events import import_events, read_events
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
    from models.events import Event, code_for, scene_for, slot_of
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


def register_commands(app: Flask) -> None:
    for command in (db_cli, demo_cli, menu_cli, roster_cli, questions_cli, events_cli, admin_cli, broadcast_cli,
                    push_cli, urls, chat, scheduler, worker):
        app.cli.add_command(command)
