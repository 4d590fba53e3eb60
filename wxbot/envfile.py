"""The environment file (/etc/wxbot.env) read exactly as systemd reads it, for `bin/wxbot`.

The services get the file through systemd's EnvironmentFile=; `bin/wxbot` used to source it with
`sh`, which reads the same lines differently: `X=["127.0.0.1", "10.0.0.5"]` is a JSON list to systemd
and a failing command to sh, and a `$` in a password is kept by systemd and expanded by sh. So a
command could run with other settings than the services, or not at all. Here the file is parsed with
systemd's rules (systemd.exec(5), "EnvironmentFile="; the state machine of systemd's env-file.c),
then the command is executed with it.

Usage (bin/wxbot): python -m wxbot.envfile FILE COMMAND [ARGS...]
"""
from __future__ import annotations

import os
import re
import sys

WHITESPACE = " \t\n\r"
NEWLINE = "\n\r"
COMMENT_START = "#;"
DOUBLE_QUOTE_ESCAPES = '"\\`$'
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

# Metrics of a one-shot command mean nothing, and its process would leave a file in the shared
# metrics directory until the next reboot, or fail when the directory does not exist yet (before the
# services first start): only the long-running commands keep it.
METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"
SERVICES = ("scheduler", "worker")


class EnvFileError(ValueError):
    pass


def parse(text: str) -> dict[str, str]:
    """KEY=value lines as systemd reads them: unquoted values keep inner spaces and lose outer ones,
    a backslash keeps the next character, '...' is verbatim, "..." knows \\" \\\\ \\` \\$, # and ; start
    comments, a trailing backslash continues the line; nothing is expanded. A name systemd would
    skip, or a quote left open, is refused with the line's name instead."""
    values: dict[str, str] = {}
    state, key, value, trailing = "pre_key", "", "", 0
    for c in text + "\n":
        if state == "pre_key":
            if c in COMMENT_START:
                state = "comment"
            elif c not in WHITESPACE:
                state, key = "key", c
        elif state == "key":
            if c in NEWLINE:
                state = "pre_key"  # a line without "=" is ignored, as systemd does
            elif c == "=":
                state, value, trailing = "pre_value", "", 0
            else:
                key += c
        elif state == "pre_value":
            if c in NEWLINE:
                _store(values, key, value)
                state = "pre_key"
            elif c == "'":
                state = "single"
            elif c == '"':
                state = "double"
            elif c == "\\":
                state = "value_escape"
            elif c not in WHITESPACE:
                state, value, trailing = "value", value + c, 0
        elif state == "value":
            if c in NEWLINE:
                _store(values, key, value[:len(value) - trailing])
                state = "pre_key"
            elif c == "\\":
                state, trailing = "value_escape", 0
            else:
                value += c
                trailing = trailing + 1 if c in WHITESPACE else 0
        elif state == "value_escape":
            state = "value"
            if c != "\n":
                value += c
        elif state == "single":
            if c == "'":
                state = "pre_value"
            else:
                value += c
        elif state == "double":
            if c == '"':
                state = "pre_value"
            elif c == "\\":
                state = "double_escape"
            else:
                value += c
        elif state == "double_escape":
            state = "double"
            if c in DOUBLE_QUOTE_ESCAPES:
                value += c
            elif c != "\n":
                value += "\\" + c
        elif state == "comment":
            if c == "\\":
                state = "comment_escape"
            elif c in NEWLINE:
                state = "pre_key"
        elif state == "comment_escape":
            state = "comment"
    if state in ("single", "double", "double_escape"):
        raise EnvFileError(f"{key.strip()} 的值缺少结尾的引号")
    return values


def _store(values: dict[str, str], key: str, value: str) -> None:
    key = key.strip(WHITESPACE)
    if not NAME.match(key):
        raise EnvFileError(f"“{key}”不是合法的变量名")
    values[key] = value


def command_environment(values: dict[str, str], command: list[str], base: dict[str, str]) -> dict[str, str]:
    """The environment `command` runs with: the file's values over the caller's, without the metrics
    directory unless the command is a long-running service."""
    env = {**base, **values}
    words = command[1:]
    if words[:1] == ["--app"]:
        words = words[2:]
    if (words[0] if words else "") not in SERVICES:
        env.pop(METRICS_DIR, None)
    elif env.get(METRICS_DIR):
        os.makedirs(env[METRICS_DIR], exist_ok=True)
    return env


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        raise SystemExit("用法：python -m wxbot.envfile 环境文件 命令 [参数...]")
    path, command = argv[0], argv[1:]
    try:
        with open(path, encoding="utf-8") as f:
            values = parse(f.read())
    except OSError as exc:
        raise SystemExit(f"读不到环境文件 {path}：{exc.strerror}") from None
    except (EnvFileError, UnicodeDecodeError) as exc:
        raise SystemExit(f"环境文件 {path} 有误：{exc}（写法见 docs/部署.md 第 3 节）") from None
    os.execvpe(command[0], command, command_environment(values, command, dict(os.environ)))


if __name__ == "__main__":
    main(sys.argv[1:])
