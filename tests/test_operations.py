"""What IT staff rely on: /healthz, migrations matching the models, the terminal chat, gunicorn."""
import json
import os
import subprocess
import sys
import time

import requests
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from models import Base
from wxbot.config import ROOT
from wxbot.db import db


def beat_as(app, role: str, seconds_ago: float = 0, pid: int | None = None) -> None:
    """A heartbeat as a scheduler or worker process writes it (pid: another process's)."""
    from datetime import timedelta

    from models.heartbeats import Heartbeat, process_name
    from models.timeutil import utcnow
    with app.app_context():
        when = utcnow() - timedelta(seconds=seconds_ago)
        name = process_name(role, pid=pid)
        db.session.merge(Heartbeat(name=name, role=role, host=name.split("@")[1].split(":")[0],
                                   pid=pid or os.getpid(), started_at=when, beat_at=when))
        db.session.commit()


def test_a_worker_stopped_a_moment_ago_on_this_host_is_not_counted_beside_its_successor(app):
    import subprocess
    gone = subprocess.Popen(["true"])
    gone.wait()
    beat_as(app, "worker")
    beat_as(app, "worker", seconds_ago=1, pid=gone.pid)  # restarted: the old one beat a second ago
    body = app.test_client().get("/healthz").get_json()
    assert body["workers_alive"] == 1 and "1 个已停止" in body["worker"]


def test_healthz_reports_database_store_scheduler_workers_and_outbox(app, backend):
    beat_as(app, "scheduler")
    beat_as(app, "worker")
    response = app.test_client().get("/healthz")
    body = response.get_json()
    assert response.status_code == 200 and body["database"] == "ok" and body["sandbox"] is True
    assert body["redis"] == ("embedded" if backend["name"] == "embedded" else "ok")
    assert body["scheduler"] == "ok" and body["worker"] == "ok" and body["outbox"] == {"pending": 0, "sending": 0}


def test_healthz_is_503_when_the_worker_stopped_or_the_scheduler_never_ran(app):
    beat_as(app, "worker", seconds_ago=120)
    response = app.test_client().get("/healthz")
    body = response.get_json()
    assert response.status_code == 503
    assert body["worker"].startswith("down: 最后一次心跳在 12") and "没有运行过" in body["scheduler"]


def test_healthz_tells_a_database_outage_from_an_outdated_schema(make_app):
    app = make_app(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none")
    response = app.test_client().get("/healthz")
    body = response.get_json()
    assert response.status_code == 503 and body["database"].startswith("down: 连不上数据库")
    assert "schema" not in body and "upgrade" not in response.get_data(as_text=True)


def test_healthz_is_503_when_redis_is_down(make_app):
    app = make_app(redis_url="redis://127.0.0.1:1/0")
    response = app.test_client().get("/healthz")
    assert response.status_code == 503 and response.get_json()["redis"] == "down"


def test_the_migrations_build_exactly_the_models(app):
    with app.app_context(), db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_the_terminal_chat_talks_to_the_running_server(app, runner, backend):
    lines = "/follow\n帮助\n/click 我的\n/quit\n"
    result = runner.invoke(args=["chat", "--openid", "oTerminalUser"], input=lines)
    assert result.exit_code == 0, result.output
    assert "欢迎关注" in result.output and "可以发送" in result.output and "还没有绑定" in result.output


def test_the_terminal_chat_says_when_the_server_is_not_running(app, runner):
    result = runner.invoke(args=["chat", "--url", "http://127.0.0.1:1/wechat"], input="帮助\n")
    assert "请先在另一个终端运行 make run" in result.output


def test_gunicorn_refuses_several_workers_on_the_embedded_store(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WXBOT_")}
    result = subprocess.run([os.path.join(os.path.dirname(sys.executable), "gunicorn"), "-c", "gunicorn.conf.py",
                             "-w", "2", "-b", "127.0.0.1:0", "wxbot.wsgi:app"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "内置存储只能单进程运行" in result.stderr


def test_with_redis_down_a_user_gets_an_apology_not_wechats_error(make_app):
    from tests.conftest import phone_for
    from tests.helpers import ChatUser
    from wxbot.pipeline import APOLOGY
    app = make_app(redis_url="redis://127.0.0.1:1/0")
    user = ChatUser(phone_for(app), "oDuringOutage")
    assert user.say("帮助") == APOLOGY and user.last.status == 200


def test_menu_sync_says_what_to_do_when_wechat_cannot_be_reached(make_app):
    app = make_app(wechat__api_base="http://127.0.0.1:1/cgi-bin/")
    result = app.test_cli_runner().invoke(args=["menu", "sync"])
    assert result.exit_code == 1 and "连接不上" in result.output and "Traceback" not in result.output


def test_healthz_says_when_the_database_needs_migrating(make_app, tmp_path):
    app = make_app(database_url=f"sqlite:///{tmp_path}/empty.db")
    response = app.test_client().get("/healthz")
    assert response.status_code == 503 and "db upgrade" in response.get_json()["schema"]


def test_with_redis_down_the_message_log_says_so_once_and_again_when_it_is_back(make_app, caplog):
    app = make_app(redis_url="redis://127.0.0.1:1/0")
    writer = app.extensions["wxbot.logwriter"]
    writer.start()  # flushes every 0.2 s while things work
    time.sleep(2)
    told = [r for r in caplog.records if r.name.startswith("wxbot")]
    assert len(told) == 2 and "message log batch failed" in caplog.text  # the failure, then "retrying quietly"
    writer.stop()
    working = make_app()
    app.extensions["wxbot.store"] = working.extensions["wxbot.store"]
    writer.flush_quietly()
    assert "message log batch works again after" in caplog.text


def test_the_web_service_writes_every_line_in_one_format_with_request_ids(tmp_path):
    from tests.helpers import Gunicorn
    not_a_directory = tmp_path / "home"
    not_a_directory.write_text("")  # a service user's home it cannot write to
    env = {"WXBOT_LOG_FORMAT": "json", "HOME": str(not_a_directory),
           "WXBOT_DATABASE_URL": f"sqlite:///{tmp_path}/web.db"}
    with Gunicorn(env, capture=True) as server:
        requests.get(server.url + "/admin/login", headers={"X-Request-Id": "fromnginx42"}, timeout=5)
        requests.post(server.url + "/wechat?openid=oMustNotBeLogged&signature=x", data=b"<xml/>", timeout=5)
    written = server.output()
    records = [json.loads(line) for line in written.splitlines()]  # every line is one JSON object
    access = [r for r in records if r["logger"] == "gunicorn.access"]
    assert any(r["request_id"] == "fromnginx42" and "/admin/login" in r["message"] for r in access)
    assert all(r["request_id"] not in ("", "-") for r in access)
    assert any("Booting worker" in r["message"] for r in records)
    assert "oMustNotBeLogged" not in written and "Control server" not in written
