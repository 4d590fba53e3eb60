"""The nightly backup: files only their owner reads, old ones pruned, a run that fails records
nothing, and a backup that stops shows in 运行情况 and /healthz."""
import os
import stat
import time
from datetime import timedelta

from sqlalchemy import select

from models.backups import Backup
from models.timeutil import utcnow
from tests.conftest import _empty
from tests.helpers import make_account, make_member, signed_in

REAL_ACCOUNT = dict(wechat__secret="a-real-secret", wechat__appid="wx1234567890abcdef", wechat__aes_key="R" * 43,
                    wechat__token="realtoken123")


def test_a_backup_is_readable_by_its_owner_only_and_recorded(make_app, tmp_path):
    app = make_app(backup__dir=str(tmp_path / "backups"))
    _empty(app)
    session = app.extensions["wxbot.db"]()
    make_member(session, student_no="2024100", name="备份的人")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["backup", "run"])
    assert result.exit_code == 0 and "已备份" in result.output, result.output
    directory = tmp_path / "backups"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    made = sorted(p.name.split("-")[0] for p in directory.iterdir())
    assert made == ["files", "wxbot"] and not list(directory.glob("*.part"))
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in directory.iterdir())
    assert session.scalar(select(Backup.database_bytes)) > 0
    assert "最近一次备份" in runner.invoke(args=["backup", "status"]).output
    session.close()


def test_backups_older_than_the_kept_days_are_deleted(make_app, tmp_path):
    app = make_app(backup__dir=str(tmp_path), backup__keep_days=30)
    _empty(app)
    old, recent, other = tmp_path / "wxbot-2026-10-01-0230.dump", tmp_path / "wxbot-2026-11-20-0230.dump", \
        tmp_path / "notes.txt"
    for path, days in ((old, 31), (recent, 13), (other, 400)):
        path.write_text("x")
        then = time.time() - days * 86400
        os.utime(path, (then, then))
    result = app.test_cli_runner().invoke(args=["backup", "run"])
    assert result.exit_code == 0 and "删除了过期的备份 1 个" in result.output
    assert not old.exists() and recent.exists() and other.exists()


def test_a_backup_that_cannot_be_written_says_why_and_records_nothing(make_app, tmp_path):
    blocked = tmp_path / "backups"
    blocked.write_text("a file where the folder should be")
    app = make_app(backup__dir=str(blocked))
    _empty(app)
    result = app.test_cli_runner().invoke(args=["backup", "run"])
    assert result.exit_code == 1 and "备份失败：不能使用备份目录" in result.output and "Traceback" not in result.output
    session = app.extensions["wxbot.db"]()
    assert session.scalar(select(Backup)) is None
    session.close()


def test_a_backup_that_stopped_shows_in_the_console_and_healthz_but_does_not_fail_healthz(make_app, tmp_path):
    from tests.test_operations import beat_as
    app = make_app(backup__dir=str(tmp_path), backup__warn_after_hours=26, **REAL_ACCOUNT)
    _empty(app)
    session = app.extensions["wxbot.db"]()
    make_account(session, "admin")
    session.commit()
    console = signed_in(app, "admin")
    assert "还没有备份过" in console.get("/admin/").get_data(as_text=True)
    beat_as(app, "scheduler")
    beat_as(app, "worker")
    assert app.test_cli_runner().invoke(args=["backup", "run"]).exit_code == 0
    page = console.get("/admin/").get_data(as_text=True)
    assert "数据备份" in page and "最近一次" in page and "没有备份" not in page
    assert app.test_client().get("/healthz").get_json()["backup"].startswith("ok: last 0 h")
    session.execute(Backup.__table__.update().values(finished_at=utcnow() - timedelta(hours=30)))
    session.commit()
    assert "已经 30 小时没有备份" in console.get("/admin/").get_data(as_text=True)
    health = app.test_client().get("/healthz")
    assert health.status_code == 200 and health.get_json()["backup"].startswith("overdue: last 30 h")
    session.close()


def test_the_sandbox_does_not_nag_about_backups(app, session, tmp_path):
    make_account(session, "admin")
    session.commit()
    assert "数据备份" not in signed_in(app, "admin").get("/admin/").get_data(as_text=True)
    assert "backup" not in app.test_client().get("/healthz").get_json()
