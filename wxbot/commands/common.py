"""What several command groups share."""
from __future__ import annotations

import click

from wxbot.db import db


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
