"""Settings: config.yaml defaults, WXBOT_* overrides, and one clear line for a bad value."""
import subprocess
import sys

import pytest

from wxbot.config import ROOT, ConfigError, api_base, is_sandbox, load_settings

REAL = {"WXBOT_WECHAT__SECRET": "s3cret", "WXBOT_WECHAT__APPID": "wx1234567890abcdef",
        "WXBOT_WECHAT__TOKEN": "realtoken123"}


def test_defaults_come_from_config_yaml():
    cfg = load_settings(environ={})
    assert cfg.wechat.reply_budget == 4.0 and cfg.wechat.timestamp_window == 300
    assert cfg.database_url == "" and cfg.redis_url == ""


def test_environment_overrides_nested_and_top_level_settings():
    cfg = load_settings(environ={"WXBOT_WECHAT__TOKEN": "abc123", "WXBOT_REDIS_URL": "redis://h:1/0",
                                 "WXBOT_WECHAT__REPLY_BUDGET": "3.5", "WXBOT_SERVER__HTTPS": "true",
                                 "WXBOT_WECHAT__ENCRYPT_MODE": "safe"})
    assert (cfg.wechat.token, cfg.redis_url, cfg.wechat.reply_budget) == ("abc123", "redis://h:1/0", 3.5)
    assert cfg.server.https is True and cfg.wechat.encrypt_mode == "safe"


def test_a_list_setting_takes_json():
    cfg = load_settings(environ={"WXBOT_WECHAT__MENU": '[{"type": "click", "name": "学习", "key": "学习"}]'})
    assert cfg.wechat.menu[0]["key"] == "学习"


@pytest.mark.parametrize("environ, setting", [
    ({"WXBOT_WECHAT__REPLY_BUDGET": "fast"}, "WXBOT_WECHAT__REPLY_BUDGET"),
    ({"WXBOT_WECHAT__REPLY_BUDGET": "6"}, "wechat.reply_budget"),
    ({"WXBOT_WECHAT__ENCRYPT_MODE": "secret"}, "wechat.encrypt_mode"),
    ({"WXBOT_WECHAT__TOKN": "x"}, "WXBOT_WECHAT__TOKN"),
    ({"WXBOT_WECHAT__TOKEN": "a b"}, "wechat.token"),
    ({"WXBOT_SERVER__HTTPS": "maybe"}, "WXBOT_SERVER__HTTPS"),
    ({"WXBOT_WECHAT__ENCRYPT_MODE": "safe", "WXBOT_WECHAT__AES_KEY": "short"}, "wechat.aes_key"),
    ({"WXBOT_WECHAT__MENU": "not json"}, "WXBOT_WECHAT__MENU"),
    ({"WXBOT_SANDBOX__FAULT_RATE": "2"}, "sandbox.fault_rate"),
])
def test_a_bad_value_is_refused_naming_the_setting(environ, setting):
    with pytest.raises(ConfigError) as error:
        load_settings(environ=environ)
    assert setting in str(error.value) and "\n" not in str(error.value)


def test_sandbox_mode_is_on_exactly_when_no_real_secret_is_set():
    assert is_sandbox(load_settings(environ={}))
    real = load_settings(environ=REAL)
    assert not is_sandbox(real) and api_base(real) == "https://api.weixin.qq.com/cgi-bin/"


def test_a_real_account_may_not_run_on_the_demo_credentials():
    with pytest.raises(ConfigError, match="wechat.token"):
        load_settings(environ={**REAL, "WXBOT_WECHAT__TOKEN": "wxbotsandboxtoken"})
    with pytest.raises(ConfigError, match="wechat.aes_key"):
        load_settings(environ={**REAL, "WXBOT_WECHAT__ENCRYPT_MODE": "safe"})


def test_the_sandbox_is_not_served_when_a_real_secret_is_configured(backend):
    from wxbot import create_app
    app = create_app({**backend["settings"], "wechat.secret": "s3cret", "wechat.appid": "wx1234567890abcdef",
                      "wechat.token": "realtoken123"})
    assert app.test_client().get("/sandbox/").status_code == 404
    assert app.test_client().get("/sandbox/cgi-bin/token").status_code == 404


def test_the_command_line_stops_with_one_line_naming_the_setting():
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "wxbot", "urls"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "WXBOT_WECHAT__REPLY_BUDGET": "fast"})
    assert result.returncode == 1
    assert result.stderr.strip() == "配置错误 WXBOT_WECHAT__REPLY_BUDGET: 需要数字，得到 'fast'"
