"""`admin`: console accounts."""
from __future__ import annotations

import click
from flask.cli import AppGroup

from wxbot.commands.common import find_unit
from wxbot.db import db

admin_cli = AppGroup("admin", help="管理后台账号。")


@admin_cli.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(["admin", "organiser"]), required=True, help="admin 或 organiser。")
@click.option("--org", "org", default="", help="组织员负责的组织（名称，或 学院/支部）。")
@click.password_option("--password", help="密码（不给出时交互输入）。")
def admin_create(username: str, role: str, org: str, password: str):
    """新建管理后台账号。"""
    from models.accounts import AccountError, audit, create_account
    unit = find_unit(org) if org else None
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
        set_role(account, role, find_unit(org) if org else None)
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
