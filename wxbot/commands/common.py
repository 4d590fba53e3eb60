"""What several command groups share."""
from __future__ import annotations

import os
import pwd
import stat

import click

from wxbot.db import db


class InputFile(click.ParamType):
    """A file a command reads, refused in words that say what to do. `sudo -u wxbot bin/wxbot ...`
    runs as the service user: a file in root's home exists, but wxbot cannot read it, and click's
    own check called that "does not exist"."""

    name = "文件"

    def convert(self, value, param, ctx):
        try:
            is_folder = stat.S_ISDIR(os.stat(value).st_mode)
        except FileNotFoundError:
            raise click.ClickException(f"找不到文件 {value}") from None
        except PermissionError:
            raise click.ClickException(self._unreadable(value)) from None
        if is_folder:
            raise click.ClickException(f"{value} 是文件夹，请给出文件")
        if not os.access(value, os.R_OK, effective_ids=os.access in os.supports_effective_ids):
            raise click.ClickException(self._unreadable(value))
        return value

    @staticmethod
    def _unreadable(path: str) -> str:
        return (f"用户 {pwd.getpwuid(os.geteuid()).pw_name} 没有权限读取 {path}（它或它所在的文件夹不让这个用户读）。"
                f"把文件复制到 /tmp 并 chmod 644，或把它交给这个用户（chown），再运行一次。")


def find_unit(path: str):
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


def parse_local_time(text: str):
    """A Beijing time typed on the command line (YYYY-MM-DD HH:MM), or a clear refusal."""
    from models.timeutil import parse_local_time as parse
    at = parse(text)
    if at is None:
        raise click.ClickException("时间格式应为 YYYY-MM-DD HH:MM（本地时间）")
    return at
