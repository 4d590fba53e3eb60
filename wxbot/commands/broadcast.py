"""`broadcast` and `push`: campaigns from the command line, their status, the daily push."""
from __future__ import annotations

import click
from flask.cli import AppGroup

from wxbot import services
from wxbot.commands.common import find_unit, parse_local_time
from wxbot.db import db

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
@click.option("--event", "event", type=int, default=None, help="某个活动的人（与 --event-who 一起使用）：活动编号。")
@click.option("--event-who", "event_who", default="absent", show_default=True,
              type=click.Choice(["signed", "checked_in", "absent", "on_leave"]),
              help="活动中的哪些人：已报名、已签到、缺席、已请假。")
@click.option("--at", "at", default="", help="定时发送，北京时间 YYYY-MM-DD HH:MM；默认立即。")
@click.option("--yes", is_flag=True, help="不再确认，直接发送。")
@click.option("--override", is_flag=True, help="内容命中词表时仍然发送（记入操作日志）。")
def broadcast_send(text, title, description, url, cover, everyone, units, stages, roles, student_nos, event,
                   event_who, at, yes, override):
    """创建一次群发：先显示人数，确认后交给发送队列。"""
    from models.accounts import Scope
    from models.audience import AudienceError, count_audience, count_unreached, event_spec, unreached_note
    from models.delivery import BROADCAST, create_campaign
    from models.events import Event
    from models.members import STAGES
    from models.timeutil import utcnow
    bad = [s for s in stages if s not in STAGES]
    if bad:
        raise click.ClickException(f"政治面貌“{bad[0]}”不在 {'、'.join(STAGES)} 之中")
    if event is not None and db.session.get(Event, event) is None:
        raise click.ClickException(f"没有活动 #{event}")
    spec = {"everyone": everyone, "units": [find_unit(u).id for u in units], "stages": list(stages),
            "roles": list(roles), "student_nos": list(student_nos),
            "event": event_spec(event, event_who) if event is not None else None}
    if not (everyone or units or stages or roles or student_nos or event is not None):
        raise click.ClickException("请指定发送对象：--all，或 --unit / --stage / --role / --student-no / --event")
    scope, when = Scope(None), parse_local_time(at) if at else utcnow()
    count = count_audience(db.session, spec, scope)
    missing = unreached_note(count_unreached(db.session, spec, scope))
    from wxbot.delivery.reach import audience_forecast
    click.echo(audience_forecast(db.session, spec, scope, utcnow()).text())
    if not yes:
        click.confirm(f"将发送给 {count} 人{'（' + missing + '）' if missing else ''}，确认？", abort=True)
    try:
        campaign = create_campaign(db.session, "命令行", scope, spec, {"text": text, "title": title,
                                   "description": description, "url": url, "cover": cover}, when,
                                   excluded=BROADCAST, passed_by="命令行" if override else None)
    except AudienceError as exc:
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    missing = f"{missing}。" if missing else ""
    click.echo(f"已创建群发 #{campaign.id}：{count} 人（{campaign.audience_label}）。{missing}"
               f"查看进度：flask --app wxbot broadcast status {campaign.id}")


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
