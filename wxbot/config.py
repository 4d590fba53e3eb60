"""Settings: config.yaml, an optional site file, then WXBOT_* environment overrides, validated.

Every setting has its default in config.yaml; its type there is the type required. A bad value
raises ConfigError, whose message is one line naming the setting.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FILE = ROOT / "config.yaml"
ENV_PREFIX = "WXBOT_"
REAL_API_BASE = "https://api.weixin.qq.com/cgi-bin/"
DEMO_TOKEN = "wxbotsandboxtoken"
DEMO_AES_KEY = "wxbotSandboxDemoKeyDoNotUseInProduction1234"


class ConfigError(Exception):
    """A setting is missing or bad; str() is one line naming it."""

    def __init__(self, setting: str, problem: str):
        super().__init__(f"配置错误 {setting}: {problem}")
        self.setting = setting


class Settings:
    """Read-only attribute view of a nested settings dict (cfg.wechat.token)."""

    def __init__(self, data: Mapping[str, Any], path: str = ""):
        self._data = data
        self._path = path

    def __getattr__(self, name: str) -> Any:
        try:
            value = self._data[name]
        except KeyError:
            raise AttributeError(f"no setting {self._path}{name}") from None
        if isinstance(value, Mapping):
            return Settings(value, f"{self._path}{name}.")
        return value

    def __getitem__(self, name: str) -> Any:
        return self.__getattr__(name)

    def as_dict(self) -> dict:
        return json.loads(json.dumps(self._data))


def load_settings(overrides: Mapping[str, Any] | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings: defaults, site file, environment, then `overrides` (tests)."""
    environ = os.environ if environ is None else environ
    defaults = _read_yaml(DEFAULT_FILE)
    data = json.loads(json.dumps(defaults))
    site = environ.get("WXBOT_CONFIG")
    if site:
        _merge(data, defaults, _read_yaml(Path(site)), "")
    _apply_env(data, defaults, environ)
    if overrides:
        _merge(data, defaults, _nest(overrides), "")
    _validate(data)
    return Settings(data)


def is_sandbox(cfg: Settings) -> bool:
    """Sandbox mode is on exactly when no real AppSecret is configured."""
    return not cfg.wechat.secret


def api_base(cfg: Settings, sandbox_url: str = "") -> str:
    """The WeChat API base URL the outbound client calls: wechat.api_base when set, else WeChat's, or
    in sandbox mode `sandbox_url` (wxbot.sandbox.address), else the sandbox at server.public_url."""
    if cfg.wechat.api_base:
        return cfg.wechat.api_base
    if is_sandbox(cfg):
        return sandbox_url or cfg.server.public_url.rstrip("/") + "/sandbox/cgi-bin/"
    return REAL_API_BASE


def _read_yaml(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(str(path), f"无法读取配置文件 ({exc.__class__.__name__})") from None


def _nest(flat: Mapping[str, Any]) -> dict:
    """Turn {"wechat.token": x} or {"wechat": {"token": x}} into a nested dict."""
    nested: dict = {}
    for key, value in flat.items():
        node = nested
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested


def _merge(data: dict, defaults: dict, new: Mapping, path: str) -> None:
    for key, value in new.items():
        setting = f"{path}{key}"
        if key not in defaults:
            raise ConfigError(setting, "没有这个设置 (请对照 config.yaml 检查拼写)")
        if isinstance(defaults[key], dict) and isinstance(value, Mapping):
            _merge(data[key], defaults[key], value, setting + ".")
        else:
            data[key] = _coerce(setting, defaults[key], value)


def _apply_env(data: dict, defaults: dict, environ: Mapping[str, str]) -> None:
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name in ("WXBOT_CONFIG", "WXBOT_ENV_FILE"):
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX):].split("__")]
        node, default = data, defaults
        for part in parts[:-1]:
            if not isinstance(default.get(part), dict):
                raise ConfigError(name, "没有这个设置 (请对照 config.yaml 检查拼写)")
            node, default = node[part], default[part]
        leaf = parts[-1]
        if leaf not in default or isinstance(default[leaf], dict):
            raise ConfigError(name, "没有这个设置 (请对照 config.yaml 检查拼写)")
        node[leaf] = _coerce(name, default[leaf], _parse_env(name, raw, default[leaf]))


def _parse_env(name: str, raw: str, default: Any) -> Any:
    if isinstance(default, (list, dict)):
        try:
            return json.loads(raw)
        except ValueError:
            raise ConfigError(name, "需要 JSON 格式的值") from None
    return raw


