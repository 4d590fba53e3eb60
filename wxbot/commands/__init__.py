"""`flask --app wxbot ...` commands: one module per feature, joined here in one written order."""
from __future__ import annotations

from flask import Flask


def register_commands(app: Flask) -> None:
    from wxbot.commands import accounts, broadcast, events, questions, roster, setup
    for command in (setup.db_cli, setup.demo_cli, setup.menu_cli, roster.roster_cli, questions.questions_cli,
                    events.events_cli, accounts.admin_cli, broadcast.broadcast_cli, broadcast.push_cli, setup.urls,
                    setup.chat, setup.scheduler, setup.worker):
        app.cli.add_command(command)
