"""What a first production deployment ran into: demo data beside real data, a command without its
environment file, /metrics, JSON logs with a request id that follows a message to its deliveries."""
import json
import logging
import os
import subprocess
import sys
import time

from sqlalchemy import func, select

from models.study import Material
from tests.helpers import make_member
from wxbot.config import ROOT


def test_demo_data_loads_in_the_sandbox_on_an_empty_database(runner, session):
    result = runner.invoke(args=["demo", "load"])
    assert result.exit_code == 0 and "已载入演示数据" in result.output
    assert session.scalar(select(func.count()).select_from(Material)) > 0


def test_demo_data_never_loads_beside_a_real_roster(runner, session):
    make_member(session, student_no="2024000001", name="真实的人")
    refused = runner.invoke(args=["demo", "load"])
    assert refused.exit_code == 1 and "不属于演示学校的成员" in refused.output
    quiet = runner.invoke(args=["demo", "load", "--if-safe"])  # what make run does
    assert quiet.exit_code == 0 and "不载入演示数据" in quiet.output
    assert session.scalar(select(func.count()).select_from(Material)) == 0


def test_demo_data_never_loads_with_a_real_appsecret(make_app):
    app = make_app(wechat__secret="a-real-secret", wechat__appid="wx1234567890abcdef", wechat__aes_key="R" * 43,
                   wechat__token="realtoken123")
    result = app.test_cli_runner().invoke(args=["demo", "load"])
    assert result.exit_code == 1 and "真实的 AppSecret" in result.output


