"""Run Alembic migrations on the app's database."""
from __future__ import annotations

import logging

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
    _profiles_out_of_date()


def downgrade(revision: str) -> None:
    with db.engine.connect() as conn:
        command.downgrade(alembic_config(conn), revision)
        conn.commit()
    _profiles_out_of_date()


def _profiles_out_of_date() -> None:
    """A migration may change what senders' profiles hold, behind the session's back."""

    from wxbot import services
    from wxbot.profiles import PROFILE_TTL, new_generation
    try:
        new_generation(services.store())
    except Exception:  # the store is down: profiles expire on their own
        logging.getLogger(__name__).warning("store unreachable: senders' profiles renew within %d s", PROFILE_TTL)


def schema_is_current() -> bool:
    """Whether the database is at the newest migration (False when unreachable or behind)."""
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory
    head = ScriptDirectory.from_config(alembic_config(None)).get_current_head()
    quiet = logging.getLogger("alembic.runtime.migration")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # asked by every health probe: not worth a line each
    try:
        with db.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision() == head
    except Exception:  # any driver error: not current; /healthz reports the database separately
        return False
    finally:
        quiet.setLevel(level)
