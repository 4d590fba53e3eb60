"""The deployment guide (docs/部署.md) as written: its environment file reads the same to systemd, to
bin/wxbot and to sh; bin/wxbot runs before the services ever started; its nginx configuration starts,
hides /metrics and keeps openids out of both of nginx's logs."""
import os
import re
import socket
import subprocess
import time

import pytest
import requests
import urllib3

from tests.helpers import free_port
from wxbot.config import ROOT, load_settings
from wxbot.envfile import EnvFileError, command_environment, parse

GUIDE = (ROOT / "docs" / "部署.md").read_text(encoding="utf-8")


def guide_block(section: str, language: str = "") -> str:
    """The first ```language block of a section of the guide."""
    text = GUIDE[GUIDE.index(f"## {section}"):]
    return re.search(rf"```{language}\n(.*?)```", text, re.S).group(1)


@pytest.mark.parametrize("line, value", [
    ("A=plain", "plain"),
    ("A=  inner  spaces kept  ", "inner  spaces kept"),
    ("A='[\"127.0.0.1\", \"10.0.0.5\"]'", '["127.0.0.1", "10.0.0.5"]'),
    ("A=p$ss word", "p$ss word"),  # systemd expands nothing
    ("A='p$ss \\n word'", "p$ss \\n word"),  # single quotes: verbatim
    ('A="say \\"hi\\" \\$HOME \\\\ \\n"', 'say "hi" $HOME \\ \\n'),  # double quotes: \" \$ \\ only
    ("A=a\\ b\\\\c", "a b\\c"),
    ("A=first\\\nsecond", "firstsecond"),  # a trailing backslash continues the line
    ("A='two\nlines'", "two\nlines"),
    ("A=\"x\"y'z'", "xy'z'"),  # quotes after an unquoted character are kept
    ("A=", ""),
    ("  A = spaced key", "spaced key"),
])
def test_values_are_read_as_systemd_reads_them(line, value):
    assert parse(line + "\n") == {"A": value}


def test_comments_and_lines_without_a_name_are_ignored_and_mistakes_are_named():
    assert parse("# WXBOT_X=1\n; WXBOT_Y=2\nnot an assignment\nB=1 # kept\n") == {"B": "1 # kept"}
    with pytest.raises(EnvFileError, match="WXBOT_DATABASE_URL 的值缺少结尾的引号"):
        parse("WXBOT_DATABASE_URL='postgresql://x\n")
    with pytest.raises(EnvFileError, match="不是合法的变量名"):
        parse("WXBOT-X=1\n")


def test_the_guides_environment_file_reads_the_same_to_systemd_and_to_sh(tmp_path):
    block = guide_block("3. 环境文件")
    ours = parse(block)
    env_file = tmp_path / "wxbot.env"
    env_file.write_text(block, encoding="utf-8")
    dumped = subprocess.run(["sh", "-c", 'set -a; . "$0"; env -0', str(env_file)], env={"PATH": os.environ["PATH"]},
                            capture_output=True, check=True, timeout=10).stdout.decode()
    from_sh = dict(item.split("=", 1) for item in dumped.split("\0") if "=" in item)
    assert ours and all(from_sh[name] == value for name, value in ours.items())
    allowed = load_settings(environ={"WXBOT_HEALTH__METRICS_ALLOW": ours["WXBOT_HEALTH__METRICS_ALLOW"]})
    assert allowed.health.metrics_allow == ["127.0.0.1", "10.0.0.5"]
    assert ours["PROMETHEUS_MULTIPROC_DIR"] == "/run/wxbot/metrics"