def _coerce(setting: str, default: Any, value: Any) -> Any:
    """Convert `value` to the type of `default`, or raise ConfigError naming the setting."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes", "on"):
            return True
        if text in ("false", "0", "no", "off"):
            return False
        raise ConfigError(setting, f"需要 true 或 false，得到 {value!r}")
    if isinstance(default, (int, float)):
        kind = type(default)
        try:
            number = kind(value) if kind is float else int(str(value).strip())
        except (TypeError, ValueError):
            raise ConfigError(setting, f"需要{'整数' if kind is int else '数字'}，得到 {value!r}") from None
        if number < 0:
            raise ConfigError(setting, f"不能为负数，得到 {value!r}")
        return number
    if isinstance(default, list):
        if not isinstance(value, list):
            raise ConfigError(setting, "需要一个列表")
        return value
    if value is None:
        return ""
    return str(value)


def _validate(data: dict) -> None:
    wechat = data["wechat"]
    if wechat["encrypt_mode"] not in ("plain", "compatible", "safe"):
        raise ConfigError("wechat.encrypt_mode", "只能是 plain、compatible 或 safe")
    if wechat["account_type"] not in ("service", "subscription"):
        raise ConfigError("wechat.account_type", "只能是 service 或 subscription")
    if not re.fullmatch(r"[A-Za-z0-9]{3,32}", wechat["token"]):
        raise ConfigError("wechat.token", "需要 3 到 32 位英文字母或数字")
    if wechat["encrypt_mode"] != "plain" and not re.fullmatch(r"[A-Za-z0-9]{43}", wechat["aes_key"]):
        raise ConfigError("wechat.aes_key", "兼容/安全模式需要 43 位 EncodingAESKey")
    if not wechat["appid"]:
        raise ConfigError("wechat.appid", "不能为空")
    if wechat["secret"]:
        _validate_real_account(wechat)
    if wechat["reply_budget"] <= 0 or wechat["reply_budget"] >= 5:
        raise ConfigError("wechat.reply_budget", "需要大于 0 且小于 5 秒 (微信 5 秒后放弃等待)")
    try:
        ZoneInfo(data["scheduler"]["timezone"])
    except (ValueError, KeyError, ZoneInfoNotFoundError):
        raise ConfigError("scheduler.timezone", "不是有效的时区名称，例如 Asia/Shanghai") from None
    if data["members"]["bind_mode"] not in ("name", "code"):
        raise ConfigError("members.bind_mode", "只能是 name 或 code")
    if data["scheduler"]["embedded"] not in ("auto", "true", "false"):
        raise ConfigError("scheduler.embedded", "只能是 auto、true 或 false")
    for section, key in (("scheduler", "purge_at"), ("push", "daily_at"), ("quiz", "reminder_at"),
                         ("feedback", "remind_at"), ("development", "remind_at"),
                         ("meetings", "warn_at"), ("reports", "remind_at")):
        if not re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d", data[section][key]):
            raise ConfigError(f"{section}.{key}", "需要 HH:MM 格式的时间")
    if not 1 <= data["reports"]["deadline_day"] <= 28:
        raise ConfigError("reports.deadline_day", "需要 1 到 28 之间的日期")
    intervals = data["quiz"]["review_intervals"]
    if not intervals or not all(isinstance(n, int) and n > 0 for n in intervals):
        raise ConfigError("quiz.review_intervals", "需要一组正整数天数，例如 [1, 2, 4, 7, 15]")
    if data["quiz"]["questions_per_quiz"] < 1:
        raise ConfigError("quiz.questions_per_quiz", "至少 1 道题")
    events = data["events"]
    if not all(isinstance(h, (int, float)) and h > 0 for h in events["reminder_hours"]):
        raise ConfigError("events.reminder_hours", "需要一组正数小时，例如 [24, 1]")
    if events["code_rotate_seconds"] < 5:
        raise ConfigError("events.code_rotate_seconds", "至少 5 秒")
    if events["job_every_minutes"] < 1:
        raise ConfigError("events.job_every_minutes", "至少 1 分钟")
    if data["study"]["read_seconds"] < 0:
        raise ConfigError("study.read_seconds", "不能是负数")
    if not 0.0 <= data["sandbox"]["fault_rate"] <= 1.0:
        raise ConfigError("sandbox.fault_rate", "需要 0.0 到 1.0 之间的数")
    if data["backup"]["keep_days"] < 1 or data["backup"]["warn_after_hours"] <= 0:
        raise ConfigError("backup", "keep_days 至少 1 天，warn_after_hours 需要大于 0")
    if data["log_level"].upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("log_level", "只能是 DEBUG、INFO、WARNING 或 ERROR")
    if data["log_format"] not in ("text", "json"):
        raise ConfigError("log_format", "只能是 text 或 json")
    if not data["server"]["public_url"].startswith(("http://", "https://")):
        raise ConfigError("server.public_url", "需要以 http:// 或 https:// 开头")
    _validate_miniprogram(data["miniprogram"])


def _validate_miniprogram(mini: dict) -> None:
    if mini["secret"] and mini["appid"].startswith("wxsandbox"):
        raise ConfigError("miniprogram.appid", "已设置小程序的 AppSecret，请同时设置小程序的 AppID")
    if mini["session_ttl"] < 300:
        raise ConfigError("miniprogram.session_ttl", "至少 300 秒")
    if mini["writes_per_minute"] < 1:
        raise ConfigError("miniprogram.writes_per_minute", "至少 1 次")
    if mini["unionid_every_minutes"] < 1:
        raise ConfigError("miniprogram.unionid_every_minutes", "至少 1 分钟")


def _validate_real_account(wechat: dict) -> None:
    """A real account must not run on the public demo credentials."""
    if wechat["appid"].startswith("wxsandbox"):
        raise ConfigError("wechat.appid", "已设置真实 AppSecret，请同时设置公众号的 AppID")
    if wechat["token"] == DEMO_TOKEN:
        raise ConfigError("wechat.token", "已设置真实 AppSecret，请设置公众号后台填写的 Token")
    if wechat["encrypt_mode"] != "plain" and wechat["aes_key"] == DEMO_AES_KEY:
        raise ConfigError("wechat.aes_key", "已设置真实 AppSecret，请设置公众号后台的 EncodingAESKey")
