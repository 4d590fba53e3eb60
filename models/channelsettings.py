"""The account's channels as the admins set them in the console: the account type, the template and
subscription-notification ids and which of their fields carry the title and the summary. Kept in
one row; where the row says nothing, config.yaml's values stand."""
from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base
from models.timeutil import utcnow

ACCOUNT_TYPES = {"service": "服务号", "subscription": "订阅号"}
TEMPLATE_FIELDS = {"title": "first", "summary": "keyword1", "remark": "remark"}  # WeChat's classic template
SUBSCRIBE_FIELDS = {"title": "thing1", "summary": "thing2"}


class ChannelSettings(Base):
    __tablename__ = "channel_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    account_type: Mapped[str] = mapped_column(String(16), default="")
    template_id: Mapped[str] = mapped_column(String(64), default="")
    subscribe_template_id: Mapped[str] = mapped_column(String(64), default="")
    template_fields: Mapped[str] = mapped_column(Text, default="{}")  # JSON: title/summary/remark -> field
    subscribe_fields: Mapped[str] = mapped_column(Text, default="{}")  # JSON: title/summary -> field
    updated_by: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChannelPolicy:
    """delivery.* from config with the console's row laid over it: what the engine, the forecast
    and the sends use (attribute access like the settings section it wraps)."""

    def __init__(self, delivery, account_type: str, row: ChannelSettings | None, mini=None):
        self._delivery = delivery
        # The mini-program's subscription messages (miniprogram.* in config.yaml).
        self.mini_subscribe_template_id = mini.subscribe_template_id if mini is not None else ""
        self.mini_subscribe_fields = ({part: mini.subscribe_fields[part] for part in SUBSCRIBE_FIELDS}
                                      if mini is not None else dict(SUBSCRIBE_FIELDS))
        self.mini_subscribe_page = mini.subscribe_page if mini is not None else ""
        self.account_type = (row.account_type if row and row.account_type else account_type)
        self.template_id = row.template_id if row and row.template_id else delivery.template_id
        self.subscribe_template_id = (row.subscribe_template_id if row and row.subscribe_template_id
                                      else delivery.subscribe_template_id)
        self.template_fields = TEMPLATE_FIELDS | (json.loads(row.template_fields or "{}") if row else {})
        self.subscribe_fields = SUBSCRIBE_FIELDS | (json.loads(row.subscribe_fields or "{}") if row else {})

    def __getattr__(self, name: str):
        return getattr(self._delivery, name)


def channel_policy(session: Session, settings) -> ChannelPolicy:
    return ChannelPolicy(settings.delivery, settings.wechat.account_type, session.get(ChannelSettings, 1),
                         settings.miniprogram)


def check_channel_form(form) -> tuple[dict | None, str | None]:
    """The row's values from the console form, or why not."""
    account_type = form.get("account_type", "")
    if account_type not in ACCOUNT_TYPES:
        return None, "请选择服务号或订阅号"
    values = {"account_type": account_type}
    for key in ("template_id", "subscribe_template_id"):
        text = form.get(key, "").strip()
        if len(text) > 64 or any(c.isspace() for c in text):
            return None, "模板编号不能有空格，最长 64 个字符"
        values[key] = text
    for key, names in (("template_fields", TEMPLATE_FIELDS), ("subscribe_fields", SUBSCRIBE_FIELDS)):
        fields = {}
        for part in names:
            name = form.get(f"{key}_{part}", "").strip() or names[part]
            if not name.replace("_", "").isalnum() or len(name) > 32:
                return None, f"字段名“{name}”只能由字母、数字和下划线组成"
            fields[part] = name
        values[key] = json.dumps(fields)
    return values, None