def test_a_command_that_did_not_load_the_environment_file_refuses_to_start_on_sqlite(tmp_path):
    marker = tmp_path / "wxbot.env"
    marker.write_text("WXBOT_DATABASE_URL=postgresql+psycopg://wxbot@127.0.0.1/wxbot\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WXBOT_")} | {"WXBOT_ENV_FILE": str(marker)}
    flask = os.path.join(os.path.dirname(sys.executable), "flask")
    embedded_db = ROOT / "instance" / "wxbot.db"
    existed = embedded_db.exists()
    result = subprocess.run([flask, "--app", "wxbot", "broadcast", "send", "--text", "通知", "--everyone", "--yes"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "bin/wxbot" in result.stderr and "Traceback" not in result.stderr
    assert embedded_db.exists() == existed  # no empty SQLite database was made to send into


def test_bin_wxbot_loads_the_environment_file(tmp_path):
    database = tmp_path / "site.db"
    marker = tmp_path / "wxbot.env"
    marker.write_text(f"WXBOT_DATABASE_URL=sqlite:///{database}\nWXBOT_LOG_LEVEL=WARNING\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WXBOT_")} | {"WXBOT_ENV_FILE": str(marker)}
    result = subprocess.run([str(ROOT / "bin" / "wxbot"), "db", "upgrade"], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and "最新结构" in result.stdout and database.exists()
    missing = subprocess.run([str(ROOT / "bin" / "wxbot"), "db", "upgrade"], capture_output=True, text=True,
                             env=env | {"WXBOT_ENV_FILE": str(tmp_path / "absent.env")}, timeout=60)
    assert missing.returncode == 1 and "读不到环境文件" in missing.stderr


def test_metrics_answer_only_allowed_addresses_or_the_token(make_app):
    app = make_app(health__metrics_allow=["10.0.0.0/8"], health__metrics_token="scrape-token")
    client = app.test_client()
    assert client.get("/metrics").status_code == 404  # the test client comes from 127.0.0.1
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 404
    inside = client.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert inside.status_code == 200
    with_token = client.get("/metrics", headers={"Authorization": "Bearer scrape-token"})
    assert with_token.status_code == 200 and "wxbot_outbox_depth" in with_token.get_data(as_text=True)


def _metric(text: str, name: str) -> float:
    """The value of one series (name{labels}), or the sum over a metric's series (bare name)."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + " ") or ("{" not in name and line.startswith(name + "{")))


def test_metrics_count_replies_redeliveries_refusals_and_handlers(app, phone):
    client = app.test_client()
    before = client.get("/metrics").get_data(as_text=True)
    msg_id = int(time.time() * 1000)  # not one another test's message could have had (dedup lasts 300 s)
    query, body = phone.build("oMetrics", {"MsgType": "text", "Content": "帮助", "MsgId": msg_id})
    first, again = phone.transport(query, body), phone.transport(query, body)  # WeChat retries the same message
    assert first == again and "可以发送" in first[1]
    client.post("/wechat?signature=forged&timestamp=1&nonce=1", data=b"<xml/>")
    after = client.get("/metrics").get_data(as_text=True)
    assert _metric(after, "wxbot_dedup_hits_total") == _metric(before, "wxbot_dedup_hits_total") + 1
    refused = 'wxbot_webhook_requests_total{outcome="refused_403"}'
    assert _metric(after, refused) == _metric(before, refused) + 1
    handled = [line for line in after.splitlines() if line.startswith("wxbot_handler_seconds_count{")]
    assert any("help" in line for line in handled)
    assert 'wxbot_processes_alive{role="worker"} 0.0' in after and "wxbot_database_up 1.0" in after


def organiser_composing_a_broadcast(app, session, prefix: str):
    """An organiser of a branch with one member, whose broadcast waits for 确认; (phone, organiser)."""
    from tests.conftest import phone_for
    from tests.helpers import ChatUser, make_branch
    branch = make_branch(session, "计算机学院", "本科生第一党支部")
    phone = phone_for(app)
    ChatUser(phone, f"{prefix}Target").bind(make_member(session, branch=branch))
    chat = ChatUser(phone, f"{prefix}Organiser")
    chat.bind(make_member(session, branch=branch, role="organiser"))
    for text in ("群发", "本支部", "今晚七点支部学习。"):
        chat.say(text)
    return phone, chat


def test_json_logs_carry_the_request_id_from_the_message_to_the_campaign_it_sends(app, session, caplog):
    from models.delivery import Campaign
    from wxbot.delivery.engine import DeliveryWorker
    from wxbot.logs import formatter
    _phone, chat = organiser_composing_a_broadcast(app, session, "oTrace")
    assert "已提交群发" in chat.say("确认")
    campaign = session.scalar(select(Campaign))
    assert campaign.request_id.startswith("wx") and campaign.request_id[2:].isdigit()
    with caplog.at_level(logging.INFO, logger="wxbot.delivery.engine"):
        DeliveryWorker(app, "trace-worker").step()
    record = next(r for r in caplog.records if "sends campaign" in r.getMessage())
    line = json.loads(formatter("json").format(record))
    assert line["request_id"] == campaign.request_id and line["level"] == "INFO" and "oTrace" not in str(line)


def test_a_failed_upgrade_rolls_back_with_db_downgrade_and_forward_again(make_app, tmp_path):
    from wxbot.db import db
    from wxbot.migrate import schema_is_current
    app = make_app(database_url=f"sqlite:///{tmp_path}/rollback.db")
    runner = app.test_cli_runner()
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
    refused = runner.invoke(args=["db", "downgrade", "0012"], input="n\n")
    assert refused.exit_code == 1 and "已经备份了吗" in refused.output
    assert runner.invoke(args=["db", "downgrade", "0012", "--yes"]).exit_code == 0
    with app.app_context():
        assert not schema_is_current()
        db.engine.dispose()
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
    with app.app_context():
        assert schema_is_current()


def test_the_guides_backup_restores_into_a_fresh_database(tmp_path):
    """docs/部署.md's nightly `backup run` and its pg_restore, done: the restored copy is current and has
    the roster, and the uploaded files come back from their archive."""
    from tests.conftest import POSTGRES_ADMIN_URL
    from wxbot import create_app
    from wxbot.db import db
    from wxbot.migrate import schema_is_current, upgrade
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    names = [f"wxbot_backup_{os.getpid()}", f"wxbot_restore_{os.getpid()}"]
    import psycopg
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
    try:
        original = create_app({"database_url": f"{base}/{names[0]}".replace("postgresql://", "postgresql+psycopg://"),
                               "log_level": "WARNING", "backup.dir": str(tmp_path / "backups")})
        with original.app_context():
            upgrade()
            make_member(db.session, student_no="2024999999", name="备份里的人")
        os.makedirs(os.path.join(original.instance_path, "uploads"), exist_ok=True)
        result = original.test_cli_runner().invoke(args=["backup", "run"])
        assert result.exit_code == 0, result.output
        with original.app_context():
            db.engine.dispose()
        dump = next((tmp_path / "backups").glob("wxbot-*.dump"))
        files = next((tmp_path / "backups").glob("files-*.tgz"))
        subprocess.run(["pg_restore", "--no-owner", "-d", f"{base}/{names[1]}", str(dump)], check=True, timeout=120)
        subprocess.run(["tar", "tzf", str(files)], check=True, timeout=60, capture_output=True)
        restored = create_app({"database_url": f"{base}/{names[1]}".replace("postgresql://", "postgresql+psycopg://"),
                               "log_level": "WARNING"})
        with restored.app_context():
            from models.members import Member
            assert schema_is_current()
            assert db.session.scalar(select(Member.name).where(Member.student_no == "2024999999")) == "备份里的人"
            db.engine.dispose()
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_400_digit_msgid_still_creates_the_campaign_it_confirms(app, session):
    from models.delivery import Campaign
    phone, _chat = organiser_composing_a_broadcast(app, session, "oLong")
    query, body = phone.build("oLongOrganiser", {"MsgType": "text", "Content": "确认", "MsgId": "9" * 400})
    assert "已提交群发" in phone.read_reply(*phone.transport(query, body)).text
    assert session.scalar(select(Campaign.request_id)) == "wx" + "9" * 30
