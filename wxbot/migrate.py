"""Run Alembic migrations on the app's database."""
from __future__ import annotations

from alembic import command
from alembic.config import Config

from wxbot.config import ROOT
from wxbot.db import db


def alembic_config(connection) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(revision: str = "head") -> None:
    """Migrate the current app's database to `revision`."""
    with db.engine.connect() as conn:
        command.upgrade(alembic_config(conn), revision)
        conn.commit()


def downgrade(revision: str) -> None:
    with db.engine.connect() as conn:
        command.downgrade(alembic_config(conn), revision)
        conn.commit()


def schema_is_current() -> bool:
    """Whether the database is at the newest migration (False when unreachable or behind)."""
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory
    head = ScriptDirectory.from_config(alembic_config(None)).get_current_head()
    try:
        with db.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision() == head
    except Exception:  # any driver error: not current; /healthz reports the database separately
        return False
