"""The nightly backup (`bin/wxbot backup run`, from cron): the database (pg_dump's custom format, or a
copy of the SQLite file), the uploaded files (attachments and covers), old backups pruned, and the
run recorded in the database, where 运行情况 and /healthz see when it stops.

Files are written readable by their owner only (umask 077, directory 0700): a dump holds every
member's record. A file is written under .part and renamed when complete, so a backup cut off
half-way is never mistaken for a good one."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import tarfile
import time
from dataclasses import dataclass
from datetime import datetime

from flask import Flask
from sqlalchemy.engine import make_url

from models.backups import record_backup
from models.timeutil import show
from wxbot import services
from wxbot.db import database_url

PREFIXES = ("wxbot-", "files-")
FILE_FOLDERS = ("uploads", "covers")  # what organisers uploaded, under the instance folder


class BackupFailed(Exception):
    """What went wrong, in words for the person reading cron's log."""


@dataclass(frozen=True)
class BackupDone:
    database_file: str
    database_bytes: int
    files_file: str
    removed: list[str]


def backup_dir(app: Flask) -> str:
    return services.settings(app).backup.dir or os.path.join(app.instance_path, "backups")


def run_backup(app: Flask, now: datetime) -> BackupDone:
    """Make one backup and record it; raises BackupFailed (nothing recorded) when any part fails."""
    settings = services.settings(app).backup
    directory = backup_dir(app)
    stamp = show(now, "%Y-%m-%d-%H%M")
    old_umask = os.umask(0o077)
    try:
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            os.chmod(directory, 0o700)
        except OSError as exc:
            raise BackupFailed(f"不能使用备份目录 {directory}：{exc.strerror}") from None
        database_file = dump_database(database_url(app), os.path.join(directory, f"wxbot-{stamp}"))
        files_file = archive_files(app.instance_path, os.path.join(directory, f"files-{stamp}.tgz"))
    finally:
        os.umask(old_umask)
    removed = prune(directory, settings.keep_days, keep={database_file, files_file})
    size = os.path.getsize(database_file)
    with services.sessions(app)() as session, session.begin():
        record_backup(session, now, database_file, size, files_file)
    return BackupDone(database_file, size, files_file, removed)


def dump_database(url: str, base: str) -> str:
    """The database to `base`.dump (PostgreSQL, pg_restore reads it) or `base`.sqlite3."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        target = base + ".sqlite3"
        _complete(target, lambda part: _copy_sqlite(parsed.database, part))
        return target
    if parsed.get_backend_name() != "postgresql":
        raise BackupFailed(f"不支持备份 {parsed.get_backend_name()} 数据库")
    target = base + ".dump"
    # The password goes by the environment, not the command line (other users can read that in ps).
    env = dict(os.environ, PGPASSWORD=parsed.password or "")
    address = parsed.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    _complete(target, lambda part: _pg_dump(address, part, env))
    return target


def _pg_dump(address: str, part: str, env: dict) -> None:
    try:
        done = subprocess.run(["pg_dump", "--format=custom", f"--file={part}", f"--dbname={address}"], env=env,
                              capture_output=True, text=True, timeout=6 * 3600)
    except FileNotFoundError:
        raise BackupFailed("找不到 pg_dump：请安装 PostgreSQL 客户端（apt-get install postgresql-client），"
                           "版本不低于数据库服务器") from None
    if done.returncode != 0:
        raise BackupFailed("pg_dump 失败：" + done.stderr.strip()[-500:])


def _copy_sqlite(source: str, part: str) -> None:
    """SQLite's online backup: a consistent copy while the server keeps writing."""
    src, dst = sqlite3.connect(source), sqlite3.connect(part)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def archive_files(instance_path: str, target: str) -> str:
    def write(part: str) -> None:
        with tarfile.open(part, "w:gz") as archive:
            for folder in FILE_FOLDERS:
                path = os.path.join(instance_path, folder)
                if os.path.isdir(path):
                    archive.add(path, arcname=folder)
    _complete(target, write)
    return target


def _complete(target: str, write) -> None:
    """Write through `target`.part and rename once written; a failure leaves no file behind."""
    part = target + ".part"
    try:
        write(part)
        os.replace(part, target)
    except (OSError, sqlite3.Error) as exc:
        raise BackupFailed(f"写不了 {target}：{getattr(exc, 'strerror', None) or exc}") from None
    finally:
        if os.path.exists(part):
            os.remove(part)


def prune(directory: str, keep_days: int, keep: set[str]) -> list[str]:
    """Delete this job's files older than keep_days (and any .part a killed run left)."""
    limit = time.time() - keep_days * 86400
    removed = []
    for entry in os.scandir(directory):
        if not entry.is_file() or not entry.name.startswith(PREFIXES) or entry.path in keep:
            continue
        if entry.stat().st_mtime < limit or entry.name.endswith(".part"):
            os.remove(entry.path)
            removed.append(entry.name)
    return sorted(removed)


def human_size(size: float) -> str:
    unit = "B"
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            break
        size /= 1024
    return f"{size:.0f} B" if unit == "B" else f"{size:.1f} {unit}"