def test_bin_wxbot_runs_before_the_services_with_quotes_dollars_and_spaces(tmp_path):
    folder = tmp_path / "p$ss word"  # a path that sh would have split and expanded
    folder.mkdir()
    metrics = tmp_path / "run" / "metrics"  # /run/wxbot/metrics before any service started
    env_file = tmp_path / "wxbot.env"
    env_file.write_text(f"WXBOT_DATABASE_URL='sqlite:///{folder}/site.db'\n"
                        "WXBOT_HEALTH__METRICS_ALLOW='[\"127.0.0.1\", \"10.0.0.5\"]'\n"
                        f"PROMETHEUS_MULTIPROC_DIR={metrics}\nWXBOT_LOG_LEVEL=WARNING\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WXBOT_", "PROMETHEUS"))}
    env["WXBOT_ENV_FILE"] = str(env_file)
    result = subprocess.run([str(ROOT / "bin" / "wxbot"), "db", "upgrade"], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert (folder / "site.db").exists() and not metrics.exists()  # no metrics file left behind either
    env_file.write_text("WXBOT_DATABASE_URL='sqlite:///unclosed\n", encoding="utf-8")
    broken = subprocess.run([str(ROOT / "bin" / "wxbot"), "db", "upgrade"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert broken.returncode == 1 and "WXBOT_DATABASE_URL 的值缺少结尾的引号" in broken.stderr
    assert "Traceback" not in broken.stderr


def test_only_the_long_running_commands_keep_the_metrics_directory(tmp_path):
    values = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    flask = ["flask", "--app", "wxbot"]
    assert "PROMETHEUS_MULTIPROC_DIR" not in command_environment(values, [*flask, "roster", "import", "worker.csv"], {})
    assert command_environment(values, [*flask, "worker"], {})["PROMETHEUS_MULTIPROC_DIR"] == values[
        "PROMETHEUS_MULTIPROC_DIR"]
    assert (tmp_path / "metrics").is_dir()


@pytest.fixture
def guide_nginx(tmp_path):
    """nginx running the guide's /etc/nginx/conf.d/wxbot.conf, on free ports, in front of nothing
    (so that /wechat answers 502), with a self-signed certificate."""
    conf = guide_block("5. nginx", "nginx")
    http_port, https_port, dead_port = free_port(), free_port(), free_port()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")],
                   check=True, capture_output=True, timeout=60)
    conf = (conf.replace("listen 80 ", f"listen 127.0.0.1:{http_port} ")
            .replace("listen 443 ", f"listen 127.0.0.1:{https_port} ")
            .replace("/etc/nginx/certs/dangjian.pem", str(tmp_path / "cert.pem"))
            .replace("/etc/nginx/certs/dangjian.key", str(tmp_path / "key.pem"))
            .replace("/var/log/nginx/", f"{tmp_path}/")
            .replace("127.0.0.1:8000", f"127.0.0.1:{dead_port}"))
    temp = "".join(f"{kind}_temp_path {tmp_path}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi",
                                                                       "scgi"))
    (tmp_path / "nginx.conf").write_text(
        f"daemon off;\npid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/main.error.log;\nevents {{}}\n"
        f"http {{\n{temp}{conf}\n}}\n", encoding="utf-8")
    check = subprocess.run(["/usr/sbin/nginx", "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    process = subprocess.Popen(["/usr/sbin/nginx", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                               stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", https_port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    yield {"http": f"http://127.0.0.1:{http_port}", "https": f"https://127.0.0.1:{https_port}", "logs": tmp_path}
    process.terminate()
    process.wait(10)


def test_the_guides_nginx_hides_metrics_and_keeps_openids_out_of_its_logs(guide_nginx):
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    https = guide_nginx["https"]
    query = "?signature=s&timestamp=1&nonce=2&openid=oSecretOpenid123&encrypt_type=aes&msg_signature=m"
    assert requests.get(https + "/metrics", verify=False, timeout=5).status_code == 404
    too_big = requests.post(https + "/wechat" + query, data=b"x" * 100_000, verify=False, timeout=5)
    upstream_down = requests.post(https + "/wechat" + query, data=b"<xml/>", verify=False, timeout=5)
    redirected = requests.post(guide_nginx["http"] + "/wechat" + query, data=b"<xml/>", allow_redirects=False,
                               timeout=5)
    console_down = requests.get(https + "/admin/?next=x", verify=False, timeout=5)
    assert (too_big.status_code, upstream_down.status_code, redirected.status_code) == (413, 502, 301)
    assert console_down.status_code == 502
    time.sleep(0.2)  # nginx writes its logs as it goes; give the last lines a moment
    logs = {path.name: path.read_text() for path in guide_nginx["logs"].glob("*.log")}
    assert "wxbot.access.log" in logs and "POST /wechat" in logs["wxbot.access.log"]
    assert "/admin/" in logs.get("wxbot.error.log", "")  # other failures are still there to read
    assert not [name for name, text in logs.items() if "oSecretOpenid123" in text]
